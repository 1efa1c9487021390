"""Security review: least privilege over the synthesized CloudFormation templates.

That cdk-nag passes with every finding acknowledged is ``tests/stacks/test_checks.py``
(which synthesizes with the pack on); here the app is built without the pack (faster)
and every IAM policy statement is checked: no ``*`` or ``service:*`` action, wildcard
action groups only from ``stacks.nag.WILDCARD_ACTIONS``, ``Resource: "*"`` only for the
actions in ``stacks.nag.RESOURCE_STAR_ACTIONS`` (which support nothing else) and only
where an acknowledgement with its reason covers it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def iam_statements(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict[str, Any]]]:
    """``(construct path, statement)`` of every IAM policy the app synthesizes."""
    import importlib.util

    from aws_cdk import aws_iam as iam

    sys.path.insert(0, str(REPO))
    spec = importlib.util.spec_from_file_location("plateseg_cdk_app_review", REPO / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    built = module.build_app(outdir=str(tmp_path_factory.mktemp("cdk.out")), nag=False)
    built.app.synth()
    found = []
    for stack in (built.storage, built.database, built.pipeline, built.web, built.monitoring):
        if stack is None:
            continue
        for construct in stack.node.find_all():
            if isinstance(construct, iam.CfnPolicy):
                path = construct.node.path.split("/", 1)[1]
                document = stack.resolve(construct.policy_document)
                found += [(path, statement) for statement in document["Statement"]]
    return found


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.xdist_group("cdk")
def test_no_policy_allows_every_action(iam_statements: list[tuple[str, dict[str, Any]]]) -> None:
    from stacks.nag import WILDCARD_ACTIONS

    assert iam_statements
    for path, statement in iam_statements:
        for action in _listed(statement.get("Action", [])):
            assert action != "*" and not action.endswith(":*"), (path, action)
            if "*" in action:
                assert action in WILDCARD_ACTIONS, (path, action)


@pytest.mark.xdist_group("cdk")
def test_resource_star_only_for_actions_that_support_nothing_else(
    iam_statements: list[tuple[str, dict[str, Any]]],
) -> None:
    from stacks.nag import ACKNOWLEDGEMENTS, RESOURCE_STAR_ACTIONS

    star_acks = [a for a in ACKNOWLEDGEMENTS if a.finding == r"Resource::\*"]
    checked = 0
    for path, statement in iam_statements:
        if "*" not in _listed(statement.get("Resource", [])):
            continue
        actions = set(_listed(statement["Action"]))
        assert actions <= set(RESOURCE_STAR_ACTIONS), (path, actions - set(RESOURCE_STAR_ACTIONS))
        assert any(re.fullmatch(a.path, path) for a in star_acks), path
        checked += 1
    assert checked >= 1


def test_every_nag_acknowledgement_and_documented_wildcard_has_a_reason() -> None:
    from stacks.nag import ACKNOWLEDGEMENTS, RESOURCE_STAR_ACTIONS, WILDCARD_ACTIONS

    for item in ACKNOWLEDGEMENTS:
        assert len(item.reason) >= 60, item
        assert item.rule.startswith("AwsSolutions-"), item
    for action, reason in {**RESOURCE_STAR_ACTIONS, **WILDCARD_ACTIONS}.items():
        assert len(reason) >= 30, action
