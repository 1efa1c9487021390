from __future__ import annotations

from typing import Any

import pytest

from plateseg.definition import load_definition
from plateseg.engine import parse_definition, validate
from plateseg.engine.model import MapState, TaskState
from plateseg.errors import DefinitionError


def problems_of(definition: Any) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        validate(definition)
    return info.value.problems


def test_segmentation_definition_parses() -> None:
    machine = parse_definition(load_definition())
    segment = machine.states["Segment"]
    assert isinstance(segment, MapState) and segment.mode == "DISTRIBUTED"
    assert isinstance(machine.states["Lookup"], TaskState)
    assert segment.processor.start_at == "SegmentBatch"


@pytest.mark.parametrize(
    ("definition", "fragment"),
    [
        ({"States": {"A": {"Type": "Succeed"}}}, "/StartAt: missing"),
        ({"StartAt": "B", "States": {"A": {"Type": "Succeed"}}}, "missing state 'B'"),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "exactly one of Next or End"),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Z"}}},
            "/States/A/Next: state 'A' transitions to missing state 'Z'",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Magic", "End": True}}},
            "unknown or unsupported Type",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True, "Assign": {"a.b": 1}}}},
            "/States/A/Assign/a.b: 'a.b' is not a variable name",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}},
            "'B' is not reachable",
        ),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Task", "Resource": "arn:aws:sqs:x", "End": True}},
            },
            "unsupported resource",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {"Type": "Pass", "End": True, "Parameters": {"x.$": "States.Nope()"}}
                },
            },
            "/States/A/Parameters/x.$",
        ),
        (
            {
                "StartAt": "A",
                "QueryLanguage": "JSONata",
                "States": {"A": {"Type": "Succeed", "InputPath": "$"}},
            },
            "InputPath is a JSONPath field",
        ),
        (
            {
                "StartAt": "A",
                "States": {"A": {"Type": "Pass", "End": True, "ResultPath": "$.a[*]"}},
            },
            "not a reference path",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Map",
                        "End": True,
                        "ItemBatcher": {},
                        "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                    }
                },
            },
            "only a DISTRIBUTED Map may have ItemBatcher",
        ),
        (
            {
                "StartAt": "A",
                "States": {
                    "A": {
                        "Type": "Map",
                        "End": True,
                        "ItemProcessor": {
                            "StartAt": "B",
                            "States": {"B": {"Type": "Pass", "Next": "Gone"}},
                        },
                    }
                },
            },
            "/States/A/ItemProcessor/States/B/Next",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Wait", "End": True}}},
            "exactly one of Seconds",
        ),
    ],
)
def test_problems_name_state_and_pointer(definition: dict[str, Any], fragment: str) -> None:
    problems = problems_of(definition)
    assert any(fragment in p for p in problems), problems


def test_all_problems_reported_at_once() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "Nope", "Bogus": 1},
            "B": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"},
        },
    }
    problems = problems_of(definition)
    assert len(problems) >= 4
    text = str(DefinitionError(problems))
    assert "/States/A/Bogus" in text and "/States/B" in text


def test_only_states_that_can_read_the_context_object_get_one() -> None:
    machine = parse_definition(
        {
            "StartAt": "Plain",
            "States": {
                "Plain": {"Type": "Pass", "Result": "ok", "Next": "Reads"},
                "Reads": {"Type": "Pass", "Parameters": {"id.$": "$$.Execution.Id"}, "Next": "T"},
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                    "Parameters": {"Bucket": "b", "Key": "k"},
                    "End": True,
                },
            },
        }
    )
    reads = {name: state.reads_context for name, state in machine.states.items()}
    assert reads == {"Plain": False, "Reads": True, "T": True}
