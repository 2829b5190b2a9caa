"""Attachments in an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage, …), through boto3.

Configured by one setting::

    DESK_STORAGE_URL=s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=us-east-1

``bucket`` is required; ``prefix`` (any depth, may be empty) is put before every key. The query
string is optional:

``endpoint_url``
    the S3 API's base URL; leave it out for AWS itself.
``region``
    the bucket's region; default from ``AWS_DEFAULT_REGION`` / ``AWS_REGION`` or the AWS config.
``connect_timeout``, ``read_timeout``
    seconds per attempt (default 5 and 30).
``max_attempts``
    tries per request, the first included, with botocore's "standard" back-off (default 3).
``addressing_style``
    ``path`` (what most self-hosted servers want), ``virtual`` or ``auto`` (default ``auto``).
``checksums``
    ``when_required`` for servers that refuse the CRC checksums recent botocore adds to every
    upload; default ``when_supported`` (botocore's own default).

Credentials are deliberately not part of the URL: boto3 finds them as it always does, from
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), ``AWS_PROFILE``
and the shared credentials file, or the instance or container role. The keys need
``s3:PutObject``, ``s3:GetObject``, ``s3:DeleteObject`` and, so that a missing file reads as
missing rather than forbidden, ``s3:ListBucket`` on the bucket; ``s3:AbortMultipartUpload``
lets a failed large upload be cleaned up.

Uploads stream: the request's spooled file is read once, in parts, and hashed on the way.
Parts of :data:`PART_BYTES` are sent one after the other from the calling thread, so a worker
holds at most about one part of a file in memory, whatever the file's size. Every failure of
the storage (refused credentials, a missing bucket, a timeout, a server that is down) is raised
as :class:`~desk.core.storage.StorageError` saying what was being done and where.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, NoReturn, cast
from urllib.parse import parse_qsl, urlsplit

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError, S3UploadFailedError

from desk.core.storage import CHUNK, KEY_PATTERN, StorageError, StoredFile, new_key

#: Size of each part of a multipart upload, and the size from which uploads are multipart:
#: S3's smallest allowed part, so a worker buffers as little of a large file as S3 permits.
PART_BYTES = 5 * 1024 * 1024
#: Error codes S3 and its imitators give for an object or bucket that is not there.
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
#: What boto3 and its uploader raise when a request fails (OSError: reading the upload failed).
_FAILURES = (
    BotoCoreError,
    ClientError,
    Boto3Error,
    S3UploadFailedError,
    RetriesExceededError,
    OSError,
)
_OPTIONS = {
    "endpoint_url",
    "region",
    "connect_timeout",
    "read_timeout",
    "max_attempts",
    "addressing_style",
    "checksums",
}


class MissingFile(StorageError, FileNotFoundError):
    """No object under that key (a FileNotFoundError, as LocalStorage raises)."""


class _HashingReader:
    """A read-only, forward-only view of a stream that hashes and counts what passes through.

    It is deliberately not seekable: the uploader then reads it exactly once, front to back,
    so the digest and the size are those of the bytes that were sent. A read returns as many
    bytes as asked for unless the stream ends: the uploader takes a short read for the end of
    the file, and would then send the rest as one body, read whole into memory.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data = self._stream.read()
        else:
            pieces = []
            wanted = size
            while wanted > 0 and (piece := self._stream.read(wanted)):
                pieces.append(piece)
                wanted -= len(piece)
            data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self.digest.update(data)
        self.size += len(data)
        return data


