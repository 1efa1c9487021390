"""CDK entry point: ``python app.py`` (or ``cdk synth``/``cdk deploy``) builds plateseg.

Context is read once, here: ``cdk.json`` (and ``cdk.context.json`` if present) from this
file's folder, so the app synthesizes the same from any working directory; values the
CDK CLI passes (``cdk -c ...``) override them key by key at the top level (so
``-c plateseg=...`` replaces the whole ``plateseg`` object). The ``"plateseg"`` object becomes one
validated :class:`~stacks.config.PlatesegConfig`; the stacks get typed arguments.

Both stacks are environment-agnostic (no account/region, no lookups), so synthesis needs
no AWS credentials. Templates go to ``$CDK_OUTDIR`` (set by the CLI) or ``./cdk.out``
beside this file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from stacks.config import CONTEXT_KEY, ConfigError, ExistingDatabase, PlatesegConfig
from stacks.database import DatabaseAccess, DatabaseStack
from stacks.monitoring import MonitoringStack
from stacks.nag import add_nag_checks
from stacks.pipeline_stack import PipelineStack
from stacks.storage import StorageStack, store_bucket_name
from stacks.web import WebStack

ROOT = Path(__file__).resolve().parent


def load_context(root: Path = ROOT) -> dict[str, Any]:
    """The ``context`` of ``cdk.json``, updated with ``cdk.context.json`` if it exists."""
    context: dict[str, Any] = {}
    for name, key in (("cdk.json", "context"), ("cdk.context.json", None)):
        path = root / name
        if not path.exists():
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
        context.update(document.get(key, {}) if key else document)
    return context


@dataclass(frozen=True)
class PlatesegApp:
    """The app and its stacks (``storage``/``database`` are ``None`` when imported).

    Attributes
    ----------
    app : aws_cdk.App
    config : stacks.config.PlatesegConfig
    storage, database, pipeline, web, monitoring : aws_cdk.Stack or None
    acknowledged : list of str
        ``<construct path> <rule id>`` of every cdk-nag acknowledgement made.
    """

    app: cdk.App
    config: PlatesegConfig
    storage: StorageStack | None
    database: DatabaseStack | None
    pipeline: PipelineStack
    web: WebStack
    monitoring: MonitoringStack
    acknowledged: list[str]

    @property
    def stacks(self) -> list[cdk.Stack]:
        """Every stack the app deploys, in deployment order."""
        found = (self.storage, self.database, self.pipeline, self.web, self.monitoring)
        return [stack for stack in found if stack is not None]


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None, nag: bool = True
) -> PlatesegApp:
    """Build the app: storage, database, pipeline, web and monitoring stacks of one stage.

    Parameters
    ----------
    context : mapping, optional
        CDK context; :func:`load_context` by default.
    outdir : str, optional
        Cloud assembly folder; ``$CDK_OUTDIR`` or ``<repo>/cdk.out`` by default.
    nag : bool
        Add the cdk-nag AwsSolutions checks (synthesis then fails on any finding that is
        not acknowledged in :mod:`stacks.nag`).

    Raises
    ------
    stacks.config.ConfigError
        If the ``plateseg`` context object is invalid (names the key and the range).
    """
    app = cdk.App(
        context=dict(load_context() if context is None else context),
        outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"),
    )
    config = PlatesegConfig.from_context(app.node.try_get_context(CONTEXT_KEY))
    prefix = f"plateseg-{config.stage}"
    state_machine_name = f"{prefix}-segmentation"

    storage = None
    if config.existing_bucket_name is None:
        storage = StorageStack(
            app, f"{prefix}-storage", config=config, description="plateseg store bucket (stateful)"
        )
    database = None
    if config.database.existing is None:
        database = DatabaseStack(
            app,
            f"{prefix}-database",
            config=config,
            description="plateseg VPC, RDS PostgreSQL and RDS Proxy (stateful)",
        )

    bucket = config.existing_bucket_name or store_bucket_name(config.stage)
    access: DatabaseAccess | ExistingDatabase = (
        database.access if database else config.database.existing  # type: ignore[assignment]
    )
    pipeline = PipelineStack(
        app,
        f"{prefix}-pipeline",
        config=config,
        state_machine_name=state_machine_name,
        description="plateseg Lambdas and Distributed Map state machine (stateless)",
        bucket=bucket,
        database=access,
    )
    web = WebStack(
        app,
        f"{prefix}-web",
        config=config,
        state_machine_name=state_machine_name,
        map_label=pipeline.map_label,
        description="plateseg web UI: Lambda behind an HTTP API with Cognito sign-in",
        bucket=bucket,
        database=access,
    )
    monitoring = MonitoringStack(
        app,
        f"{prefix}-monitoring",
        config=config,
        state_machine=pipeline.state_machine,
        state_machine_name=state_machine_name,
        map_label=pipeline.map_label,
        functions={**pipeline.functions, "Web": web.function},
        database=database.instance if database is not None else None,
        description="plateseg dashboard and alarms",
    )
    if storage is not None:  # imported by name: order the deployment explicitly
        pipeline.add_stack_dependency(storage)
        web.add_stack_dependency(storage)
    acknowledged = add_nag_checks(app) if nag else []
    return PlatesegApp(app, config, storage, database, pipeline, web, monitoring, acknowledged)


def main() -> None:
    """Synthesize the cloud assembly; a bad tunable exits with its message, no traceback."""
    try:
        built = build_app()
    except ConfigError as exc:
        raise SystemExit(f"{Path(__file__).name}: {exc}") from None
    built.app.synth()


if __name__ == "__main__":
    main()
