"""Distributed Map 2025 options beyond the golden cases (issue 17 item 10).

What a golden case cannot express: Parquet files with typed columns and several row
groups (written here with pyarrow), AWS's Parquet size limits, result files split past
the size limit, and ``plateseg asl validate`` on a definition using every new field.

Sources:
- ItemReader (``InputType: PARQUET``, "Reading input from Parquet files": 256 MB row
  groups, 5 MB footers; ``ReaderConfig.ItemsPointer``; ``Transformation:
  LOAD_AND_FLATTEN``):
  https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
- ResultWriter (``WriterConfig`` ``OutputType`` JSON/JSONL, ``Transformation``
  NONE/COMPACT/FLATTEN, required field combinations):
  https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from plateseg.cli import asl
from plateseg.engine import parquet_items
from plateseg.engine.definition import validate
from plateseg.engine.item_io import read_items
from plateseg.engine.parquet_items import read_parquet
from plateseg.engine.result_writer import transform_results, write_results
from plateseg.errors import DefinitionError, StatesError
from plateseg.store import LocalStore, ObjectInfo, get_json
from tests.engine.conftest import EngineFactory, machine


def parquet_bytes(table: pa.Table, **write: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **write)
    return buffer.getvalue()


def dmap(**fields: Any) -> dict[str, Any]:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    return machine({"M": {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}})


def parquet_reader(key: str = "t.parquet", **config: Any) -> dict[str, Any]:
    return {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "PARQUET", **config},
        "Parameters": {"Bucket": "b", "Key": key},
    }


# --- Parquet ---------------------------------------------------------------------------


def test_typed_parquet_columns_become_json() -> None:
    table = pa.table(
        {
            "at": pa.array(
                [datetime(2025, 1, 31, 12, 0, 0, 250_000, tzinfo=UTC)], pa.timestamp("us", "UTC")
            ),
            "naive": pa.array([datetime(1970, 1, 1, 0, 0, 1)], pa.timestamp("ms")),
            "day": pa.array([date(2025, 1, 31)], pa.date32()),
            "price": pa.array([Decimal("12.50")], pa.decimal128(6, 2)),
            "whole": pa.array([Decimal("7.00")], pa.decimal128(6, 2)),
            "blob": pa.array([b"\x00\xff"], pa.binary()),
            "counts": pa.array([[("a", 1), ("b", 2)]], pa.map_(pa.string(), pa.int32())),
            "ratio": pa.array([float("nan")], pa.float64()),
            "small": pa.array([3], pa.int8()),
        }
    )
    (row,) = read_parquet(parquet_bytes(table), "s3://b/t.parquet", None)
    assert row == {
        "at": 1738324800250,
        "naive": 1000,
        "day": "2025-01-31",
        "price": 12.5,
        "whole": 7,
        "blob": "AP8=",
        "counts": {"a": 1, "b": 2},
        "ratio": None,
        "small": 3,
    }
    assert list(row) == list(table.column_names)  # column order kept


def test_parquet_row_groups_are_read_in_order_and_max_items_stops_early() -> None:
    table = pa.table({"n": list(range(10))})
    body = parquet_bytes(table, row_group_size=3)
    assert pq.ParquetFile(io.BytesIO(body)).metadata.num_row_groups == 4
    assert [r["n"] for r in read_parquet(body, "x", None)] == list(range(10))
    assert [r["n"] for r in read_parquet(body, "x", 4)] == [0, 1, 2, 3]


def test_parquet_compressed_files_are_read() -> None:
    table = pa.table({"well": ["B03", "B04"]})
    for codec in ("gzip", "snappy", "zstd"):
        body = parquet_bytes(table, compression=codec)
        assert read_parquet(body, "x", None) == [{"well": "B03"}, {"well": "B04"}]


def test_parquet_over_the_row_group_limit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    body = parquet_bytes(pa.table({"s": ["x" * 1000] * 50}))
    monkeypatch.setattr(parquet_items, "MAX_ROW_GROUP_BYTES", 1000)
    with pytest.raises(StatesError) as failed:
        read_parquet(body, "s3://b/big.parquet", None)
    assert failed.value.name == "States.ItemReaderFailed"
    assert "row group 0" in failed.value.cause and "s3://b/big.parquet" in failed.value.cause


def test_parquet_over_the_footer_limit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    body = parquet_bytes(pa.table({f"c{i}": [i] for i in range(20)}))
    monkeypatch.setattr(parquet_items, "MAX_FOOTER_BYTES", 100)
    with pytest.raises(StatesError, match="Parquet footer"):
        read_parquet(body, "x", None)


def test_aws_parquet_limits() -> None:
    assert parquet_items.MAX_ROW_GROUP_BYTES == 256 * 1024 * 1024
    assert parquet_items.MAX_FOOTER_BYTES == 5 * 1024 * 1024


def test_truncated_parquet_fails_as_item_reader_failed(store: LocalStore) -> None:
    body = parquet_bytes(pa.table({"n": [1, 2]}))
    store.put_bytes("t.parquet", body[: len(body) // 2])
    with pytest.raises(StatesError) as failed:
        read_items(parquet_reader(), {}, {}, lambda _name: store)
    assert failed.value.name == "States.ItemReaderFailed"


def test_a_parquet_map_runs_children_per_row(make_engine: EngineFactory, store: LocalStore) -> None:
    rows = [{"plate": "P1", "well": f"B{n:02d}", "field": n} for n in range(1, 8)]
    store.put_bytes("t.parquet", parquet_bytes(pa.Table.from_pylist(rows), row_group_size=2))
    definition = dmap(
        ItemReader=parquet_reader(MaxItems=5),
        ItemBatcher={"MaxItemsPerBatch": 2},
        ResultWriter={"WriterConfig": {"OutputType": "JSON", "Transformation": "FLATTEN"}},
        ItemProcessor={
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "OutputPath": "$.Items", "End": True}},
        },
    )
    result = make_engine().run(definition, {})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == rows[:5]


# --- LOAD_AND_FLATTEN -------------------------------------------------------------------


def test_load_and_flatten_reads_the_projects_parquet_parts(store: LocalStore) -> None:
    """The Segment step's ``runs/<run_id>/objects/part-*.parquet`` as one item stream."""
    for part in range(3):
        table = pa.table({"label": [1, 2], "part": [part, part]})
        store.put_bytes(f"runs/r1/objects/part-{part:05d}.parquet", parquet_bytes(table))
    reader = {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "ReaderConfig": {"InputType": "PARQUET", "Transformation": "LOAD_AND_FLATTEN"},
        "Parameters": {"Bucket": "b", "Prefix": "runs/r1/objects/"},
    }
    items = read_items(reader, {}, {}, lambda _name: store)
    assert [(i["part"], i["label"]) for i in items] == [(p, n) for p in range(3) for n in (1, 2)]


