"""Where uploaded files live: a local folder by default, an S3-compatible bucket at scale.

Files are stored under generated keys, never under the name a reader gave them, and never
below a static path: staff download them through a checked route.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask, current_app

CHUNK = 64 * 1024


class StorageError(RuntimeError):
    """The storage could not take or give a file (disk full, permissions, network)."""


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str


class Storage(Protocol):
    def save(self, stream: BinaryIO) -> StoredFile: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


def new_key() -> str:
    """A random key, sharded by its first characters so no folder grows too large."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token[2:4]}/{token}"


class LocalStorage:
    """Files in a folder; written to a temporary name first and renamed, so never half there."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError(f"key outside the storage: {key!r}")
        return path

    def save(self, stream: BinaryIO) -> StoredFile:
        key = new_key()
        path = self._path(key)
        digest = hashlib.sha256()
        size = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
                try:
                    while chunk := stream.read(CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        handle.write(chunk)
                    handle.flush()
                    os.fsync(handle.fileno())
                except BaseException:
                    Path(handle.name).unlink(missing_ok=True)
                    raise
            os.replace(handle.name, path)
        except OSError as error:
            raise StorageError(f"could not store the file: {error.strerror or error}") from error
        return StoredFile(key=key, size=size, sha256=digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


def init_app(app: Flask) -> None:
    url = app.config["DESK_STORAGE_URL"]
    if not url:
        storage: Storage = LocalStorage(Path(app.instance_path) / "files")
    elif url.startswith("s3://"):
        from desk.core.s3 import S3Storage

        storage = S3Storage.from_url(url)
    else:
        storage = LocalStorage(Path(url.removeprefix("file://")))
    app.extensions["desk_storage"] = storage


def get_storage() -> Storage:
    return current_app.extensions["desk_storage"]
