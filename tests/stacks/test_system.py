"""The whole system's templates: IAM resources, encryption, network, web, alarms, tunables.

Uses the session's default synthesis (``cdk.json`` context, cdk-nag on); the tunable
tests synthesize variants without cdk-nag and diff every template against the default.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.web import AUTHORIZED_ROUTES, WEB_HANDLER
from tests.stacks.conftest import Synthesized, only_resource, render

pytestmark = pytest.mark.xdist_group("cdk")

#: Actions that AWS only allows on Resource "*".
STAR_ONLY_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "logs:PutRetentionPolicy",
    "logs:DeleteRetentionPolicy",
}
_PREFIXES = (
    "/experiments/*",
    "/runs/*",
    "/models/*",
    "/experiments/*/layout.csv",
    "/runs/*/layout.csv",
    "/runs/*/objects/*",
    "/runs/*/masks/*",
)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template: Template) -> list[tuple[str, dict[str, Any]]]:
    """(policy logical id, statement) for every inline policy of a template."""
    return [
        (logical_id, statement)
        for logical_id, policy in template.find_resources("AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _function(template: Template, command: str) -> tuple[str, dict[str, Any]]:
    for logical_id, resource in template.find_resources("AWS::Lambda::Function").items():
        if resource["Properties"].get("ImageConfig", {}).get("Command") == [command]:
            return logical_id, resource["Properties"]
    raise AssertionError(f"no function with command {command}")


def _role_statements(template: Template, function: dict[str, Any]) -> list[dict[str, Any]]:
    role = function["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


# --- IAM --------------------------------------------------------------------------------


def test_every_star_resource_is_an_action_aws_allows_only_on_star(
    synthesized: Synthesized,
) -> None:
    offending = [
        (name, policy, statement["Action"])
        for name, template in synthesized.templates.items()
        for policy, statement in _statements(template)
        if "*" in _listed(statement["Resource"])
        and not set(_listed(statement["Action"])) <= STAR_ONLY_ACTIONS
        and not policy.startswith("LogRetention")
    ]
    assert offending == []


def test_every_s3_object_resource_is_a_known_prefix(synthesized: Synthesized) -> None:
    for name in ("pipeline", "web"):
        for _, statement in _statements(synthesized.templates[name]):
            for resource in map(render, _listed(statement["Resource"])):
                if isinstance(resource, str) and ":s3:::" in resource and "/" in resource:
                    assert resource.endswith(_PREFIXES), (name, resource)


def _s3_grants(synthesized: Synthesized, handler: str) -> dict[str, set[str]]:
    """``{action: {key prefix}}`` of one pipeline function's S3 object statements."""
    _, function = _function(synthesized.pipeline, handler)
    grants: dict[str, set[str]] = {}
    for statement in _role_statements(synthesized.pipeline, function):
        for resource in map(render, _listed(statement["Resource"])):
            if isinstance(resource, str) and ":s3:::" in resource and "/" in resource:
                for action in _listed(statement["Action"]):
                    grants.setdefault(action, set()).add(resource.rsplit("}", 1)[-1])
    return grants


def test_lookup_and_aggregate_may_do_what_run_provenance_needs(synthesized: Synthesized) -> None:
    """moto does not enforce IAM: each store access of Lookup and Aggregate is granted here.

    Lookup reads the run's owner and the recipe's model, writes under runs/ and clears a
    stale layout snapshot; Aggregate reads the run (and an old run's experiment layout)
    and deletes parts and masks of superseded attempts, nothing else.
    """
    lookup = _s3_grants(synthesized, "lambdas.lookup.handler")
    assert {"/experiments/*", "/runs/*", "/models/*"} <= lookup["s3:GetObject*"]
    assert lookup["s3:DeleteObject*"] == {"/runs/*/layout.csv"}
    aggregate = _s3_grants(synthesized, "lambdas.aggregate.handler")
    assert {"/runs/*", "/experiments/*/layout.csv"} <= aggregate["s3:GetObject*"]
    assert aggregate["s3:DeleteObject*"] == {"/runs/*/objects/*", "/runs/*/masks/*"}
    assert not any(a.startswith("s3:PutObject") for a in aggregate)


