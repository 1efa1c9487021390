"""Worker processes: a crash or a timeout fails only its own invocation; fault plans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from plateseg.engine.faults import ENV, parse_plan
from plateseg.engine.invoker import Invoker
from plateseg.engine.retry import TaskFailure
from plateseg.errors import InputError

FAKES = "tests.engine.fake_functions"


@pytest.fixture
def invoker() -> Iterator[Invoker]:
    functions = {"sleep": f"{FAKES}:sleep_echo", "segv": f"{FAKES}:segfault"}
    pool = Invoker(functions, workers=2, initializer=None, initargs=(), arn_prefix="arn:")
    yield pool
    pool.close()


def test_a_crash_fails_only_its_own_invocation(invoker: Invoker) -> None:
    invoker.invoke("sleep", {"seconds": 0}, None)  # warm one worker
    with ThreadPoolExecutor(max_workers=2) as threads:
        slow = threads.submit(invoker.invoke, "sleep", {"seconds": 2}, None)
        crash = threads.submit(invoker.invoke, "segv", {}, None)
        with pytest.raises(TaskFailure) as died:
            crash.result(timeout=120)
        survivor = slow.result(timeout=120)  # in flight on the other worker: unaffected
    assert died.value.name == "Lambda.Unknown"
    assert "SIGSEGV (segmentation fault)" in died.value.cause
    assert survivor["event"] == {"seconds": 2}
    assert invoker.crashes == 1
    again = invoker.invoke("sleep", {"seconds": 0}, None)  # the pool recovered
    assert again["event"] == {"seconds": 0}


def test_a_timeout_stops_the_worker(invoker: Invoker) -> None:
    first = invoker.invoke("sleep", {"seconds": 0}, 60)
    with pytest.raises(TaskFailure) as timed_out:
        invoker.invoke("sleep", {"seconds": 60}, 1)
    assert timed_out.value.name == "States.Timeout"
    assert "worker process was stopped" in timed_out.value.cause
    assert invoker.crashes == 1
    after = invoker.invoke("sleep", {"seconds": 0}, 60)
    assert after["pid"] != first["pid"]  # the killed worker was replaced by a new process


def test_invoke_faults_count_across_calls(
    invoker: Invoker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = [{"at": "invoke", "function": "sleep", "error": "Lambda.ServiceException", "times": 2}]
    text = json.dumps({"state": str(tmp_path), "rules": rules})
    monkeypatch.setenv(ENV, text)
    errors = []
    for _ in range(3):
        try:
            invoker.invoke("sleep", {"seconds": 0}, None)
            errors.append("ok")
        except TaskFailure as failure:
            errors.append(failure.name)
    assert errors == ["Lambda.ServiceException", "Lambda.ServiceException", "ok"]
    assert parse_plan(text).fired(0) == 2
    assert invoker.calls["sleep"] == 3


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("{", "not JSON"),
        ('{"rules": []}', '"state"'),
        ('{"state": "x", "rules": [{"at": "disk"}]}', "rule 0: 'at' must be one of"),
        ('{"state": "x", "rules": [{"at": "invoke", "function": "f"}]}', "needs the 'error'"),
        ('{"state": "x", "rules": [{"at": "worker", "function": "f", "action": "melt"}]}',
         "'action' must be one of"),
        ('{"state": "x", "rules": [{"at": "s3", "operation": "GetObject"}]}', "S3 error 'code'"),
        ('{"state": "x", "rules": [{"at": "s3", "code": "SlowDown"}]}', "'operation' must name"),
        ('{"state": "x", "rules": [{"at": "invoke", "function": "f", "error": "E", "times": -1}]}',
         "'times' must be a non-negative integer"),
    ],
)  # fmt: skip
def test_malformed_fault_plans_are_named(plan: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")) as error:
        parse_plan(plan)
    assert str(error.value).startswith(ENV)


@pytest.fixture
def prewarmed() -> Iterator[Invoker]:
    """Two pre-warming workers: ``probe`` says whether ``target``'s module is loaded."""
    functions = {
        "probe": f"{FAKES}:loaded_modules",
        "target": "tests.engine.warm_target:handler",
    }
    pool = Invoker(
        functions, workers=2, initializer=None, initargs=(), arn_prefix="arn:", prewarm=True
    )
    yield pool
    pool.close()


def test_prewarmed_workers_load_every_handler_before_its_first_call(prewarmed: Invoker) -> None:
    import time

    warmed: set[int] = set()
    deadline = time.monotonic() + 120
    while len(warmed) < 2 and time.monotonic() < deadline:
        # idle workers are handed out longest idle first: calls go round both
        answer = prewarmed.invoke("probe", {"modules": ["tests.engine.warm_target"]}, None)
        if answer["loaded"]:
            warmed.add(answer["pid"])
        time.sleep(0.05)
    assert len(warmed) == 2  # both started at the first call, neither ran "target"
    assert prewarmed.calls["target"] == 0


def test_a_handler_called_once_is_warmed_by_one_worker_which_then_runs_it(
    prewarmed: Invoker,
) -> None:
    """Lookup and Aggregate run once per execution: one worker imports them, not all."""
    import time

    prewarmed.per_item = frozenset({"probe"})  # what the engine reads from a Map's processor
    loaded: dict[int, bool] = {}
    deadline = time.monotonic() + 120
    while (len(loaded) < 2 or not any(loaded.values())) and time.monotonic() < deadline:
        answer = prewarmed.invoke("probe", {"modules": ["tests.engine.warm_target"]}, None)
        loaded[answer["pid"]] = bool(answer["loaded"])
        time.sleep(0.05)
    assert sorted(loaded.values()) == [False, True]  # two workers, one warmed "target"
    warm = next(pid for pid, has in loaded.items() if has)
    assert prewarmed.invoke("target", {}, None)["pid"] == warm


def test_the_engine_knows_which_functions_a_map_calls_per_item() -> None:
    from plateseg.definition import LOCAL_FUNCTIONS, load_definition, local_substitutions
    from plateseg.engine.invoker import functions_called_per_item

    definition = load_definition(values=local_substitutions())
    assert functions_called_per_item(definition) == {"plateseg-segment"}
    assert set(LOCAL_FUNCTIONS) > {"plateseg-segment"}


def test_without_prewarm_one_worker_serves_calls_made_one_after_another(
    invoker: Invoker,
) -> None:
    pids = {invoker.invoke("sleep", {"seconds": 0}, None)["pid"] for _ in range(3)}
    assert len(pids) == 1  # an idle worker is reused before a second one is started
