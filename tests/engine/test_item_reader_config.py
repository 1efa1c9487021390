"""ItemReader configuration accepted as AWS accepts it (issue 17 item 7).

AWS: https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
(``MaxItems`` up to 100,000,000; LocalStack's AWS-recorded snapshot
``test_map_item_reader_csv_max_items[0]`` reads every item for ``0``) and
https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemspath.html
(ItemsPath applies in a Distributed Map only to JSON input from a previous state;
``test_map_item_reader_base_json_with_items_path`` shows it ignored beside ItemReader).
"""

from __future__ import annotations

from typing import Any

import pytest

from plateseg.engine import validate
from plateseg.errors import DefinitionError


def definition(config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    reader = {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON", **config},
        "Parameters": {"Bucket": "b", "Key": "k.json"},
    }
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    state = {"Type": "Map", "ItemReader": reader, "ItemProcessor": processor, "End": True}
    return {"StartAt": "M", "States": {"M": {**state, **fields}}}


@pytest.mark.parametrize("value", [0, 1, 100_000_000])
def test_max_items_from_zero_to_the_limit_is_accepted(value: int) -> None:
    validate(definition({"MaxItems": value}))


@pytest.mark.parametrize("value", [-1, 100_000_001, 1.5, True])
def test_max_items_outside_the_range_is_refused_by_name(value: Any) -> None:
    with pytest.raises(DefinitionError, match="ReaderConfig/MaxItems: must be an integer from 0"):
        validate(definition({"MaxItems": value}))


def test_items_path_beside_item_reader_is_accepted() -> None:
    validate(definition({}, ItemsPath="$.from_previous"))


def test_items_path_beside_item_reader_must_still_be_a_path() -> None:
    with pytest.raises(DefinitionError, match="/States/M/ItemsPath"):
        validate(definition({}, ItemsPath="not a path"))