def test_every_states_resource_is_this_state_machine(synthesized: Synthesized) -> None:
    name = only_resource(synthesized.pipeline, "AWS::StepFunctions::StateMachine")[
        "StateMachineName"
    ]
    own = re.compile(
        r"arn:\$\{AWS::Partition\}:states:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
        rf"(stateMachine|execution|mapRun):{name}([:/].*)?"
    )
    found = [
        render(resource)
        for template in (synthesized.pipeline, synthesized.web)
        for _, statement in _statements(template)
        if any(a.startswith("states:") for a in _listed(statement["Action"]))
        for resource in _listed(statement["Resource"])
    ]
    assert found and all(own.fullmatch(r) for r in found), found


def test_only_aggregate_and_web_read_the_database_secret(synthesized: Synthesized) -> None:
    readers = []
    for name in ("pipeline", "web"):
        template = synthesized.templates[name]
        for command in (
            "lambdas.lookup.handler",
            "lambdas.segment.handler",
            "lambdas.aggregate.handler",
            WEB_HANDLER,
        ):
            try:
                _, function = _function(template, command)
            except AssertionError:
                continue
            actions = {
                a for s in _role_statements(template, function) for a in _listed(s["Action"])
            }
            if "secretsmanager:GetSecretValue" in actions:
                readers.append(command)
    assert readers == ["lambdas.aggregate.handler", WEB_HANDLER]


def test_web_permissions_are_the_listed_ones(synthesized: Synthesized) -> None:
    _, web = _function(synthesized.web, WEB_HANDLER)
    actions = {a for s in _role_statements(synthesized.web, web) for a in _listed(s["Action"])}
    states = {a for a in actions if a.startswith("states:")}
    assert states == {
        "states:StartExecution",
        "states:DescribeExecution",
        "states:RedriveExecution",
        "states:ListMapRuns",
        "states:DescribeMapRun",
    }
    puts = [
        render(r)
        for s in _role_statements(synthesized.web, web)
        if "s3:PutObject" in _listed(s["Action"])
        for r in _listed(s["Resource"])
    ]
    assert sorted(p.rsplit("}", 1)[-1] for p in puts) == ["/experiments/*/layout.csv", "/models/*"]


# --- encryption and network -----------------------------------------------------------------


def test_database_is_encrypted_backed_up_and_private(synthesized: Synthesized) -> None:
    assert synthesized.database is not None
    instance = only_resource(synthesized.database, "AWS::RDS::DBInstance")
    assert (instance["StorageEncrypted"], instance["BackupRetentionPeriod"]) == (True, 7)
    assert (instance["PubliclyAccessible"], instance["Engine"]) == (False, "postgres")
    proxy = only_resource(synthesized.database, "AWS::RDS::DBProxy")
    assert proxy["RequireTLS"] is True


def test_secret_rotates(synthesized: Synthesized) -> None:
    assert synthesized.database is not None
    schedules = synthesized.database.find_resources("AWS::SecretsManager::RotationSchedule")
    [schedule] = schedules.values()
    assert schedule["Properties"]["RotationRules"]["ScheduleExpression"] == "rate(30 days)"


def test_vpc_is_isolated_with_only_the_needed_endpoints(synthesized: Synthesized) -> None:
    assert synthesized.database is not None
    template = synthesized.database
    for kind in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway"):
        assert template.find_resources(kind) == {}
    services = sorted(
        render(e["Properties"]["ServiceName"]).rsplit(".", 1)[-1]
        + ":"
        + e["Properties"].get("VpcEndpointType", "Gateway")
        for e in template.find_resources("AWS::EC2::VPCEndpoint").values()
    )
    assert services == ["s3:Gateway", "secretsmanager:Interface", "states:Interface"]


