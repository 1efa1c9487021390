"""A folder that behaves like an S3 bucket: same keys, atomic writes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from plateseg.errors import ObjectNotFoundError, StoreError
from plateseg.store.base import ObjectInfo, check_key

__all__ = ["LocalStore"]


class LocalStore:
    """Objects are files under ``root``; key ``a/b.tif`` is ``root/a/b.tif``.

    Parameters
    ----------
    root : str or Path
        Folder holding the objects; created on first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.name = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(key, str(self.root)) from None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from exc

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from exc

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base if base else self.root
        if not start.is_dir():
            return
        found: list[Path] = []
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                found.append(Path(dirpath) / name)
        keyed = sorted((p.relative_to(self.root).as_posix(), p) for p in found)
        for key, path in keyed:
            if not key.startswith(prefix):
                continue
            stat = path.stat()
            etag = hashlib.md5(
                f"{stat.st_size}:{stat.st_mtime_ns}".encode(), usedforsecurity=False
            ).hexdigest()
            yield ObjectInfo(
                key=key,
                size=stat.st_size,
                etag=f'"{etag}"',
                last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(prefix)]
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        return len(keys)

    def uri(self, key: str) -> str:
        return str(self.root / key)
