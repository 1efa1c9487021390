"""Property-based API test: schemathesis against the OpenAPI schema finds no 5xx.

Runs are started by a fake runner here (the real engine is covered by
``test_runs_results.py``), so generated ``POST /api/runs`` calls stay cheap. The demo
experiment exists, so generated calls reach real code paths with real data.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from plateseg.runs.local import LocalRunner as LocalBackend
from plateseg.runs.manager import RunManager
from plateseg.settings import Settings
from plateseg.store import LocalStore
from plateseg.web import WebSettings, create_app

from .conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _instant_runner(experiment_id: str, **kwargs: Any) -> None:
    """Stands in for ``run_local``: reports one Map Run of one item, then succeeds."""
    listener = kwargs["listener"]
    from datetime import UTC, datetime

    from plateseg.engine import Event

    listener(Event("MapRunStarted", datetime.now(UTC), {"total": 1}))


@pytest.fixture
def web_schema(settings: Settings, web_config: WebSettings, demo: LocalStore) -> Any:
    app = create_app(settings, web_config)
    state = app.state.plateseg
    state._backend = LocalBackend(
        settings,
        manager=RunManager(settings, runner=_instant_runner),
        database=lambda: state.engine,
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)


def test_api_answers_without_server_errors(web_schema: Any) -> None:
    """Every operation, a dozen generated requests each, none answered with a 5xx."""
    checked = []
    for result in web_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=AUTH, checks=[not_a_server_error])

        check()
        checked.append(operation.label)
    assert len(checked) >= 15
    assert "POST /api/runs" in checked
