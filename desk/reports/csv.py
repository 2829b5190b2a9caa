"""CSV export of report tables, streamed row by row.

Every file opens with lines starting ``#``: the report, when it was made, its filters and the
definitions of its figures; then an empty line, the column names and the rows. The rows come
from an iterator (for row-level exports a server-side cursor), written out in small chunks, so
a million-row export never holds more than a chunk in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context

#: Rows written between two chunks sent to the client.
CHUNK_ROWS = 500
#: Characters a spreadsheet takes as the start of a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula (numbers are left alone)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def csv_lines(
    title: str,
    about: Iterable[tuple[str, str]],
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> Iterator[str]:
    """The CSV text, in chunks: the ``#`` header lines, the column names, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([f"# {title}"])
    for name, text in about:
        writer.writerow([f"# {name}", _safe(text)])
    writer.writerow([])
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_safe(value) for value in row])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_response(filename: str, lines: Iterator[str]) -> Response:
    """Stream ``lines`` as a CSV download, inside the request's context (database session)."""
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
