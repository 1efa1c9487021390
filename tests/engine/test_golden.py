"""The golden cases: ``tests/engine/golden/<case>.json``, one test each.

Each case holds a ``definition``, an ``input``, the ``expected`` output or error (and
optionally a fragment of the cause; the error ``DefinitionError`` means the engine
refuses the definition before running it, as AWS refuses to create it), the AWS
documentation page it comes from (``source``), and optionally S3 ``objects`` (key →
text, in the bucket every name maps to), the retry ``sleeps`` the clock must see, and
``normalise_cause`` (Lambda error causes are compared as parsed JSON without the stack
trace).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plateseg.errors import DefinitionError
from plateseg.store import LocalStore
from tests.engine.conftest import EngineFactory, RecordingClock
from tests.engine.golden_functions import golden_functions

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*.json"))


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _normalise(v) for k, v in value.items()}
        if isinstance(out.get("Cause"), str) and out["Cause"].startswith("{"):
            cause = json.loads(out["Cause"])
            out["Cause"] = {k: v for k, v in cause.items() if k not in ("stackTrace", "requestId")}
        return out
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def test_there_are_at_least_100_cases_each_with_an_aws_source() -> None:
    assert len(CASES) >= 100
    for path in CASES:
        case = json.loads(path.read_text())
        assert case["source"].startswith("https://docs.aws.amazon.com/step-functions/"), path.name
        assert set(case["expected"]) <= {"output", "error", "cause_contains"}, path.name


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_case(
    path: Path, make_engine: EngineFactory, store: LocalStore, clock: RecordingClock
) -> None:
    case = json.loads(path.read_text())
    for key, text in case.get("objects", {}).items():
        store.put_bytes(key, text.encode())
    engine = make_engine(golden_functions())
    expected = case["expected"]
    if expected.get("error") == "DefinitionError":
        with pytest.raises(DefinitionError) as refused:
            engine.run(case["definition"], case["input"], name="golden")
        assert expected.get("cause_contains", "") in str(refused.value)
        return
    result = engine.run(case["definition"], case["input"], name="golden")
    if "error" in expected:
        assert (result.status, result.error) == ("FAILED", expected["error"]), result.cause
        assert expected.get("cause_contains", "") in (result.cause or "")
    else:
        assert result.status == "SUCCEEDED", f"{result.error}: {result.cause}"
        output = _normalise(result.output) if case.get("normalise_cause") else result.output
        assert output == expected["output"]
    if "sleeps" in case:
        assert clock.sleeps == case["sleeps"]
