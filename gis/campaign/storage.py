"""Content-addressed blob storage behind a small interface (put/get/exists/delete by key): files under FIRELANE_HOME."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from gis.config import home_settings, photo_settings

#: Keys are `<kind>/<sha256 hex>`: nothing a client sends ever becomes part of a path.
KEY = re.compile(r"^(photos|thumbs)/[0-9a-f]{64}$")


class BadKey(ValueError):
    """A key that is not `<kind>/<sha256>` (no client-chosen names reach the store)."""


def check_key(key: str) -> str:
    if not KEY.fullmatch(key):
        raise BadKey(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    """What photos need of a blob store; an S3-compatible backend implements the same four calls."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...


class FileStorage:
    """Blobs as files `<root>/<kind>/<ab>/<sha256>`, written atomically (temp file + rename), never overwritten."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        kind, digest = check_key(key).split("/")
        return self.root / kind / digest[:2] / digest

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():
            return  # same key, same content
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def older_than(self, seconds: float) -> Iterator[str]:
        """Keys of blobs written more than `seconds` ago (for garbage collection of unreferenced blobs)."""
        cutoff = time.time() - seconds
        for kind in ("photos", "thumbs"):
            for path in sorted((self.root / kind).glob("??/*")):
                key = f"{kind}/{path.name}"
                if KEY.fullmatch(key) and path.stat().st_mtime < cutoff:
                    yield key


@lru_cache
def _store(backend: str, root: str) -> Storage:
    if backend == "file":
        return FileStorage(Path(root))
    raise ValueError(f"unknown photo storage backend {backend!r} (FIRELANE_PHOTO_BACKEND); known: file")


def storage() -> Storage:
    """The configured store (FIRELANE_PHOTO_BACKEND; default files under FIRELANE_HOME/photos)."""
    return _store(photo_settings().backend, str(home_settings().home / "photos"))