class MarkerStore:
    """Objects in memory, with an S3 console folder marker (``p/``, zero bytes)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield ObjectInfo(key, len(self.objects[key]), '"0"', datetime.now(UTC))

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]


def test_load_and_flatten_skips_folder_markers() -> None:
    store = MarkerStore({"p/": b"", "p/a.jsonl": b'{"n": 1}\n'})
    reader = {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "ReaderConfig": {"InputType": "JSONL", "Transformation": "LOAD_AND_FLATTEN"},
        "Parameters": {"Bucket": "b", "Prefix": "p/"},
    }
    assert read_items(reader, {}, {}, lambda _name: store) == [{"n": 1}]


def test_load_and_flatten_stops_reading_objects_at_max_items(store: LocalStore) -> None:
    store.put_bytes("p/a.json", b"[1, 2]")
    store.put_bytes("p/b.json", b"[3, 4]")
    store.put_bytes("p/c.json", b"not read, not JSON")
    reader = {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "ReaderConfig": {"InputType": "JSON", "Transformation": "LOAD_AND_FLATTEN", "MaxItems": 4},
        "Parameters": {"Bucket": "b", "Prefix": "p/"},
    }
    assert read_items(reader, {}, {}, lambda _name: store) == [1, 2, 3, 4]


# --- ResultWriter -----------------------------------------------------------------------


def _result(status: str, output: Any, n: int) -> dict[str, Any]:
    record = {"Name": f"c{n}", "Status": status}
    return {"Status": status, "record": record, "output": output}


def test_transformations() -> None:
    results = [
        _result("SUCCEEDED", [1, [2]], 0),
        _result("FAILED", None, 1),
        _result("SUCCEEDED", {"a": 1}, 2),
    ]
    failed = {"Name": "c1", "Status": "FAILED"}
    assert transform_results(results, "COMPACT") == [[1, [2]], failed, {"a": 1}]
    assert transform_results(results, "FLATTEN") == [1, [2], failed, {"a": 1}]
    assert transform_results(results, "NONE") == [r["record"] for r in results]


@pytest.mark.parametrize("output_type", ["JSON", "JSONL"])
def test_result_files_split_past_the_limit(store: LocalStore, output_type: str) -> None:
    writer = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "b", "Prefix": "out"},
        "WriterConfig": {"OutputType": output_type, "Transformation": "COMPACT"},
    }
    results = {"SUCCEEDED": [_result("SUCCEEDED", {"n": n, "pad": "x" * 20}, n) for n in range(10)]}
    details = write_results(writer, {}, {}, lambda _name: store, "arn:run", "run-1", results, 100)
    manifest = get_json(store, details["ResultWriterDetails"]["Key"])
    files = manifest["ResultFiles"]["SUCCEEDED"]
    assert len(files) > 1
    seen: list[Any] = []
    extension = "jsonl" if output_type == "JSONL" else "json"
    for number, entry in enumerate(files):
        assert entry["Key"] == f"out/run-1/SUCCEEDED_{number}.{extension}"
        body = store.get_bytes(entry["Key"])
        assert entry["Size"] == len(body)
        if output_type == "JSONL":
            assert body.endswith(b"\n")
            seen.extend(json.loads(line) for line in body.decode().splitlines())
        else:
            seen.extend(json.loads(body))
    assert [item["n"] for item in seen] == list(range(10))


def test_writer_config_alone_writes_nothing_to_s3(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    """Without Resource and Parameters nothing goes to S3, whatever happens."""
    definition = dmap(
        ItemsPath="$.l",
        ResultWriter={"WriterConfig": {"OutputType": "JSONL", "Transformation": "NONE"}},
    )
    result = make_engine().run(definition, {"l": [1, 2]})
    assert result.status == "SUCCEEDED"
    assert [r["Status"] for r in result.output] == ["SUCCEEDED", "SUCCEEDED"]
    assert list(store.list("")) == []


# --- validation ------------------------------------------------------------------------


def every_new_field(language: str) -> dict[str, Any]:
    params = "Arguments" if language == "JSONata" else "Parameters"
    listing = {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "ReaderConfig": {
            "InputType": "JSON",
            "ItemsPointer": "/items",
            "Transformation": "LOAD_AND_FLATTEN",
            "MaxItems": 10,
        },
        params: {"Bucket": "b", "Prefix": "p/"},
    }
    writer = {
        "Resource": "arn:aws:states:::s3:putObject",
        params: {"Bucket": "b", "Prefix": "out"},
        "WriterConfig": {"OutputType": "JSONL", "Transformation": "FLATTEN"},
    }
    first = dmap(ItemReader=listing, ResultWriter=writer)["States"]["M"]
    second = dmap(
        ItemReader={**parquet_reader(), params: {"Bucket": "b", "Key": "t.parquet"}},
        ResultWriter={"WriterConfig": {"OutputType": "JSON", "Transformation": "COMPACT"}},
    )["States"]["M"]
    if language == "JSONata":
        del second["ItemReader"]["Parameters"]
    definition = machine({"A": {**first, "End": False, "Next": "B"}, "B": second})
    return {"QueryLanguage": language, **definition}


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_asl_validate_accepts_every_new_field(tmp_path: Path, language: str) -> None:
    path = tmp_path / "d.asl.json"
    path.write_text(json.dumps(every_new_field(language)))
    result = CliRunner().invoke(asl.app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_asl_validate_names_the_athena_manifest_as_unsupported(tmp_path: Path) -> None:
    definition = dmap(
        ItemReader={
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "PARQUET", "ManifestType": "ATHENA_DATA"},
            "Parameters": {"Bucket": "b", "Key": "athena/manifest.csv"},
        }
    )
    path = tmp_path / "d.asl.json"
    path.write_text(json.dumps(definition))
    result = CliRunner().invoke(asl.app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "/States/M/ItemReader/ReaderConfig/ManifestType: not supported" in result.output


@pytest.mark.parametrize(
    ("writer", "fragment"),
    [
        ({"Parameters": {"Bucket": "b"}}, "Resource and Parameters go together"),
        (
            {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b"}},
            "supports only arn:aws:states:::s3:putObject",
        ),
        ({"WriterConfig": "JSON"}, "WriterConfig: must be an object"),
    ],
)
def test_result_writer_combinations_refused(writer: dict[str, Any], fragment: str) -> None:
    with pytest.raises(DefinitionError, match=fragment):
        validate(dmap(ItemsPath="$", ResultWriter=writer))


def test_items_pointer_with_leading_zero_index_selects_nothing(store: LocalStore) -> None:
    store.put_bytes("k.json", b'{"a": [[1], [2]]}')
    reader = {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON", "ItemsPointer": "/a/01"},
        "Parameters": {"Bucket": "b", "Key": "k.json"},
    }
    with pytest.raises(StatesError, match="selects nothing"):
        read_items(reader, {}, {}, lambda _name: store)


def test_items_pointer_on_a_plain_listing_is_refused() -> None:
    reader = {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "ReaderConfig": {"InputType": "JSON", "ItemsPointer": "/items"},
        "Parameters": {"Bucket": "b", "Prefix": "p/"},
    }
    with pytest.raises(DefinitionError, match="reads no JSON unless Transformation is LOAD"):
        validate(dmap(ItemReader=reader))
