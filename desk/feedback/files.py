"""Which files readers may send: the name's extension and the sniffed content must agree."""

from __future__ import annotations

import contextlib
import unicodedata
import weakref
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import BinaryIO

import magic
from flask import current_app

#: How much of a file is read to tell its type.
SNIFF_BYTES = 64 * 1024

_OOXML = "application/vnd.openxmlformats-officedocument"
_ODF = "application/vnd.oasis.opendocument"
_OLE = {
    "application/msword",
    "application/vnd.ms-excel",
    "application/x-ole-storage",
    "application/CDFV2",
    "application/vnd.ms-office",
    "application/vnd.ms-powerpoint",
}
_TEXT = {"text/plain", "text/csv", "application/csv"}

#: Extension → content types libmagic may report for a genuine file of that kind.
KNOWN_TYPES: dict[str, set[str]] = {
    "pdf": {"application/pdf"},
    "png": {"image/png"},
    "jpg": {"image/jpeg"},
    "jpeg": {"image/jpeg"},
    "gif": {"image/gif"},
    "webp": {"image/webp"},
    "tif": {"image/tiff"},
    "tiff": {"image/tiff"},
    "txt": _TEXT,
    "csv": _TEXT,
    "doc": _OLE,
    "xls": _OLE,
    "ppt": _OLE,
    "docx": {f"{_OOXML}.wordprocessingml.document", "application/zip"},
    "xlsx": {f"{_OOXML}.spreadsheetml.sheet", "application/zip"},
    "pptx": {f"{_OOXML}.presentationml.presentation", "application/zip"},
    "odt": {f"{_ODF}.text", "application/zip"},
    "ods": {f"{_ODF}.spreadsheet", "application/zip"},
    "rtf": {"text/rtf", "application/rtf"},
    "zip": {"application/zip"},
}

#: Never accepted, whatever the extension says: they run in a browser or on a machine.
DANGEROUS_TYPES = {
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "application/javascript",
    "text/javascript",
    "application/x-dosexec",
    "application/x-executable",
    "application/x-sharedlib",
    "application/x-mach-binary",
    "application/x-msi",
    "text/x-shellscript",
    "application/x-sh",
}


class RejectedFile(ValueError):
    """A file Desk will not keep, with the reason in words a reader understands."""


@dataclass(frozen=True)
class CheckedFile:
    filename: str
    content_type: str


def clean_filename(name: str | None) -> str:
    """The last part of a path a browser or mail client sent, made safe to show and to log."""
    name = unicodedata.normalize("NFC", name or "")
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = "".join(c for c in name if c.isprintable() and c not in '<>:"/\\|?*').strip(" .")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name or "unnamed"


def allowed_extensions() -> list[str]:
    return list(current_app.config["DESK_UPLOAD_EXTENSIONS"])


#: libmagic's answer for each stream it was asked about, with the bytes it read. A form checks
#: its files when it validates and intake checks them again before storing them; the second
#: check costs a read and a comparison instead of a second libmagic run. Entries go with
#: their stream.
_sniffed: weakref.WeakKeyDictionary[BinaryIO, tuple[int, bytes, str]] = weakref.WeakKeyDictionary()


def sniff(stream: BinaryIO) -> str:
    """The content type libmagic reads from the start of the stream (which is rewound)."""
    position = stream.tell()
    head = stream.read(SNIFF_BYTES)
    stream.seek(position)
    if not head:
        return "application/x-empty"
    # A stream that cannot be weakly referenced is simply sniffed each time.
    with contextlib.suppress(TypeError):
        known = _sniffed.get(stream)
        # Reused only for exactly the same bytes at the same place.
        if known is not None and known[:2] == (position, head):
            return known[2]
    content_type = magic.from_buffer(head, mime=True)
    with contextlib.suppress(TypeError):
        _sniffed[stream] = (position, head, content_type)
    return content_type


def check_file(filename: str | None, stream: BinaryIO) -> CheckedFile:
    """Accept a file only when its extension is allowed and its content is of that kind."""
    name = clean_filename(filename)
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    allowed = allowed_extensions()
    if extension not in allowed:
        kinds = ", ".join(f".{e}" for e in allowed)
        raise RejectedFile(f"“{name}”: files of this type are not accepted (accepted: {kinds}).")
    content_type = sniff(stream)
    if content_type == "application/x-empty":
        raise RejectedFile(f"“{name}” is empty.")
    if content_type in DANGEROUS_TYPES:
        raise RejectedFile(
            f"“{name}” is named .{extension} but contains {_describe(content_type)}, "
            "which is not accepted."
        )
    if content_type not in KNOWN_TYPES.get(extension, set()):
        raise RejectedFile(
            f"“{name}” is named .{extension} but its content is {_describe(content_type)}; "
            "please send the file in the format its name says."
        )
    archives.inspect_content(name, content_type, stream)
    return CheckedFile(filename=name, content_type=content_type)


from desk.feedback import archives  # noqa: E402  (it needs RejectedFile from this module)


def _describe(content_type: str) -> str:
    names = {
        "text/html": "a web page (HTML)",
        "image/svg+xml": "an SVG image",
        "application/x-dosexec": "a Windows program",
        "application/x-executable": "a program",
        "application/octet-stream": "unrecognised binary data",
    }
    return names.get(content_type, content_type)
