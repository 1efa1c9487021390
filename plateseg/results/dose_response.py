"""Dose-response: a four-parameter logistic (4PL) fit per compound, with its evidence.

The model, on ``x = log10(concentration)``::

    y = right + (left - right) / (1 + 10 ** (h * (x - log10(X50))))      h > 0

``left`` is the plateau at low concentration, ``right`` the one at high concentration,
``X50`` the concentration halfway between them and ``h`` the steepness. A fit is
reported as labs read it (GraphPad Prism's "log(inhibitor) vs. response, variable
slope"): ``top``/``bottom`` are the upper and lower plateaus, an **IC50** when the
response falls with concentration (``left > right``) and an **EC50** when it rises, and a
signed Hill slope (negative for a falling curve).

Fitting is unweighted least squares (:func:`scipy.optimize.curve_fit`, trust-region
reflective, ``h`` in [0.1, 10], ``log10(X50)`` within two decades of the tested range)
from several starting points; the best one wins. The 95 % confidence interval of X50 is
the Wald interval of ``log10(X50)``, ``± t(0.975, n - 4) · SE`` with ``SE`` from the
covariance matrix scaled by the residual variance, transformed back (so it is asymmetric
around X50, as in Prism).

A fit that would give a wrong number gives a reason instead (``status == "failed"``):

* fewer than :data:`MIN_WELLS` wells or :data:`MIN_CONCENTRATIONS` distinct
  concentrations;
* the optimiser did not converge, or the data do not determine the parameters;
* no dose response: the 4PL is not better than a flat line (extra-sum-of-squares F-test,
  p >= 0.05);
* X50 outside the tested concentrations (the curve has no plateau on one side) or an
  undefined confidence interval.

Wells with no value, or a concentration that is missing or zero (a vehicle well has no
place on a log axis), are listed as excluded with the reason and never fitted.

>>> import numpy as np
>>> conc = np.repeat(10.0 ** np.arange(-2.0, 2.5, 0.5), 2)
>>> y = four_pl(np.log10(conc), left=100.0, right=20.0, log_x50=0.0, hill=1.0)
>>> fit = fit_four_pl(conc, y)
>>> fit.status, fit.kind, round(fit.x50, 3), round(fit.hill_slope, 3)
('ok', 'IC50', 1.0, -1.0)
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from scipy import optimize
from scipy import stats as sps

from plateseg.errors import InputError

__all__ = [
    "MIN_CONCENTRATIONS",
    "MIN_WELLS",
    "DoseFit",
    "DosePoint",
    "fit_compounds",
    "fit_four_pl",
    "four_pl",
]

#: Fewest wells with a value, and distinct concentrations, a 4PL fit is attempted on.
MIN_WELLS = 5
MIN_CONCENTRATIONS = 4
#: The flat-line F-test must reject "no dose response" at this level.
ALPHA = 0.05
#: False discovery rate of the outlier test (ROUT's Q).
ROUT_Q = 0.01
_HILL_BOUNDS = (0.1, 10.0)
_X50_MARGIN = 2.0  # decades beyond the tested range that log10(X50) may reach while fitting


@dataclass(frozen=True)
class DosePoint:
    """One well of a dilution series: its compound, concentration and metric value.

    ``concentration`` is in the layout's unit; ``value`` is the well's mean of the metric
    (``None`` when the well has none, e.g. every field failed).
    """

    compound: str
    plate: str
    well: str
    concentration: float | None
    value: float | None


@dataclass(frozen=True)
class DoseFit:
    """A compound's 4PL fit, or the reason there is none.

    Attributes
    ----------
    compound : str
    status : {"ok", "failed"}
    reason : str
        Why there is no fit (``""`` when ``status == "ok"``).
    kind : {"IC50", "EC50"} or None
        IC50 when the response falls with concentration, EC50 when it rises.
    x50, ci_low, ci_high : float or None
        IC50/EC50 and its 95 % confidence interval, in the concentrations' unit.
    hill_slope : float or None
        Signed: negative for a falling curve (Prism's convention).
    top, bottom : float or None
        Upper and lower plateaus, in the metric's unit.
    r_squared : float or None
    p_value : float or None
        Extra-sum-of-squares F-test of the 4PL against a flat line.
    n_wells, n_concentrations : int
        Wells fitted and their distinct concentrations.
    concentration_range : tuple of float or None
        Lowest and highest tested concentration.
    points : tuple of DosePoint
        The wells fitted.
    excluded : tuple of (DosePoint, str)
        Wells left out, with why.
    """

    compound: str
    status: Literal["ok", "failed"]
    reason: str = ""
    kind: Literal["IC50", "EC50"] | None = None
    x50: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    hill_slope: float | None = None
    top: float | None = None
    bottom: float | None = None
    r_squared: float | None = None
    p_value: float | None = None
    n_wells: int = 0
    n_concentrations: int = 0
    concentration_range: tuple[float, float] | None = None
    points: tuple[DosePoint, ...] = ()
    excluded: tuple[tuple[DosePoint, str], ...] = field(default=())


def four_pl(
    log_conc: np.ndarray | float, left: float, right: float, log_x50: float, hill: float
) -> np.ndarray:
    """The 4PL response at ``log10`` concentrations (see the module docstring).

    Parameters
    ----------
    log_conc : ndarray of float, shape (n,)
        log10 of the concentrations.
    left, right : float
        Plateaus at low and high concentration.
    log_x50 : float
        log10 of the concentration halfway between the plateaus.
    hill : float
        Steepness (> 0).

    Returns
    -------
    ndarray of float64, shape (n,)

    >>> four_pl(np.array([-10.0, 0.0, 10.0]), 100.0, 20.0, 0.0, 1.0).round(6).tolist()
    [100.0, 60.0, 20.0]
    """
    x = np.asarray(log_conc, dtype=np.float64)
    exponent = np.clip(hill * (x - log_x50), -300.0, 300.0)
    return np.asarray(right + (left - right) / (1.0 + np.power(10.0, exponent)))


@dataclass(frozen=True)
class _Curve:
    """One least-squares solution: parameters (left, right, log_x50, hill), their
    covariance and the residual sum of squares."""

    params: np.ndarray
    cov: np.ndarray
    ss: float


def _curve_fit(
    x: np.ndarray, y: np.ndarray, starts: list[np.ndarray], loss: str, f_scale: float
) -> _Curve | str:
    """The best of ``curve_fit`` from each start (lowest residual sum of squares), or the
    last error when none converged."""
    lower = [-np.inf, -np.inf, float(x.min()) - _X50_MARGIN, _HILL_BOUNDS[0]]
    upper = [np.inf, np.inf, float(x.max()) + _X50_MARGIN, _HILL_BOUNDS[1]]
    best: _Curve | None = None
    error = "no starting point"
    for start in starts:
        p0 = np.clip(start, np.add(lower, 1e-9), np.subtract(upper, 1e-9))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                params, cov = optimize.curve_fit(
                    four_pl,
                    x,
                    y,
                    p0=p0,
                    bounds=(lower, upper),
                    method="trf",
                    loss=loss,
                    f_scale=f_scale,
                    max_nfev=20000,
                )
        except (RuntimeError, ValueError) as failure:
            error = str(failure)
            continue
        ss = float(np.sum((y - four_pl(x, *params)) ** 2))
        if best is None or ss < best.ss:
            best = _Curve(np.asarray(params), np.asarray(cov), ss)
    return best if best is not None else error


def _starts(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Starting points: plateaus from the lowest and highest concentrations' medians,
    X50 spread over the tested range, Hill slope 1."""
    low, high = float(x.min()), float(x.max())
    left = float(np.median(y[x == low]))
    right = float(np.median(y[x == high]))
    if left == right:
        right = left - float(np.std(y)) or left - 1.0
    return [np.array([left, right, g, 1.0]) for g in np.linspace(low, high, 5)]


def _outliers(x: np.ndarray, y: np.ndarray, curve: _Curve) -> tuple[np.ndarray, np.ndarray]:
    """Outlying wells in the manner of ROUT (Motulsky & Brown 2006): a robust (Cauchy)
    fit, the robust SD of its residuals, and a false discovery rate of :data:`ROUT_Q`.

    Returns
    -------
    outlier : ndarray of bool, shape (n,)
    distance : ndarray of float64, shape (n,)
        Each well's residual in robust SDs.
    """
    n = x.size
    residuals = y - four_pl(x, *curve.params)
    scale = 1.4826 * float(np.median(np.abs(residuals - np.median(residuals))))
    nothing = np.zeros(n, dtype=bool), np.zeros(n)
    if not scale > 0.0:
        return nothing
    robust = _curve_fit(x, y, [curve.params], "cauchy", scale)
    if isinstance(robust, str):
        return nothing
    residuals = np.abs(y - four_pl(x, *robust.params))
    rsdr = float(np.percentile(residuals, 68.27)) * n / (n - 4)
    if not rsdr > 0.0:
        return nothing
    distance = residuals / rsdr
    p = 2.0 * sps.t.sf(distance, n - 4)
    order = np.argsort(p)
    passed = np.nonzero(p[order] <= ROUT_Q * np.arange(1, n + 1) / n)[0]
    outlier = np.zeros(n, dtype=bool)
    if passed.size:
        outlier[order[: passed[-1] + 1]] = True
    return outlier, distance


def fit_four_pl(
    concentrations: Sequence[float] | np.ndarray,
    responses: Sequence[float] | np.ndarray,
    *,
    compound: str = "",
    points: Sequence[DosePoint] | None = None,
    excluded: Sequence[tuple[DosePoint, str]] = (),
    remove_outliers: bool = True,
) -> DoseFit:
    """Fit a 4PL to one compound's wells (see the module docstring).

    Parameters
    ----------
    concentrations : array-like of float, shape (n,)
        Positive concentrations, any unit (the result's X50 is in the same unit).
    responses : array-like of float, shape (n,)
        The metric at each concentration (replicates are separate entries).
    compound : str
        Name carried into the result.
    points : sequence of DosePoint, optional
        The wells behind the arrays (same order and length), so the result can name the
        wells it fitted and the outliers it left out.
    excluded : sequence of (DosePoint, str)
        Wells already left out, with why, carried into the result.
    remove_outliers : bool
        Leave out outlying wells (ROUT-like, Q = 1 %) before the final fit.

    Returns
    -------
    DoseFit
        ``status == "ok"`` with the parameters, or ``"failed"`` with a reason (too few
        points, no convergence, no dose response, X50 outside the tested range).

    Raises
    ------
    InputError
        The arrays differ in length or are not one-dimensional, ``points`` has another
        length, a value is not finite, or a concentration is not positive.
    """
    name = compound or "a compound"
    c = np.asarray(concentrations, dtype=np.float64)
    y = np.asarray(responses, dtype=np.float64)
    if c.ndim != 1 or y.ndim != 1 or c.shape != y.shape:
        raise InputError(
            f"dose-response of {name}: concentrations {c.shape} and responses {y.shape} "
            "must be one-dimensional and of the same length"
        )
    wells = (
        tuple(points)
        if points is not None
        else tuple(
            DosePoint(compound, "", f"#{i + 1}", float(ci), float(yi))
            for i, (ci, yi) in enumerate(zip(c, y, strict=True))
        )
    )
    if len(wells) != c.size:
        raise InputError(f"dose-response of {name}: {len(wells)} points for {c.size} values")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(y))):
        raise InputError(f"dose-response of {name}: a concentration or response is not finite")
    if np.any(c <= 0):
        raise InputError(
            f"dose-response of {name}: concentrations must be > 0 (got {float(c.min()):g}); "
            "leave vehicle wells out of the series"
        )
    left_out = list(excluded)
    keep = np.ones(c.size, dtype=bool)
    curve: _Curve | str | None = None
    if _enough(c) and float(np.ptp(y)) > 0.0:
        x = np.log10(c)
        curve = _curve_fit(x, y, _starts(x, y), "linear", 1.0)
        if remove_outliers and not isinstance(curve, str) and c.size > 4:
            outlier, distance = _outliers(x, y, curve)
            if outlier.any() and _enough(c[~outlier]):
                for i in np.nonzero(outlier)[0]:
                    left_out.append(
                        (
                            wells[i],
                            f"outlier: {distance[i]:.1f} robust SDs from the robust fit "
                            f"(ROUT-like, Q = {ROUT_Q:.0%})",
                        )
                    )
                keep = ~outlier
                x, y_kept = x[keep], y[keep]
                curve = _curve_fit(x, y_kept, _starts(x, y_kept), "linear", 1.0)
    return _result(
        compound,
        c[keep],
        y[keep],
        tuple(w for w, k in zip(wells, keep, strict=True) if k),
        tuple(left_out),
        curve,
    )


