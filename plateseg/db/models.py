"""The results schema (revision 0003): experiments, plates, wells with their layout, runs,
their failures, per-image/well/experiment metrics and plate QC.

Summaries and run bookkeeping live here; per-object rows stay in Parquet under
``runs/<run_id>/objects/``. Every child table is keyed by ``run_id`` so a run can be
replaced as a whole (Aggregate deletes a run's rows and re-inserts them in one
transaction, which makes it idempotent).

Why metrics are stored long (one row per ``(image, metric)``)
--------------------------------------------------------------
Metric names depend on the recipe: its channel roles and channel names decide which
columns exist (``Count_Nuclei``, ``Mean_Nuclei_Intensity_MeanIntensity_w2``, …). A wide
table would need a migration for every new recipe and would differ between runs of
one experiment. The long tables (``image_metrics``, ``well_metrics``,
``experiment_metrics``) keep one fixed schema for every recipe, index well on
``(run_id, metric)``, and pivot cheaply in SQL or pandas when a wide view is wanted.

Types are portable (String, Integer, Float, ``DateTime(timezone=True)``, Text for JSON)
so the same models and migrations serve SQLite and PostgreSQL. Datetimes are stored in
UTC; SQLite hands them back naive, which :mod:`plateseg.results` treats as UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Experiment",
    "ExperimentMetric",
    "Image",
    "ImageMetric",
    "Plate",
    "PlateQC",
    "Run",
    "RunFailure",
    "Well",
    "WellMetric",
]

#: Deterministic constraint names, so migrations can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(128)
KEY = String(1024)


class Base(DeclarativeBase):
    """Declarative base with the naming convention above."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Experiment(Base):
    """One experiment that has at least one run. Times span its runs (earliest, latest)."""

    __tablename__ = "experiments"

    experiment_id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Plate(Base):
    """One plate of an experiment, as seen in its runs (``n_wells``: wells with images)."""

    __tablename__ = "plates"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.experiment_id"), primary_key=True
    )
    plate: Mapped[str] = mapped_column(String(64), primary_key=True)
    n_wells: Mapped[int] = mapped_column(Integer)
    plate_format: Mapped[int | None] = mapped_column(Integer)


class Well(Base):
    """One well of a plate with its layout annotations (``experiments/<id>/layout.csv``).

    ``row`` is the row letter(s) (``"B"``), ``column`` the 1-based column number.
    ``control`` is ``""`` (a sample), ``"neg"`` or ``"pos"``; ``concentration`` is in the
    layout's unit (µM in the demo), ``NULL`` when the layout leaves it blank. Wells with
    images but no layout row are stored with empty annotations.
    """

    __tablename__ = "wells"
    __table_args__ = (
        ForeignKeyConstraint(
            ["experiment_id", "plate"],
            ["plates.experiment_id", "plates.plate"],
            name="fk_wells_plate",
        ),
    )

    experiment_id: Mapped[str] = mapped_column(ID, primary_key=True)
    plate: Mapped[str] = mapped_column(String(64), primary_key=True)
    well: Mapped[str] = mapped_column(String(16), primary_key=True)
    row: Mapped[str] = mapped_column(String(4))
    column: Mapped[int] = mapped_column(Integer)
    condition: Mapped[str] = mapped_column(String(256), server_default="")
    compound: Mapped[str] = mapped_column(String(256), server_default="")
    concentration: Mapped[float | None] = mapped_column(Float)
    control: Mapped[str] = mapped_column(String(8), server_default="")


class Run(Base):
    """One execution of the state machine over one experiment, as Aggregate recorded it.

    ``status`` is ``SUCCEEDED`` or ``SUCCEEDED_WITH_FAILURES`` (some image or batch
    failed); ``engine`` is ``local`` or ``aws``. ``recipe_json`` is the canonical JSON
    text of the recipe (sorted keys, no spaces) and ``recipe_hash`` its SHA-256.
    """

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_experiment_id_finished_at", "experiment_id", "finished_at"),)

    run_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(ID, ForeignKey("experiments.experiment_id"))
    execution_id: Mapped[str] = mapped_column(KEY)
    engine: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    recipe_json: Mapped[str] = mapped_column(Text)
    recipe_hash: Mapped[str] = mapped_column(String(64))
    map_run_arn: Mapped[str] = mapped_column(KEY)
    result_manifest_key: Mapped[str] = mapped_column(KEY)
    objects_prefix: Mapped[str] = mapped_column(KEY)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    images_ok: Mapped[int] = mapped_column(Integer)
    images_failed: Mapped[int] = mapped_column(Integer)
    batches_failed: Mapped[int] = mapped_column(Integer)
    objects: Mapped[int] = mapped_column(Integer)
    # revision 0002
    model_hash: Mapped[str | None] = mapped_column(String(64))
    parameters_json: Mapped[str | None] = mapped_column(Text)
    max_concurrency: Mapped[int | None] = mapped_column(Integer)
    batch_size: Mapped[int | None] = mapped_column(Integer)
    items_total: Mapped[int | None] = mapped_column(Integer)
    batches: Mapped[int | None] = mapped_column(Integer)
    cost_estimate_usd: Mapped[float | None] = mapped_column(Float)
    # revision 0003: the Parquet parts (JSON list of keys) and layout the run was made of
    object_parts_json: Mapped[str | None] = mapped_column(Text)
    layout_csv: Mapped[str | None] = mapped_column(Text)


