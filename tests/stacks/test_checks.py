"""Static checks on the synthesized app: cdk-nag AwsSolutions and cfn-lint, both clean.

The default app is synthesized with the AwsSolutions pack (a finding that is not
acknowledged makes synthesis raise); a second app (prod, existing bucket and database)
covers the import paths. cfn-lint runs on every template of both cloud assemblies.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from stacks.nag import ACKNOWLEDGEMENTS, NagAcknowledgement, add_nag_checks, nag_text
from tests.stacks.conftest import Synthesized

pytestmark = pytest.mark.xdist_group("cdk")

EXISTING_DATABASE = {
    "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:plateseg-db-AbCdEf",
    "vpc_id": "vpc-0123456789abcdef0",
    "availability_zones": ["eu-west-1a", "eu-west-1b"],
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    "security_group_id": "sg-0123456789abcdef0",
    "proxy_endpoint": "plateseg.proxy-abc.eu-west-1.rds.amazonaws.com",
}


@pytest.fixture(scope="module")
def imported(synthesize: Callable[..., Synthesized], cdk_context: dict[str, Any]) -> Synthesized:
    """Prod with an existing bucket and database (no storage or database stack)."""
    context = copy.deepcopy(cdk_context)
    context["plateseg"].update(
        stage="prod",
        existing_bucket_name="lab-images-bucket",
        database={"existing": EXISTING_DATABASE},
        alarm_email="ops@example.org",
    )
    return synthesize(context)


def _violations(outdir: Path) -> list[dict[str, Any]]:
    """cdk-nag findings of a failed synthesis (a clean one writes no report)."""
    path = outdir / "validation-report.json"
    if not path.exists():
        return []
    report = json.loads(path.read_text(encoding="utf-8"))
    return [
        violation
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == "AwsSolutions"
        for violation in plugin.get("violations", [])
    ]


@pytest.mark.parametrize("variant", ["default", "imported"])
def test_synthesis_with_cdk_nag_leaves_no_unacknowledged_finding(
    variant: str, synthesized: Synthesized, imported: Synthesized
) -> None:
    # Synthesis raises on any unacknowledged finding, so reaching here is the check;
    # the report (written only when something is reported) must hold none.
    chosen = synthesized if variant == "default" else imported
    assert [v["ruleName"] for v in _violations(chosen.outdir) if not v.get("acknowledgedId")] == []
    assert chosen.acknowledged, "no acknowledgement was attached: did the pack run?"


def _covers(item: NagAcknowledgement, construct_path: str, rule_id: str) -> bool:
    in_stack = construct_path.split("/", 1)[1]
    if not re.fullmatch(item.path, in_stack):
        return False
    if not item.finding:
        return rule_id == item.rule
    prefix = f"{item.rule}["
    return rule_id.startswith(prefix) and bool(
        re.fullmatch(item.finding, rule_id[len(prefix) : -1])
    )


def test_every_acknowledgement_is_used(synthesized: Synthesized, imported: Synthesized) -> None:
    made = [line.split(" ", 1) for line in synthesized.acknowledged + imported.acknowledged]
    unused = [
        (item.path, item.rule, item.finding)
        for item in ACKNOWLEDGEMENTS
        if not any(_covers(item, path, rule_id) for path, rule_id in made)
    ]
    assert unused == []


def test_an_unacknowledged_finding_fails_synthesis(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "bare")
    s3.CfnBucket(stack, "Plain")  # no encryption, logging or TLS policy
    add_nag_checks(app)
    with pytest.raises(RuntimeError, match="AwsSolutions-S10"):
        app.synth()
    rules = {v["ruleName"] for v in _violations(tmp_path) if not v.get("acknowledgedId")}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_acknowledgements_have_specific_reasons() -> None:
    reasons = [item.reason for item in ACKNOWLEDGEMENTS]
    assert all(len(reason) >= 40 for reason in reasons)
    assert not any(
        item.rule in {"AwsSolutions-IAM4", "AwsSolutions-IAM5"} and not item.finding
        for item in ACKNOWLEDGEMENTS
    )


def test_nag_text_renders_intrinsics_like_cdk_nag() -> None:
    arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::b/", "runs/*"]]}
    assert nag_text(arn) == "arn:<AWS::Partition>:s3:::b/runs/*"
    assert nag_text({"Fn::GetAtt": ["Store", "Arn"]}) == "<Store.Arn>"
    assert nag_text({"Fn::ImportValue": "x"}) == '{"Fn::ImportValue":"x"}'


@pytest.mark.parametrize("variant", ["default", "imported"])
def test_cfn_lint_reports_no_errors(
    variant: str, synthesized: Synthesized, imported: Synthesized
) -> None:
    outdir = (synthesized if variant == "default" else imported).outdir
    templates = sorted(outdir.glob("*.template.json"))
    assert len(templates) == (5 if variant == "default" else 3)
    from cfnlint.api import ManualArgs, lint_file  # heavy import: only where it is used

    config = ManualArgs(regions=["us-east-1", "eu-west-1"])
    errors = [
        f"{path.name}: {match.rule.id} {match.message}"
        for path in templates
        for match in lint_file(path, config=config)
        if match.rule.id.startswith("E")
    ]
    assert errors == []


def test_imported_variant_creates_no_bucket_or_database(imported: Synthesized) -> None:
    assert (imported.storage, imported.database) == (None, None)
    for template in imported.templates.values():
        for kind in ("AWS::S3::Bucket", "AWS::RDS::DBInstance", "AWS::EC2::VPC"):
            assert template.find_resources(kind) == {}


def test_imported_variant_wires_the_existing_database(imported: Synthesized) -> None:
    functions = imported.pipeline.find_resources("AWS::Lambda::Function")
    aggregate = next(
        f["Properties"]
        for f in functions.values()
        if f["Properties"]["ImageConfig"]["Command"] == ["lambdas.aggregate.handler"]
    )
    variables = aggregate["Environment"]["Variables"]
    assert variables["PLATESEG_DATABASE_SECRET_ARN"] == EXISTING_DATABASE["secret_arn"]
    assert variables["PLATESEG_DATABASE_PROXY_ENDPOINT"] == EXISTING_DATABASE["proxy_endpoint"]
    assert aggregate["VpcConfig"] == {
        "SecurityGroupIds": [EXISTING_DATABASE["security_group_id"]],
        "SubnetIds": EXISTING_DATABASE["subnet_ids"],
    }
    assert variables["PLATESEG_STORE"] == "s3://lab-images-bucket"
