"""Stateful resources, apart from the stateless pipeline: the store bucket.

The bucket holds ``experiments/`` (input), ``runs/`` (manifests, Map results, Parquet,
masks) and ``models/``. In ``prod`` it survives stack deletion; in ``dev`` it is emptied
and deleted with the stack. The database joins this stack in a later issue.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import Stage

__all__ = ["StorageStack"]


class StorageStack(Stack):
    """The store bucket: encrypted, private, TLS only, versioned.

    Parameters
    ----------
    scope, construct_id
        As for any construct.
    stage : {"dev", "prod"}
        ``prod`` retains the bucket on deletion; ``dev`` destroys it and its objects.
    **kwargs
        Passed to :class:`aws_cdk.Stack` (``description``, ``env``, ...).

    Attributes
    ----------
    bucket : aws_s3.Bucket
        The store; Lambdas get ``PLATESEG_STORE=s3://<bucket>``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, **kwargs: Any):
        super().__init__(scope, construct_id, **kwargs)
        prod = stage == "prod"
        self.bucket = s3.Bucket(
            self,
            "Store",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions-and-uploads",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
            auto_delete_objects=not prod,
        )
        CfnOutput(self, "BucketName", value=self.bucket.bucket_name)