def test_only_aggregate_and_web_join_the_vpc(synthesized: Synthesized) -> None:
    in_vpc = sorted(
        props["ImageConfig"]["Command"][0]
        for template in (synthesized.pipeline, synthesized.web)
        for props in (
            r["Properties"] for r in template.find_resources("AWS::Lambda::Function").values()
        )
        if "ImageConfig" in props and "VpcConfig" in props
    )
    assert in_vpc == ["lambdas.aggregate.handler", WEB_HANDLER]


def test_database_settings_reach_aggregate_and_web(synthesized: Synthesized) -> None:
    for template, command in (
        (synthesized.pipeline, "lambdas.aggregate.handler"),
        (synthesized.web, WEB_HANDLER),
    ):
        variables = _function(template, command)[1]["Environment"]["Variables"]
        assert variables["PLATESEG_DATABASE_NAME"] == "plateseg"
        assert variables["PLATESEG_DATABASE_IAM_AUTH"] == "false"
        assert {"PLATESEG_DATABASE_SECRET_ARN", "PLATESEG_DATABASE_PROXY_ENDPOINT"} <= set(
            variables
        )


def test_segment_has_reserved_concurrency(
    synthesized: Synthesized, cdk_context: dict[str, Any]
) -> None:
    _, segment = _function(synthesized.pipeline, "lambdas.segment.handler")
    assert (
        segment["ReservedConcurrentExecutions"]
        == cdk_context["plateseg"]["segment_reserved_concurrency"]
    )
    _, lookup = _function(synthesized.pipeline, "lambdas.lookup.handler")
    assert "ReservedConcurrentExecutions" not in lookup


def test_alarm_topic_is_encrypted(synthesized: Synthesized) -> None:
    topic = only_resource(synthesized.monitoring, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic


# --- web ---------------------------------------------------------------------------------


def test_web_api_requires_cognito_on_every_route(synthesized: Synthesized) -> None:
    """``GET /`` included: the app refuses requests the authorizer did not pass."""
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"].get("AuthorizationType", "NONE")
        for r in synthesized.web.find_resources("AWS::ApiGatewayV2::Route").values()
    }
    assert routes == {"ANY /": "JWT", "ANY /{proxy+}": "JWT"}
    assert set(AUTHORIZED_ROUTES) == {"/", "/{proxy+}"}
    authorizer = only_resource(synthesized.web, "AWS::ApiGatewayV2::Authorizer")
    assert authorizer["AuthorizerType"] == "JWT"
    pool = only_resource(synthesized.web, "AWS::Cognito::UserPool")
    assert (
        pool["MfaConfiguration"],
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
    ) == (
        "ON",
        True,
    )


# --- monitoring ----------------------------------------------------------------------------


def test_alarms_notify_the_topic(synthesized: Synthesized) -> None:
    template = synthesized.monitoring
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    alarms = {
        logical_id: a["Properties"]
        for logical_id, a in template.find_resources("AWS::CloudWatch::Alarm").items()
    }
    names = {re.sub(r"[0-9A-F]{8}$", "", logical_id) for logical_id in alarms}
    assert {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "MapRunChildFailures",
        "SegmentThrottles",
        "SegmentDurationNearTimeout",
        "SegmentErrors",
        "AggregateErrors",
        "WebErrors",
        "DatabaseConnections",
    } <= names
    assert all(a["AlarmActions"] == [{"Ref": topic}] for a in alarms.values())


def test_dashboard_shows_executions_map_runs_lambdas_and_rds(synthesized: Synthesized) -> None:
    body = render(
        only_resource(synthesized.monitoring, "AWS::CloudWatch::Dashboard")["DashboardBody"]
    )
    for title in (
        "Executions",
        "Map Run child executions",
        "Segment: concurrency",
        "RDS connections",
    ):
        assert title in body
    assert "/SegmentFields" in body


# --- changing one tunable changes only what it should ------------------------------------------


