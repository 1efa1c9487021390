"""The biology of a run: Z' per plate with its evidence, dose-response fits per compound.

Both read the results database (the stored plate QC; the wells' means and layout) and
leave the statistics to the library: :mod:`plateseg.results.summaries` owns Z' and its bands,
:mod:`plateseg.results.dose_response` the 4PL fits.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from plateseg.results import plate_qc, well_metric_values
from plateseg.results.dose_export import curve_points, fits_csv
from plateseg.results.dose_response import DoseFit, DosePoint, fit_compounds
from plateseg.results.summaries import SIGMA_DEFINITION, z_prime_band, z_prime_note
from plateseg.web.deps import AppStateDep, RunId
from plateseg.web.routers.results import NUCLEI_METRIC, Metric
from plateseg.web.state import AppState

router = APIRouter(prefix="/api/runs/{run_id}", tags=["biology"])


Z_PRIME_FORMULA = "Z\u2032 = 1 \u2212 3(\u03c3p + \u03c3n) / |\u03bcp \u2212 \u03bcn|"
Z_PRIME_BANDS = [
    {"band": "excellent", "range": "\u2265 0.5"},
    {"band": "marginal", "range": "0 to 0.5"},
    {"band": "unusable", "range": "< 0"},
]
FIT_MODEL = (
    "four-parameter logistic on log10 concentration, least squares (scipy curve_fit), "
    "outlying wells left out (ROUT-like, Q = 1 %)"
)
FIT_CI = "95 % Wald interval of log10 IC50/EC50 (t with n \u2212 4 df), transformed back"


@router.get("/plate-qc")
def plate_quality(
    state: AppStateDep, run_id: RunId, metric: Metric = NUCLEI_METRIC
) -> dict[str, Any]:
    """Z' per plate for one metric, with its evidence: control well counts, means and
    sample SDs, the band it falls in, and why it is missing where it is."""
    rows = plate_qc(state.engine, run_id, metric)
    return {
        "run_id": run_id,
        "metric": metric,
        "formula": Z_PRIME_FORMULA,
        "sigma": SIGMA_DEFINITION,
        "bands": Z_PRIME_BANDS,
        "plates": [
            {
                "plate": row.plate,
                "z_prime": row.z_prime,
                "band": z_prime_band(row.z_prime),
                "note": z_prime_note(row.n_pos, row.n_neg, row.z_prime),
                "n_pos": row.n_pos,
                "n_neg": row.n_neg,
                "mean_pos": row.mean_pos,
                "mean_neg": row.mean_neg,
                "std_pos": row.std_pos,
                "std_neg": row.std_neg,
                "signal_to_background": row.signal_to_background,
            }
            for row in rows
        ],
    }


def _fits(state: AppState, run_id: str, metric: str) -> list[DoseFit]:
    """The 4PL fit of every compound of the run's layout (control wells left out)."""
    wells = well_metric_values(state.engine, run_id, metric)
    return fit_compounds(
        DosePoint(w.compound, w.plate, w.well, w.concentration, w.value)
        for w in wells
        if w.compound and not w.control
    )


def _point(point: DosePoint) -> dict[str, Any]:
    return {
        "plate": point.plate,
        "well": point.well,
        "concentration": point.concentration,
        "value": point.value,
    }


@router.get("/dose-response")
def dose_response(
    state: AppStateDep, run_id: RunId, metric: Metric = NUCLEI_METRIC
) -> dict[str, Any]:
    """Per compound of the layout (wells with a compound and a concentration, controls
    left out): the wells' means of ``metric``, the 4PL fit (IC50/EC50 with its 95 % CI,
    Hill slope, top, bottom) or the reason there is none, and the curve to draw. Most
    potent first."""
    fits = _fits(state, run_id, metric)
    return {
        "run_id": run_id,
        "metric": metric,
        "model": FIT_MODEL,
        "ci": FIT_CI,
        "compounds": [
            {
                "compound": fit.compound,
                "status": fit.status,
                "reason": fit.reason,
                "kind": fit.kind if fit.status == "ok" else None,
                "x50": fit.x50,
                "ci_low": fit.ci_low,
                "ci_high": fit.ci_high,
                "hill_slope": fit.hill_slope if fit.status == "ok" else None,
                "top": fit.top if fit.status == "ok" else None,
                "bottom": fit.bottom if fit.status == "ok" else None,
                "r_squared": fit.r_squared if fit.status == "ok" else None,
                "p_value": fit.p_value,
                "n_wells": fit.n_wells,
                "n_concentrations": fit.n_concentrations,
                "concentration_range": fit.concentration_range,
                "points": [_point(p) for p in fit.points],
                "excluded": [{**_point(p), "reason": why} for p, why in fit.excluded],
                "curve": curve_points(fit),
            }
            for fit in fits
        ],
    }


@router.get(
    "/dose-response.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def dose_response_csv(
    state: AppStateDep, run_id: RunId, metric: Metric = NUCLEI_METRIC
) -> Response:
    """The fits as CSV, one row per compound (failed fits with their reason and no numbers)."""
    text = fits_csv(_fits(state, run_id, metric), metric=metric)
    return Response(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{run_id}-dose-response.csv"'},
    )
