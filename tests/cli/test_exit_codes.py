"""How a finished run exits: 0 all images, 10 some failed, 1 all failed (in-process)."""

from __future__ import annotations

import doctest

import pytest
import typer

from plateseg.cli import exit_codes
from plateseg.cli.exit_codes import EXIT_SOME_IMAGES_FAILED, aggregate_result_of, exit_for_run
from plateseg.contracts import AggregateResult
from plateseg.db.rows import FailureRow
from plateseg.errors import AllImagesFailedError


def result(ok: int, failed: int, batches_failed: int = 0) -> AggregateResult:
    return AggregateResult(
        run_id="R",
        experiment_id="E",
        status="SUCCEEDED_WITH_FAILURES" if failed or batches_failed else "SUCCEEDED",
        images_ok=ok,
        images_failed=failed,
        batches_failed=batches_failed,
        wells=1,
        objects=ok,
    )


def failures(n: int) -> list[FailureRow]:
    return [
        FailureRow(
            item_id=f"P1_A{i:02d}_1",
            kind="image",
            batch=None,
            error="ImageReadError",
            cause="x",
            attempts=1,
        )
        for i in range(1, n + 1)
    ]


def test_the_docstring_examples_hold() -> None:
    found = doctest.testmod(exit_codes)
    assert (found.attempted, found.failed) == (1, 0)


def test_every_image_ok_returns() -> None:
    assert exit_for_run(result(4, 0)) is None


def test_some_failed_names_three_and_counts_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as raised:
        exit_for_run(result(1, 5), failures(5))
    assert raised.value.exit_code == EXIT_SOME_IMAGES_FAILED == 10
    assert capsys.readouterr().err == (
        "warning: run R: 5 of 6 images failed (P1_A01_1 ImageReadError, P1_A02_1 "
        "ImageReadError, P1_A03_1 ImageReadError and 2 more); list them with: "
        "plateseg results E --run-id R --export images.csv\n"
    )


def test_all_failed_is_an_error_with_exit_1() -> None:
    with pytest.raises(AllImagesFailedError) as raised:
        exit_for_run(result(0, 2), failures(2))
    assert raised.value.exit_code == 1
    assert str(raised.value).startswith(
        "run R: all 2 images failed (P1_A01_1 ImageReadError, P1_A02_1 ImageReadError); "
    )


def test_failed_batches_without_image_rows_count_as_all_failed() -> None:
    with pytest.raises(AllImagesFailedError, match=r"no image was segmented \(2 batches failed\)"):
        exit_for_run(result(0, 0, batches_failed=2))


def test_only_a_segmentation_result_is_read_from_an_output() -> None:
    text = result(3, 1).model_dump_json()
    assert aggregate_result_of(text) == result(3, 1)
    assert aggregate_result_of({"a": 1}) is None
    assert aggregate_result_of("not json") is None
    assert aggregate_result_of("") is None
    assert aggregate_result_of([1]) is None