def _differences(a: Any, b: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for key in sorted(set(a) | set(b))
            for d in _differences(a.get(key), b.get(key), (*path, key))
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, (*path, str(i)))
        ]
    return [] if a == b else [path]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "segment_memory_mb",
            3008,
            {
                ("pipeline", "Segment", "MemorySize"),
                # Aggregate prices the run at this memory (run_settings in the definition)
                ("pipeline", "StateMachine", "DefinitionString"),
                # and the web UI's estimate models it (PLATESEG_RUN_SETTINGS)
                ("web", "Web", "Environment"),
            },
        ),
        (
            "segment_timeout_seconds",
            600,
            {
                ("pipeline", "Segment", "Timeout"),
                ("monitoring", "SegmentDurationNearTimeout", "Threshold"),
            },
        ),
        (
            "items_per_batch",
            25,
            {("pipeline", "StateMachine", "DefinitionString"), ("web", "Web", "Environment")},
        ),
        (
            # micro classes lack Performance Insights: a larger class switches it on
            "database.instance_class",
            "t4g.small",
            {
                ("database", "Database", "DBInstanceClass"),
                ("database", "Database", "EnablePerformanceInsights"),
                ("database", "Database", "PerformanceInsightsRetentionPeriod"),
            },
        ),
    ],
)
def test_one_tunable_changes_only_its_resources(
    key: str,
    value: Any,
    expected: set[tuple[str, str, str]],
    synthesized: Synthesized,
    synthesize: Callable[..., Synthesized],
    cdk_context: dict[str, Any],
) -> None:
    context = copy.deepcopy(cdk_context)
    target = context["plateseg"]
    *parents, leaf = key.split(".")
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    changed = synthesize(context, nag=False)
    found = set()
    for name, before in synthesized.templates.items():
        after = changed.templates[name].to_json()["Resources"]
        for diff in _differences(before.to_json()["Resources"], after):
            found.add(
                (name, re.sub(r"[0-9A-F]{8}$", "", diff[0]), diff[2] if len(diff) > 2 else "")
            )
    assert found == expected


def test_web_function_runs_on_aws_behind_the_authorizer(synthesized: Synthesized) -> None:
    variables = _function(synthesized.web, WEB_HANDLER)[1]["Environment"]["Variables"]
    name = only_resource(synthesized.pipeline, "AWS::StepFunctions::StateMachine")[
        "StateMachineName"
    ]
    assert (
        variables["PLATESEG_ENGINE"],
        variables["PLATESEG_WEB_AUTH"],
        variables["PLATESEG_WEB_PROXY"],
    ) == ("aws", "proxy", "apigateway")
    assert render(variables["PLATESEG_STATE_MACHINE_ARN"]).endswith(f":stateMachine:{name}")


def test_iam_auth_adds_proxy_connect_to_the_secret(
    synthesize: Callable[..., Synthesized], cdk_context: dict[str, Any]
) -> None:
    context = copy.deepcopy(cdk_context)
    context["plateseg"]["database"]["iam_auth"] = True
    changed = synthesize(context, nag=False)
    _, aggregate = _function(changed.pipeline, "lambdas.aggregate.handler")
    statements = _role_statements(changed.pipeline, aggregate)
    actions = {a for s in statements for a in _listed(s["Action"])}
    connect = [
        render(r)
        for s in statements
        if "rds-db:connect" in _listed(s["Action"])
        for r in _listed(s["Resource"])
    ]
    assert "secretsmanager:GetSecretValue" in actions  # user, host and port come from it
    assert len(connect) == 1 and connect[0].endswith("/plateseg")
    assert aggregate["Environment"]["Variables"]["PLATESEG_DATABASE_IAM_AUTH"] == "true"
    assert changed.database is not None
    proxy = only_resource(changed.database, "AWS::RDS::DBProxy")
    assert proxy["Auth"][0]["IAMAuth"] == "REQUIRED"
