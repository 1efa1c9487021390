"""What the UI and a spreadsheet read of the dose-response fits
(:mod:`plateseg.results.dose_response`): the fitted curve as points to draw, and the fits
as CSV text."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable

import numpy as np

from plateseg.results.dose_response import DoseFit, four_pl

__all__ = ["CSV_COLUMNS", "curve_points", "fits_csv"]


def curve_points(fit: DoseFit, n: int = 80) -> list[tuple[float, float]]:
    """The fitted curve as ``(log10 concentration, response)`` pairs for drawing: ``n``
    points from a quarter decade below the lowest tested concentration to a quarter decade
    above the highest; empty when the fit failed.

    >>> fit = DoseFit("C", "ok", kind="IC50", x50=1.0, hill_slope=-1.0, top=100.0,
    ...               bottom=20.0, concentration_range=(0.1, 10.0))
    >>> [(round(x, 2), round(y, 1)) for x, y in curve_points(fit, 3)]
    [(-1.25, 95.7), (0.0, 60.0), (1.25, 24.3)]
    """
    if fit.status != "ok" or None in (fit.x50, fit.hill_slope, fit.top, fit.bottom):
        return []
    assert fit.x50 is not None and fit.hill_slope is not None and fit.concentration_range
    assert fit.top is not None and fit.bottom is not None
    falling = fit.kind == "IC50"
    left, right = (fit.top, fit.bottom) if falling else (fit.bottom, fit.top)
    low, high = (math.log10(c) for c in fit.concentration_range)
    x = np.linspace(low - 0.25, high + 0.25, n)
    y = four_pl(x, left, right, math.log10(fit.x50), abs(fit.hill_slope))
    return [(float(a), float(b)) for a, b in zip(x, y, strict=True)]


#: Columns of :func:`fits_csv`, in order.
CSV_COLUMNS = (
    "compound",
    "status",
    "kind",
    "x50",
    "ci95_low",
    "ci95_high",
    "hill_slope",
    "top",
    "bottom",
    "r_squared",
    "f_test_p",
    "n_wells",
    "n_concentrations",
    "min_concentration",
    "max_concentration",
    "excluded_wells",
    "reason",
)


def _cell(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def fits_csv(fits: Iterable[DoseFit], *, metric: str = "") -> str:
    """The fits as CSV text, one row per compound (columns :data:`CSV_COLUMNS`, plus a
    leading ``metric`` column when ``metric`` is given). Failed fits have empty numbers
    and their reason; excluded wells are listed as ``P1:B03 (why)``.

    >>> print(fits_csv([DoseFit("CPD-9", "failed", "too few points")]).splitlines()[1])
    CPD-9,failed,,,,,,,,,,0,0,,,,too few points
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((["metric"] if metric else []) + list(CSV_COLUMNS))
    for fit in fits:
        span = fit.concentration_range
        row = [
            fit.compound,
            fit.status,
            fit.kind if fit.status == "ok" else "",
            *(
                _cell(v) if fit.status == "ok" else ""
                for v in (
                    fit.x50,
                    fit.ci_low,
                    fit.ci_high,
                    fit.hill_slope,
                    fit.top,
                    fit.bottom,
                    fit.r_squared,
                    fit.p_value,
                )
            ),
            str(fit.n_wells),
            str(fit.n_concentrations),
            _cell(span[0]) if span else "",
            _cell(span[1]) if span else "",
            "; ".join(f"{p.plate}:{p.well} ({why})" for p, why in fit.excluded),
            fit.reason,
        ]
        writer.writerow(([metric] if metric else []) + row)
    return buffer.getvalue()
