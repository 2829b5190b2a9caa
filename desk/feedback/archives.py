"""What a file's content may not hide: archive bombs, path tricks, and markup inside images.

Called by :func:`desk.feedback.files.check_file` once a file's name and sniffed type agree.

ZIP containers (``.zip`` and the office formats built on ZIP: docx, xlsx, pptx, odt, ods) are
opened and every entry is decompressed as a stream, counting bytes, never written anywhere:

- the whole may not expand beyond DESK_ARCHIVE_MAX_UNCOMPRESSED_BYTES, and an entry over a
  megabyte may not expand more than DESK_ARCHIVE_MAX_RATIO times (the mark of a zip bomb); the
  count is of the bytes actually produced, so an entry that lies about its size is caught too;
- no entry may be named with an absolute path, a drive, ``..``, a backslash or a control
  character (it would be unpacked outside the folder it is unpacked into);
- a ``.zip`` may not hold other archives (nested bombs), encrypted entries (nobody, no scanner,
  can see what is inside) or more than :data:`MAX_ENTRIES` entries.

Images and PDFs are refused when their first bytes hold HTML or script markup: such polyglots
are files that a browser could be talked into running as a page. (Downloads are in any case
sent as attachments with ``nosniff`` and a sandboxing CSP, and only images and PDFs preview.)
"""

from __future__ import annotations

import re
import zipfile
from pathlib import PurePosixPath
from typing import BinaryIO

from flask import current_app

from desk.feedback.files import SNIFF_BYTES, RejectedFile

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
#: Entries a plain .zip may hold.
MAX_ENTRIES = 10_000
#: Entries smaller than this are not held to the ratio (tiny text compresses very well).
RATIO_FLOOR = 1024 * 1024
CHUNK = 64 * 1024
NESTED_ARCHIVE = re.compile(r"\.(zip|jar|rar|7z|gz|tgz|bz2|xz|tar|cab|iso|z)$", re.IGNORECASE)
#: Markup that has no business in an image or a PDF's first bytes.
MARKUP = re.compile(rb"<\s*(script|html|body|iframe|svg|object|embed)\b|<!doctype\s+html", re.I)
MARKUP_CHECKED = ("image/", "application/pdf")


def inspect_content(name: str, content_type: str, stream: BinaryIO) -> None:
    """Raise :class:`RejectedFile` if the content breaks the rules above; rewinds the stream."""
    position = stream.tell()
    try:
        head = stream.read(SNIFF_BYTES)
        stream.seek(position)
        if head.startswith(ZIP_MAGIC):
            check_zip(name, stream, is_plain_zip=content_type == "application/zip")
        elif content_type.startswith(MARKUP_CHECKED) and MARKUP.search(head):
            raise RejectedFile(f"“{name}” contains web page code, which is not accepted.")
    finally:
        stream.seek(position)


def check_zip(name: str, stream: BinaryIO, *, is_plain_zip: bool) -> None:
    """Open the container and walk every entry; see the module's docstring for the rules."""
    config = current_app.config
    budget = int(config["DESK_ARCHIVE_MAX_UNCOMPRESSED_BYTES"])
    max_ratio = float(config["DESK_ARCHIVE_MAX_RATIO"])
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise RejectedFile(f"“{name}” is a damaged archive.") from error
    with archive:
        entries = archive.infolist()
        if is_plain_zip and len(entries) > MAX_ENTRIES:
            raise RejectedFile(f"“{name}” holds more than {MAX_ENTRIES:,} files.")
        for entry in entries:
            _check_entry_name(name, entry.filename)
            if is_plain_zip and entry.flag_bits & 0x1:
                raise RejectedFile(f"“{name}” is password-protected; please send it unlocked.")
            if is_plain_zip and NESTED_ARCHIVE.search(entry.filename):
                raise RejectedFile(
                    f"“{name}” holds another archive; please send the files it holds instead."
                )
        total = 0
        for entry in entries:
            if entry.is_dir():
                continue
            produced = _expanded_size(archive, entry, name, limit=budget - total)
            total += produced
            compressed = max(entry.compress_size, 1)
            if produced > RATIO_FLOOR and produced / compressed > max_ratio:
                raise RejectedFile(
                    f"“{name}” expands {produced // compressed:,} times when unpacked, "
                    "which is not accepted."
                )


def _check_entry_name(name: str, entry: str) -> None:
    path = PurePosixPath(entry)
    unsafe = (
        entry.startswith(("/", "\\"))
        or "\\" in entry
        or re.match(r"^[A-Za-z]:", entry) is not None
        or ".." in path.parts
        or not entry.isprintable()
    )
    if unsafe:
        raise RejectedFile(f"“{name}” holds a file with an unsafe name, which is not accepted.")


def _expanded_size(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, name: str, limit: int) -> int:
    """The bytes one entry really expands to, stopping as soon as it passes ``limit``."""
    produced = 0
    too_large = RejectedFile(f"“{name}” is too large once unpacked, which is not accepted.")
    if entry.file_size > limit:
        raise too_large
    try:
        with archive.open(entry) as member:
            while chunk := member.read(CHUNK):
                produced += len(chunk)
                if produced > limit:
                    raise too_large
    except RuntimeError as error:  # encrypted (inside an office document)
        raise RejectedFile(f"“{name}” is password-protected; please send it unlocked.") from error
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        raise RejectedFile(f"“{name}” is a damaged archive.") from error
    except NotImplementedError as error:
        raise RejectedFile(f"“{name}” uses a compression method Desk cannot read.") from error
    return produced
