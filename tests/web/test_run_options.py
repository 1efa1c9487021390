"""Every option of ``plateseg run`` through ``POST /api/runs``: naming, recipe with
secondary objects, batch size, concurrency and run id reach the execution; bad ones are
refused before anything is accepted."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plateseg.engine import Journal
from plateseg.map_settings import distributed_map
from plateseg.runs.embedded import journal_path
from plateseg.settings import Settings
from plateseg.store import LocalStore

from .conftest import EXPERIMENT


def recorded(run_id: str, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The input a run's journal recorded and its Distributed Map state."""
    with Journal(journal_path(run_id, settings)) as journal:
        execution = journal.execution()
    assert execution is not None
    _, map_state = distributed_map(execution["definition"])
    return execution["input"], map_state


def test_the_options_of_plateseg_run_reach_the_execution(
    client: TestClient, app: FastAPI, demo: LocalStore, settings: Settings
) -> None:
    body = {
        "experiment_id": EXPERIMENT,
        "run_id": "web-options-1",
        "naming": "imagexpress",
        "batch_size": 3,
        "concurrency": 2,
        "recipe": {
            "segmenter": "classical",
            "channels": {"nuclei": "w1", "cells": "w2"},
            "secondary": {"max_distance": 30},
        },
    }
    started = client.post("/api/runs", json=body)
    assert started.status_code == 202, started.text
    assert started.json()["run_id"] == "web-options-1"
    final = app.state.plateseg.backend.manager.wait("web-options-1", timeout=240)
    assert final.status == "SUCCEEDED", final
    sent, map_state = recorded("web-options-1", settings)
    assert sent["naming"] == "imagexpress"
    assert sent["recipe"]["secondary"]["max_distance"] == 30
    assert sent["recipe"]["channels"] == {"nuclei": "w1", "cells": "w2"}
    assert map_state["ItemBatcher"]["MaxItemsPerBatch"] == 3
    assert map_state["MaxConcurrency"] == 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"run_id": "v1.2"}, "invalid run id 'v1.2'"),
        ({"batch_size": 0}, "batch_size"),
        ({"concurrency": -1}, "concurrency"),
        ({"naming": "(unclosed"}, "input.naming"),
        ({"recipe": {"secondary": {"max_distance": -1}}}, "secondary"),
    ],
)
def test_bad_options_are_refused_before_the_run_is_accepted(
    client: TestClient, demo: LocalStore, change: dict[str, Any], named: str
) -> None:
    refused = client.post("/api/runs", json={"experiment_id": EXPERIMENT, **change})
    assert refused.status_code == 422, refused.text
    assert named in refused.text
    assert client.get("/api/runs").json() == []
