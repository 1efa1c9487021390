"""Stateful resources, apart from the stateless pipeline: the store bucket.

The bucket holds ``experiments/`` (input), ``runs/`` (manifests, Map results, Parquet,
masks) and ``models/``. In ``prod`` it survives stack deletion; in ``dev`` it is emptied
and deleted with the stack. With ``existing_bucket_name`` set, no bucket is made: app.py
skips this stack and the pipeline imports the named bucket (its encryption, versioning and
lifecycle stay the owner's business).

Lifecycle: S3 filters by key prefix only, so the rules are on ``runs/`` (intermediate
artefacts: manifests, Map results, masks, Parquet parts): old versions left by retries
(which overwrite deterministic keys) expire after 7 days, current objects move to
Intelligent-Tiering after 30 days and, if ``runs_expiration_days`` is set, expire then.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import PlatesegConfig

__all__ = ["StorageStack", "resolve_bucket", "store_bucket_name"]

#: Age at which ``runs/`` objects move to Intelligent-Tiering (if they live longer).
_TIERING_DAYS = 30


class StorageStack(Stack):
    """The store bucket: encrypted, private, TLS only, versioned.

    Parameters
    ----------
    scope, construct_id
        As for any construct.
    config : PlatesegConfig
        ``removal`` (RETAIN keeps the bucket; DESTROY empties and deletes it) and
        ``runs_expiration_days``.
    **kwargs
        Passed to :class:`aws_cdk.Stack` (``description``, ``env``, ...).

    Attributes
    ----------
    bucket : aws_s3.Bucket
        The store; Lambdas get ``PLATESEG_STORE=s3://<bucket>``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatesegConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        destroy = config.removal == "DESTROY"
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            lifecycle_rules=[s3.LifecycleRule(id="expire-logs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN,
            auto_delete_objects=destroy,
        )
        self.bucket = s3.Bucket(
            self,
            "Store",
            bucket_name=store_bucket_name(config.stage),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="store/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions-and-uploads",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                s3.LifecycleRule(
                    id="runs-intermediate-artefacts",
                    prefix="runs/",
                    noncurrent_version_expiration=Duration.days(7),
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                            transition_after=Duration.days(_TIERING_DAYS),
                        )
                    ]
                    if (config.runs_expiration_days or _TIERING_DAYS + 1) > _TIERING_DAYS
                    else None,
                    expiration=(
                        Duration.days(config.runs_expiration_days)
                        if config.runs_expiration_days
                        else None
                    ),
                ),
            ],
            removal_policy=RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN,
            auto_delete_objects=destroy,
        )
        CfnOutput(self, "BucketName", value=self.bucket.bucket_name)


def store_bucket_name(stage: str) -> str:
    """``plateseg-<stage>-store-<account>-<region>``: fixed, so other stacks name it.

    The pipeline and web stacks import the bucket by this name instead of a cross-stack
    reference: they can be deployed, replaced or destroyed without touching the storage
    stack's exports, and their IAM statements carry no cross-stack tokens.
    """
    return f"plateseg-{stage}-store-{Aws.ACCOUNT_ID}-{Aws.REGION}"


def resolve_bucket(scope: Construct, bucket: s3.IBucket | str) -> s3.IBucket:
    """``bucket`` itself, or the existing bucket of that name imported into ``scope``."""
    if isinstance(bucket, str):
        return s3.Bucket.from_bucket_name(scope, "ExistingStore", bucket)
    return bucket
