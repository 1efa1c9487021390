"""The stateless pipeline: three container Lambdas and the segmentation state machine.

The state machine is loaded from ``statemachines/segmentation.asl.json``, the file the
local engine runs too, and rendered by :func:`plateseg.map_settings.apply_tunables` with the
deployment's Map settings (concurrency, batching, tolerated failures, child execution type;
Aggregate receives the same values) and the Segment task's retry numbers; ARNs and the bucket
name stay ``${...}`` placeholders filled by CloudFormation from ``definition_substitutions``
(:data:`SUBSTITUTION_KEYS`). With a file definition CDK grants the state machine nothing,
so its role is granted here by hand, each statement on known ARNs.

The three functions share one image built from ``lambdas/Dockerfile`` with the repository
root as build context; each picks its handler by the image command. Lookup and Segment run
outside any VPC (S3 only: no NAT or endpoint costs on the hot path); Aggregate joins the
database's VPC and gets the ``PLATESEG_DATABASE_*`` settings and the secret grant. Segment
has reserved concurrency, so a large run cannot starve the account's other functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from plateseg.errors import DefinitionError
from plateseg.map_settings import (
    DEFINITION_PATH,
    FUNCTIONS,
    SUBSTITUTION_KEYS,
    apply_tunables,
    distributed_map,
    placeholders,
)
from plateseg.map_settings import read_definition as load_asl
from stacks.config import ExistingDatabase, PlatesegConfig
from stacks.database import DatabaseAccess, resolve_access
from stacks.storage import resolve_bucket

__all__ = [
    "ASL_PATH",
    "HANDLERS",
    "IMAGE_ASSET_EXCLUDE",
    "REPO_ROOT",
    "SUBSTITUTION_KEYS",
    "DefinitionShapeError",
    "PipelineStack",
    "check_substitutions",
    "load_asl",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
ASL_PATH = DEFINITION_PATH
DOCKERFILE = "lambdas/Dockerfile"

#: Function construct id → image command (``module.function`` under ``LAMBDA_TASK_ROOT``).
HANDLERS = FUNCTIONS

#: A definition the stack cannot render (no single Distributed Map, a placeholder the
#: stack does not fill): the renderer's own error.
DefinitionShapeError = DefinitionError

#: Docker build context = repository root, reduced to what the Dockerfile copies
#: (``.dockerignore`` syntax: exclude everything, then re-include).
IMAGE_ASSET_EXCLUDE = [
    "*",
    "!lambdas",
    "!plateseg",
    "!requirements.lock",
    "!pyproject.toml",
    "**/__pycache__",
    "**/*.pyc",
]

_RUNS = "runs/*"
_STORE_ENV = {
    "PLATESEG_HOME": "/tmp/plateseg",
    "POWERTOOLS_SERVICE_NAME": "plateseg",
    "POWERTOOLS_METRICS_NAMESPACE": "plateseg",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
}


def check_substitutions(definition: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The substitutions, if they fill exactly the definition's placeholders."""
    wanted = placeholders(json.dumps(definition))
    if wanted != set(values):
        raise DefinitionShapeError(
            f"{ASL_PATH.name}: placeholders {sorted(wanted)} but the stack supplies "
            f"{sorted(values)}; keep SUBSTITUTION_KEYS and the file in step"
        )
    return values


