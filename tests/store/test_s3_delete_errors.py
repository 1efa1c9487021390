"""S3 DeleteObjects answers 200 and lists the keys it did not delete: that is an error."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from plateseg.errors import StoreError
from plateseg.store.s3 import S3Store


def test_keys_s3_refused_to_delete_raise_naming_the_key() -> None:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    listed = {
        "IsTruncated": False,
        "KeyCount": 1,
        "Contents": [
            {
                "Key": "runs/r/layout.csv",
                "Size": 3,
                "ETag": '"e"',
                "LastModified": datetime.now(UTC),
            }
        ],
    }
    refused = {
        "Errors": [{"Key": "runs/r/layout.csv", "Code": "AccessDenied", "Message": "Access Denied"}]
    }
    with Stubber(client) as stub:  # botocore's recorded-response transport, no network
        stub.add_response("list_objects_v2", listed)
        stub.add_response("delete_objects", refused)
        with pytest.raises(StoreError, match=r"runs/r/layout.csv: not deleted \(AccessDenied"):
            S3Store("bucket", client).delete_prefix("runs/r/layout.csv")
