"""Tables of one run for the UI and for download: paged images, CSV / Parquet export.

Three export levels, each a flat table:

``images``   one row per field of view: id, plate, well, field, status, QC flags,
             object count, ``error`` and ``cause`` (failed images), the well's layout
             annotations, then one column per metric.
``wells``    one row per imaged well (all of its fields failed included): layout
             annotations, ``n_fields`` (segmented), ``n_objects``, ``n_failed``, then one
             column per metric holding the well mean.
``objects``  every per-object row of the Parquet parts the run recorded
             (``runs.object_parts_json``: the parts of the attempt Aggregate committed,
             never leftovers of an earlier attempt under ``runs/<run_id>/objects/``),
             joined with the well's layout annotations. Needs the store.

Annotations are the run's own: the layout snapshot it was aggregated with. CSV text
cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return) are written with a leading ``'`` (OWASP CSV injection);
numbers are never altered, Parquet is written as is.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from plateseg.db.engine import translate_errors
from plateseg.db.models import Image, ImageMetric, Run, Well, WellMetric
from plateseg.errors import InputError, NotFoundError
from plateseg.plate.layout import parse_layout
from plateseg.store import Store

__all__ = ["IMAGE_SORT_COLUMNS", "ImagePage", "export_table", "image_page", "table_bytes"]

_images = Image.__table__.c
_metrics = ImageMetric.__table__.c
_wells = Well.__table__.c
_wm = WellMetric.__table__.c
_runs = Run.__table__.c

#: Image columns :func:`image_page` sorts by directly (any other name is a metric).
IMAGE_SORT_COLUMNS = ("image_id", "plate", "well", "field", "status", "object_count", "qc_flags")
ANNOTATIONS = ("condition", "compound", "concentration", "control")


@dataclass(frozen=True)
class ImagePage:
    """One page of a run's images: ``rows`` (image columns + ``metrics``) of ``total``."""

    total: int
    rows: list[dict[str, Any]]


def _run_experiment(connection: sa.Connection, run_id: str) -> str:
    owner = connection.scalar(sa.select(_runs.experiment_id).where(_runs.run_id == run_id))
    if owner is None:
        raise NotFoundError(f"no run {run_id!r} is recorded in the results database")
    return str(owner)


