"""Synthetic Distributed Map results, written in the exact ResultWriter layout AWS uses.

:class:`MapResults` collects child-execution records (SUCCEEDED batches carrying a
``SegmentResult`` as their Output string, FAILED batches carrying Error/Cause) and
writes ``manifest.json`` plus ``SUCCEEDED_0.json`` / ``FAILED_0.json`` to a store,
returning the :class:`AggregateRequest` the state machine would send.

:func:`standard_run` builds the run most tests use (plate P1)::

    B02  fields 1-3 OK   counts 10, 20, 30   areas 100, 110, 120
    B03  field 1 OK (5 nuclei, area 90), field 2 per-image error, field 3 OK
         (7 nuclei, area not measurable: NaN)
    C02  fields 1-2 in a FAILED batch (States.Timeout)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from plateseg.contracts import AggregateRequest, ImageSummary, ManifestItem, SegmentResult
from plateseg.store import Store, put_json

RECIPE: dict[str, Any] = {
    "version": 1,
    "segmenter": "classical",
    "params": {"sigma": 2.0},
    "channels": {"nuclei": "w1", "cells": "w2"},
}
MAP_RUN_ID = "0f6f3c2e-1111-4a4a-9b9b-0123456789ab"


def _at(index: int, offset: float) -> str:
    """ISO time (``Z``) of batch ``index``: 2025-11-23T10:00:00 + index + offset seconds."""
    moment = datetime(2025, 11, 23, 10, tzinfo=UTC) + timedelta(seconds=index + offset)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def item(plate: str, well: str, field_: int) -> ManifestItem:
    """A manifest item with two channels."""
    base = f"experiments/EXP-001/{plate}_{well}_s{field_}"
    return ManifestItem(
        plate=plate,
        well=well,
        field=field_,
        channels={"w1": f"{base}_w1.tif", "w2": f"{base}_w2.tif"},
    )


def ok(plate: str, well: str, field_: int, count: int, area: float) -> ImageSummary:
    """An OK per-image summary with three metrics."""
    return ImageSummary(
        image_id=f"{plate}_{well}_{field_}",
        plate=plate,
        well=well,
        field=field_,
        status="ok",
        object_count=count,
        metrics={
            "Count_Nuclei": float(count),
            "Mean_Nuclei_AreaShape_Area": area,
            "Mean_Nuclei_Intensity_MeanIntensity_w2": 0.5 + count / 100,
        },
        mask_key=f"runs/run-1/masks/{plate}_{well}_{field_}.png",
    )


def image_error(plate: str, well: str, field_: int, cause: str) -> ImageSummary:
    """A per-image error record, as Segment returns it for a corrupt file."""
    return ImageSummary(
        image_id=f"{plate}_{well}_{field_}",
        plate=plate,
        well=well,
        field=field_,
        status="error",
        error="ImageReadError",
        cause=cause,
    )


@dataclass
class MapResults:
    """Child-execution records of one Map Run, written in ResultWriter's layout."""

    run_id: str = "run-1"
    experiment_id: str = "EXP-001"
    recipe: dict[str, Any] = field(default_factory=lambda: dict(RECIPE))
    succeeded: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    started_at: str = "2025-11-23T10:00:00.000Z"
    #: StopDate of every child execution (default: batch ``i`` stops at 10:01:00.5 + i s).
    stopped_at: str | None = None

    def _batch_input(self, items: list[ManifestItem]) -> str:
        return json.dumps(
            {
                "BatchInput": {
                    "run_id": self.run_id,
                    "experiment_id": self.experiment_id,
                    "bucket": "plateseg-local",
                    "recipe": self.recipe,
                },
                "Items": [i.model_dump() for i in items],
            }
        )

    def _record(self, index: int, status: str, items: list[ManifestItem]) -> dict[str, Any]:
        name = f"{MAP_RUN_ID[:8]}-batch-{index}"
        return {
            "ExecutionArn": f"arn:aws:states:us-east-1:123456789012:execution:seg/{name}",
            "Input": self._batch_input(items),
            "InputDetails": {"Included": True},
            "Name": name,
            "RedriveCount": 0,
            "StartDate": _at(index, 0.0),
            "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:seg/segment",
            "Status": status,
            "StopDate": self.stopped_at or _at(index, 60.5),
        }

    def add_ok(self, summaries: list[ImageSummary]) -> None:
        """A SUCCEEDED batch whose Output is a SegmentResult of ``summaries``."""
        items = [item(s.plate, s.well, s.field) for s in summaries]
        record = self._record(len(self.succeeded) + len(self.failed), "SUCCEEDED", items)
        result = SegmentResult(
            run_id=self.run_id,
            parquet_key=f"runs/{self.run_id}/objects/part-{len(self.succeeded):05d}.parquet",
            images=summaries,
        )
        record["Output"] = result.model_dump_json()
        record["OutputDetails"] = {"Included": True}
        self.succeeded.append(record)

    def add_failed(self, items: list[ManifestItem], error: str, cause: str) -> None:
        """A FAILED batch (the child execution ended in ``error``)."""
        record = self._record(len(self.succeeded) + len(self.failed), "FAILED", items)
        record.update(Error=error, Cause=cause)
        self.failed.append(record)

    def write(self, store: Store) -> AggregateRequest:
        """Write manifest.json and the result files; return the Aggregate event."""
        prefix = f"runs/{self.run_id}/map/{MAP_RUN_ID}"
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status, records in (("SUCCEEDED", self.succeeded), ("FAILED", self.failed)):
            if records:
                key = f"{prefix}/{status}_0.json"
                data = json.dumps(records).encode()
                store.put_bytes(key, data)
                files[status].append({"Key": key, "Size": len(data)})
        map_run_arn = f"arn:aws:states:us-east-1:123456789012:mapRun:segment/Segment:{MAP_RUN_ID}"
        manifest = {
            "DestinationBucket": "plateseg-local",
            "MapRunArn": map_run_arn,
            "ResultFiles": files,
        }
        put_json(store, f"{prefix}/manifest.json", manifest)
        return AggregateRequest(
            run_id=self.run_id,
            experiment_id=self.experiment_id,
            bucket="plateseg-local",
            recipe=self.recipe,
            execution_id=f"arn:aws:states:us-east-1:123456789012:execution:segment:{self.run_id}",
            map_run_arn=map_run_arn,
            result_writer={"Bucket": "plateseg-local", "Key": f"{prefix}/manifest.json"},
            started_at=self.started_at,
        )


