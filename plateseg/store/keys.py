"""The store layout: every key plateseg reads or writes is built here, and only here.

::

    experiments/<experiment_id>/...                 input images (any folders below)
    experiments/<experiment_id>/layout.csv          plate layout (optional)
    truth/<experiment_id>/counts.json               demo ground truth (counts)
    truth/<experiment_id>/masks/<image_id>.tif      demo ground truth (labels)
    models/<name>.onnx, models/<name>.json          model, its provenance card
    runs/<run_id>/owner.json                        the experiment the run id belongs to
    runs/<run_id>/lookup-report.json                what Lookup read and skipped
    runs/<run_id>/manifest.json                     the fields of the run (Lookup)
    runs/<run_id>/recipe.json                       the validated recipe (Lookup)
    runs/<run_id>/layout.csv                        layout snapshot (Lookup)
    runs/<run_id>/model.onnx                        the model the run is pinned to
    runs/<run_id>/masks/<image_id>.tif              nuclear labels (Segment)
    runs/<run_id>/masks/<image_id>.cells.tif        cell labels (with recipe.secondary)
    runs/<run_id>/objects/part-<digest>.parquet     per-object measurements (Segment)
    runs/<run_id>/batches/<digest>.json             checkpoint of a finished batch
    runs/<run_id>/map/<map-run-id>/...              the Distributed Map's ResultWriter output
    web/accepted/<run_id>.json                      the web's record of an accepted run

Functions only build strings; they do not validate ids (the edges do: run ids in
:mod:`plateseg.runs.ids`, model names in :func:`plateseg.segmentation.onnx_model.model_key`).
"""

from __future__ import annotations

__all__ = [
    "ACCEPTED_PREFIX",
    "EXPERIMENTS_PREFIX",
    "MODELS_PREFIX",
    "accepted_key",
    "batch_key",
    "cells_key",
    "experiment_prefix",
    "layout_key",
    "lookup_report_key",
    "manifest_key",
    "mask_key",
    "masks_prefix",
    "model_file_key",
    "objects_prefix",
    "owner_key",
    "part_key",
    "provenance_file_key",
    "recipe_key",
    "result_prefix",
    "run_layout_key",
    "run_model_key",
    "run_prefix",
    "truth_counts_key",
    "truth_mask_key",
    "truth_prefix",
]

#: Every experiment's input.
EXPERIMENTS_PREFIX = "experiments/"
#: Models and their provenance cards.
MODELS_PREFIX = "models/"
#: The web's records of accepted runs.
ACCEPTED_PREFIX = "web/accepted/"


def experiment_prefix(experiment_id: str) -> str:
    """``experiments/<experiment_id>/``: an experiment's input images."""
    return f"{EXPERIMENTS_PREFIX}{experiment_id}/"


def layout_key(experiment_id: str) -> str:
    """``experiments/<experiment_id>/layout.csv``: the experiment's plate layout."""
    return f"{experiment_prefix(experiment_id)}layout.csv"


def truth_prefix(experiment_id: str) -> str:
    """``truth/<experiment_id>/``: the demo generator's ground truth."""
    return f"truth/{experiment_id}/"


def truth_counts_key(experiment_id: str) -> str:
    """``truth/<experiment_id>/counts.json``: true nuclei per well and field (demo)."""
    return f"{truth_prefix(experiment_id)}counts.json"


def truth_mask_key(experiment_id: str, image_id: str) -> str:
    """``truth/<experiment_id>/masks/<image_id>.tif``: true nuclear labels (demo)."""
    return f"{truth_prefix(experiment_id)}masks/{image_id}.tif"


def model_file_key(name: str) -> str:
    """``models/<name>.onnx`` (the name is not checked here)."""
    return f"{MODELS_PREFIX}{name}.onnx"


def provenance_file_key(name: str) -> str:
    """``models/<name>.json``: a model's provenance card (the name is not checked here)."""
    return f"{MODELS_PREFIX}{name}.json"


def run_prefix(run_id: str) -> str:
    """``runs/<run_id>/``: everything a run writes."""
    return f"runs/{run_id}/"


def owner_key(run_id: str) -> str:
    """``runs/<run_id>/owner.json``: the experiment the run id belongs to."""
    return f"{run_prefix(run_id)}owner.json"


def lookup_report_key(run_id: str) -> str:
    """``runs/<run_id>/lookup-report.json``: what Lookup read, skipped and detected."""
    return f"{run_prefix(run_id)}lookup-report.json"


def manifest_key(run_id: str) -> str:
    """``runs/<run_id>/manifest.json``: the run's fields, written by Lookup."""
    return f"{run_prefix(run_id)}manifest.json"


def recipe_key(run_id: str) -> str:
    """``runs/<run_id>/recipe.json``: the validated recipe the run uses."""
    return f"{run_prefix(run_id)}recipe.json"


def run_layout_key(run_id: str) -> str:
    """``runs/<run_id>/layout.csv``: the layout snapshot Lookup takes for a run."""
    return f"{run_prefix(run_id)}layout.csv"


def run_model_key(run_id: str) -> str:
    """``runs/<run_id>/model.onnx``: the bytes of the model the run is pinned to."""
    return f"{run_prefix(run_id)}model.onnx"


def masks_prefix(run_id: str) -> str:
    """``runs/<run_id>/masks/``: label images."""
    return f"{run_prefix(run_id)}masks/"


def mask_key(run_id: str, image_id: str) -> str:
    """``runs/<run_id>/masks/<image_id>.tif``: nuclear labels of one field."""
    return f"{masks_prefix(run_id)}{image_id}.tif"


def cells_key(run_id: str, image_id: str) -> str:
    """``runs/<run_id>/masks/<image_id>.cells.tif``: cell labels (with recipe.secondary)."""
    return f"{masks_prefix(run_id)}{image_id}.cells.tif"


def objects_prefix(run_id: str) -> str:
    """``runs/<run_id>/objects/``: the Parquet parts of per-object measurements."""
    return f"{run_prefix(run_id)}objects/"


def part_key(run_id: str, digest: str) -> str:
    """``runs/<run_id>/objects/part-<digest>.parquet``."""
    return f"{objects_prefix(run_id)}part-{digest}.parquet"


def batch_key(run_id: str, digest: str) -> str:
    """``runs/<run_id>/batches/<digest>.json``: checkpoint of a fully successful batch."""
    return f"{run_prefix(run_id)}batches/{digest}.json"


def result_prefix(run_id: str) -> str:
    """``runs/<run_id>/map``: the Distributed Map's ResultWriter prefix (no slash: AWS
    appends ``/<map-run-id>/``)."""
    return f"{run_prefix(run_id)}map"


def accepted_key(run_id: str) -> str:
    """``web/accepted/<run_id>.json``: the web's record of an accepted run."""
    return f"{ACCEPTED_PREFIX}{run_id}.json"
