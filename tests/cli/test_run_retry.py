"""``plateseg retry`` (local and AWS) and ``plateseg results --export``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.models import stepfunctions_backends

from plateseg.db import get_engine
from plateseg.demo import write_demo_experiment
from plateseg.results import export_run, image_table, run_failures
from plateseg.runs.embedded import journal_path
from plateseg.settings import Settings
from plateseg.store import LocalStore

from .test_cli import run_cli

EXP = "DEMO-R"
CORRUPT = f"experiments/{EXP}/P1/P1_C03_s2_w1.tif"
FAST = ["--workers", "2", "--time-scale", "0"]


@pytest.fixture
def corrupt_run(settings: Settings, store: LocalStore) -> dict[str, Any]:
    """DEMO-R (3 wells x 2 fields) run as ``r1`` with one corrupt image; its image rows."""
    write_demo_experiment(store, EXP, size=128, wells=["A01", "C03", "D05"])
    store.put_bytes(CORRUPT, b"II*\x00 not a TIFF any more")
    # one of six images failed: exit 10 (EXIT_SOME_IMAGES_FAILED)
    assert run_cli(["run", EXP, "--run-id", "r1", "--batch-size", "2", *FAST]) == 10
    rows = {row.image_id: row for row in image_table(get_engine(), "r1")}
    assert rows["P1_C03_2"].status == "error"
    return rows


def test_retry_after_fixing_the_file_clears_the_failure_and_keeps_the_rest(
    settings: Settings,
    store: LocalStore,
    corrupt_run: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store.put_bytes(CORRUPT, store.get_bytes(CORRUPT.replace("_s2_", "_s1_")))
    capsys.readouterr()
    assert run_cli(["retry", "r1", *FAST]) == 0
    assert "run r1 SUCCEEDED: 6 fields segmented, 0 failed" in capsys.readouterr().out

    after = image_table(get_engine(), "r1")
    assert len(after) == len({row.image_id for row in after}) == 6  # no duplicates
    assert all(row.status == "ok" for row in after)
    assert run_failures(get_engine(), "r1") == []
    for row in after:
        if row.image_id != "P1_C03_2":
            assert row == corrupt_run[row.image_id]  # the others: the very same rows
    # the retry is an execution of its own, journaled beside the first one
    assert journal_path("r1--retry-1", settings).exists()
    assert journal_path("r1", settings).exists()
    # resume and redrive work on it by that name (and refuse clearly: nothing left to do)
    assert run_cli(["run", "--resume", "r1--retry-1"]) == 2
    assert "already succeeded" in capsys.readouterr().err
    assert run_cli(["redrive", "r1--retry-1"]) == 2
    assert "no failed Map items" in capsys.readouterr().err
    # a second retry (of the run, or named by its retry) is the next execution
    assert run_cli(["retry", "r1--retry-1", *FAST]) == 0
    assert journal_path("r1--retry-2", settings).exists()
    assert len(image_table(get_engine(), "r1")) == 6


def test_retry_of_an_unknown_run_is_one_line_exit_2(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["retry", "never-ran"]) == 2
    err = capsys.readouterr().err
    assert "no local run 'never-ran'" in err and "Traceback" not in err
    arn = "arn:aws:states:eu-west-1:1:stateMachine:m"
    assert run_cli(["retry", "r1", "--stack", "s", "--state-machine-arn", arn]) == 2


def test_results_export_writes_what_the_web_downloads(
    settings: Settings,
    corrupt_run: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "images.csv"
    assert run_cli(["results", EXP, "--export", str(out)]) == 0
    assert out.read_bytes() == export_run(get_engine(), "r1", "csv")
    assert "ImageReadError" in out.read_text()
    wells = tmp_path / "wells.parquet"
    args = ["results", EXP, "--run-id", "r1", "--export", str(wells), "--level", "wells"]
    assert run_cli(args) == 0
    assert wells.read_bytes() == export_run(get_engine(), "r1", "parquet", level="wells")
    objects = tmp_path / "objects.parquet"
    assert run_cli(["results", EXP, "--export", str(objects), "--level", "objects"]) == 0
    assert objects.stat().st_size > 0
    capsys.readouterr()
    assert run_cli(["results", EXP, "--export", str(tmp_path / "x.xlsx")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err


@pytest.fixture
def machine(fake_aws: Callable[[str], None]) -> Iterator[str]:
    fake_aws("eu-west-1")
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="eu-west-1")
        created = sfn.create_state_machine(
            name="plateseg-dev-segmentation",
            definition=json.dumps({"StartAt": "D", "States": {"D": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )
        yield str(created["stateMachineArn"])


def test_retry_on_aws_starts_the_next_execution_of_the_run(
    machine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["start", EXP, "--run-id", "run-9", "--state-machine-arn", machine]) == 0
    first = capsys.readouterr().out.strip()
    assert run_cli(["retry", "run-9", "--state-machine-arn", machine]) == 2  # still running
    assert "still running" in capsys.readouterr().err
    stepfunctions_backends["123456789012"]["eu-west-1"].describe_execution(
        first
    ).status = "SUCCEEDED"
    assert run_cli(["retry", "run-9", "--state-machine-arn", machine]) == 0
    arn = capsys.readouterr().out.strip()
    assert arn.endswith(":run-9--retry-1")
    described = boto3.client("stepfunctions", region_name="eu-west-1").describe_execution(
        executionArn=arn
    )
    assert json.loads(described["input"])["run_id"] == "run-9"
    assert json.loads(described["input"])["experiment_id"] == EXP