class PipelineStack(Stack):
    """Lookup, Segment and Aggregate Lambdas and the Distributed Map state machine.

    Parameters
    ----------
    scope, construct_id
        As for any construct.
    bucket : aws_s3.IBucket
        The store (from :class:`stacks.storage.StorageStack`).
    config : PlatesegConfig
        Validated tunables (stage, Map batching and concurrency, Segment sizing, retry).
    database : DatabaseAccess
        VPC, client security group and secret of the database Aggregate writes to.
    state_machine_name : str
        Fixed name of the state machine; the role's ``states:*`` statements are built from
        it (the state machine's own ARN attribute would make a dependency cycle).
    **kwargs
        Passed to :class:`aws_cdk.Stack`.

    Attributes
    ----------
    functions : dict of str to aws_lambda.DockerImageFunction
        Keyed like :data:`HANDLERS`.
    state_machine : aws_stepfunctions.StateMachine
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket | str,
        config: PlatesegConfig,
        database: DatabaseAccess | ExistingDatabase,
        state_machine_name: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        bucket = resolve_bucket(self, bucket)
        database = resolve_access(self, database)
        removal = RemovalPolicy.DESTROY if config.removal == "DESTROY" else RemovalPolicy.RETAIN
        sizes = {
            "Lookup": (1024, Duration.minutes(5)),
            "Segment": (config.segment_memory_mb, Duration.seconds(config.segment_timeout_seconds)),
            "Aggregate": (1024, Duration.minutes(15)),
        }
        self.functions = {
            name: self._function(
                name, memory, timeout, bucket, removal, database if name == "Aggregate" else None
            )
            for name, (memory, timeout) in sizes.items()
        }
        self._grant_store(bucket)
        segment = self.functions["Segment"].node.default_child
        assert isinstance(segment, lambda_.CfnFunction)
        segment.reserved_concurrent_executions = config.segment_reserved_concurrency
        database.connect(self.functions["Aggregate"])

        definition = apply_tunables(load_asl(), config)
        map_name, map_state = distributed_map(definition)
        #: ``Label`` of the Distributed Map: Map Run ARNs and child metrics are keyed by it.
        self.map_label: str = map_state.get("Label", map_name)
        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{state_machine_name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=removal,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition, indent=2)),
            definition_substitutions=check_substitutions(definition, self._substitutions(bucket)),
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
            removal_policy=removal,
        )
        for statement in self._state_machine_statements(bucket, state_machine_name, definition):
            self.state_machine.add_to_role_policy(statement)

        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "BucketName", value=bucket.bucket_name)

    def _function(
        self,
        name: str,
        memory_mb: int,
        timeout: Duration,
        bucket: s3.IBucket,
        removal: RemovalPolicy,
        network: DatabaseAccess | None,
    ) -> lambda_.DockerImageFunction:
        code = lambda_.DockerImageCode.from_image_asset(
            str(REPO_ROOT),
            file=DOCKERFILE,
            cmd=[HANDLERS[name]],
            exclude=IMAGE_ASSET_EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        log_group = logs.LogGroup(
            self, f"{name}Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=removal
        )
        return lambda_.DockerImageFunction(
            self,
            name,
            code=code,
            description=f"plateseg {name.lower()} ({HANDLERS[name]})",
            architecture=lambda_.Architecture.X86_64,
            memory_size=memory_mb,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={"PLATESEG_STORE": f"s3://{bucket.bucket_name}", **_STORE_ENV},
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=[network.security_group] if network else None,
        )

    def _grant_store(self, bucket: s3.IBucket) -> None:
        """Each function reads and writes only the prefixes its step touches."""
        lookup, segment, aggregate = (self.functions[n] for n in ("Lookup", "Segment", "Aggregate"))
        bucket.grant_read(lookup, "experiments/*")
        bucket.grant_read(lookup, "models/*")  # the recipe's model is checked and pinned
        bucket.grant_put(lookup, _RUNS)
        # the run's owner (runs/<id>/owner.json, or an older run's lookup-report.json) is
        # read before anything is written; a stale layout snapshot is deleted
        bucket.grant_read(lookup, _RUNS)
        bucket.grant_delete(lookup, "runs/*/layout.csv")
        bucket.grant_read(segment, "experiments/*")
        bucket.grant_read(segment, "models/*")
        bucket.grant_put(segment, _RUNS)
        # Batch checkpoints (runs/<run_id>/batches/*.json), their Parquet parts and masks:
        # a retry of a run reuses the batches that fully succeeded instead of re-segmenting.
        bucket.grant_read(segment, _RUNS)
        bucket.grant_read(aggregate, _RUNS)
        bucket.grant_read(aggregate, "experiments/*/layout.csv")  # runs from before snapshots
        # parts and masks an earlier attempt of the run left are deleted after the commit
        bucket.grant_delete(aggregate, "runs/*/objects/*")
        bucket.grant_delete(aggregate, "runs/*/masks/*")

    def _substitutions(self, bucket: s3.IBucket) -> dict[str, str]:
        """``<Name>FunctionArn`` of every function and ``BucketName`` (the names of
        :data:`~plateseg.map_settings.SUBSTITUTION_KEYS`, as the local runner fills them)."""
        values = {f"{name}FunctionArn": fn.function_arn for name, fn in self.functions.items()}
        return {**values, "BucketName": bucket.bucket_name}

    def _state_machine_statements(
        self, bucket: s3.IBucket, name: str, definition: dict[str, Any]
    ) -> list[iam.PolicyStatement]:
        """Least-privilege statements for the role of a file-defined Distributed Map."""
        stack = Stack.of(self)

        def states_arn(resource: str, resource_name: str) -> str:
            return stack.format_arn(
                service="states",
                resource=resource,
                resource_name=resource_name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )

        map_name, map_state = distributed_map(definition)
        label = map_state.get("Label", map_name)
        executions = [states_arn("execution", f"{name}:*"), states_arn("execution", f"{name}/*")]
        return [
            iam.PolicyStatement(
                sid="InvokePipelineFunctions",
                actions=["lambda:InvokeFunction"],
                resources=[fn.function_arn for fn in self.functions.values()],
            ),
            iam.PolicyStatement(
                sid="ReadManifest",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(_RUNS)],
            ),
            iam.PolicyStatement(
                sid="WriteMapResults",
                actions=[
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload",
                ],
                resources=[bucket.arn_for_objects(_RUNS)],
            ),
            iam.PolicyStatement(
                sid="StartMapRuns",
                actions=["states:StartExecution"],
                resources=[states_arn("stateMachine", name)],
            ),
            iam.PolicyStatement(
                sid="ManageMapRunExecutions",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=executions,
            ),
            iam.PolicyStatement(
                sid="RedriveMapRuns",
                actions=["states:RedriveExecution"],
                resources=[states_arn("execution", f"{name}/{label}:*")],
            ),
        ]
