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
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from stacks.config import CONTEXT_KEY, ConfigError, PlatesegConfig
from stacks.pipeline_stack import PipelineStack
from stacks.storage import StorageStack

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


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[cdk.App, StorageStack, PipelineStack]:
    """Build the app: the storage stack and the pipeline stack of one stage.

    Parameters
    ----------
    context : mapping, optional
        CDK context; :func:`load_context` by default.
    outdir : str, optional
        Cloud assembly folder; ``$CDK_OUTDIR`` or ``<repo>/cdk.out`` by default.

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
    storage = StorageStack(
        app,
        f"{prefix}-storage",
        stage=config.stage,
        description="plateseg store bucket (stateful)",
    )
    pipeline = PipelineStack(
        app,
        f"{prefix}-pipeline",
        bucket=storage.bucket,
        config=config,
        state_machine_name=f"{prefix}-segmentation",
        description="plateseg Lambdas and Distributed Map state machine (stateless)",
    )
    return app, storage, pipeline


def main() -> None:
    """Synthesize the cloud assembly; a bad tunable exits with its message, no traceback."""
    try:
        app, _, _ = build_app()
    except ConfigError as exc:
        raise SystemExit(f"{Path(__file__).name}: {exc}") from None
    app.synth()


if __name__ == "__main__":
    main()
