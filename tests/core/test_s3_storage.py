"""S3Storage against a real S3 API server on loopback (moto's server, over HTTP, in a thread).

Nothing is mocked inside boto3: requests go through botocore's HTTP stack to the server, so
signing, multipart uploads, error answers, timeouts and retries behave as with any S3 endpoint.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from desk import create_app
from desk.core.s3 import PART_BYTES, MissingFile, S3Storage
from desk.core.storage import StorageError, get_storage
from tests.conftest import base_settings

REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of an S3 API server on 127.0.0.1, with made-up credentials in the env."""
    with pytest.MonkeyPatch.context() as env:
        # boto3's ordinary credential chain, fed from the environment only.
        env.setenv("AWS_ACCESS_KEY_ID", "desk-test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "desk-test-secret")
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        nowhere = tmp_path_factory.mktemp("aws") / "none"
        env.setenv("AWS_CONFIG_FILE", str(nowhere))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def storage_url(endpoint: str, bucket: str, prefix: str = "desk/files", **options: object) -> str:
    query = "&".join(f"{name}={value}" for name, value in options.items())
    return f"s3://{bucket}/{prefix}?endpoint_url={endpoint}&region={REGION}" + (
        f"&{query}" if query else ""
    )


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    """A plain boto3 client of the same server, to look behind the storage's back."""
    return S3Storage.from_url(storage_url(s3_endpoint, "any")).client


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A new, empty bucket for each test."""
    name = f"desk-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage(s3_endpoint: str, bucket: str) -> S3Storage:
    return S3Storage.from_url(storage_url(s3_endpoint, bucket))


def object_names(storage: S3Storage) -> list[str]:
    listing = storage.client.list_objects_v2(Bucket=storage.bucket)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def unfinished_uploads(storage: S3Storage) -> list[str]:
    listing = storage.client.list_multipart_uploads(Bucket=storage.bucket)
    return [entry["Key"] for entry in listing.get("Uploads", [])]


class BreaksAfter(io.RawIOBase):
    """A stream that gives ``good`` bytes, then raises ``error``."""

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


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# Behaviour shared with LocalStorage


def test_save_open_exists_delete(storage: S3Storage):
    stored = storage.save(io.BytesIO(b"a reader's scan"))
    assert object_names(storage) == [f"desk/files/{stored.key}"]
    assert storage.exists(stored.key)
    with storage.open(stored.key) as handle:
        assert handle.read() == b"a reader's scan"
    storage.delete(stored.key)
    assert not storage.exists(stored.key)
    assert object_names(storage) == []


def test_keys_are_generated_not_derived_from_the_content(storage: S3Storage):
    first = storage.save(io.BytesIO(b"same bytes"))
    second = storage.save(io.BytesIO(b"same bytes"))
    assert first.key != second.key
    assert first.sha256 == second.sha256
    assert len(first.key.split("/")) == 3


@pytest.mark.parametrize(
    "size",
    [0, 5, PART_BYTES - 1, PART_BYTES, 2 * PART_BYTES + 12345],
    ids=["empty", "short", "below-multipart", "one-part", "multipart"],
)
def test_size_and_sha256_are_those_of_the_bytes_stored(storage: S3Storage, size: int):
    data = os.urandom(size)
    stored = storage.save(io.BytesIO(data))
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    with storage.open(stored.key) as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == stored.sha256
    head = storage.client.head_object(Bucket=storage.bucket, Key=f"desk/files/{stored.key}")
    assert head["ContentLength"] == size


class Trickle(io.RawIOBase):
    """An unbuffered stream that never gives more than 64 KB per read, like a socket."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = min(len(buffer), 65536, len(self.data))
        buffer[:size] = self.data[:size]
        self.data = self.data[size:]
        return size


def test_a_stream_giving_short_reads_is_stored_whole(storage: S3Storage):
    data = os.urandom(2 * PART_BYTES + 100)
    stored = storage.save(Trickle(data))
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    # Sent in parts (a multipart ETag ends in -<parts>), not gathered into one body in memory.
    head = storage.client.head_object(Bucket=storage.bucket, Key=f"desk/files/{stored.key}")
    assert head["ETag"].strip('"').endswith("-3")
    with storage.open(stored.key) as handle:
        assert handle.read() == data


def test_open_streams_the_object_in_pieces(storage: S3Storage):
    data = os.urandom(300_000)
    stored = storage.save(io.BytesIO(data))
    with storage.open(stored.key) as handle:
        pieces = iter(lambda: handle.read(65536), b"")
        assert b"".join(pieces) == data


def test_a_bucket_without_prefix_keeps_keys_at_the_top(s3_endpoint: str, bucket: str):
    storage = S3Storage.from_url(storage_url(s3_endpoint, bucket, prefix=""))
    stored = storage.save(io.BytesIO(b"top"))
    assert object_names(storage) == [stored.key]
    assert storage.exists(stored.key)


def test_a_missing_key(storage: S3Storage):
    key = "00/00/00000000000000000000000000000000"
    assert not storage.exists(key)
    storage.delete(key)  # deleting what is not there is not an error
    with pytest.raises(MissingFile, match="no such file") as raised:
        storage.open(key)
    # Callers may catch it as LocalStorage raises it, or as any storage failure.
    assert isinstance(raised.value, FileNotFoundError)
    assert isinstance(raised.value, StorageError)


@pytest.mark.parametrize(
    "key", ["../outside", "ab/../../outside", "/etc/passwd", "", ".", "ab//cd", "ab\\..\\x"]
)
def test_a_key_never_escapes_the_prefix(storage: S3Storage, s3_client: Any, key: str):
    assert storage.prefix == "desk/files"
    s3_client.put_object(Bucket=storage.bucket, Key="desk/outside", Body=b"not in files/")
    for operation in (storage.open, storage.exists, storage.delete):
        with pytest.raises(StorageError, match="outside the storage"):
            operation(key)
    assert object_names(storage) == ["desk/outside"]


def test_a_stream_failing_mid_read_leaves_no_object(storage: S3Storage):
    stream = io.BufferedReader(BreaksAfter(1000, OSError(5, "Input/output error")))
    with pytest.raises(StorageError, match="Input/output error"):
        storage.save(stream)
    assert object_names(storage) == []


def test_a_stream_failing_mid_multipart_upload_leaves_nothing(storage: S3Storage):
    """Two parts are already on the server when the stream breaks: the upload is aborted."""
    stream = io.BufferedReader(BreaksAfter(2 * PART_BYTES + 10, OSError(5, "Input/output error")))
    with pytest.raises(StorageError, match="Input/output error"):
        storage.save(stream)
    assert object_names(storage) == []
    assert unfinished_uploads(storage) == []


def test_an_interrupted_upload_keeps_its_error_and_leaves_nothing(storage: S3Storage):
    class ClientGone(Exception):
        pass

    with pytest.raises(ClientGone):
        storage.save(io.BufferedReader(BreaksAfter(PART_BYTES + 10, ClientGone())))
    assert object_names(storage) == []
    assert unfinished_uploads(storage) == []


# --------------------------------------------------------------------------------------------
# Failures of the storage itself


def test_a_missing_bucket_is_a_storage_error_naming_it(s3_endpoint: str):
    storage = S3Storage.from_url(storage_url(s3_endpoint, "desk-no-such-bucket"))
    key = "00/00/00000000000000000000000000000000"
    for operation in (lambda: storage.save(io.BytesIO(b"data")), lambda: storage.open(key)):
        with pytest.raises(StorageError, match="bucket 'desk-no-such-bucket' does not exist"):
            operation()


def test_an_endpoint_that_is_down_is_a_storage_error(s3_endpoint: str, bucket: str):
    url = f"http://127.0.0.1:{closed_port()}"
    storage = S3Storage.from_url(
        storage_url(url, bucket, connect_timeout=0.5, read_timeout=0.5, max_attempts=2)
    )
    key = "00/00/00000000000000000000000000000000"
    operations = {
        "store the file as": lambda: storage.save(io.BytesIO(b"data")),
        "read": lambda: storage.open(key),
        "look for": lambda: storage.exists(key),
        "delete": lambda: storage.delete(key),
    }
    for action, operation in operations.items():
        with pytest.raises(StorageError, match=f"could not {action} s3://{bucket}/") as raised:
            operation()
        assert "Could not connect to the endpoint URL" in str(raised.value)
        assert not isinstance(raised.value, FileNotFoundError)


def test_a_server_that_never_answers_times_out_as_a_storage_error(bucket: str):
    """A socket that accepts connections (the kernel does, from the backlog) but never replies."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        storage = S3Storage.from_url(
            storage_url(url, bucket, connect_timeout=0.5, read_timeout=0.3, max_attempts=1)
        )
        with pytest.raises(StorageError, match="Read timeout"):
            storage.exists("00/00/00000000000000000000000000000000")
        with pytest.raises(StorageError, match="Read timeout"):
            storage.save(io.BytesIO(b"data"))


# --------------------------------------------------------------------------------------------
# Configuration


def test_from_url_reads_the_options(s3_endpoint: str):
    storage = S3Storage.from_url(
        "s3://Desk-Bucket/a/b/?endpoint_url=http://127.0.0.1:9000&region=eu-west-3"
        "&connect_timeout=2&read_timeout=7.5&max_attempts=4&addressing_style=path"
        "&checksums=when_required"
    )
    assert storage.bucket == "Desk-Bucket"
    assert storage.prefix == "a/b"
    config = storage.client.meta.config
    assert storage.client.meta.endpoint_url == "http://127.0.0.1:9000"
    assert storage.client.meta.region_name == "eu-west-3"
    assert (config.connect_timeout, config.read_timeout) == (2.0, 7.5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert config.s3 == {"addressing_style": "path"}
    assert config.request_checksum_calculation == "when_required"


def test_from_url_defaults_to_bounded_timeouts_and_a_few_retries():
    storage = S3Storage.from_url("s3://bucket?region=us-east-1")
    config = storage.client.meta.config
    assert storage.prefix == ""
    assert (config.connect_timeout, config.read_timeout) == (5.0, 30.0)
    assert config.retries["total_max_attempts"] == 3


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("s3:///prefix", "not an S3 storage URL"),
        ("https://bucket/prefix", "not an S3 storage URL"),
        ("s3://key:secret@bucket/prefix", "takes no credentials"),
        ("s3://bucket/prefix?endpoint=http://x", "unknown S3 storage option"),
        ("s3://bucket?connect_timeout=soon", "bad number"),
        ("s3://bucket?max_attempts=0", "max_attempts at least 1"),
        ("s3://bucket?addressing_style=sideways", "addressing_style"),
    ],
)
def test_from_url_refuses_a_bad_url(url: str, complaint: str):
    with pytest.raises(ValueError, match=complaint):
        S3Storage.from_url(url)


def test_the_app_stores_files_in_s3_when_configured(
    s3_endpoint: str, bucket: str, database_url: str, tmp_path: Path
):
    settings = base_settings(database_url, tmp_path / "instance")
    settings["DESK_STORAGE_URL"] = storage_url(s3_endpoint, bucket, prefix="attachments")
    app = create_app(settings)
    with app.app_context():
        storage = get_storage()
        assert isinstance(storage, S3Storage)
        stored = storage.save(io.BytesIO(b"through the app"))
        assert storage.exists(stored.key)
    body = storage.client.get_object(Bucket=bucket, Key=f"attachments/{stored.key}")["Body"]
    assert body.read() == b"through the app"
    assert not (tmp_path / "instance" / "files").exists()
