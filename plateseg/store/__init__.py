"""Object store: one interface (:class:`Store`), S3 and a local folder behind it.

>>> from plateseg.store import open_store
>>> store = open_store("/tmp/plateseg-doctest-store")
>>> store.put_bytes("a/b.txt", b"hi"); store.get_bytes("a/b.txt")
b'hi'
"""

from __future__ import annotations

from plateseg.settings import get_settings
from plateseg.store.base import ObjectInfo, Store, check_key, get_json, put_json
from plateseg.store.local import LocalStore
from plateseg.store.s3 import S3Store

__all__ = [
    "LocalStore",
    "ObjectInfo",
    "S3Store",
    "Store",
    "check_key",
    "get_json",
    "open_store",
    "put_json",
    "store_for_bucket",
]


def open_store(location: str | None = None) -> Store:
    """Open ``s3://bucket`` or a folder; ``None`` opens the configured store.

    Parameters
    ----------
    location : str, optional
        ``s3://bucket-name`` or a folder path. Defaults to ``Settings.store_location``.
    """
    location = location or get_settings().store_location
    if location.startswith("s3://"):
        bucket = location[len("s3://") :].strip("/")
        return S3Store(bucket)
    return LocalStore(location)


def store_for_bucket(bucket: str) -> Store:
    """The store a handler should use for the bucket named in its event.

    Under the local engine the configured store is a folder, and the bucket name the
    local runner substitutes for ``${BucketName}`` (``Settings.local_bucket``) maps to
    it. Any other bucket name is an S3 bucket (on AWS, the one CDK substituted).
    """
    settings = get_settings()
    location = settings.store_location
    if bucket == settings.local_bucket and not location.startswith("s3://"):
        return LocalStore(location)
    return S3Store(bucket)
