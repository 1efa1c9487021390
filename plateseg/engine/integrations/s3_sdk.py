"""``arn:aws:states:::aws-sdk:s3:<action>`` on the engine's stores.

Parameters and results are the AWS SDK's, in PascalCase, as Step Functions records
them (recorded AWS responses in LocalStack's snapshots,
``tests/aws/services/stepfunctions/v2/services/test_aws_sdk_task_service.snapshot.json``
and ``…/error_handling/test_aws_sdk.snapshot.json``):

* ``getObject`` → ``AcceptRanges``, ``ContentLength``, ``ETag`` (the quoted MD5 of the
  content), ``LastModified``, ``Metadata``, ``ServerSideEncryption`` and ``Body``, the
  content as text. ``ContentType`` is left out: a store does not keep it.
* ``putObject`` writes ``Body`` serialised as compact JSON — a string body is stored
  *with its quotes* (AWS records ``"text data"`` as the 11 bytes ``"text data"``) — and
  returns ``ChecksumCRC32``, ``ChecksumType``, ``ETag``, ``ServerSideEncryption``.
* errors are ``S3.<Code>Exception`` (the SDK integration naming rule,
  ``ServiceName.ErrorName`` with the ``Exception`` suffix), with the SDK's cause text:
  ``S3.NoSuchKeyException``, ``S3.NoSuchBucketException``; any other S3 error is the
  SDK's generic ``S3.S3Exception``.

Where the recordings are silent the engine's choices are: timestamps as
``2024-05-01T12:00:00Z``; ``headObject`` of a missing key is ``S3.NoSuchKeyException``
(the SDK's modelled 404); ``deleteObject`` of a missing key succeeds with ``{}`` (S3
answers 204); ``Body`` that is not UTF-8 is decoded with replacement characters.
A bucket is the store the engine's ``buckets`` seam gives; a local folder that does not
exist is a missing bucket.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from plateseg.engine.retry import TaskFailure
from plateseg.errors import ObjectNotFoundError, PlatesegError, StatesError, TransientError
from plateseg.store import LocalStore, ObjectInfo, Store

if TYPE_CHECKING:
    from plateseg.engine.context import Runtime

__all__ = ["run_s3"]

#: S3 answers at most this many keys per listObjectsV2 call.
_MAX_KEYS = 1000
_SSE = "AES256"  # S3 encrypts every new object (SSE-S3) and says so in every answer


def _service(status: int) -> str:
    request = secrets.token_hex(8).upper()
    extended = base64.b64encode(secrets.token_bytes(48)).decode()
    return (
        f"(Service: S3, Status Code: {status}, Request ID: {request}, "
        f"Extended Request ID: {extended})"
    )


def _no_such_key() -> TaskFailure:
    cause = f"The specified key does not exist. {_service(404)}"
    return TaskFailure("S3.NoSuchKeyException", cause)


def _no_such_bucket() -> TaskFailure:
    return TaskFailure(
        "S3.NoSuchBucketException", f"The specified bucket does not exist {_service(404)}"
    )


def _s3_error(message: str, status: int = 400) -> TaskFailure:
    return TaskFailure("S3.S3Exception", f"{message} {_service(status)}")


def _date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def _string(params: dict[str, Any], name: str, action: str, default: str | None = None) -> str:
    value = params.get(name, default)
    if not isinstance(value, str):
        raise TaskFailure(
            "S3.SdkClientException",
            f"{action}: parameter {name} must be a string, got {json.dumps(value)}",
        )
    return value


def _store(rt: Runtime, bucket: str) -> Store:
    try:
        store: Store = rt.buckets(bucket)
    except PlatesegError as exc:  # the seam knows no such bucket
        raise TaskFailure(
            "S3.NoSuchBucketException",
            f"The specified bucket does not exist ({exc}) {_service(404)}",
        ) from None
    if isinstance(store, LocalStore) and not store.root.is_dir():
        raise _no_such_bucket()
    return store


def _info(store: Store, key: str) -> ObjectInfo | None:
    return next((info for info in store.list(key) if info.key == key), None)


def _last_modified(store: Store, key: str) -> str:
    info = _info(store, key)
    return _date(info.last_modified if info is not None else datetime.now(UTC))


def _get_object(store: Store, bucket: str, params: dict[str, Any]) -> dict[str, Any]:
    key = _string(params, "Key", "getObject")
    data = store.get_bytes(key)
    return {
        "AcceptRanges": "bytes",
        "ContentLength": len(data),
        "ETag": _etag(data),
        "LastModified": _last_modified(store, key),
        "Metadata": {},
        "ServerSideEncryption": _SSE,
        "Body": data.decode("utf-8", errors="replace"),
    }


def _head_object(store: Store, bucket: str, params: dict[str, Any]) -> dict[str, Any]:
    key = _string(params, "Key", "headObject")
    data = store.get_bytes(key)  # the ETag is the content's MD5
    return {
        "AcceptRanges": "bytes",
        "ContentLength": len(data),
        "ETag": _etag(data),
        "LastModified": _last_modified(store, key),
        "Metadata": {},
        "ServerSideEncryption": _SSE,
    }


def _put_object(store: Store, bucket: str, params: dict[str, Any]) -> dict[str, Any]:
    key = _string(params, "Key", "putObject")
    content_type = _string(params, "ContentType", "putObject", "text/plain; charset=UTF-8")
    data = b""
    if "Body" in params:  # any JSON value, serialised compactly (a string keeps its quotes)
        body = json.dumps(params["Body"], separators=(",", ":"), ensure_ascii=False)
        data = body.encode()
    store.put_bytes(key, data, content_type=content_type)
    crc = zlib.crc32(data).to_bytes(4, "big")
    return {
        "ChecksumCRC32": base64.b64encode(crc).decode(),
        "ChecksumType": "FULL_OBJECT",
        "ETag": _etag(data),
        "ServerSideEncryption": _SSE,
    }


def _delete_object(store: Store, bucket: str, params: dict[str, Any]) -> dict[str, Any]:
    store.delete_keys([_string(params, "Key", "deleteObject")])
    return {}


def _copy_object(rt: Runtime, store: Store, bucket: str, params: dict[str, Any]) -> dict[str, Any]:
    key = _string(params, "Key", "copyObject")
    source = urllib.parse.unquote(_string(params, "CopySource", "copyObject")).lstrip("/")
    source_bucket, sep, source_key = source.partition("/")
    if not sep or not source_bucket or not source_key or "?" in source_key:
        raise _s3_error(f"Invalid copy source: {source!r} (expected bucket/key)")
    data = _store(rt, source_bucket).get_bytes(source_key)
    store.put_bytes(key, data)
    return {
        "CopyObjectResult": {"ETag": _etag(data), "LastModified": _last_modified(store, key)},
        "ServerSideEncryption": _SSE,
    }


def _token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def _marker(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _s3_error("The continuation token provided is incorrect") from None


def _list_objects_v2(store: Store, bucket: str, params: dict[str, Any]) -> dict[str, Any]:
    prefix = _string(params, "Prefix", "listObjectsV2", "")
    delimiter = params.get("Delimiter")
    if delimiter is not None and not isinstance(delimiter, str):
        raise TaskFailure("S3.SdkClientException", "listObjectsV2: Delimiter must be a string")
    max_keys = params.get("MaxKeys", _MAX_KEYS)
    if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 0:
        raise _s3_error(f"Provided max-keys not an integer or within integer range: {max_keys}")
    limit = min(max_keys, _MAX_KEYS)
    token = params.get("ContinuationToken")
    start_after = params.get("StartAfter")
    after = _marker(_string(params, "ContinuationToken", "listObjectsV2")) if token else None
    if after is None and start_after:
        after = _string(params, "StartAfter", "listObjectsV2")
    contents: list[dict[str, Any]] = []
    prefixes: list[str] = []
    truncated, last = False, ""
    for entry, info in _entries(store.list(prefix), prefix, delimiter or "", after):
        if len(contents) + len(prefixes) >= limit:
            truncated = limit > 0
            break
        last = entry
        if info is None:
            prefixes.append(entry)
        else:
            contents.append(
                {
                    "ETag": info.etag,
                    "Key": info.key,
                    "LastModified": _date(info.last_modified),
                    "Size": info.size,
                    "StorageClass": "STANDARD",
                }
            )
    result: dict[str, Any] = {}
    if contents:
        result["Contents"] = contents
    if prefixes:
        result["CommonPrefixes"] = [{"Prefix": p} for p in prefixes]
    if token:
        result["ContinuationToken"] = token
    if delimiter:
        result["Delimiter"] = delimiter
    result.update(IsTruncated=truncated, KeyCount=len(contents) + len(prefixes), MaxKeys=max_keys)
    result["Name"] = bucket
    if truncated:
        result["NextContinuationToken"] = _token(last)
    result["Prefix"] = prefix
    if start_after:
        result["StartAfter"] = start_after
    return result


def _entries(
    listed: Iterator[ObjectInfo], prefix: str, delimiter: str, after: str | None
) -> Iterator[tuple[str, ObjectInfo | None]]:
    """Keys (with their info) and common prefixes (info ``None``) after ``after``."""
    seen = after if after is not None and delimiter and after.endswith(delimiter) else None
    for info in listed:
        if after is not None and info.key <= after:
            continue
        if delimiter:
            cut = info.key.find(delimiter, len(prefix))
            if cut >= 0:
                common = info.key[: cut + len(delimiter)]
                if common != seen:
                    seen = common
                    yield common, None
                continue
        yield info.key, info


_ACTIONS: dict[str, Callable[[Store, str, dict[str, Any]], dict[str, Any]]] = {
    "getObject": _get_object,
    "headObject": _head_object,
    "putObject": _put_object,
    "deleteObject": _delete_object,
    "listObjectsV2": _list_objects_v2,
}


def run_s3(action: str, params: Any, rt: Runtime) -> dict[str, Any]:
    """Run one ``aws-sdk:s3`` action; return the SDK's response.

    Raises
    ------
    TaskFailure
        ``S3.NoSuchKeyException``, ``S3.NoSuchBucketException``, ``S3.S3Exception``
        (any other S3 error), ``S3.SdkClientException`` (a parameter of the wrong type).
    """
    if not isinstance(params, dict):
        raise TaskFailure("S3.SdkClientException", f"{action}: parameters must be an object")
    bucket = _string(params, "Bucket", action)
    store = _store(rt, bucket)
    try:
        if action == "copyObject":
            return _copy_object(rt, store, bucket, params)
        return _ACTIONS[action](store, bucket, params)
    except ObjectNotFoundError:
        raise _no_such_key() from None
    except StatesError:
        raise
    except PlatesegError as exc:  # a store error with no S3 name of its own
        if "NoSuchBucket" in str(exc):
            raise _no_such_bucket() from None
        raise _s3_error(str(exc), 503 if isinstance(exc, TransientError) else 500) from None
