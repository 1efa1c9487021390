"""Amazon S3 through boto3, with S3 faults mapped onto the plateseg error tree."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from plateseg.errors import ObjectNotFoundError, StoreError, StoreUnavailableError
from plateseg.store.base import ObjectInfo, check_key

__all__ = ["S3Store"]

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
    }
)


def _translate(exc: Exception, key: str, bucket: str) -> Exception:
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFoundError(key, f"s3://{bucket}")
        if code in _TRANSIENT_CODES:
            return StoreUnavailableError(f"s3://{bucket}/{key}: S3 answered {code}; retry later")
        return StoreError(f"s3://{bucket}/{key}: {code}: {exc}")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError):
        return StoreUnavailableError(f"s3://{bucket}/{key}: {exc}")
    return exc


class S3Store:
    """Objects in one S3 bucket.

    Parameters
    ----------
    bucket : str
        Bucket name.
    client : botocore client, optional
        An ``s3`` client; by default one is created (and reused per process).
    """

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.name = bucket
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def get_bytes(self, key: str) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.name, Key=check_key(key))["Body"]
            data: bytes = body.read()
            return data
        except Exception as exc:
            raise _translate(exc, key, self.name) from exc

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(Bucket=self.name, Key=check_key(key), Body=data, **extra)
        except Exception as exc:
            raise _translate(exc, key, self.name) from exc

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=obj["Key"],
                        size=int(obj["Size"]),
                        etag=obj["ETag"],
                        last_modified=obj["LastModified"],
                    )
        except Exception as exc:
            raise _translate(exc, prefix, self.name) from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.name, Key=check_key(key))
            return True
        except Exception as exc:
            translated = _translate(exc, key, self.name)
            if isinstance(translated, ObjectNotFoundError):
                return False
            raise translated from exc

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.name, Delete={"Objects": chunk})
            except Exception as exc:
                raise _translate(exc, prefix, self.name) from exc
        return len(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}"
