"""A folder that behaves like an S3 bucket: same keys, atomic writes.

Symbolic links are followed only while they stay inside the folder: a key that leads
through a link to anything outside the store root is refused with a
:class:`~plateseg.errors.StoreKeyError` naming the key and the target, and
:meth:`LocalStore.list` skips such links (and broken or looping ones) rather than
silently following them; :meth:`LocalStore.refused_links` names what it skipped, so
Lookup can report a symlinked plate folder instead of letting it vanish.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from plateseg.errors import ObjectNotFoundError, StoreError, StoreKeyError
from plateseg.store.base import ObjectInfo, check_key

__all__ = ["LocalStore", "RefusedLink"]


@dataclass(frozen=True)
class RefusedLink:
    """A symbolic link in the store that :meth:`LocalStore.list` did not follow.

    Attributes
    ----------
    key : str
        The link's own key (``experiments/E1/P2`` for a linked plate folder).
    target : str
        Where it points, resolved.
    reason : str
        ``"outside the store"``, ``"broken"`` (the target does not exist) or
        ``"a loop"`` (the target is a folder that holds the link).
    """

    key: str
    target: str
    reason: str


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
        path = self.root / check_key(key)
        target = path.resolve()
        if not target.is_relative_to(self.root):
            raise StoreKeyError(
                f"store key {key!r} leads through a symbolic link to {target}, outside the "
                f"store {self.root}; links may only point inside the store (copy the files "
                "in, or make the store's folder the one holding them)"
            )
        return path

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(key, str(self.root)) from None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from exc

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(key, str(self.root)) from None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror}") from exc
        if not path.is_file():
            raise ObjectNotFoundError(key, str(self.root))
        return stat.st_size

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

    def _scan(self, start: Path) -> tuple[list[Path], list[RefusedLink]]:
        """Files under ``start`` (following links that stay inside the store), and the
        links refused on the way."""
        files: list[Path] = []
        refused: list[RefusedLink] = []

        def refuse(target: Path) -> str | None:
            if not target.is_relative_to(self.root):
                return "outside the store"
            if not target.exists():
                return "broken"
            return None

        def visit(folder: Path, ancestors: frozenset[Path]) -> None:
            try:
                entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
            except OSError:
                return
            for entry in entries:
                path = Path(entry.path)
                if entry.is_symlink():
                    target = path.resolve()
                    reason = refuse(target) or ("a loop" if target in ancestors else None)
                    if reason:
                        key = path.relative_to(self.root).as_posix()
                        refused.append(RefusedLink(key, str(target), reason))
                    elif target.is_dir():
                        visit(path, ancestors | {target})
                    else:
                        files.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    visit(path, ancestors | {path.resolve()})
                elif not entry.name.startswith(".tmp-"):
                    files.append(path)

        real = start.resolve()
        reason = refuse(real)
        if reason == "outside the store":  # a prefix folder that is itself a link out
            key = start.relative_to(self.root).as_posix()
            return [], [RefusedLink(key, str(real), reason)]
        if real.is_dir():
            visit(start, frozenset({real}))
        return files, refused

    def _start(self, prefix: str) -> Path:
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        return self.root / base if base else self.root

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        found, _refused = self._scan(self._start(prefix))
        keyed = sorted((p.relative_to(self.root).as_posix(), p) for p in found)
        for key, path in keyed:
            if not key.startswith(prefix):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted while listing
                continue
            etag = hashlib.md5(
                f"{stat.st_size}:{stat.st_mtime_ns}".encode(), usedforsecurity=False
            ).hexdigest()
            yield ObjectInfo(
                key=key,
                size=stat.st_size,
                etag=f'"{etag}"',
                last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            )

    def refused_links(self, prefix: str) -> tuple[RefusedLink, ...]:
        """The symbolic links under ``prefix`` that :meth:`list` did not follow, by key.

        A link is refused when its target is outside the store root, does not exist,
        or is a folder that contains the link (a loop).
        """
        if not self.root.is_dir():
            return ()
        _found, refused = self._scan(self._start(prefix))
        chosen = [
            link
            for link in refused
            if link.key.startswith(prefix) or prefix.startswith(f"{link.key}/")
        ]
        return tuple(sorted(chosen, key=lambda link: link.key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        return self.delete_keys([info.key for info in self.list(prefix)])

    def delete_keys(self, keys: Sequence[str]) -> int:
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        return len(keys)

    def uri(self, key: str) -> str:
        return str(self.root / key)
