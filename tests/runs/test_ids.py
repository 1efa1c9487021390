"""One run-id rule: what the edge accepts, the journal, the web's paths and Step
Functions accept too; what it refuses, all of them refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from plateseg.contracts import ExecutionInput
from plateseg.errors import ExecutionInputError, InputError, ResumeError
from plateseg.runs.embedded import journal_path
from plateseg.runs.ids import (
    MAX_EXECUTION_NAME,
    MAX_RUN_ID,
    base_run_id,
    check_execution_name,
    check_run_id,
    execution_name,
    new_run_id,
    retry_execution_name,
    retry_number,
)
from plateseg.settings import Settings
from plateseg.web.deps import _run_id as web_path_run_id

#: Step Functions refuses these in an execution name (StartExecution ``name``).
AWS_REFUSES = set('<>{}[]?*"#%\\^|~`$&,;:/')

GOOD = ["r1", "run-2026-11-23_exp042", "EXP-1-20261123T070000-abc123", "9" * MAX_RUN_ID]
BAD = ["", "v1.2", "a:b", "../x", "-lead", "_lead", "a b", "a/b", "é", "x" * (MAX_RUN_ID + 1)]


def _valid_execution_name(name: str) -> bool:
    return (
        1 <= len(name) <= MAX_EXECUTION_NAME
        and not (set(name) & AWS_REFUSES)
        and not any(c.isspace() or not c.isprintable() for c in name)
    )


@pytest.mark.parametrize("run_id", GOOD)
def test_an_id_the_edge_accepts_is_an_execution_name_and_a_journal(
    run_id: str, tmp_path: Path
) -> None:
    assert ExecutionInput.parse({"experiment_id": "E", "run_id": run_id}).run_id == run_id
    assert execution_name(run_id) == run_id  # its own execution name, never rewritten
    assert _valid_execution_name(run_id)
    retry = retry_execution_name(run_id, 99_999_999)
    assert _valid_execution_name(retry) and base_run_id(retry) == run_id  # never cut
    assert retry_number(retry) == 99_999_999
    settings = Settings(home=tmp_path)
    assert journal_path(run_id, settings).parent.name == run_id
    assert journal_path(retry, settings).parent.name == retry
    assert web_path_run_id(run_id) == run_id and web_path_run_id(retry) == retry


@pytest.mark.parametrize("run_id", BAD)
def test_an_id_outside_the_rule_is_refused_at_the_edge_naming_it_and_the_rule(
    run_id: str, tmp_path: Path
) -> None:
    with pytest.raises(ExecutionInputError, match="input.run_id") as refused:
        ExecutionInput.parse({"experiment_id": "E", "run_id": run_id})
    assert repr(run_id[:60]) in str(refused.value)
    assert "letters, digits, '-' or '_'" in str(refused.value)
    with pytest.raises(InputError, match="invalid run id"):
        check_run_id(run_id)
    with pytest.raises(ResumeError, match="invalid run id"):
        journal_path(run_id, Settings(home=tmp_path))
    with pytest.raises(InputError, match="invalid run id"):
        web_path_run_id(run_id)


def test_v1_2_is_refused_by_the_edge_not_by_the_journal() -> None:
    with pytest.raises(ExecutionInputError) as refused:
        ExecutionInput.parse({"experiment_id": "E", "run_id": "v1.2"})
    assert str(refused.value) == (
        "input.run_id: invalid run id 'v1.2': it contains '.'; use 1-64 letters, digits, "
        "'-' or '_', starting with a letter or digit (it names the Step Functions execution "
        "and the run's folder)"
    )


@pytest.mark.parametrize("experiment_id", ["EXP-1", "E.2.x", "_odd", "x" * 128, "a..b"])
def test_new_run_ids_follow_the_rule(experiment_id: str) -> None:
    made = new_run_id(experiment_id)
    assert check_run_id(made) == made
    assert new_run_id(experiment_id) != made


def test_names_of_retries_map_back_to_their_run() -> None:
    assert check_execution_name("r1--retry-3") == "r1--retry-3"
    assert (base_run_id("r1--retry-3"), retry_number("r1--retry-3")) == ("r1", 3)
    assert (base_run_id("r1"), retry_number("r1")) == ("r1", None)
    with pytest.raises(InputError, match="invalid run id"):
        check_execution_name("v1.2--retry-1")
