"""Service integrations as local fakes: what a Task's ``Resource`` runs besides Lambda.

* ``arn:aws:states:::aws-sdk:s3:<action>`` (:mod:`.s3_sdk`) — the AWS SDK integration
  for S3, against the engine's stores (a local folder or S3);
* ``arn:aws:states:::states:startExecution`` with ``.sync`` and ``.sync:2``
  (:mod:`.sfn`) — a child state machine registered with the engine, run locally;
* any other resource ARN bound to a Python callable (:mod:`.bound`).

:mod:`.catalog` says at validation time which resources run (and refuses the rest by
name); :mod:`.dispatch` runs them; :class:`Services` is what one execution holds.
"""

from __future__ import annotations

from plateseg.engine.integrations.services import ChildRunner, ResourceHandler, Services

__all__ = ["ChildRunner", "ResourceHandler", "Services"]