def standard_run(run_id: str = "run-1", experiment_id: str = "EXP-001") -> MapResults:
    """The run described in the module docstring."""
    results = MapResults(run_id=run_id, experiment_id=experiment_id)
    results.add_ok([ok("P1", "B02", f, 10 * f, 90.0 + 10 * f) for f in (1, 2, 3)])
    results.add_ok(
        [
            ok("P1", "B03", 1, 5, 90.0),
            image_error("P1", "B03", 2, "experiments/EXP-001/P1_B03_s2_w1.tif: truncated TIFF"),
            ok("P1", "B03", 3, 7, float("nan")),
        ]
    )
    results.add_failed(
        [item("P1", "C02", 1), item("P1", "C02", 2)],
        "States.Timeout",
        "Task timed out after 900.00 seconds",
    )
    return results


#: Layout of :func:`qc_run`: controls in columns 1 (neg) and 12 (pos), samples in 5.
QC_LAYOUT = """well,condition,compound,concentration,control
A01,DMSO,DMSO,0,neg
B01,DMSO,DMSO,0,neg
C01,DMSO,DMSO,0,neg
A12,staurosporine,staurosporine,1,pos
B12,staurosporine,staurosporine,1,pos
C12,staurosporine,staurosporine,1,pos
A05,CPD-1 3 uM,CPD-1,3,
"""


def qc_run(run_id: str = "run-qc", experiment_id: str = "EXP-QC") -> MapResults:
    """One field per well; Count_Nuclei: neg 10, 12, 8; pos 100, 110, 90; A05 50.

    Hand-computed over the well means (sample std, ddof=1): mean_neg 10, std_neg
    sqrt(8/2) = 2; mean_pos 100, std_pos sqrt(200/2) = 10;
    Z' = 1 - 3 (10 + 2) / 90 = 0.6; S/B = 100 / 10 = 10.
    """
    results = MapResults(run_id=run_id, experiment_id=experiment_id)
    counts = {"A01": 10, "B01": 12, "C01": 8, "A12": 100, "B12": 110, "C12": 90, "A05": 50}
    results.add_ok([ok("P1", well, 1, count, 100.0) for well, count in counts.items()])
    return results


def write_layout(store: Store, experiment_id: str, text: str = QC_LAYOUT) -> None:
    """Put ``experiments/<id>/layout.csv`` into the store."""
    store.put_bytes(f"experiments/{experiment_id}/layout.csv", text.encode(), "text/csv")