def _enough(c: np.ndarray) -> bool:
    return c.size >= MIN_WELLS and np.unique(c).size >= MIN_CONCENTRATIONS


def _result(
    compound: str,
    c: np.ndarray,
    y: np.ndarray,
    points: tuple[DosePoint, ...],
    excluded: tuple[tuple[DosePoint, str], ...],
    curve: _Curve | str | None,
) -> DoseFit:
    """The :class:`DoseFit` of a finished least-squares fit, or of why there is none."""
    n, distinct = int(c.size), int(np.unique(c).size)
    low, high = (float(c.min()), float(c.max())) if n else (math.nan, math.nan)
    base = DoseFit(
        compound=compound,
        status="failed",
        n_wells=n,
        n_concentrations=distinct,
        concentration_range=(low, high) if n else None,
        points=points,
        excluded=excluded,
    )
    if not _enough(c):
        return replace(
            base,
            reason=f"too few points: {n} well{'s' * (n != 1)} at {distinct} "
            f"concentration{'s' * (distinct != 1)} (a 4PL fit needs at least {MIN_WELLS} "
            f"wells at {MIN_CONCENTRATIONS} concentrations)",
        )
    ss_flat = float(np.sum((y - y.mean()) ** 2))
    if curve is None or ss_flat == 0.0:
        return replace(base, reason="no dose response: every well has the same value")
    if isinstance(curve, str):
        return replace(base, reason=f"the fit did not converge ({curve})")
    left, right, log_x50, hill = (float(p) for p in curve.params)
    df = n - 4
    f_stat = ((ss_flat - curve.ss) / 3.0) / (curve.ss / df) if curve.ss > 0 else math.inf
    p_value = float(sps.f.sf(f_stat, 3, df))
    kind: Literal["IC50", "EC50"] = "IC50" if left > right else "EC50"
    shape = replace(
        base,
        kind=kind,
        top=max(left, right),
        bottom=min(left, right),
        hill_slope=-hill if kind == "IC50" else hill,
        r_squared=1.0 - curve.ss / ss_flat,
        p_value=p_value,
    )
    if not p_value < ALPHA:
        return replace(
            shape,
            reason="no dose response: the 4PL fits no better than a flat line "
            f"(F-test p = {p_value:.2g})",
        )
    x50 = 10.0**log_x50
    if not low <= x50 <= high:
        return replace(
            shape,
            reason=f"the {kind} would lie outside the tested concentrations "
            f"({low:.3g} to {high:.3g}): the curve has no plateau on that side",
        )
    variance = float(curve.cov[2, 2])
    # 0 is a fit through every point (the interval closes on the X50); whether it comes
    # out as 0 or 1e-30 depends on rounding, so both are accepted
    if not (math.isfinite(variance) and variance >= 0.0):
        return replace(
            shape,
            reason="the data do not determine the parameters (the fit's covariance is undefined)",
        )
    half = float(sps.t.ppf(0.975, df)) * math.sqrt(variance)
    return replace(
        shape,
        status="ok",
        x50=x50,
        ci_low=10.0 ** (log_x50 - half),
        ci_high=10.0 ** (log_x50 + half),
    )


