"""Fixtures for the CDK stack tests: the app loaded from ``app.py``, synthesized rarely.

Synthesis takes seconds (jsii runs the CDK in Node; cdk-nag runs at synthesis), so the
default app is synthesized once per session (every CDK test is in the ``cdk`` xdist
group, so on one worker) into its own temporary folder. Templates are read by
property, never by generated logical id: :func:`render` turns CloudFormation intrinsics
into ``${...}`` text so that tests can compare strings and parse the state machine.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_cdk.assertions import Template

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Synthesized:
    """One synthesized app: its templates and its cloud assembly folder.

    ``storage``/``database`` are ``None`` when the config imports existing ones.
    """

    storage: Template | None
    database: Template | None
    pipeline: Template
    web: Template
    monitoring: Template
    outdir: Path
    acknowledged: list[str]

    @property
    def templates(self) -> dict[str, Template]:
        """Every template by stack kind (``storage``, ``database``, ``pipeline``, ...)."""
        found = {
            "storage": self.storage,
            "database": self.database,
            "pipeline": self.pipeline,
            "web": self.web,
            "monitoring": self.monitoring,
        }
        return {name: template for name, template in found.items() if template is not None}


def render(value: Any) -> Any:
    """Resolve intrinsics into text: ``{"Ref": X}`` → ``${X}``, ``Fn::Join`` → joined text.

    ``Fn::GetAtt [X, Attr]`` becomes ``${X.Attr}`` and ``Fn::GetStackOutput`` becomes
    ``${Stack.Output}``; lists and dicts are rendered element by element.
    """
    if isinstance(value, list):
        return [render(item) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return f"${{{value['Ref']}}}"
    if set(value) == {"Fn::GetAtt"}:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(render(part)) for part in parts)
    if set(value) == {"Fn::GetStackOutput"}:
        ref = value["Fn::GetStackOutput"]
        return f"${{{ref['StackName']}.{ref['OutputName']}}}"
    return {key: render(item) for key, item in value.items()}


def only_resource(template: Template, resource_type: str) -> dict[str, Any]:
    """The properties of the single resource of a type (fails if there are more)."""
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    properties: dict[str, Any] = next(iter(found.values()))["Properties"]
    return properties


def rendered_definition(template: Template) -> dict[str, Any]:
    """The state machine's ``DefinitionString`` as a dict, placeholders as ``${...}``."""
    text = render(only_resource(template, "AWS::StepFunctions::StateMachine")["DefinitionString"])
    definition: dict[str, Any] = json.loads(text)
    return definition


@pytest.fixture(scope="session")
def cdk_app() -> ModuleType:
    """``app.py`` at the repository root, loaded as a module (not run)."""
    spec = importlib.util.spec_from_file_location("plateseg_cdk_app", REPO_ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def cdk_context(cdk_app: ModuleType) -> dict[str, Any]:
    """The context ``app.py`` reads from ``cdk.json`` (a fresh copy per session)."""
    context: dict[str, Any] = cdk_app.load_context()
    return context


@pytest.fixture(scope="session")
def synthesize(
    cdk_app: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Synthesized]:
    """Synthesize ``app.py``'s app with a given context into a fresh temporary folder.

    ``nag=False`` skips the cdk-nag pack (for variants whose findings are not the point).
    """

    def run(context: Mapping[str, Any], nag: bool = True) -> Synthesized:
        outdir = tmp_path_factory.mktemp("cdk.out")
        built = cdk_app.build_app(context=context, outdir=str(outdir), nag=nag)
        built.app.synth()

        def template(stack: Any) -> Template | None:
            return None if stack is None else Template.from_stack(stack)

        return Synthesized(
            storage=template(built.storage),
            database=template(built.database),
            pipeline=Template.from_stack(built.pipeline),
            web=Template.from_stack(built.web),
            monitoring=Template.from_stack(built.monitoring),
            outdir=outdir,
            acknowledged=built.acknowledged,
        )

    return run


@pytest.fixture(scope="session")
def synthesized(synthesize: Callable[..., Synthesized], cdk_context: dict[str, Any]) -> Synthesized:
    """The app as ``cdk.json`` configures it (cdk-nag on), synthesized once per session."""
    return synthesize(cdk_context)
