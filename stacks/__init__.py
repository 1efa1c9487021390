"""CDK stacks of plateseg: one per concern, stateful apart from stateless.

- :mod:`stacks.config` — the typed, validated tunables read once from ``cdk.json``.
- :mod:`stacks.storage` — :class:`~stacks.storage.StorageStack`, the store bucket.
- :mod:`stacks.pipeline_stack` — :class:`~stacks.pipeline_stack.PipelineStack`, the
  Lambdas and the state machine loaded from ``statemachines/segmentation.asl.json``.

Nothing is imported here, so that ``import stacks.config`` does not load the CDK.
``stacks`` imports nothing from ``plateseg``.
"""
