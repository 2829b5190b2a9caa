"""Request parsing that streams uploads to disk and notes, rather than fails on, oversize files.

Werkzeug refuses a whole request over MAX_CONTENT_LENGTH before reading it, which would lose the
reader's typed message. Desk sets that hard cap well above the submission limit; below it every
file is streamed to a temporary file on disk, counting bytes, and a file over the per-file limit
stops being written but the rest of the form is still parsed, so the view can answer 413 with
the message kept.
"""

from __future__ import annotations

import tempfile
from typing import IO, Any

from flask import Request, current_app


class CountingSpool:
    """A temporary file that stops keeping bytes past a limit but goes on counting them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        # Closed with the request's files, like Werkzeug's own spool.
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115

    @property
    def is_over_limit(self) -> bool:
        return self.size > self.limit

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size <= self.limit:
            self.file.write(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


class DeskRequest(Request):
    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return CountingSpool(current_app.config["DESK_UPLOAD_MAX_FILE_BYTES"])  # type: ignore[return-value]


def spool_of(file_storage: Any) -> CountingSpool | None:
    """The CountingSpool behind an uploaded file, if the request made one."""
    stream = getattr(file_storage, "stream", None)
    return stream if isinstance(stream, CountingSpool) else None
