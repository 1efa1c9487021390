"""Service integrations beyond what a golden case can say: several buckets, S3 itself
(moto), child executions that outlive their task, cancellation and deadlines crossing
into a child, events, and the seams' own errors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from plateseg.engine import LocalEngine
from plateseg.engine.clock import Clock, ExecutionClock, ExecutionTimedOut
from plateseg.errors import DefinitionError, InputError, StatesError, StoreUnavailableError
from plateseg.store import LocalStore, S3Store
from tests.engine.conftest import EngineFactory, RecordingClock, machine

S3 = "arn:aws:states:::aws-sdk:s3:"
START = "arn:aws:states:::states:startExecution"
CHILD = "arn:aws:states:us-east-1:000000000000:stateMachine:Child"


def task(resource: str, params: Any, **fields: Any) -> dict[str, Any]:
    state = {"Type": "Task", "Resource": resource, "Parameters": params, **fields}
    if "Next" not in state:
        state["End"] = True
    return state


def pass_state(**fields: Any) -> dict[str, Any]:
    return {"Type": "Pass", "End": True, **fields}


# --- aws-sdk:s3 ----------------------------------------------------------------------


@pytest.fixture
def buckets(tmp_path: Path) -> Callable[[str], LocalStore]:
    """Bucket B is the folder tmp_path/buckets/B (``in`` and ``out`` exist)."""
    for name in ("in", "out"):
        (tmp_path / "buckets" / name).mkdir(parents=True)
    return lambda name: LocalStore(tmp_path / "buckets" / name)


def test_copy_object_between_buckets(
    make_engine: EngineFactory, buckets: Callable[[str], LocalStore]
) -> None:
    buckets("in").put_bytes("plates/P1.json", b'{"wells": 96}')
    definition = machine(
        {
            "Copy": task(
                S3 + "copyObject",
                {"Bucket": "out", "Key": "P1.json", "CopySource": "in/plates/P1.json"},
            )
        }
    )
    result = make_engine(buckets=buckets).run(definition, {})
    assert result.status == "SUCCEEDED", result.cause
    assert buckets("out").get_bytes("P1.json") == b'{"wells": 96}'


def test_copy_source_may_be_url_encoded_with_a_leading_slash(
    make_engine: EngineFactory, buckets: Callable[[str], LocalStore]
) -> None:
    buckets("in").put_bytes("a b/é.txt", b"x")
    params = {"Bucket": "out", "Key": "c.txt", "CopySource": "/in/a%20b/%C3%A9.txt"}
    result = make_engine(buckets=buckets).run(machine({"C": task(S3 + "copyObject", params)}), {})
    assert result.status == "SUCCEEDED", result.cause
    assert buckets("out").get_bytes("c.txt") == b"x"


@pytest.mark.parametrize("action", ["getObject", "putObject", "listObjectsV2", "headObject"])
def test_a_missing_bucket_folder_is_no_such_bucket(
    make_engine: EngineFactory, buckets: Callable[[str], LocalStore], action: str
) -> None:
    params = {"Bucket": "nope", "Key": "k"} if action != "listObjectsV2" else {"Bucket": "nope"}
    result = make_engine(buckets=buckets).run(machine({"T": task(S3 + action, params)}), {})
    assert result.error == "S3.NoSuchBucketException"
    assert (result.cause or "").startswith(
        "The specified bucket does not exist (Service: S3, Status Code: 404, Request ID: "
    )


def test_a_bucket_the_seam_refuses_is_no_such_bucket(make_engine: EngineFactory) -> None:
    def refuse(name: str) -> Any:
        raise InputError(f"bucket {name!r} needs --store DIR")

    params = {"Bucket": "b", "Key": "k"}
    result = make_engine(buckets=refuse).run(machine({"T": task(S3 + "getObject", params)}), {})
    assert result.error == "S3.NoSuchBucketException"
    assert "needs --store DIR" in (result.cause or "")


class _FlakyStore(LocalStore):
    def get_bytes(self, key: str) -> bytes:
        raise StoreUnavailableError(f"s3://b/{key}: S3 answered SlowDown; retry later")


def test_a_transient_store_error_is_an_s3_exception_that_retries(
    make_engine: EngineFactory, tmp_path: Path, clock: RecordingClock
) -> None:
    (tmp_path / "flaky").mkdir()
    store = _FlakyStore(tmp_path / "flaky")
    retry = [{"ErrorEquals": ["S3.S3Exception"], "MaxAttempts": 2}]
    definition = machine({"T": task(S3 + "getObject", {"Bucket": "b", "Key": "k"}, Retry=retry)})
    result = make_engine(buckets=lambda _n: store).run(definition, {})
    assert result.error == "S3.S3Exception"
    assert "SlowDown" in (result.cause or "") and "Status Code: 503" in (result.cause or "")
    assert clock.sleeps == [1.0, 2.0]


def test_a_key_the_local_folder_cannot_hold_is_an_s3_exception(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    params = {"Bucket": "b", "Key": "../outside.txt", "Body": "x"}
    result = make_engine().run(machine({"T": task(S3 + "putObject", params)}), {})
    assert result.error == "S3.S3Exception"
    assert "unsafe store key" in (result.cause or "")


def test_a_bad_continuation_token_is_an_s3_exception(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    params = {"Bucket": "b", "ContinuationToken": "!!not a token!!"}
    result = make_engine().run(machine({"T": task(S3 + "listObjectsV2", params)}), {})
    assert result.error == "S3.S3Exception"
    assert "continuation token" in (result.cause or "")


def test_a_key_of_the_wrong_type_is_a_client_error(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    params = {"Bucket": "b", "Key.$": "$.key"}
    result = make_engine().run(machine({"T": task(S3 + "getObject", params)}), {"key": 7})
    assert result.error == "S3.SdkClientException"
    assert "Key must be a string" in (result.cause or "")


def test_a_body_over_256_kib_is_a_catchable_data_limit(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    store.put_bytes("big.txt", b"x" * (256 * 1024 + 1))
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "Done"}]
    definition = machine(
        {
            "T": task(
                S3 + "getObject", {"Bucket": "b", "Key": "big.txt"}, Catch=catch, Next="Done"
            ),
            "Done": pass_state(OutputPath="$.Error"),
        }
    )
    result = make_engine().run(definition, {})
    assert (result.status, result.output) == ("SUCCEEDED", "States.DataLimitExceeded")


def test_list_pages_across_common_prefixes(make_engine: EngineFactory, store: LocalStore) -> None:
    for key in ("a/1", "a/2", "b/1", "c", "d/1"):
        store.put_bytes(key, b"x")
    select = {"Keys.$": "$.Contents[*].Key", "Prefixes.$": "$.CommonPrefixes[*].Prefix"}
    page: dict[str, Any] = {"Bucket": "b", "Delimiter": "/", "MaxKeys": 2}
    definition = machine(
        {
            "P1": task(S3 + "listObjectsV2", page, ResultPath="$.p1", Next="P2"),
            "P2": task(
                S3 + "listObjectsV2",
                {**page, "ContinuationToken.$": "$.p1.NextContinuationToken"},
                ResultSelector=select,
                ResultPath="$.p2",
            ),
        }
    )
    result = make_engine().run(definition, {})
    assert result.status == "SUCCEEDED", result.cause
    first = result.output["p1"]
    assert [p["Prefix"] for p in first["CommonPrefixes"]] == ["a/", "b/"]
    assert "Contents" not in first and first["IsTruncated"] is True
    assert result.output["p2"] == {"Keys": ["c"], "Prefixes": ["d/"]}


@pytest.fixture
def s3_bucket(fake_aws: Callable[[str], None]) -> Iterator[S3Store]:
    fake_aws("us-east-1")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="plates")
        yield S3Store("plates")


def test_on_s3_itself(make_engine: EngineFactory, s3_bucket: S3Store) -> None:
    """The same actions against S3 (moto): ETags agree, a missing bucket is named."""
    s3_bucket.put_bytes("runs/r1.json", b'{"ok":true}')
    definition = machine(
        {
            "Get": task(
                S3 + "getObject",
                {"Bucket": "plates", "Key": "runs/r1.json"},
                ResultPath="$.get",
                Next="List",
            ),
            "List": task(
                S3 + "listObjectsV2",
                {"Bucket": "plates", "Prefix": "runs/"},
                ResultPath="$.list",
                Next="Put",
            ),
            "Put": task(
                S3 + "putObject",
                {"Bucket": "plates", "Key": "out.json", "Body": {"a": 1}},
                ResultPath="$.put",
                Next="Missing",
            ),
            "Missing": task(S3 + "getObject", {"Bucket": "no-such-bucket-here", "Key": "k"}),
        }
    )
    engine = make_engine(buckets=lambda name: S3Store(name))
    result = engine.run(definition, {})
    assert result.error == "S3.NoSuchBucketException", result.cause
    events = [e for e in result.events if e.type == "TaskSucceeded"]
    got, listed, put = (e.details["output"] for e in events)
    assert got["Body"] == '{"ok":true}' and got["ContentLength"] == 11
    assert listed["Contents"][0]["ETag"] == got["ETag"]  # S3's ETag is the MD5 too
    assert put["ETag"] == '"bb6cb5c68df4652941caf652a366f2d8"'
    assert s3_bucket.get_bytes("out.json") == b'{"a":1}'


# --- states:startExecution -----------------------------------------------------------


def _children(**machines: dict[str, Any]) -> dict[str, Any]:
    return {
        f"arn:aws:states:us-east-1:000000000000:stateMachine:{n}": d for n, d in machines.items()
    }


def test_request_response_child_ends_before_run_returns(
    make_engine: EngineFactory, store: LocalStore
) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    child = machine(
        {"Write": task(S3 + "putObject", {"Bucket": "b", "Key": "from-child.json", "Body.$": "$"})}
    )
    failing = machine({"F": {"Type": "Fail", "Error": "Oops"}})
    engine = make_engine(state_machines={"Child": child, "Failing": failing})
    definition = machine(
        {
            "Start": task(
                START, {"StateMachineArn": CHILD, "Input": {"n": 1}, "Name": "one"}, Next="Fail"
            ),
            "Fail": task(START, {"StateMachineArn": CHILD.replace("Child", "Failing")}),
        }
    )
    result = engine.run(definition, {})
    assert result.status == "SUCCEEDED", result.cause  # a failed child does not fail its starter
    assert (result.children[0].name, result.children[0].status) == ("one", "SUCCEEDED")
    assert result.children[1].error == "Oops"
    assert store.get_bytes("from-child.json") == b'{"n":1}'


def test_child_history_is_its_own(make_engine: EngineFactory) -> None:
    child = machine({"Inner": pass_state()})
    engine = make_engine(state_machines=_children(Child=child))
    result = engine.run(machine({"Start": task(START + ".sync:2", {"StateMachineArn": CHILD})}), {})
    assert result.status == "SUCCEEDED", result.cause
    names = {e.details.get("name") for e in result.events if e.type == "StateEntered"}
    assert names == {"Start"}
    scheduled = next(e for e in result.events if e.type == "TaskScheduled")
    assert scheduled.details["resource"] == START + ".sync:2"
    (child_result,) = result.children
    assert {e.details.get("name") for e in child_result.events if e.type == "StateEntered"} == {
        "Inner"
    }
    assert child_result.start_date is not None and child_result.stop_date is not None


def test_stopping_the_parent_stops_a_sync_child(make_engine: EngineFactory) -> None:
    stop = threading.Event()

    def stop_now(params: Any, context: dict[str, Any]) -> Any:
        stop.set()
        return {}

    child = machine(
        {"Stop": task("arn:aws:states:::sns:publish", {}, Next="After"), "After": pass_state()}
    )
    engine = make_engine(
        resources={"arn:aws:states:::sns:publish": stop_now},
        state_machines=_children(Child=child),
    )
    retry = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]
    definition = machine({"Start": task(START + ".sync", {"StateMachineArn": CHILD}, Retry=retry)})
    result = engine.run(definition, {}, cancel=stop)
    assert (result.status, result.error) == ("ABORTED", "States.Aborted")
    assert [c.status for c in result.children] == ["ABORTED"]  # started once, not retried


def test_the_parents_deadline_ends_the_parent_not_the_task(make_engine: EngineFactory) -> None:
    child = machine({"W": {"Type": "Wait", "Seconds": 100, "End": True}})
    engine = make_engine(state_machines=_children(Child=child))
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    definition = {
        "TimeoutSeconds": 10,
        "StartAt": "Start",
        "States": {
            "Start": task(START + ".sync", {"StateMachineArn": CHILD}, Catch=catch),
            "Caught": pass_state(),
        },
    }
    result = engine.run(definition, {})
    assert (result.status, result.error) == ("TIMED_OUT", "States.Timeout")


def test_registered_definitions_are_validated(make_engine: EngineFactory) -> None:
    with pytest.raises(DefinitionError) as refused:
        make_engine(state_machines={"Broken": {"StartAt": "X", "States": {}}})
    assert "state machine arn:aws:states:us-east-1:000000000000:stateMachine:Broken" in str(
        refused.value
    )


def test_engine_level_api_names_the_children_by_plain_name(make_engine: EngineFactory) -> None:
    engine = make_engine(state_machines={"Child": machine({"P": pass_state(Result=1)})})
    assert engine.children.knows(CHILD)


# --- bound resources -----------------------------------------------------------------


def test_a_bound_callable_gets_a_copy_and_the_context(make_engine: EngineFactory) -> None:
    seen: list[tuple[Any, dict[str, Any]]] = []

    def handler(params: Any, context: dict[str, Any]) -> Any:
        seen.append((params, context))
        params["mutated"] = True
        return {"ok": True}

    resource = "arn:aws:states:::sqs:sendMessage"
    definition = machine({"Send": task(resource, {"MessageBody.$": "$.body"}, ResultPath="$.r")})
    result = make_engine(resources={resource: handler}).run(definition, {"body": "hi"}, name="n1")
    assert result.output == {"body": "hi", "r": {"ok": True}}
    ((params, context),) = seen
    assert params == {"MessageBody": "hi", "mutated": True}
    assert type(context) is dict
    assert context["State"]["Name"] == "Send"
    assert context["Execution"]["Name"] == "n1"


def test_a_bound_callable_may_replace_a_built_in_fake(make_engine: EngineFactory) -> None:
    resource = S3 + "getObject"
    definition = machine({"Get": task(resource, {"Bucket": "b", "Key": "k"})})
    engine = make_engine(
        resources={resource: lambda params, context: {"Body": "from the callable"}}
    )
    assert engine.run(definition, {}).output == {"Body": "from the callable"}


def test_a_bound_callable_returning_non_json_is_a_runtime_error(make_engine: EngineFactory) -> None:
    resource = "arn:aws:states:::sns:publish"
    engine = make_engine(resources={resource: lambda params, context: {"when": object()}})
    result = engine.run(machine({"T": task(resource, {})}), {})
    assert result.error == "States.Runtime"
    assert "not JSON" in (result.cause or "")


def test_a_bound_callable_raising_a_states_error_keeps_its_name(make_engine: EngineFactory) -> None:
    def throttled(params: Any, context: dict[str, Any]) -> Any:
        raise StatesError("SNS.ThrottledException", "Rate exceeded")

    resource = "arn:aws:states:::sns:publish"
    result = make_engine(resources={resource: throttled}).run(
        machine({"T": task(resource, {})}), {}
    )
    assert (result.error, result.cause) == ("SNS.ThrottledException", "Rate exceeded")


def test_an_unbound_resource_is_refused_by_name(make_engine: EngineFactory) -> None:
    resource = "arn:aws:states:::sns:publish"
    with pytest.raises(DefinitionError) as refused:
        make_engine().run(machine({"T": task(resource, {})}), {})
    assert f"unsupported resource '{resource}'" in str(refused.value)


# --- clocks --------------------------------------------------------------------------


def test_nested_execution_clocks_share_one_account_of_time() -> None:
    outer = ExecutionClock(Clock(time_scale=0), 100)
    outer.sleep(30)
    inner = ExecutionClock(outer, 50)
    inner.sleep(20)
    assert outer.elapsed() == pytest.approx(50, abs=0.5)
    assert inner.elapsed() == pytest.approx(20, abs=0.5)
    with pytest.raises(ExecutionTimedOut) as ended:
        inner.sleep(40)  # its own deadline first: 30 s left of its 50
    assert ended.value.cause.endswith("(50 seconds)")
    assert outer.remaining() == pytest.approx(20, abs=0.5)


def test_an_outer_deadline_ends_an_inner_sleep() -> None:
    outer = ExecutionClock(Clock(time_scale=0), 10)
    inner = ExecutionClock(outer, 1000)
    with pytest.raises(ExecutionTimedOut) as ended:
        inner.sleep(500)
    assert ended.value.cause.endswith("(10 seconds)")
    with pytest.raises(ExecutionTimedOut) as checked:
        inner.check_deadline()
    assert checked.value.cause.endswith("(10 seconds)")


def test_an_inner_clock_forks_with_its_outer_one() -> None:
    outer = ExecutionClock(Clock(time_scale=0), 100)
    inner = ExecutionClock(outer, 100)
    fork = inner.fork(2)
    run = fork.wrap(inner.sleep)
    threads = [threading.Thread(target=run, args=(s,)) for s in (5, 15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fork.join()
    assert outer.elapsed() == pytest.approx(15, abs=0.5)


def test_engine_close_is_safe_with_children(make_engine: EngineFactory) -> None:
    engine: LocalEngine = make_engine(state_machines=_children(Child=machine({"P": pass_state()})))
    result = engine.run(machine({"S": task(START, {"StateMachineArn": CHILD})}), {})
    assert result.status == "SUCCEEDED" and [c.status for c in result.children] == ["SUCCEEDED"]
