"""The 4PL fit: it recovers a known IC50 from noisy replicates with a confidence interval
that holds the truth, says why when it cannot fit, and refuses malformed input."""

from __future__ import annotations

import csv
import doctest
import io
import math

import numpy as np
import pytest

from plateseg.errors import InputError
from plateseg.results import dose_response
from plateseg.results.dose_export import CSV_COLUMNS, curve_points, fits_csv
from plateseg.results.dose_response import DosePoint, fit_compounds, fit_four_pl, four_pl

#: An 8-point half-log dilution series, 4 replicate wells per concentration.
CONCENTRATIONS = np.repeat(10.0 ** np.arange(-2.0, 2.0, 0.5), 4)


def noisy_series(
    seed: int,
    ic50: float = 0.8,
    hill: float = 1.0,
    top: float = 70.0,
    bottom: float = 24.5,
    noise: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Replicates of a falling 4PL with Gaussian noise of SD ``noise``."""
    x = np.log10(CONCENTRATIONS)
    y = four_pl(x, top, bottom, math.log10(ic50), hill)
    return CONCENTRATIONS, y + np.random.default_rng(seed).normal(0.0, noise, y.size)


def test_doctests() -> None:
    result = doctest.testmod(dose_response)
    assert result.attempted > 0 and result.failed == 0


def test_recovers_a_known_ic50_from_noisy_replicates() -> None:
    conc, y = noisy_series(seed=1)
    fit = fit_four_pl(conc, y, compound="CPD-1")
    assert fit.status == "ok" and fit.reason == ""
    assert fit.kind == "IC50"
    assert fit.x50 == pytest.approx(0.8, rel=0.2)
    assert fit.ci_low is not None and fit.ci_high is not None
    assert fit.ci_low < 0.8 < fit.ci_high
    assert fit.hill_slope == pytest.approx(-1.0, abs=0.35)
    assert fit.top == pytest.approx(70.0, abs=4.0)
    assert fit.bottom == pytest.approx(24.5, abs=4.0)
    # on clean Gaussian data the outlier test flags a well in ~2 % of series (FDR 1 %)
    assert fit.n_wells + len(fit.excluded) == 32 and fit.n_concentrations == 8
    assert fit.r_squared is not None and fit.r_squared > 0.9


def test_confidence_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    covered = 0
    for seed in range(40):
        fit = fit_four_pl(*noisy_series(seed, noise=5.0))
        assert fit.status == "ok", fit.reason
        assert fit.ci_low is not None and fit.ci_high is not None
        covered += fit.ci_low <= 0.8 <= fit.ci_high
    assert covered >= 34  # 95 % nominal; 34/40 is below what a 95 % interval fails 1 % of the time


def test_a_rising_curve_gives_an_ec50_and_a_positive_hill_slope() -> None:
    conc, y = noisy_series(seed=2, ic50=3.0, hill=1.5, top=10.0, bottom=90.0)
    fit = fit_four_pl(conc, y)
    assert fit.status == "ok" and fit.kind == "EC50"
    assert fit.x50 == pytest.approx(3.0, rel=0.2)
    assert fit.hill_slope is not None and fit.hill_slope > 0
    assert (fit.top, fit.bottom) == (pytest.approx(90.0, abs=4.0), pytest.approx(10.0, abs=4.0))


def test_an_empty_well_is_left_out_as_an_outlier_and_named() -> None:
    conc, y = noisy_series(seed=3)
    points = [
        DosePoint("CPD-1", "P1", f"W{i:02d}", float(c), float(v))
        for i, (c, v) in enumerate(zip(conc, y, strict=True))
    ]
    y[5] = 0.0  # a well seeded empty at a low concentration
    fit = fit_four_pl(conc, y, compound="CPD-1", points=points)
    assert fit.status == "ok"
    excluded = {p.well: why for p, why in fit.excluded}
    assert excluded["W05"].startswith("outlier: ") and "robust SDs" in excluded["W05"]
    assert fit.n_wells == 32 - len(excluded) and fit.x50 == pytest.approx(0.8, rel=0.2)
    kept = fit_four_pl(conc, y, remove_outliers=False)
    assert kept.excluded == () and kept.n_wells == 32


def test_too_few_points_give_a_reason_and_no_number() -> None:
    fit = fit_four_pl([0.1, 1.0, 10.0], [70.0, 50.0, 25.0], compound="CPD-3")
    assert fit.status == "failed"
    assert fit.reason.startswith("too few points: 3 wells at 3 concentrations")
    assert (fit.x50, fit.ci_low, fit.ci_high, fit.hill_slope) == (None, None, None, None)
    replicates = fit_four_pl([0.1, 0.1, 1.0, 1.0, 10.0, 10.0], [70, 71, 50, 49, 25, 26])
    assert replicates.status == "failed" and "at 3 concentrations" in replicates.reason


def test_a_flat_response_is_no_dose_response() -> None:
    y = 50.0 + np.random.default_rng(4).normal(0.0, 3.0, CONCENTRATIONS.size)
    fit = fit_four_pl(CONCENTRATIONS, y)
    assert fit.status == "failed" and fit.x50 is None
    assert fit.reason.startswith("no dose response")
    same = fit_four_pl(CONCENTRATIONS, np.full(CONCENTRATIONS.size, 7.0))
    assert same.status == "failed" and "same value" in same.reason


def test_an_ic50_beyond_the_tested_range_is_not_reported() -> None:
    conc, y = noisy_series(seed=5, ic50=1000.0, noise=1.0)  # only the top of the curve
    fit = fit_four_pl(conc, y)
    assert fit.status == "failed" and fit.x50 is None
    assert "outside the tested concentrations" in fit.reason or "no dose response" in fit.reason


@pytest.mark.parametrize(
    ("concentrations", "responses", "message"),
    [
        ([1.0, 2.0], [1.0], "same length"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "one-dimensional"),
        ([1.0, float("nan")], [1.0, 2.0], "not finite"),
        ([1.0, 2.0], [1.0, float("inf")], "not finite"),
        ([0.0, 1.0], [1.0, 2.0], "must be > 0"),
        ([-1.0, 1.0], [1.0, 2.0], "must be > 0"),
    ],
)
def test_malformed_input_is_an_input_error(
    concentrations: list[float], responses: list[float], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        fit_four_pl(concentrations, responses, compound="CPD-X")


def test_points_must_match_the_values() -> None:
    with pytest.raises(InputError, match="1 points for 2 values"):
        fit_four_pl([1.0, 2.0], [1.0, 2.0], points=[DosePoint("C", "P1", "A01", 1.0, 1.0)])


def test_compounds_are_fitted_apart_most_potent_first_with_exclusions_named() -> None:
    strong, weak = noisy_series(seed=6, ic50=0.3), noisy_series(seed=7, ic50=9.0)
    points = [
        DosePoint(name, "P1", f"{name}-{i}", float(c), float(v))
        for name, (conc, y) in (("WEAK", weak), ("STRONG", strong))
        for i, (c, v) in enumerate(zip(conc, y, strict=True))
    ]
    points += [
        DosePoint("STRONG", "P1", "VEH", 0.0, 70.0),  # vehicle: no place on a log axis
        DosePoint("STRONG", "P1", "GONE", 1.0, None),  # every field failed
        DosePoint("FEW", "P1", "F1", 1.0, 5.0),
        DosePoint("FEW", "P1", "F2", 2.0, 4.0),
        DosePoint("NOSERIES", "P1", "N1", None, 3.0),  # no concentration anywhere: skipped
    ]
    fits = fit_compounds(points)
    assert [f.compound for f in fits] == ["STRONG", "WEAK", "FEW"]
    assert [f.status for f in fits] == ["ok", "ok", "failed"]
    excluded = {p.well: why for p, why in fits[0].excluded}
    assert "log axis" in excluded["VEH"] and "no value" in excluded["GONE"]
    assert fits[0].n_wells == 32


def test_csv_has_one_row_per_compound_and_no_number_for_a_failed_fit() -> None:
    ok = fit_four_pl(*noisy_series(seed=8), compound="CPD-1")
    failed = fit_four_pl([0.1, 1.0], [2.0, 1.0], compound="CPD-2")
    rows = list(csv.DictReader(io.StringIO(fits_csv([ok, failed], metric="Count_Nuclei"))))
    assert list(rows[0]) == ["metric", *CSV_COLUMNS]
    assert rows[0]["compound"] == "CPD-1" and float(rows[0]["x50"]) == pytest.approx(ok.x50)
    assert float(rows[0]["ci95_low"]) < float(rows[0]["x50"]) < float(rows[0]["ci95_high"])
    assert rows[1]["status"] == "failed" and rows[1]["x50"] == rows[1]["hill_slope"] == ""
    assert rows[1]["reason"].startswith("too few points")


def test_curve_points_follow_the_fit_and_are_empty_without_one() -> None:
    fit = fit_four_pl(*noisy_series(seed=9), compound="CPD-1")
    curve = curve_points(fit, 50)
    assert len(curve) == 50 and curve[0][0] < -2.0 and curve[-1][0] > 1.5
    assert fit.top is not None and fit.bottom is not None
    assert fit.bottom < curve[-1][1] < curve[0][1] < fit.top
    failed = fit_four_pl([0.1, 1.0], [2.0, 1.0])
    assert curve_points(failed) == []
