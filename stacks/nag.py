"""cdk-nag AwsSolutions checks, and every finding plateseg accepts, each with its reason.

cdk-nag 3 reports through CDK's policy validation: synthesis fails on any finding that
is not acknowledged. Acknowledgements are attached to the construct that triggers the
finding (matched by its path inside the stack), never to a whole stack, so a new
resource with the same problem is still reported. IAM5 findings are acknowledged per
resource pattern (``AwsSolutions-IAM5[Resource::...]``) or action pattern.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

__all__ = [
    "ACKNOWLEDGEMENTS",
    "RESOURCE_STAR_ACTIONS",
    "WILDCARD_ACTIONS",
    "NagAcknowledgement",
    "acknowledge",
    "add_nag_checks",
    "granular_findings",
    "nag_text",
]


@dataclass(frozen=True)
class NagAcknowledgement:
    """One accepted finding.

    Attributes
    ----------
    path : str
        Regular expression matched (``fullmatch``) against the construct path without
        the stack name, e.g. ``Segment/ServiceRole/DefaultPolicy/Resource``.
    rule : str
        The rule, e.g. ``AwsSolutions-RDS11``. For ``AwsSolutions-IAM4``/``IAM5``, whose
        findings are per policy ARN, action or resource, ``finding`` selects which.
    reason : str
        Why this is acceptable here.
    finding : str
        IAM4/IAM5 only: regular expression (``fullmatch``) over the granular part of the
        finding id, e.g. ``Action::s3:List\\*`` or ``Resource::.*/runs/\\*``.
    """

    path: str
    rule: str
    reason: str
    finding: str = ""


_FUNCTIONS = r"(Lookup|Segment|Aggregate|Web)"
_LAMBDA_POLICY = _FUNCTIONS + r"/ServiceRole/DefaultPolicy/Resource"
_S3_GRANT = (
    "S3 access on one key prefix of the store bucket (experiments/*, runs/*, models/*, "
    "experiments/*/layout.csv; deletes only on runs/*/layout.csv, runs/*/objects/* and "
    "runs/*/masks/*): object keys under a prefix need a trailing wildcard, and CDK's "
    "grant_read/grant_put/grant_delete use the s3:GetObject*/GetBucket*/List*/Abort*/"
    "DeleteObject* action groups, limited to that bucket and prefix"
)
_BUCKET_PREFIX = (
    r"Resource::.*/(experiments/\*|experiments/\*/layout\.csv|runs/\*|models/\*"
    r"|runs/\*/layout\.csv|runs/\*/objects/\*|runs/\*/masks/\*)"
)
_S3_ACTIONS = r"Action::s3:(GetBucket|GetObject|List|Abort|DeleteObject)\*"
_MANAGED = r"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
_EXECUTIONS = r"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"

ACKNOWLEDGEMENTS: tuple[NagAcknowledgement, ...] = (
    NagAcknowledgement(
        _FUNCTIONS + r"/ServiceRole/Resource",
        "AwsSolutions-IAM4",
        "AWSLambdaBasicExecutionRole (writing the function's own logs) and, for VPC "
        "functions, AWSLambdaVPCAccessExecutionRole (ENI management) are AWS's baseline "
        "for Lambda; neither grants data access",
        _MANAGED + r"(AWSLambdaBasicExecutionRole|AWSLambdaVPCAccessExecutionRole)",
    ),
    NagAcknowledgement(
        r"LogRetention[0-9a-f]+/ServiceRole/Resource",
        "AwsSolutions-IAM4",
        "CDK's log-retention helper (retention of the RDS log exports) runs with "
        "AWSLambdaBasicExecutionRole",
        _MANAGED + "AWSLambdaBasicExecutionRole",
    ),
    NagAcknowledgement(
        r"LogRetention[0-9a-f]+/ServiceRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5",
        "CDK's log-retention helper sets retention on the log groups RDS creates by name "
        "at runtime (logs:PutRetentionPolicy on *); it holds no data access. Declaring "
        "/aws/rds/instance/<id>/postgresql as a LogGroup would remove it",
        r"Resource::\*",
    ),
    NagAcknowledgement(
        _LAMBDA_POLICY,
        "AwsSolutions-IAM5",
        "xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) support only "
        "Resource '*'",
        r"Resource::\*",
    ),
    NagAcknowledgement(_LAMBDA_POLICY, "AwsSolutions-IAM5", _S3_GRANT, _S3_ACTIONS),
    NagAcknowledgement(_LAMBDA_POLICY, "AwsSolutions-IAM5", _S3_GRANT, _BUCKET_PREFIX),
    NagAcknowledgement(
        r"StateMachine/Role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5",
        "Distributed Map ItemReader/ResultWriter: objects under runs/* only",
        r"Resource::.*/runs/\*",
    ),
    NagAcknowledgement(
        r"StateMachine/Role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5",
        "Log delivery (logs:CreateLogDelivery, DescribeResourcePolicies, ...) and X-Ray "
        "actions a state machine needs for logging level ALL and tracing support only "
        "Resource '*'",
        r"Resource::\*",
    ),
    NagAcknowledgement(
        r"StateMachine/Role/DefaultPolicy/Resource",
        "AwsSolutions-IAM5",
        "Distributed Map children: describe/stop/redrive only this state machine's own "
        "executions (execution:<name>:*, execution:<name>/*, execution:<name>/<label>:*); "
        "their ids are generated at run time",
        _EXECUTIONS + r"execution:plateseg-[a-z]+-segmentation(:\*|/\*|/[A-Za-z]+:\*)",
    ),
    NagAcknowledgement(
        r"Web/ServiceRole/DefaultPolicy/Resource",
        "AwsSolutions-IAM5",
        "The web UI follows this state machine's executions (execution:<name>:*) and Map "
        "Runs (mapRun:<name>/<label>:*), whose ids are generated at run time",
        _EXECUTIONS + r"(execution:plateseg-[a-z]+-segmentation:\*"
        r"|mapRun:plateseg-[a-z]+-segmentation/[A-Za-z]+:\*)",
    ),
    NagAcknowledgement(
        r"Database/Resource",
        "AwsSolutions-RDS11",
        "PostgreSQL's default port 5432 in private isolated subnets, reachable only from "
        "the RDS Proxy's security group; a non-default port adds no protection here",
    ),
    NagAcknowledgement(
        r"Database/Resource",
        "AwsSolutions-RDS3",
        "Multi-AZ follows the stage (prod: on); dev runs single-AZ to halve its cost - "
        "set plateseg.database.multi_az to override",
    ),
    NagAcknowledgement(
        r"Database/Resource",
        "AwsSolutions-RDS10",
        "Deletion protection follows the stage (prod: on); dev stacks must be deletable - "
        "set plateseg.database.deletion_protection to override",
    ),
    NagAcknowledgement(
        r"Endpoints/Resource",
        "AwsSolutions-EC23",
        "Interface endpoints admit HTTPS only from the VPC's own CIDR (a token, which "
        "the rule cannot evaluate); the VPC has no internet gateway",
    ),
)

_GRANULAR = ("AwsSolutions-IAM4", "AwsSolutions-IAM5")

_XRAY = "X-Ray trace upload and sampling have no resource type: the Service Authorization Reference allows only Resource '*'"  # noqa: E501
_LOG_DELIVERY = (
    "CloudWatch Logs vended-log delivery (Step Functions logging) has no resource type: "
    "AWS documents Resource '*' for these actions"
)
_RETENTION = (
    "CDK's LogRetention helper for the RDS log exports, whose log groups RDS names at "
    "run time (could be scoped by declaring /aws/rds/instance/<id>/postgresql ourselves)"
)

#: The only actions a policy may grant on ``Resource: "*"``, each with why (a test over
#: the synthesized templates enforces this list and the matching acknowledgement).
RESOURCE_STAR_ACTIONS: dict[str, str] = {
    "xray:PutTraceSegments": _XRAY,
    "xray:PutTelemetryRecords": _XRAY,
    "xray:GetSamplingRules": _XRAY,
    "xray:GetSamplingTargets": _XRAY,
    "logs:CreateLogDelivery": _LOG_DELIVERY,
    "logs:GetLogDelivery": _LOG_DELIVERY,
    "logs:UpdateLogDelivery": _LOG_DELIVERY,
    "logs:DeleteLogDelivery": _LOG_DELIVERY,
    "logs:ListLogDeliveries": _LOG_DELIVERY,
    "logs:PutResourcePolicy": _LOG_DELIVERY,
    "logs:DescribeResourcePolicies": _LOG_DELIVERY,
    "logs:DescribeLogGroups": _LOG_DELIVERY,
    "logs:PutRetentionPolicy": _RETENTION,
    "logs:DeleteRetentionPolicy": _RETENTION,
}

_S3_GROUPS = (
    "CDK's Bucket.grant_read/grant_read_write action group, always on one bucket and key "
    "prefix; no action group reaches another bucket, a bucket policy or an ACL"
)

#: The only wildcard actions a policy may grant (never ``*`` or ``service:*``).
WILDCARD_ACTIONS: dict[str, str] = {
    "s3:GetObject*": _S3_GROUPS + " (GetObject, GetObjectVersion, GetObjectTagging, ...)",
    "s3:GetBucket*": _S3_GROUPS + " (GetBucketLocation, GetBucketVersioning, ...)",
    "s3:List*": _S3_GROUPS + " (ListBucket for the ItemReader/Lookup prefix listing)",
    "s3:Abort*": _S3_GROUPS + " (AbortMultipartUpload of a failed Parquet/mask upload)",
    "s3:DeleteObject*": _S3_GROUPS + " (rewriting a run's outputs under runs/<id>/)",
}


def nag_text(value: Any) -> str:
    """An intrinsic as cdk-nag writes it in a finding id.

    ``{"Ref": "AWS::Partition"}`` becomes ``<AWS::Partition>``, ``{"Ref": X}`` ``<X>``,
    ``{"Fn::GetAtt": [X, A]}`` ``<X.A>``, ``Fn::Join`` is joined; anything else (such as
    a cross-stack ``Fn::GetStackOutput``) is compact JSON.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return "<" + ".".join(value["Fn::GetAtt"]) + ">"
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(nag_text(part) for part in parts)
    return json.dumps(value, separators=(",", ":"))


