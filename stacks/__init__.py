"""CDK stacks of plateseg: one per concern, stateful apart from stateless.

- :mod:`stacks.config` — the typed, validated tunables read once from ``cdk.json``.
- :mod:`stacks.storage` — :class:`~stacks.storage.StorageStack`, the store bucket.
- :mod:`stacks.database` — :class:`~stacks.database.DatabaseStack` (VPC, RDS PostgreSQL,
  RDS Proxy, rotated secret) and :class:`~stacks.database.DatabaseAccess`, the seam.
- :mod:`stacks.pipeline_stack` — :class:`~stacks.pipeline_stack.PipelineStack`, the
  Lambdas and the state machine loaded from ``statemachines/segmentation.asl.json``.
- :mod:`stacks.web` — :class:`~stacks.web.WebStack`, the UI behind an HTTP API + Cognito.
- :mod:`stacks.monitoring` — :class:`~stacks.monitoring.MonitoringStack`, dashboard, alarms.
- :mod:`stacks.nag` — cdk-nag AwsSolutions checks and their acknowledgements.

Nothing is imported here, so that ``import stacks.config`` does not load the CDK.
``stacks`` imports nothing from ``plateseg``.
"""
