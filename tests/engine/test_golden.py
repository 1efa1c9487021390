"""The golden cases: ``tests/engine/golden/<case>.json``, one test each.

Each case holds a ``definition``, an ``input``, the ``expected`` output or error (and
optionally a fragment of the cause; the error ``DefinitionError`` means the engine
refuses the definition before running it, as AWS refuses to create it), the AWS
documentation page it comes from (``source``), and optionally S3 ``objects`` (key →
text, in the bucket every name maps to), ``parquet_objects`` (key → rows, written as a
Parquet file by pyarrow with the column types it infers), ``written`` (key pattern →
the JSON value, or for ``*.jsonl`` the list of line values, of the one object the run
wrote there, where ``"<any>"`` stands for any value; every object the run wrote must
match a pattern, so ``{}`` means it wrote none), the retry ``sleeps`` the clock must
see, ``normalise_cause`` (Lambda error causes are compared as parsed JSON without
the stack trace), and ``state_machines`` (ARN → definition: the child state machines
``states:startExecution`` may start). ``"<any>"`` in an expected output stands for any
value (dates, request ids). Task resources bound to Python callables (an SNS publish, a
DynamoDB call, …) are those of :func:`tests.engine.golden_functions.golden_resources`.
Cases built on a recorded AWS response name it in ``recorded``.
"""

from __future__ import annotations

import fnmatch
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plateseg.errors import DefinitionError
from plateseg.store import LocalStore
from tests.engine.conftest import EngineFactory, RecordingClock
from tests.engine.golden_functions import golden_functions, golden_resources

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


def _seed(case: dict[str, Any], store: LocalStore) -> set[str]:
    """Put the case's objects in the store; return their keys."""
    for key, text in case.get("objects", {}).items():
        store.put_bytes(key, text.encode())
    for key, rows in case.get("parquet_objects", {}).items():
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer)
        store.put_bytes(key, buffer.getvalue())
    return set(case.get("objects", {})) | set(case.get("parquet_objects", {}))


def _like(expected: Any, actual: Any) -> bool:
    """``actual == expected``, except that ``"<any>"`` in ``expected`` matches anything."""
    if expected == "<any>":
        return True
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and set(expected) == set(actual)
            and all(_like(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_like(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual and type(expected) is type(actual))


def _check_written(expected: dict[str, Any], store: LocalStore, seeded: set[str]) -> None:
    written = sorted(info.key for info in store.list("") if info.key not in seeded)
    matched: set[str] = set()
    for pattern, value in expected.items():
        keys = [key for key in written if fnmatch.fnmatchcase(key, pattern)]
        assert len(keys) == 1, f"{pattern!r} matches {keys} of {written}"
        text = store.get_bytes(keys[0]).decode()
        if keys[0].endswith(".jsonl"):
            actual = [json.loads(line) for line in text.splitlines()]
        else:
            actual = json.loads(text)
        assert _like(value, actual), f"{keys[0]}: {actual!r}"
        matched.update(keys)
    assert sorted(matched) == written, f"unexpected objects {sorted(set(written) - matched)}"


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
    store.root.mkdir(parents=True, exist_ok=True)  # the bucket exists, even when empty
    seeded = _seed(case, store)
    engine = make_engine(
        golden_functions(),
        resources=golden_resources(),
        state_machines=case.get("state_machines", {}),
    )
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
        if "<any>" in json.dumps(expected["output"]):
            assert _like(expected["output"], output), output
        else:
            assert output == expected["output"]
    if "sleeps" in case:
        assert clock.sleeps == case["sleeps"]
    if "written" in case:
        _check_written(case["written"], store, seeded)
