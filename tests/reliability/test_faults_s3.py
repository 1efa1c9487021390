"""Transient S3 faults on a real run against S3 (moto): throttling, 5xx, request timeouts.

The run uses the real handlers on an :class:`~plateseg.store.S3Store` bucket (in this
process, so moto's mock applies: the handlers run on the engine's Lambda threads).
The faults are real S3 error responses — botocore parses an injected ``503 SlowDown``
exactly as one from S3 — raised as ``ClientError``, mapped by ``S3Store`` to
``StoreUnavailableError``, and retried by the definition's Retry. Results must equal a
fault-free run's on its own bucket and database, row for row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from lambdas import aggregate, lookup, segment
from plateseg.db.engine import dispose_engines
from plateseg.demo import write_demo_experiment
from plateseg.engine import LocalEngine
from plateseg.settings import Settings, use_settings
from plateseg.store import S3Store
from tests.reliability.faults_support import (
    SIZE,
    WELLS,
    db_snapshot,
    install_faults,
    retries,
    segmentation_definition,
    segmentation_engine,
)

FUNCTIONS = {
    "plateseg-lookup": lookup.handler,
    "plateseg-segment": segment.handler,
    "plateseg-aggregate": aggregate.handler,
}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A mocked S3 whose clients make a single attempt (each fault reaches the ASL)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")
    use_settings(None)


def _run(client: Any, tmp_path: Path, name: str) -> tuple[Settings, LocalEngine, Any]:
    """Run experiment E as run R on bucket ``name`` with its own SQLite database."""
    client.create_bucket(Bucket=name)
    settings = Settings(
        home=tmp_path / name, store=f"s3://{name}", local_bucket=name, time_scale=0.0, workers=1
    )
    use_settings(settings)
    write_demo_experiment(S3Store(name, client=client), "E", size=SIZE, fields=1, wells=list(WELLS))
    engine = segmentation_engine(settings, functions=FUNCTIONS)
    engine.buckets = lambda bucket: S3Store(bucket, client=client)
    try:
        result = engine.run(
            segmentation_definition(settings), {"experiment_id": "E", "run_id": "R"}, name="R"
        )
    finally:
        engine.close()
        dispose_engines()
    return settings, engine, result


def _parquet(client: Any, bucket: str) -> dict[str, list[dict[str, Any]]]:
    store = S3Store(bucket, client=client)
    parts = [info.key for info in store.list("runs/R/objects/") if info.key.endswith(".parquet")]
    return {
        key.rsplit("/", 1)[1]: pq.read_table(pa.BufferReader(store.get_bytes(key))).to_pylist()
        for key in parts
    }


def test_s3_throttling_and_server_errors_are_retried(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_settings, _, clean = _run(s3, tmp_path, "clean-bucket")
    assert clean.status == "SUCCEEDED", clean.cause
    plan = install_faults(
        monkeypatch,
        tmp_path / "faults",
        [
            {"at": "s3", "operation": "ListObjectsV2", "code": "SlowDown", "status": 503,
             "match": "prefix=experiments", "times": 1},
            {"at": "s3", "operation": "GetObject", "code": "SlowDown", "status": 503,
             "match": "_s1_w", "times": 1},
            {"at": "s3", "operation": "GetObject", "code": "InternalError", "status": 500,
             "match": "_s1_w", "times": 1},
            {"at": "s3", "operation": "PutObject", "code": "ServiceUnavailable", "status": 503,
             "match": "/runs/R/objects/", "times": 1},
            {"at": "s3", "operation": "PutObject", "code": "RequestTimeout", "status": 400,
             "match": "/runs/R/masks/", "times": 1},
            {"at": "s3", "operation": "GetObject", "code": "SlowDown", "status": 503,
             "match": "/runs/R/map/", "times": 1},
        ],
    )  # fmt: skip
    settings, engine, result = _run(s3, tmp_path, "fault-bucket")
    assert result.status == "SUCCEEDED", result.cause
    assert [plan.fired(rule.index) for rule in plan.rules] == [1, 1, 1, 1, 1, 1]
    assert retries(result.events, "Lookup") == ["StoreUnavailableError"]
    assert retries(result.events, "Aggregate") == ["StoreUnavailableError"]
    # each of the 4 Segment faults failed one batch attempt, retried once (MaxAttempts 4
    # covers even all four landing on one batch)
    assert engine.invoker.calls["plateseg-segment"] == len(WELLS) + 4
    assert result.output == clean.output
    assert result.output["images_ok"] == len(WELLS)
    rows = db_snapshot(settings.home / "plateseg.db")
    reference = db_snapshot(clean_settings.home / "plateseg.db")
    assert rows == reference
    assert sum(len(v) for v in rows.values()) > len(WELLS)
    parts = _parquet(s3, "fault-bucket")
    assert parts == _parquet(s3, "clean-bucket") and parts
