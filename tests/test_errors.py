"""The error tree: exit codes, context, and what Lambda reports."""

from __future__ import annotations

import pytest

from plateseg import errors


def test_every_error_is_a_plateseg_error() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.PlatesegError), name


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.InputError, 2),
        (errors.ExperimentIdError, 2),
        (errors.ImageReadError, 3),
        (errors.StoreError, 4),
        (errors.DatabaseError, 5),
        (errors.DatabaseUnavailableError, 75),
    ],
)
def test_exit_codes(cls: type[errors.PlatesegError], code: int) -> None:
    assert cls.exit_code == code


def test_image_errors_name_the_file() -> None:
    exc = errors.ImageReadError("experiments/E/P1/P1_B03_s1_w1.tif", "truncated TIFF")
    assert str(exc) == "experiments/E/P1/P1_B03_s1_w1.tif: truncated TIFF"
    assert exc.key.endswith("w1.tif")


def test_transient_names_include_every_subclass() -> None:
    assert {"TransientError", "StoreUnavailableError", "DatabaseUnavailableError"} <= (
        errors.transient_error_names()
    )


def test_definition_error_lists_every_problem() -> None:
    exc = errors.DefinitionError(["States.A: missing Next", "States.B: unknown field Foo"])
    assert "missing Next" in str(exc) and "unknown field Foo" in str(exc)
    assert exc.problems == ["States.A: missing Next", "States.B: unknown field Foo"]
