"""Compare two runs of one experiment: the page and its JSON.

``/compare?a=RUN&b=RUN`` (reached from the experiment's runs table) shows what each run
was, side by side, and what B changed against A: a per-well scatter, a difference
heatmap, every metric's mean in both, and the wells that changed most. The numbers are
:func:`plateseg.results.compare.compare_runs`'s; runs of different experiments are refused (422)
with both experiments named.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from plateseg.results import get_run
from plateseg.results.compare import (
    Comparison,
    MetricDelta,
    WellPair,
    check_comparable,
    compare_runs,
)
from plateseg.runs.ids import check_execution_name
from plateseg.web.deps import AppStateDep
from plateseg.web.routers.pages import render_page
from plateseg.web.routers.results import NUCLEI_METRIC, Metric, details

router = APIRouter(tags=["compare"])

RunQuery = Annotated[str, Query(min_length=1, max_length=80)]


def _well(pair: WellPair) -> dict[str, Any]:
    return {
        "plate": pair.plate,
        "well": pair.well,
        "a": pair.a,
        "b": pair.b,
        "diff": pair.diff,
        "control": pair.control,
        "compound": pair.compound,
        "concentration": pair.concentration,
    }


def _delta(delta: MetricDelta) -> dict[str, Any]:
    return {
        "metric": delta.metric,
        "mean_a": delta.mean_a,
        "mean_b": delta.mean_b,
        "diff": delta.diff,
        "relative": delta.relative,
        "n_a": delta.n_a,
        "n_b": delta.n_b,
    }


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as the page reads it (``a``/``b`` details are added by the route)."""
    return {
        "experiment_id": comparison.experiment_id,
        "metric": comparison.metric,
        "metrics": comparison.common_metrics,
        "summary": {
            "n_wells": len(comparison.wells),
            "n_both": comparison.n_both,
            "correlation": comparison.correlation,
            "mean_diff": comparison.mean_diff,
            "diff_limit": comparison.diff_limit,
        },
        "plates": [
            {"plate": p.plate, "rows": p.rows, "columns": p.columns} for p in comparison.plates
        ],
        "wells": [_well(w) for w in comparison.wells],
        "changed": [_well(w) for w in comparison.changed],
        "deltas": [_delta(d) for d in comparison.deltas],
    }


@router.get("/api/compare")
def compare(
    state: AppStateDep, a: RunQuery, b: RunQuery, metric: Metric = NUCLEI_METRIC
) -> dict[str, Any]:
    """Run ``b`` against run ``a`` (same experiment): per well A, B and B - A of
    ``metric``; Pearson's r; the 10 wells with the largest |B - A|; the mean of every
    metric in both runs; and what each run was (as ``/api/runs/{id}/details``)."""
    run_a, run_b = check_execution_name(a), check_execution_name(b)
    comparison = compare_runs(state.engine, run_a, run_b, metric)
    return {
        **comparison_json(comparison),
        "a": details(state, run_a),
        "b": details(state, run_b),
    }


@router.get("/compare", response_class=HTMLResponse, include_in_schema=False)
def compare_page(
    request: Request, state: AppStateDep, a: RunQuery, b: RunQuery, metric: Metric = NUCLEI_METRIC
) -> Response:
    """The compare page; the same checks as the API, so a bad pair is an error page."""
    run_a, run_b = check_execution_name(a), check_execution_name(b)
    first, second = get_run(state.engine, run_a), get_run(state.engine, run_b)
    check_comparable(first, second)
    return render_page(
        state,
        request,
        "compare.html",
        experiment_id=first.experiment_id,
        a=run_a,
        b=run_b,
        metric=metric,
    )