class _BodyReader(io.RawIOBase):
    """An S3 response body whose read errors (a timeout, a dropped connection) are
    StorageErrors like every other failure of the storage."""

    def __init__(self, body: Any, where: str) -> None:
        self._body = body
        self._where = where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except (BotoCoreError, OSError) as error:
            raise StorageError(f"reading {self._where} failed: {_describe(error)}") from error
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Storage:
    """Files as objects named ``<prefix>/<key>`` in one bucket; keys as :func:`new_key` makes."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
        addressing_style: str = "auto",
        checksums: str = "when_supported",
    ) -> None:
        if not bucket:
            raise ValueError("S3 storage needs a bucket name: s3://bucket/prefix")
        if addressing_style not in {"auto", "path", "virtual"}:
            raise ValueError(f"addressing_style must be auto, path or virtual: {addressing_style}")
        if checksums not in {"when_supported", "when_required"}:
            raise ValueError(f"checksums must be when_supported or when_required: {checksums}")
        if connect_timeout <= 0 or read_timeout <= 0 or max_attempts < 1:
            raise ValueError("S3 timeouts must be positive and max_attempts at least 1")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            s3={"addressing_style": addressing_style},
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
        )
        # A client of its own session: boto3's default session is shared module state.
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
        self.transfer_config = TransferConfig(
            multipart_threshold=PART_BYTES,
            multipart_chunksize=PART_BYTES,
            use_threads=False,
        )

    @classmethod
    def from_url(cls, url: str) -> S3Storage:
        """Build the storage from ``s3://bucket/prefix?option=value&…`` (see the module doc)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ValueError(f"not an S3 storage URL (s3://bucket/prefix): {url!r}")
        if parts.username or parts.password or parts.port:
            raise ValueError(
                "the S3 storage URL takes no credentials or port: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, and give the server as ?endpoint_url=…"
            )
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown S3 storage option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(_OPTIONS))}"
            )
        settings: dict[str, Any] = {}
        try:
            for name in ("connect_timeout", "read_timeout"):
                if name in options:
                    settings[name] = float(options.pop(name))
            if "max_attempts" in options:
                settings["max_attempts"] = int(options.pop("max_attempts"))
        except ValueError as error:
            raise ValueError(f"bad number in the S3 storage URL: {error}") from error
        settings.update({name: value for name, value in options.items() if value})
        # netloc, not hostname: the latter is lower-cased, and bucket names are case-sensitive.
        return cls(parts.netloc, parts.path, **settings)

    def __repr__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"<S3Storage {self._where()}{where}>"

    def _where(self, key: str = "") -> str:
        path = "/".join(part for part in (self.prefix, key) if part)
        return f"s3://{self.bucket}/{path}"

    def _name(self, key: str) -> str:
        """The object name of a key; a key that is not a plain relative path is refused."""
        segments = key.split("/")
        if (
            not key
            or any(segment in {"", ".", ".."} for segment in segments)
            or any(not character.isprintable() or character == "\\" for character in key)
        ):
            raise StorageError(f"key outside the storage: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, action: str, key: str, error: Exception, *, reading: bool = False) -> NoReturn:
        where = self._where(key)
        code = _code(error)
        if reading and code in _MISSING_CODES:
            raise MissingFile(f"no such file: {where}") from error
        if code == "NoSuchBucket":
            raise StorageError(
                f"could not {action} {where}: the bucket {self.bucket!r} does not exist"
            ) from error
        raise StorageError(f"could not {action} {where}: {_describe(error)}") from error

    def save(self, stream: BinaryIO) -> StoredFile:
        key = new_key()
        reader = _HashingReader(stream)
        try:
            self.client.upload_fileobj(
                reader, self.bucket, self._name(key), Config=self.transfer_config
            )
        except _FAILURES as error:
            # A failed multipart upload is aborted by the uploader; a failed single PUT leaves
            # nothing. Either way no object is left under the key.
            self._fail("store the file as", key, error)
        return StoredFile(key=key, size=reader.size, sha256=reader.digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        """A streaming reader of the object (close it when done, or use it in ``with``)."""
        name = self._name(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as error:
            self._fail("read", key, error, reading=True)
        reader = io.BufferedReader(_BodyReader(response["Body"], self._where(key)), CHUNK)
        return cast(BinaryIO, reader)

    def delete(self, key: str) -> None:
        """Remove the object; deleting what is not there is not an error."""
        name = self._name(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as error:
            if _code(error) in _MISSING_CODES:
                return
            self._fail("delete", key, error)

    def exists(self, key: str) -> bool:
        """Whether the object is there. A HEAD answer has no body, so a missing bucket reads as
        a missing object here; saving and opening name the bucket."""
        name = self._name(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as error:
            if _code(error) in _MISSING_CODES:
                return False
            self._fail("look for", key, error)
        return True

    def list_files(self) -> Iterator[tuple[str, datetime]]:
        """Every object under the prefix whose name is a Desk key, with its last-modified time.

        Listed a page (up to 1,000 objects) at a time; other objects under the prefix are left
        alone, so a shared bucket is safe to sweep.
        """
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        try:
            for page in pages:
                for entry in page.get("Contents", []):
                    key = entry["Key"][len(start) :]
                    if KEY_PATTERN.fullmatch(key):
                        yield key, entry["LastModified"]
        except (BotoCoreError, ClientError) as error:
            self._fail("list", "", error)

    def check(self) -> None:
        """Raise StorageError unless the bucket answers (the health check): one HEAD request."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            if _code(error) in _MISSING_CODES:
                raise StorageError(f"the bucket {self.bucket!r} does not exist") from error
            self._fail("reach", "", error)


def _client_error(error: BaseException) -> ClientError | None:
    """The S3 answer behind a failure, when the uploader wrapped one in its own exception."""
    seen: BaseException | None = error
    for _depth in range(5):
        if seen is None or isinstance(seen, ClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _code(error: BaseException) -> str:
    """The S3 error code ("NoSuchKey", "404", "AccessDenied"…), or "" if S3 did not answer."""
    answer = _client_error(error)
    return str(answer.response.get("Error", {}).get("Code", "")) if answer is not None else ""


def _describe(error: BaseException) -> str:
    """Words for a failure: the server's status, code and message, or what went wrong on the way."""
    answer = _client_error(error)
    if answer is None:
        return f"{type(error).__name__}: {error}"
    details = answer.response.get("Error", {})
    status = answer.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = details.get("Code") or "error"
    message = details.get("Message") or ""
    if not message and (status == 403 or code == "403"):
        message = "access denied; check the credentials and the bucket's policy"
    words = f"the server answered {code}" + (f" (HTTP {status})" if status else "")
    return f"{words}: {message}" if message else words
