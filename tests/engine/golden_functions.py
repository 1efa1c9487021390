"""Lambda stand-ins the golden cases bind by function name, and service stand-ins they
bind by resource ARN (both fresh per case)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from plateseg.errors import StatesError


class Transient(Exception):
    """A retryable error; its class name is the ASL error name."""


def echo(event: Any, context: Any) -> Any:
    """Return the event unchanged."""
    return event


def raise_value_error(event: Any, context: Any) -> Any:
    """Always fail as a Python ``ValueError('bad value')`` would in Lambda."""
    raise ValueError("bad value")


def slow(event: Any, context: Any) -> Any:
    """Outlive a one-second ``TimeoutSeconds`` (real time)."""
    time.sleep(1.5)
    return event


def fail_twice(with_event: bool) -> Callable[[Any, Any], Any]:
    """A handler failing with :class:`Transient` on its first two calls."""
    calls = [0]

    def handler(event: Any, context: Any) -> Any:
        calls[0] += 1
        if calls[0] <= 2:
            raise Transient(f"call {calls[0]} failed")
        return {"attempts": calls[0], "event": event} if with_event else {"attempts": calls[0]}

    return handler


def golden_functions() -> dict[str, Callable[[Any, Any], Any]]:
    """Function name → handler, with fresh state for stateful handlers."""
    return {
        "Echo": echo,
        "Raise": raise_value_error,
        "Slow": slow,
        "FailTwice": fail_twice(with_event=False),
        "FailTwiceEcho": fail_twice(with_event=True),
    }


#: The MessageId every fake message gets.
MESSAGE_ID = "00000000-0000-4000-8000-000000000000"


def sns_publish(params: Any, context: dict[str, Any]) -> Any:
    """``sns:publish``: a message id, as SNS answers."""
    return {"MessageId": MESSAGE_ID}


def sqs_send_message(params: Any, context: dict[str, Any]) -> Any:
    """``sqs:sendMessage``: the body's MD5 and a message id, as SQS answers."""
    body = str(params.get("MessageBody", ""))
    md5 = hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
    return {"MD5OfMessageBody": md5, "MessageId": MESSAGE_ID}


def dynamodb_put_item(params: Any, context: dict[str, Any]) -> Any:
    """``aws-sdk:dynamodb:putItem``: a conditional put fails as DynamoDB's would."""
    if "ConditionExpression" in params:
        raise StatesError(
            "DynamoDB.ConditionalCheckFailedException",
            "The conditional request failed (Service: DynamoDb, Status Code: 400)",
        )
    return {}


def events_put_events(params: Any, context: dict[str, Any]) -> Any:
    """``events:putEvents``: a fake with a bug (a ``KeyError``)."""
    return {"FailedEntryCount": 0, "Bus": params["EventBusName"]}


def glue_start_job_run(params: Any, context: dict[str, Any]) -> Any:
    """``glue:startJobRun``: outlives a one-second ``TimeoutSeconds`` (real time)."""
    time.sleep(1.5)
    return {"JobRunId": "jr_1"}


def s3_get_object_tagging(params: Any, context: dict[str, Any]) -> Any:
    """``aws-sdk:s3:getObjectTagging`` (an action the engine does not run itself): tags
    naming the state that asked, read from the context object."""
    return {"TagSet": [{"Key": "state", "Value": context["State"]["Name"]}]}


def ecs_fails_twice() -> Callable[[Any, dict[str, Any]], Any]:
    """``ecs:runTask``: fails with ``ECS.AmazonECSException`` on its first two calls."""
    calls = [0]

    def handler(params: Any, context: dict[str, Any]) -> Any:
        calls[0] += 1
        if calls[0] <= 2:
            raise StatesError("ECS.AmazonECSException", f"call {calls[0]} failed")
        return {"Tasks": [], "attempts": calls[0]}

    return handler


def golden_resources() -> dict[str, Callable[[Any, dict[str, Any]], Any]]:
    """Resource ARN → handler, with fresh state for stateful handlers."""
    return {
        "arn:aws:states:::sns:publish": sns_publish,
        "arn:aws:states:::sqs:sendMessage": sqs_send_message,
        "arn:aws:states:::aws-sdk:dynamodb:putItem": dynamodb_put_item,
        "arn:aws:states:::events:putEvents": events_put_events,
        "arn:aws:states:::glue:startJobRun": glue_start_job_run,
        "arn:aws:states:::aws-sdk:s3:getObjectTagging": s3_get_object_tagging,
        "arn:aws:states:::ecs:runTask": ecs_fails_twice(),
    }
