"""Aggregate Lambda: write a finished run's summaries to the database in one transaction."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from plateseg.contracts import AggregateRequest, parse_event
from plateseg.pipeline.aggregate import aggregate_run
from plateseg.store import store_for_bucket

logger = Logger(service="plateseg", child=False)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = parse_event(AggregateRequest, event, "aggregate event")
    result = aggregate_run(request, store_for_bucket(request.bucket))
    logger.info("run aggregated", run_id=result.run_id, status=result.status)
    return result.model_dump(mode="json")
