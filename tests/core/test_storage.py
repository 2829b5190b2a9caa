"""LocalStorage: files under generated keys, hashed as written, never half there, never outside."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import pytest

from desk.core.storage import CHUNK, LocalStorage, StorageError, get_storage, init_app


class BreaksAfter(io.RawIOBase):
    """A stream that gives ``good`` bytes, then raises ``error`` (a dropped upload, a bad disk)."""

    def __init__(self, good: int, error: BaseException) -> None:
        self.left = good
        self.error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            raise self.error
        size = min(len(buffer), self.left)
        buffer[:size] = b"x" * size
        self.left -= size
        return size


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if not path.is_dir()]


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files")


def test_save_open_exists_delete(storage: LocalStorage):
    stored = storage.save(io.BytesIO(b"a reader's scan"))
    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}", stored.key)
    first, second, token = stored.key.split("/")
    assert token.startswith(first + second)
    assert (storage.root / stored.key).is_file()
    assert storage.exists(stored.key)
    with storage.open(stored.key) as handle:
        assert handle.read() == b"a reader's scan"
    storage.delete(stored.key)
    assert not storage.exists(stored.key)
    assert files_under(storage.root) == []


def test_keys_are_generated_not_derived_from_the_content(storage: LocalStorage):
    first = storage.save(io.BytesIO(b"same bytes"))
    second = storage.save(io.BytesIO(b"same bytes"))
    assert first.key != second.key
    assert first.sha256 == second.sha256


@pytest.mark.parametrize(
    "data",
    [b"", b"short", os.urandom(CHUNK), os.urandom(3 * CHUNK + 17)],
    ids=["empty", "short", "one-chunk", "several-chunks"],
)
def test_size_and_sha256_are_those_of_the_bytes_written(storage: LocalStorage, data: bytes):
    stored = storage.save(io.BytesIO(data))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (storage.root / stored.key).read_bytes() == data


def test_deleting_a_missing_key_is_not_an_error(storage: LocalStorage):
    storage.delete("00/00/00000000000000000000000000000000")
    assert not storage.exists("00/00/00000000000000000000000000000000")


def test_opening_a_missing_key_raises_file_not_found(storage: LocalStorage):
    storage.root.mkdir()
    with pytest.raises(FileNotFoundError):
        storage.open("00/00/00000000000000000000000000000000")


@pytest.mark.parametrize(
    "key", ["../outside.txt", "ab/../../outside.txt", "/etc/passwd", "", ".", "ab/.."]
)
def test_a_key_never_escapes_the_root(tmp_path: Path, storage: LocalStorage, key: str):
    storage.root.mkdir()
    victim = tmp_path / "outside.txt"
    victim.write_bytes(b"not the storage's")
    with pytest.raises(StorageError, match="outside the storage"):
        storage.open(key)
    with pytest.raises(StorageError, match="outside the storage"):
        storage.exists(key)
    with pytest.raises(StorageError, match="outside the storage"):
        storage.delete(key)
    assert victim.read_bytes() == b"not the storage's"


def test_a_symlink_inside_the_root_does_not_lead_out_of_it(tmp_path: Path, storage: LocalStorage):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    storage.root.mkdir()
    (storage.root / "ab").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match="outside the storage"):
        storage.open("ab/secret.txt")
    with pytest.raises(StorageError, match="outside the storage"):
        storage.delete("ab/secret.txt")
    assert (outside / "secret.txt").exists()


def test_a_stream_failing_mid_read_leaves_no_file(storage: LocalStorage):
    stream = io.BufferedReader(BreaksAfter(3 * CHUNK, OSError(5, "Input/output error")))
    with pytest.raises(StorageError, match="Input/output error"):
        storage.save(stream)
    assert files_under(storage.root) == []


def test_an_interrupted_upload_leaves_no_file_and_keeps_its_error(storage: LocalStorage):
    """Not an OSError (e.g. the client went away): the error goes up as it is, nothing is kept."""

    class ClientGone(Exception):
        pass

    with pytest.raises(ClientGone):
        storage.save(io.BufferedReader(BreaksAfter(CHUNK + 5, ClientGone())))
    assert files_under(storage.root) == []


def test_a_write_failing_on_the_disk_leaves_no_file(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
):
    def disk_full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageError, match="No space left on device"):
        storage.save(io.BytesIO(b"x" * (2 * CHUNK)))
    assert files_under(storage.root) == []


def test_a_root_that_is_a_file_raises_storage_error(tmp_path: Path):
    """Tests run as root, where a read-only folder does not stop writes; a file in its place
    and a folder under /proc do."""
    blocker = tmp_path / "files"
    blocker.write_bytes(b"not a folder")
    with pytest.raises(StorageError, match="could not store the file"):
        LocalStorage(blocker).save(io.BytesIO(b"data"))
    assert blocker.read_bytes() == b"not a folder"


def test_a_root_where_nothing_can_be_created_raises_storage_error():
    storage = LocalStorage(Path("/proc/desk-storage-test"))
    with pytest.raises(StorageError, match="could not store the file"):
        storage.save(io.BytesIO(b"data"))


def test_init_app_defaults_to_the_instance_folder(app):
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    assert storage.root == Path(app.instance_path) / "files"
    stored = storage.save(io.BytesIO(b"through the app"))
    assert (Path(app.instance_path) / "files" / stored.key).read_bytes() == b"through the app"


@pytest.mark.parametrize("form", ["{}", "file://{}"])
def test_init_app_takes_a_folder(app, tmp_path: Path, form: str):
    app.config["DESK_STORAGE_URL"] = form.format(tmp_path / "attachments")
    init_app(app)
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "attachments"