class RunFailure(Base):
    """One failed image of a run.

    ``kind == "image"``: Segment returned a per-image error record. ``kind == "batch"``:
    the whole child execution failed (a ``FAILED_n.json`` record); there is one row per
    image id in its Items, all carrying the batch's ``Error``/``Cause`` and the child
    execution's name in ``batch``. If a failed batch's input is not available,
    ``item_id`` holds the batch name instead of an image id.
    """

    __tablename__ = "run_failures"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    item_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    batch: Mapped[str | None] = mapped_column(ID)
    error: Mapped[str] = mapped_column(String(256))
    cause: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int | None] = mapped_column(Integer)


class Image(Base):
    """One field of view of a run: its outcome, object count and label-mask key."""

    __tablename__ = "images"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    image_id: Mapped[str] = mapped_column(ID, primary_key=True)
    plate: Mapped[str] = mapped_column(String(64))
    well: Mapped[str] = mapped_column(String(16))
    field: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(String(256))
    cause: Mapped[str | None] = mapped_column(Text)
    object_count: Mapped[int] = mapped_column(Integer)
    mask_key: Mapped[str | None] = mapped_column(KEY)
    # revision 0002: channel name -> store key (JSON), file-name metadata (JSON), QC flags
    channels_json: Mapped[str | None] = mapped_column(Text)
    metadata_json: Mapped[str | None] = mapped_column(Text)
    qc_flags: Mapped[str] = mapped_column(String(256), server_default="")


class ImageMetric(Base):
    """One metric of one image (long format; see the module docstring)."""

    __tablename__ = "image_metrics"
    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "image_id"],
            ["images.run_id", "images.image_id"],
            name="fk_image_metrics_image",
        ),
    )

    run_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    image_id: Mapped[str] = mapped_column(ID, primary_key=True)
    metric: Mapped[str] = mapped_column(ID, primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)


class WellMetric(Base):
    """One metric summarised over a well's OK fields.

    ``mean``/``median``/``std`` (population, ddof=0) are over the fields whose value is
    finite; ``n_fields`` counts those fields; ``n_objects`` is the well's total object
    count over all its OK fields (the same for every metric of the well).
    """

    __tablename__ = "well_metrics"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    plate: Mapped[str] = mapped_column(String(64), primary_key=True)
    well: Mapped[str] = mapped_column(String(16), primary_key=True)
    metric: Mapped[str] = mapped_column(ID, primary_key=True)
    mean: Mapped[float | None] = mapped_column(Float)
    median: Mapped[float | None] = mapped_column(Float)
    std: Mapped[float | None] = mapped_column(Float)
    n_fields: Mapped[int] = mapped_column(Integer)
    n_objects: Mapped[int] = mapped_column(Integer)


class ExperimentMetric(Base):
    """One metric summarised over the wells' means (population std, ddof=0)."""

    __tablename__ = "experiment_metrics"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    metric: Mapped[str] = mapped_column(ID, primary_key=True)
    mean: Mapped[float | None] = mapped_column(Float)
    median: Mapped[float | None] = mapped_column(Float)
    std: Mapped[float | None] = mapped_column(Float)
    n_wells: Mapped[int] = mapped_column(Integer)


class PlateQC(Base):
    """Assay quality of one metric on one plate, from its annotated control wells.

    Over the control wells' means: ``z_prime = 1 - 3 (std_pos + std_neg) / |mean_pos -
    mean_neg|`` (Zhang, Chung & Oldenburg 1999; sample std, ddof=1, as in the paper) and
    ``signal_to_background = mean_pos / mean_neg``. ``NULL`` where undefined (fewer than
    two controls of a kind for Z' and the SDs, one for S/B; equal means; zero background).
    Runs aggregated before sample SDs were adopted hold population SDs (ddof=0).
    """

    __tablename__ = "plate_qc"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id"), primary_key=True)
    plate: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(ID, primary_key=True)
    n_pos: Mapped[int] = mapped_column(Integer)
    n_neg: Mapped[int] = mapped_column(Integer)
    mean_pos: Mapped[float | None] = mapped_column(Float)
    mean_neg: Mapped[float | None] = mapped_column(Float)
    std_pos: Mapped[float | None] = mapped_column(Float)
    std_neg: Mapped[float | None] = mapped_column(Float)
    z_prime: Mapped[float | None] = mapped_column(Float)
    signal_to_background: Mapped[float | None] = mapped_column(Float)
