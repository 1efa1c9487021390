"""Benchmark: aggregate a large synthetic run into PostgreSQL and SQLite.

Writes a Distributed Map's ResultWriter output for ``--images`` fields of view
(default 100,000: 384-well plates, 4 fields per well, batches of 50, four metrics per
image, a plate layout with controls) into a temporary store, then times on each
backend:

* ``aggregate_run`` end to end (read + summarise + write in one transaction), then
  again over the stored run (the idempotent replace), and its write step alone
  (``write_run``: PostgreSQL ``COPY`` / SQLite ``executemany``) into an emptied run;
* the same rows through **Core executemany** (the v1 writer's path: ``insert()`` with
  lists of dicts) on PostgreSQL;
* the same rows through **ORM per-row inserts** (``session.add(Model(**row))`` +
  ``flush()`` per row), on a subset of ``--orm-rows`` rows, extrapolated to the whole
  run (the full run would take many minutes); the table says so.

PostgreSQL is a throw-away server started the way the tests start theirs
(``tests/postgres.py``: Debian's server binaries, fsync off). Ratios against the
baselines measured in the same run are the figures that count; the machine is shared.

Usage::

    python bench/aggregate.py [--images 100000] [--orm-rows 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MAP_RUN = "0f6f3c2e-1111-4a4a-9b9b-0123456789ab"
ROWS_384 = "ABCDEFGHIJKLMNOP"


def _wells() -> list[str]:
    return [f"{r}{c:02d}" for r in ROWS_384 for c in range(1, 25)]


def write_run(store: Any, run_id: str, experiment_id: str, images: int, batch: int) -> Any:
    """ResultWriter files for ``images`` fields; returns the AggregateRequest."""
    from plateseg.contracts import AggregateRequest
    from plateseg.store import put_json

    wells, fields = _wells(), 4
    per_plate = len(wells) * fields
    summaries = []
    for n in range(images):
        plate, rest = divmod(n, per_plate)
        well, field = divmod(rest, fields)
        count = 50 + (n * 7919) % 150
        summaries.append(
            {
                "image_id": f"P{plate + 1}_{wells[well]}_{field + 1}",
                "plate": f"P{plate + 1}",
                "well": wells[well],
                "field": field + 1,
                "status": "ok",
                "object_count": count,
                "metrics": {
                    "Count_Nuclei": float(count),
                    "Mean_Nuclei_AreaShape_Area": 90.0 + (n % 37),
                    "Mean_Nuclei_Intensity_MeanIntensity_w1": 0.1 + (n % 101) / 1000,
                    "Mean_Nuclei_Intensity_MeanIntensity_w2": 0.2 + (n % 103) / 1000,
                },
                "mask_key": f"runs/{run_id}/masks/{n}.tif",
            }
        )
    records = []
    for index, start in enumerate(range(0, images, batch)):
        chunk = summaries[start : start + batch]
        output = {"run_id": run_id, "parquet_key": None, "images": chunk}
        records.append(
            {
                "Name": f"batch-{index}",
                "Status": "SUCCEEDED",
                "StartDate": "2026-11-23T10:00:00.000Z",
                "StopDate": "2026-11-23T10:10:00.000Z",
                "Output": json.dumps(output),
            }
        )
    prefix = f"runs/{run_id}/map/{MAP_RUN}"
    keys = []
    for part, start in enumerate(range(0, len(records), 1000)):
        key = f"{prefix}/SUCCEEDED_{part}.json"
        store.put_bytes(key, json.dumps(records[start : start + 1000]).encode())
        keys.append({"Key": key, "Size": 0})
    put_json(store, f"{prefix}/manifest.json", {"ResultFiles": {"SUCCEEDED": keys}})
    layout = ["well,condition,compound,concentration,control"]
    for well in wells:
        column = int(well[1:])
        role = "neg" if column == 1 else "pos" if column == 24 else ""
        layout.append(f"{well},c{column},CPD-{column},{column / 10},{role}")
    store.put_bytes(f"experiments/{experiment_id}/layout.csv", "\n".join(layout).encode())
    return AggregateRequest(
        run_id=run_id,
        experiment_id=experiment_id,
        bucket="b",
        recipe={"segmenter": "classical"},
        execution_id=f"exec-{run_id}",
        map_run_arn="arn:mapRun",
        result_writer={"Key": f"{prefix}/manifest.json"},
        started_at="2026-11-23T10:00:00Z",
    )


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _child_rows(rows: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    return [
        ("images", rows.images),
        ("image_metrics", rows.image_metrics),
        ("well_metrics", rows.well_metrics),
        ("experiment_metrics", rows.experiment_metrics),
        ("plate_qc", rows.plate_qc),
    ]


def core_executemany(engine: Any, rows: Any) -> None:
    """The v1 writer's path: Core insert() with lists of dicts, 5,000 per call."""
    import sqlalchemy as sa

    from plateseg.db.models import Base
    from plateseg.db.writer import CHILD_TABLES

    run_id = rows.run_id
    with engine.begin() as connection:
        for table in CHILD_TABLES:
            connection.execute(sa.delete(table).where(table.c.run_id == run_id))
        for name, items in _child_rows(rows):
            table = Base.metadata.tables[name]
            tagged = [{**row, "run_id": run_id} for row in items]
            for start in range(0, len(tagged), 5000):
                connection.execute(sa.insert(table), tagged[start : start + 5000])


