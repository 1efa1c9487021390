"""Lookup Lambda: list an experiment's images and write the run manifest."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from plateseg.contracts import LookupRequest, parse_event
from plateseg.pipeline.lookup import lookup
from plateseg.store import store_for_bucket

logger = Logger(service="plateseg", child=False)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = parse_event(LookupRequest, event, "lookup event")
    result = lookup(request, store_for_bucket(request.bucket))
    logger.info("manifest written", run_id=result.run_id, items=result.item_count)
    return result.model_dump(mode="json")