def image_page(
    engine: sa.Engine,
    run_id: str,
    *,
    sort: str = "image_id",
    descending: bool = False,
    status: str | None = None,
    plate: str | None = None,
    well: str | None = None,
    qc_flag: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> ImagePage:
    """Sorted, filtered, paged images of a run (see :func:`plateseg.results.image_page`)."""
    if not 1 <= limit <= 10_000 or offset < 0:
        raise InputError(
            f"image page: limit must be 1..10000 and offset >= 0, got {limit}, {offset}"
        )
    table = Image.__table__
    where = [_images.run_id == run_id]
    for column, value in (("status", status), ("plate", plate), ("well", well)):
        if value is not None:
            where.append(_images[column] == value)
    if qc_flag is not None:
        where.append(("," + _images.qc_flags + ",").contains(f",{qc_flag},"))
    stmt = sa.select(table).where(*where)
    if sort in IMAGE_SORT_COLUMNS:
        key: Any = _images[sort]
    else:
        key = (
            sa.select(_metrics.value)
            .where(
                _metrics.run_id == _images.run_id,
                _metrics.image_id == _images.image_id,
                _metrics.metric == sort,
            )
            .scalar_subquery()
        )
    order = key.desc() if descending else key.asc()
    stmt = stmt.order_by(order.nulls_last(), _images.image_id).limit(limit).offset(offset)
    count = sa.select(sa.func.count()).select_from(table).where(*where)
    with translate_errors(engine), engine.connect() as connection:
        _run_experiment(connection, run_id)
        if sort not in IMAGE_SORT_COLUMNS:
            known = connection.scalar(
                sa.select(_metrics.metric)
                .where(_metrics.run_id == run_id, _metrics.metric == sort)
                .limit(1)
            )
            if known is None:
                raise InputError(
                    f"image page of run {run_id!r}: cannot sort by {sort!r}: not an image "
                    f"column ({', '.join(IMAGE_SORT_COLUMNS)}) nor a metric of the run"
                )
        total = int(connection.scalar(count) or 0)
        rows = [dict(row._mapping) for row in connection.execute(stmt)]
        ids = [row["image_id"] for row in rows]
        metrics: dict[str, dict[str, float | None]] = defaultdict(dict)
        if ids:
            found = sa.select(_metrics.image_id, _metrics.metric, _metrics.value).where(
                _metrics.run_id == run_id, _metrics.image_id.in_(ids)
            )
            for image_id, metric, value in connection.execute(found):
                metrics[image_id][metric] = value
    for row in rows:
        row["metrics"] = dict(sorted(metrics[row["image_id"]].items()))
    return ImagePage(total=total, rows=rows)


def _annotations(
    connection: sa.Connection, run_id: str, experiment_id: str
) -> Callable[[tuple[str, str]], Any]:
    """``(plate, well) -> annotations`` as the run was aggregated: from its layout snapshot
    (``runs.layout_csv``), else — a run recorded before snapshots — the experiment's."""
    snapshot = connection.scalar(sa.select(_runs.layout_csv).where(_runs.run_id == run_id))
    if snapshot is not None:
        index = parse_layout(snapshot, source=f"the layout of run {run_id}").index()

        def lookup(key: tuple[str, str]) -> Any:  # a plate's own row wins, as in the layout
            return index.get(key) or index.get((None, key[1]))

        return lookup
    stmt = sa.select(_wells.plate, _wells.well, *(_wells[a] for a in ANNOTATIONS)).where(
        _wells.experiment_id == experiment_id
    )
    rows = {(r.plate, r.well): r for r in connection.execute(stmt)}
    return rows.get


def _image_columns(
    connection: sa.Connection, run_id: str, experiment_id: str
) -> dict[str, list[Any]]:
    notes = _annotations(connection, run_id, experiment_id)
    base = [
        "image_id",
        "plate",
        "well",
        "field",
        "status",
        "qc_flags",
        "object_count",
        "error",
        "cause",
    ]
    stmt = (
        sa.select(*(_images[c] for c in base))
        .where(_images.run_id == run_id)
        .order_by(_images.plate, _images.well, _images.field, _images.image_id)
    )
    images = connection.execute(stmt).all()
    values: dict[str, dict[str, float | None]] = defaultdict(dict)
    names: set[str] = set()
    for image_id, metric, value in connection.execute(
        sa.select(_metrics.image_id, _metrics.metric, _metrics.value).where(
            _metrics.run_id == run_id
        )
    ):
        values[image_id][metric] = value
        names.add(metric)
    columns: dict[str, list[Any]] = {c: [getattr(r, c) for r in images] for c in base}
    for a in ANNOTATIONS:
        columns[a] = [getattr(notes((r.plate, r.well)), a, None) for r in images]
    for name in sorted(names):
        columns[name] = [values[r.image_id].get(name) for r in images]
    return columns


def _well_columns(
    connection: sa.Connection, run_id: str, experiment_id: str
) -> dict[str, list[Any]]:
    notes = _annotations(connection, run_id, experiment_id)
    stmt = sa.select(_wm.plate, _wm.well, _wm.metric, _wm.mean, _wm.n_fields, _wm.n_objects).where(
        _wm.run_id == run_id
    )
    wells: dict[tuple[str, str], dict[str, Any]] = {}
    names: set[str] = set()
    for row in connection.execute(stmt):
        entry = wells.setdefault((row.plate, row.well), {"n_fields": 0, "n_objects": row.n_objects})
        entry["n_fields"] = max(entry["n_fields"], row.n_fields)
        entry[row.metric] = row.mean
        names.add(row.metric)
    failed = sa.func.sum(sa.case((_images.status == "ok", 0), else_=1))
    imaged = sa.select(_images.plate, _images.well, failed.label("n_failed"))
    imaged = imaged.where(_images.run_id == run_id).group_by(_images.plate, _images.well)
    for counted in connection.execute(imaged):  # a well whose fields all failed: no metrics
        entry = wells.setdefault((counted.plate, counted.well), {"n_fields": 0, "n_objects": 0})
        entry["n_failed"] = int(counted.n_failed)
    keys = sorted(wells)
    columns: dict[str, list[Any]] = {"plate": [k[0] for k in keys], "well": [k[1] for k in keys]}
    for a in ANNOTATIONS:
        columns[a] = [getattr(notes(k), a, None) for k in keys]
    for c in ("n_fields", "n_objects", "n_failed", *sorted(names)):
        columns[c] = [wells[k].get(c, 0 if c == "n_failed" else None) for k in keys]
    return columns


def _object_table(
    connection: sa.Connection, run_id: str, experiment_id: str, store: Store | None
) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if store is None:
        raise InputError(f"exporting the objects of run {run_id!r} needs the store")
    recorded = connection.execute(
        sa.select(_runs.objects_prefix, _runs.object_parts_json).where(_runs.run_id == run_id)
    ).one()
    if recorded.object_parts_json is not None:  # exactly the parts of the recorded attempt
        keys = sorted(json.loads(recorded.object_parts_json))
    else:  # a run recorded before revision 0003
        prefix = str(recorded.objects_prefix)
        keys = sorted(o.key for o in store.list(prefix) if o.key.endswith(".parquet"))
    parts = [pq.read_table(io.BytesIO(store.get_bytes(key))) for key in keys]
    if not parts:
        return pa.table({"image_id": pa.array([], pa.string())})
    table = pa.concat_tables(parts, promote_options="default")
    notes = _annotations(connection, run_id, experiment_id)
    pairs = list(zip(table["plate"].to_pylist(), table["well"].to_pylist(), strict=True))
    for a in ANNOTATIONS:
        table = table.append_column(a, pa.array([getattr(notes(p), a, None) for p in pairs]))
    return table


def export_table(
    engine: sa.Engine,
    run_id: str,
    level: Literal["images", "wells", "objects"] = "images",
    store: Store | None = None,
) -> Any:
    """A run's table at ``level`` as a :class:`pyarrow.Table` (see the module docstring)."""
    import pyarrow as pa

    if level not in ("images", "wells", "objects"):
        raise InputError(f"export level {level!r} is not one of images, wells, objects")
    with translate_errors(engine), engine.connect() as connection:
        experiment_id = _run_experiment(connection, run_id)
        if level == "objects":
            return _object_table(connection, run_id, experiment_id, store)
        build = _image_columns if level == "images" else _well_columns
        return pa.table(build(connection, run_id, experiment_id))


#: First characters that make a spreadsheet evaluate a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _defused(table: Any) -> Any:
    """``table`` with every text cell a spreadsheet would evaluate prefixed by ``'``."""
    import pyarrow as pa

    for index, column in enumerate(table.schema):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        values = table.column(index).to_pylist()
        if any(isinstance(v, str) and v.startswith(FORMULA_STARTS) for v in values):
            safe = [
                f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v
                for v in values
            ]
            table = table.set_column(index, column.name, pa.array(safe, column.type))
    return table


def table_bytes(table: Any, fmt: Literal["csv", "parquet"]) -> bytes:
    """Serialise a pyarrow table as CSV (header, UTF-8) or Parquet (zstd)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(_defused(table), buffer)
    elif fmt == "parquet":
        pq.write_table(table, buffer, compression="zstd")
    else:
        raise InputError(f"export format {fmt!r} is not one of csv, parquet")
    return buffer.getvalue()
