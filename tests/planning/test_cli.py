"""``plateseg plan`` on a generated demo experiment: table, JSON, fleet, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plateseg.cli import app, main
from plateseg.settings import Settings
from stacks.config import PlatesegConfig


def run_main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
        raise SystemExit(0)
    return int(info.value.code or 0)


def test_plan_json_recommends_valid_cdk_settings(settings: Settings, demo: str) -> None:
    result = CliRunner().invoke(
        app,
        ["plan", demo, "--sample", "2", "--json", "--fleet-servers", "2", "--jobs-per-day", "6"],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["workload"]["fields"] == 4
    assert document["prices"]["date"] == "2026-11-23"
    recommendation = document["recommendation"]
    config = PlatesegConfig.from_context(recommendation["cdk_json"]["context"]["plateseg"])
    chosen = recommendation["prediction"]
    assert config.items_per_batch == chosen["setting"]["items_per_batch"]
    assert chosen["valid"] and chosen["db_connections"] == 1
    assert chosen["cost_usd"] > 0
    assert document["local"]["cost_usd"] is None
    assert document["local"]["workers"] == 2
    kinds = {(row["setting"]["execution_type"], row["setting"]["arch"]) for row in document["grid"]}
    assert kinds == {
        ("STANDARD", "x86_64"),
        ("STANDARD", "arm64"),
        ("EXPRESS", "x86_64"),
        ("EXPRESS", "arm64"),
    }
    fleet = document["fleet"]
    assert fleet["fleet"]["servers"] == 2
    assert fleet["pattern"]["images_per_job"] == 4
    assert fleet["fleet_monthly_usd"] == pytest.approx(2 * 0.40 * 730)


def test_plan_prints_table_recommendation_and_cdk_json(
    settings: Settings, demo: str, tmp_path: Path
) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"channels": {"nuclei": "w1"}}))
    result = CliRunner().invoke(
        app, ["plan", demo, "--sample", "1", "--recipe", f"@{recipe}", "--objective", "cheapest"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "PLAN-1" in out and "4 fields" in out
    assert "recommended" in out and "cheapest valid setting" in out
    assert '"items_per_batch"' in out and '"segment_memory_mb"' in out
    assert "this machine (2 workers" in out


def test_unknown_experiment_is_one_line_exit_2(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(["plan", "NO-SUCH"]) == 2
    err = capsys.readouterr().err
    assert "NO-SUCH" in err and "Traceback" not in err


def test_bad_recipe_json_names_the_option(
    settings: Settings, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(["plan", demo, "--recipe", "{nope"]) == 2
    assert "--recipe" in capsys.readouterr().err


def test_recipe_must_be_an_object(
    settings: Settings, demo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(["plan", demo, "--recipe", "[1, 2]"]) == 2
    assert "JSON object" in capsys.readouterr().err


def test_sample_below_one_is_a_usage_error(settings: Settings, demo: str) -> None:
    assert run_main(["plan", demo, "--sample", "0"]) == 2
