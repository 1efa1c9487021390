"""The object store interface: S3 semantics, two implementations, the same keys."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from plateseg.errors import StoreKeyError

__all__ = ["ObjectInfo", "Store", "check_key", "get_json", "put_json"]


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object, as ``s3:listObjectsV2`` describes it."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@runtime_checkable
class Store(Protocol):
    """A flat key → bytes store. Keys use ``/`` and are always relative."""

    #: Bucket name (S3) or folder (local) this store reads and writes.
    name: str

    def get_bytes(self, key: str) -> bytes:
        """Return the object's bytes; :class:`~plateseg.errors.ObjectNotFoundError` if absent."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes, without reading it (``HeadObject``; a ``stat``);
        :class:`~plateseg.errors.ObjectNotFoundError` if absent."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write the object atomically (readers see the old or the new bytes, never half)."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key``."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; return how many."""
        ...

    def delete_keys(self, keys: Sequence[str]) -> int:
        """Delete exactly these objects (missing ones are fine); return how many were asked."""
        ...

    def uri(self, key: str) -> str:
        """A human-readable location for messages: ``s3://b/k`` or a file path."""
        ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`StoreKeyError`."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise StoreKeyError(f"unsafe store key {key!r}: keys are relative and use '/'")
    if any(part in ("..", ".") for part in key.split("/")):
        raise StoreKeyError(f"unsafe store key {key!r}: '.' and '..' segments are not allowed")
    return key


def get_json(store: Store, key: str) -> Any:
    """Read and parse a JSON object from the store."""
    return json.loads(store.get_bytes(key))


def put_json(store: Store, key: str, value: Any) -> None:
    """Serialise ``value`` as compact JSON and write it."""
    data = json.dumps(value, separators=(",", ":"), sort_keys=False).encode()
    store.put_bytes(key, data, content_type="application/json")