def orm_per_row(engine: Any, rows: Any, limit: int) -> int:
    """ORM objects added and flushed one by one (first ``limit`` child rows)."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from plateseg.db import models

    classes = {
        "images": models.Image,
        "image_metrics": models.ImageMetric,
        "well_metrics": models.WellMetric,
        "experiment_metrics": models.ExperimentMetric,
        "plate_qc": models.PlateQC,
    }
    run_id, done = rows.run_id, 0
    from plateseg.db.writer import CHILD_TABLES

    with Session(engine) as session, session.begin():
        for table in CHILD_TABLES:
            session.execute(sa.delete(table).where(table.c.run_id == run_id))
        for name, items in _child_rows(rows):
            for row in items:
                if done >= limit:
                    return done
                session.add(classes[name](**row, run_id=run_id))
                session.flush()
                done += 1
    return done


def clear(engine: Any, run_id: str) -> None:
    """Delete the run's child rows (untimed), so every write below starts from empty."""
    import sqlalchemy as sa

    from plateseg.db.writer import CHILD_TABLES

    with engine.begin() as connection:
        for table in CHILD_TABLES:
            connection.execute(sa.delete(table).where(table.c.run_id == run_id))
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE")


def bench_backend(name: str, url: str, store: Any, request: Any, orm_rows: int) -> list[str]:
    from plateseg.db import dispose_engines, get_engine, upgrade
    from plateseg.db import write_run as write
    from plateseg.pipeline.aggregate import aggregate_run, build_rows

    engine = get_engine(url)
    upgrade(engine)
    total = _timed(lambda: aggregate_run(request, store, engine))
    again = _timed(lambda: aggregate_run(request, store, engine))  # idempotent re-run
    rows = build_rows(request, store)
    build = _timed(lambda: build_rows(request, store))
    n = rows.row_count
    clear(engine, rows.run_id)
    fast = _timed(lambda: write(engine, rows))
    clear(engine, rows.run_id)
    label = "COPY" if name == "PostgreSQL" else "executemany"
    lines = [
        f"| {name} | aggregate_run (read + summarise + write) | {total:.1f} | {n / total:,.0f} | |",
        f"| {name} | aggregate_run again (replaces the run) | {again:.1f} | {n / again:,.0f} | |",
        f"| {name} | read + summarise only (build_rows) | {build:.1f} | {n / build:,.0f} | |",
        f"| {name} | write_run ({label}), into empty run | {fast:.2f} | {n / fast:,.0f} | 1.0x |",
    ]
    if name == "PostgreSQL":
        core = _timed(lambda: core_executemany(engine, rows))
        clear(engine, rows.run_id)
        lines.append(
            f"| {name} | Core executemany (v1 writer) | {core:.1f} | {n / core:,.0f} "
            f"| {core / fast:.1f}x slower |"
        )
    start = time.perf_counter()
    done = orm_per_row(engine, rows, orm_rows)
    orm = (time.perf_counter() - start) / done * n
    lines.append(
        f"| {name} | ORM per-row add+flush ({done:,} rows, extrapolated) | {orm:.0f} "
        f"| {n / orm:,.0f} | {orm / fast:.0f}x slower |"
    )
    dispose_engines(url)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--orm-rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from plateseg.settings import Settings, use_settings
    from plateseg.store import LocalStore
    from tests.postgres import start_server, stop_server

    with tempfile.TemporaryDirectory(prefix="plateseg-bench-agg-") as tmp:
        use_settings(Settings(home=Path(tmp) / "home", auto_migrate=False))
        store = LocalStore(Path(tmp) / "store")
        request = write_run(store, "bench-run", "BENCH-1", args.images, args.batch)
        server = start_server()
        try:
            lines = bench_backend(
                "PostgreSQL", server.url(), store, request, args.orm_rows
            ) + bench_backend(
                "SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", store, request, args.orm_rows
            )
        finally:
            stop_server(server)
    print(f"\nAggregate {args.images:,} images (batches of {args.batch}, 4 metrics/image)\n")
    print("| backend | step | wall s | rows/s | vs COPY/executemany |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