def fit_compounds(points: Iterable[DosePoint]) -> list[DoseFit]:
    """One :class:`DoseFit` per compound, most potent first (failed fits last, by name).

    A compound none of whose wells has a concentration is no dilution series and is left
    out. Wells without a value, or with a concentration that is missing or not positive,
    are excluded with a reason; the rest go to :func:`fit_four_pl`.

    >>> pts = [DosePoint("CPD-9", "P1", f"A{i:02d}", 10.0**i, 1.0) for i in range(3)]
    >>> [(f.compound, f.status, f.reason[:15]) for f in fit_compounds(pts)]
    [('CPD-9', 'failed', 'too few points:')]
    """
    by_compound: dict[str, list[DosePoint]] = defaultdict(list)
    for point in points:
        by_compound[point.compound].append(point)
    fits = []
    for compound, wells in sorted(by_compound.items()):
        if all(point.concentration is None for point in wells):
            continue
        used: list[DosePoint] = []
        excluded: list[tuple[DosePoint, str]] = []
        for point in sorted(wells, key=lambda p: (p.concentration or 0.0, p.plate, p.well)):
            if point.value is None or not math.isfinite(point.value):
                excluded.append((point, "no value (no field of the well was measured)"))
            elif point.concentration is None:
                excluded.append((point, "no concentration in the layout"))
            elif point.concentration <= 0:
                excluded.append((point, "concentration 0 has no place on a log axis"))
            else:
                used.append(point)
        fits.append(
            fit_four_pl(
                [p.concentration or 0.0 for p in used],
                [p.value or 0.0 for p in used],
                compound=compound,
                points=used,
                excluded=excluded,
            )
        )
    return sorted(fits, key=_potency)


def _potency(fit: DoseFit) -> tuple[int, float, str]:
    return (0, fit.x50, fit.compound) if fit.x50 is not None else (1, math.inf, fit.compound)
