"""Where uploaded files live: a local folder by default, an S3-compatible bucket at scale.

Files are stored under generated keys, never under the name a reader gave them, and never
below a static path: staff download them through a checked route.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import Flask, current_app, render_template

from desk.config import SettingsError

CHUNK = 64 * 1024
#: A key as :func:`new_key` makes it: nothing else in a storage is ever listed or swept.
KEY_PATTERN = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}")
#: In a local folder, also the temporary files of writes that never finished.
LOCAL_FILE_PATTERN = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/(?:[0-9a-f]{32}|tmp\w+)")


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

    def list_files(self) -> Iterator[tuple[str, datetime]]: ...

    def check(self) -> None: ...


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

    def list_files(self) -> Iterator[tuple[str, datetime]]:
        """Every stored file (and unfinished write) with its modification time, in no order."""
        for path in self.root.glob("*/*/*"):
            key = path.relative_to(self.root).as_posix()
            if not LOCAL_FILE_PATTERN.fullmatch(key):
                continue
            try:
                modified = path.stat().st_mtime
            except FileNotFoundError:  # deleted meanwhile
                continue
            yield key, datetime.fromtimestamp(modified, UTC)

    def check(self) -> None:
        """Raise StorageError unless a file can be written here now (the health check)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".health-") as probe:
                probe.write(b"ok")
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as error:
            raise StorageError(f"cannot write to {self.root}: {error.strerror or error}") from error


def init_app(app: Flask) -> None:
    """Open the configured storage; a storage failure no view handles is a 503 page."""
    url = app.config["DESK_STORAGE_URL"]
    if not url:
        storage: Storage = LocalStorage(Path(app.instance_path) / "files")
    elif url.startswith("s3://"):
        from desk.core.s3 import S3Storage

        try:
            storage = S3Storage.from_url(url)
        except ValueError as error:
            raise SettingsError(f"DESK_STORAGE_URL: {error}") from None
    else:
        storage = LocalStorage(Path(url.removeprefix("file://")))
    app.extensions["desk_storage"] = storage
    app.register_error_handler(StorageError, storage_unavailable)


def storage_unavailable(error: StorageError) -> tuple[str, int, dict[str, str]]:
    """The friendly page for a storage that is full, unwritable or unreachable.

    The intake form and API answer this themselves, keeping what the reader typed; this page
    is for anything else that meets a broken storage.
    """
    current_app.logger.error("storage unavailable: %s", error)
    headers = {"Retry-After": "300", "Cache-Control": "no-store"}
    return render_template("errors/storage.html"), 503, headers


def get_storage() -> Storage:
    return current_app.extensions["desk_storage"]
