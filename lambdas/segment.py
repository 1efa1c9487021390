"""Segment Lambda: segment one batch of fields of view, return per-image summaries."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from plateseg.contracts import Batch, parse_event
from plateseg.pipeline.segment import load_dependencies, segment_batch
from plateseg.store import store_for_bucket

logger = Logger(service="plateseg", child=False)
# init phase: the first batch does not pay for the numerical stack's imports
load_dependencies()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    batch = parse_event(Batch, event, "segment event")
    result = segment_batch(batch, store_for_bucket(batch.batch_input.bucket))
    failed = sum(1 for image in result.images if image.status == "error")
    logger.info("batch segmented", images=len(result.images), failed=failed)
    return result.model_dump(mode="json")
