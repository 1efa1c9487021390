"""Amazon S3 through boto3, with S3 faults mapped onto the plateseg error tree."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


class _FaultBody:
    """The raw body botocore reads from a short-circuited (fault-injected) response."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_args: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def _install_faults(client: Any) -> None:
    """Answer S3 requests with injected errors when ``PLATESEG_FAULTS`` says so (tests only).

    The request never leaves; botocore parses the injected HTTP error as if S3 had sent
    it, so the fault goes through botocore's own retries and :func:`_translate`.
    """
    from plateseg.engine import faults

    plan = faults.active_plan()
    if plan is None or not any(rule.at == "s3" for rule in plan.rules):
        return
    from botocore.awsrequest import AWSResponse

    def answer(request: Any, event_name: str = "", **_kwargs: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        rule = faults.fire("s3", operation, str(request.url))
        if rule is None:
            return None
        code = str(rule.spec["code"])
        status = int(rule.spec.get("status", 503))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
            f"{code}</Code><Message>injected fault: {code}</Message>"
            "<RequestId>PLATESEGFAULT</RequestId></Error>"
        ).encode()
        headers = {"Content-Type": "application/xml", "Content-Length": str(len(body))}
        return AWSResponse(request.url, status, headers, _FaultBody(body))

    client.meta.events.register_first("before-send.s3", answer)


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
        self._faults_checked = False

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        if not self._faults_checked:
            self._faults_checked = True
            _install_faults(self._client)
        return self._client

    def get_bytes(self, key: str) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.name, Key=check_key(key))["Body"]
            data: bytes = body.read()
            return data
        except Exception as exc:
            raise _translate(exc, key, self.name) from exc

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.name, Key=check_key(key))
        except Exception as exc:
            raise _translate(exc, key, self.name) from exc
        return int(head["ContentLength"])

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
        return self.delete_keys([info.key for info in self.list(prefix)], prefix)

    def delete_keys(self, keys: Sequence[str], where: str = "") -> int:
        """DeleteObjects in batches of 1000; a key S3 lists as not deleted raises."""
        where = where or "the keys given"
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                answer = self.client.delete_objects(Bucket=self.name, Delete={"Objects": chunk})
            except Exception as exc:
                raise _translate(exc, where, self.name) from exc
            errors = answer.get("Errors") or []
            if errors:  # DeleteObjects answers 200 and lists the keys it could not delete
                first = errors[0]
                raise StoreError(
                    f"s3://{self.name}/{first.get('Key', where)}: not deleted "
                    f"({first.get('Code', '?')}: {first.get('Message', '')}); "
                    f"{len(errors)} of {len(chunk)} keys ({where}) failed"
                )
        return len(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.name}/{key}"
