"""Issue 17: the project's own definition rewritten in JSONata runs to the same rows.

``tests/engine/segmentation_jsonata.asl.json`` is ``statemachines/segmentation.asl.json``
rewritten as a Workflow Studio user would: ``QueryLanguage: JSONata``, ``Arguments`` and
``{% %}`` expressions instead of Parameters and paths, the Lookup result kept in a
variable (``Assign``) instead of threaded through ``ResultPath``. The shipped JSONPath
definition runs through :func:`plateseg.runs.embedded.run_local` (rendered with the run's Map
settings, as every local run is); the JSONata one runs through the engine with the same
functions, the same settings copied from that rendered definition and the same execution
name, into a second home. Both must write the same database rows.

The shipped definition stays JSONPath: it runs unchanged on AWS accounts and regions
without JSONata-capable tooling in their deployment pipelines, and the CDK stack renders
its tunables into JSONPath fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from plateseg.contracts import AggregateResult
from plateseg.db.engine import get_engine
from plateseg.definition import LOCAL_FUNCTIONS
from plateseg.demo import write_demo_experiment
from plateseg.engine import Clock, LocalEngine, parse_definition
from plateseg.engine.journal import Journal
from plateseg.runs.embedded import journal_path, run_local
from plateseg.runs.worker import init_worker
from plateseg.settings import Settings, use_settings
from plateseg.store import LocalStore

FIXTURE = Path(__file__).parent / "segmentation_jsonata.asl.json"
TABLES = ("images", "image_metrics", "well_metrics", "experiment_metrics")


def _rows(url: str, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = get_engine(url)
    with engine.connect() as conn:
        return {
            table: sorted(
                tuple(row)
                for row in conn.execute(
                    text(f"SELECT * FROM {table} WHERE run_id = :r"), {"r": run_id}
                ).all()
            )
            for table in TABLES
        }


def _jsonata_like(rendered: dict[str, Any]) -> dict[str, Any]:
    """The JSONata fixture with the values the JSONPath run was rendered with: function
    ARNs, bucket, the Map's settings and the ``run_settings`` handed to Aggregate."""
    states = rendered["States"]
    text_ = FIXTURE.read_text(encoding="utf-8")
    bucket = states["Segment"]["ItemReader"]["Parameters"]["Bucket"]
    values = {
        "LookupFunctionArn": states["Lookup"]["Resource"],
        "SegmentFunctionArn": states["Segment"]["ItemProcessor"]["States"]["SegmentBatch"][
            "Resource"
        ],
        "AggregateFunctionArn": states["Aggregate"]["Resource"],
        "BucketName": bucket,
    }
    for name, value in values.items():
        text_ = text_.replace("${" + name + "}", value)
    definition: dict[str, Any] = json.loads(text_)
    segment, source = definition["States"]["Segment"], states["Segment"]
    for key in ("MaxConcurrency", "ToleratedFailurePercentage", "ToleratedFailureCount"):
        segment.pop(key, None)
        if key in source:
            segment[key] = source[key]
    for key in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
        segment["ItemBatcher"].pop(key, None)
        if key in source["ItemBatcher"]:
            segment["ItemBatcher"][key] = source["ItemBatcher"][key]
    segment["ItemProcessor"]["ProcessorConfig"] = source["ItemProcessor"]["ProcessorConfig"]
    arguments = definition["States"]["Aggregate"]["Arguments"]
    arguments.pop("run_settings", None)
    if "run_settings" in states["Aggregate"]["Parameters"]:
        arguments["run_settings"] = states["Aggregate"]["Parameters"]["run_settings"]
    return definition


def test_fixture_is_a_jsonata_definition_the_engine_accepts() -> None:
    definition = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert definition["QueryLanguage"] == "JSONata"
    machine = parse_definition(_jsonata_like(_rendered_stand_in()))
    assert list(machine.states) == ["Lookup", "HasImages", "NoImages", "Segment", "Aggregate"]
    assert all(state.query_language == "JSONata" for state in machine.states.values())


def _rendered_stand_in() -> dict[str, Any]:
    """A rendered-definition stand-in for the parse check (no run needed)."""
    arn = "arn:aws:lambda:us-east-1:000000000000:function:"
    return {
        "States": {
            "Lookup": {"Resource": f"{arn}plateseg-lookup"},
            "Segment": {
                "ItemReader": {"Parameters": {"Bucket": "local"}},
                "ItemBatcher": {"MaxItemsPerBatch": 4},
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "States": {"SegmentBatch": {"Resource": f"{arn}plateseg-segment"}},
                },
            },
            "Aggregate": {"Resource": f"{arn}plateseg-aggregate", "Parameters": {}},
        }
    }


@pytest.mark.slow
def test_jsonata_rewrite_writes_the_same_rows(tmp_path: Path) -> None:
    wells = ["B02", "B03", "C05"]
    homes = {}
    for language in ("jsonpath", "jsonata"):
        settings = Settings(home=tmp_path / language, time_scale=0.0, workers=2)
        write_demo_experiment(
            LocalStore(settings.store_location), "MIG-1", fields=2, size=256, seed=3, wells=wells
        )
        homes[language] = settings

    use_settings(homes["jsonpath"])
    try:
        shipped = run_local("MIG-1", run_id="mig", settings=homes["jsonpath"])
        with Journal(journal_path("mig", homes["jsonpath"])) as journal:
            recorded = journal.execution()
        assert recorded is not None
        rendered = recorded["definition"]

        settings = homes["jsonata"]
        use_settings(settings)
        store = LocalStore(settings.store_location)
        with LocalEngine(
            functions=dict(LOCAL_FUNCTIONS),
            buckets=lambda _bucket: store,
            clock=Clock(time_scale=0),
            workers=2,
            worker_initializer=init_worker,
            worker_initargs=(settings.model_dump(mode="json"),),
        ) as engine:
            outcome = engine.run(_jsonata_like(rendered), recorded["input"], name="mig")
    finally:
        use_settings(None)
    assert outcome.status == "SUCCEEDED", outcome.cause
    result = AggregateResult.model_validate(outcome.output)
    assert result == shipped.result
    assert result.images_ok == 3 * 2 and result.images_failed == 0
    jsonpath_rows = _rows(homes["jsonpath"].resolved_database_url, "mig")
    jsonata_rows = _rows(homes["jsonata"].resolved_database_url, "mig")
    assert all(jsonpath_rows[table] for table in TABLES)
    assert jsonata_rows == jsonpath_rows