def granular_findings(construct: IConstruct) -> list[str]:
    """The IAM4/IAM5 finding details a role or policy can raise (``Policy::...`` etc.)."""
    stack = cdk.Stack.of(construct)
    if isinstance(construct, iam.CfnRole):
        arns = stack.resolve(construct.managed_policy_arns) or []
        return [f"Policy::{nag_text(arn)}" for arn in arns]
    if not isinstance(construct, iam.CfnPolicy):
        return []
    found: list[str] = []
    for statement in stack.resolve(construct.policy_document).get("Statement", []):
        for key, label in (("Action", "Action"), ("Resource", "Resource")):
            values = statement.get(key, [])
            for value in values if isinstance(values, list) else [values]:
                text = nag_text(value)
                if "*" in text:
                    found.append(f"{label}::{text}")
    return found


def acknowledge(app: cdk.App, acknowledgements: tuple[NagAcknowledgement, ...]) -> list[str]:
    """Attach each acknowledgement to every construct whose in-stack path matches.

    Returns
    -------
    list of str
        ``<construct path> <finding id>`` of every acknowledgement made (for tests).
    """
    made: list[str] = []
    compiled = [
        (re.compile(item.path), re.compile(item.finding), item) for item in acknowledgements
    ]
    for construct in app.node.find_all():
        if cdk.Stack.is_stack(construct) or construct.node.path.count("/") < 1:
            continue
        path = construct.node.path.split("/", 1)[1]
        matching = [
            (finding, item) for pattern, finding, item in compiled if pattern.fullmatch(path)
        ]
        if not matching:
            continue
        details = granular_findings(construct)
        for finding, item in matching:
            ids = (
                [f"{item.rule}[{d}]" for d in details if finding.fullmatch(d)]
                if item.rule in _GRANULAR
                else [item.rule]
            )
            for rule_id in ids:
                cdk.Validations.of(construct).acknowledge(
                    cdk.Acknowledgment(id=f"AwsSolutions::{rule_id}", reason=item.reason)
                )
                made.append(f"{construct.node.path} {rule_id}")
    return made


def add_nag_checks(app: cdk.App) -> list[str]:
    """Acknowledge :data:`ACKNOWLEDGEMENTS` and add the AwsSolutions pack to ``app``.

    Synthesis then fails on any finding that is not acknowledged. Call it after every
    stack is built (granular IAM findings are computed from the finished policies).
    """
    made = acknowledge(app, ACKNOWLEDGEMENTS)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return made
