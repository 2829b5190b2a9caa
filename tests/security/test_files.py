"""Hostile files: names that try to climb out of folders, archives that explode, polyglots.

The policy under test (desk/feedback/files.py and archives.py): files are stored under
generated names; the reader's name is cleaned for showing and sent back only in an RFC 6266
Content-Disposition; ZIP containers are measured by decompressing them as a stream; images
and PDFs carrying web page code are refused; downloads are attachments with ``nosniff``.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile

import pytest
from flask import Flask
from flask.testing import FlaskClient

from desk.feedback.files import RejectedFile, check_file
from tests.security.conftest import FORM, PDF, log_in, png_bytes

HOSTILE_NAMES = [
    "../../etc/passwd.pdf",
    "/etc/passwd.pdf",
    "C:\\Windows\\System32\\evil.pdf",
    "..\\..\\boot.ini.pdf",
    "a\x00b.pdf",
    "invoice\u202efdp.exe.pdf",
    "x" * 1000 + ".pdf",
    'quote".pdf',
    "crlf\r\nSet-Cookie: stolen=1.pdf",
    "semi;colon=1.pdf",
    "ünïcödé — 報告.pdf",
    "%2e%2e%2fescape.pdf",
    "<script>alert(1)</script>.pdf",
    "CON.pdf",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_file_name_is_stored_under_a_generated_name_and_sent_back_safely(
    app: Flask, client: FlaskClient, editor, create_feedback, name: str
) -> None:
    item = create_feedback(files=((name, PDF),))
    [attachment] = item.attachments
    assert not attachment.is_rejected, attachment.rejection_reason
    shown = attachment.original_filename
    assert shown and len(shown) <= 200
    assert not set(shown) & set('/\\\x00\r\n"<>'), shown
    assert all(c.isprintable() for c in shown)
    assert re.fullmatch(r"[A-Za-z0-9/_.-]+", attachment.storage_key), attachment.storage_key
    assert "passwd" not in attachment.storage_key and ".." not in attachment.storage_key

    log_in(client, editor)
    response = client.get(f"/desk/feedback/{item.reference}/files/{attachment.id}")
    assert response.status_code == 200
    assert response.data == PDF
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "\r" not in disposition and "\n" not in disposition
    assert "Set-Cookie" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    ascii_name = re.search(r'filename=("(?:[^"\\]|\\.)*"|[^;\s"]+)(;|$)', disposition)
    assert ascii_name, disposition
    assert all(ord(c) < 128 for c in ascii_name.group(1))
    if not shown.isascii():
        assert "filename*=UTF-8''" in disposition

    page = client.get(f"/desk/feedback/{item.reference}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page


def zip_of(entries: dict[str, bytes], *, level: int = 9) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return buffer.getvalue()


def zeros_zip(size: int, entry: str = "zeros.txt") -> bytes:
    """A ZIP with one entry of ``size`` zero bytes, compressed as it is written."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(entry, "w", force_zip64=True) as member,
    ):
        block = bytes(1024 * 1024)
        for _ in range(size // len(block)):
            member.write(block)
    return buffer.getvalue()


def lying_zip(declared: int) -> bytes:
    """A ZIP whose one small entry claims, in its central directory, to expand to ``declared``."""
    data = zip_of({"small.txt": b"hello"})
    central = data.rfind(b"PK\x01\x02")
    # The central directory record keeps the uncompressed size at byte 24 (APPNOTE 4.3.12).
    patched = data[central : central + 24] + struct.pack("<I", declared) + data[central + 28 :]
    return data[:central] + patched


def check(name: str, data: bytes) -> str:
    """The reason a file is refused ("" if accepted)."""
    try:
        check_file(name, io.BytesIO(data))
    except RejectedFile as refusal:
        return str(refusal)
    return ""


def test_a_name_that_is_only_dots_is_refused_not_stored(app: Flask, create_feedback) -> None:
    item = create_feedback(files=(("....pdf", PDF),))
    [attachment] = item.attachments
    assert attachment.is_rejected and attachment.storage_key == ""


def test_an_ordinary_zip_is_accepted(app: Flask) -> None:
    assert check("notes.zip", zip_of({"a.txt": b"Mali signed.", "b/c.csv": b"1,2\n"})) == ""


def test_a_small_zip_that_expands_to_gigabytes_is_refused(app: Flask) -> None:
    bomb = lying_zip(declared=0xFFFF_FFF0)
    assert len(bomb) < 1024
    assert "too large once unpacked" in check("bomb.zip", bomb)


def test_a_real_zip_bomb_is_refused_without_being_unpacked_to_disk(app: Flask) -> None:
    app.config["DESK_ARCHIVE_MAX_UNCOMPRESSED_BYTES"] = 16 * 1024 * 1024
    bomb = zeros_zip(64 * 1024 * 1024)
    assert len(bomb) < 200_000
    assert "too large once unpacked" in check("bomb.zip", bomb)


def test_an_entry_that_expands_a_thousand_times_is_refused(app: Flask) -> None:
    refusal = check("data.zip", zeros_zip(8 * 1024 * 1024))
    assert "expands" in refusal and "times" in refusal


def test_an_office_document_that_is_a_zip_bomb_is_refused(app: Flask) -> None:
    assert "expands" in check("report.docx", zeros_zip(8 * 1024 * 1024, "word/document.xml"))


def test_nested_archives_are_refused(app: Flask) -> None:
    inner = zip_of({"a.txt": b"x"})
    assert "another archive" in check("outer.zip", zip_of({"inner.zip": inner}))


@pytest.mark.parametrize(
    "entry", ["../../etc/passwd", "/etc/passwd", "C:/Windows/evil.dll", "a\\..\\b", "a/\x01b"]
)
def test_entries_with_unsafe_names_are_refused(app: Flask, entry: str) -> None:
    assert "unsafe name" in check("paths.zip", zip_of({entry: b"x"}))


def test_a_damaged_archive_is_refused(app: Flask) -> None:
    assert "damaged" in check("broken.zip", b"PK\x03\x04" + b"\x00" * 200)


def test_an_encrypted_zip_is_refused(app: Flask) -> None:
    data = bytearray(zip_of({"secret.txt": b"x"}, level=0))
    for header in (b"PK\x03\x04", b"PK\x01\x02"):
        at = data.find(header)
        flag_at = at + (6 if header == b"PK\x03\x04" else 8)
        data[flag_at] |= 0x1
    assert "password-protected" in check("locked.zip", bytes(data))


GIF_WITH_SCRIPT = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;<script>alert(document.domain)</script>"
PDF_AND_HTML = PDF[:-6] + b"<html><body><script>alert(1)</script></body></html>\n%%EOF\n"


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("cat.gif", GIF_WITH_SCRIPT, "web page code"),
        ("report.pdf", PDF_AND_HTML, "web page code"),
        ("page.pdf", b"<!doctype html><html><script>alert(1)</script></html>", "web page"),
        ("image.png", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "SVG"),
    ],
)
def test_polyglots_and_renamed_pages_are_refused(app: Flask, name, data, why) -> None:
    assert why in check(name, data)


def test_genuine_images_and_pdfs_are_still_accepted(app: Flask) -> None:
    assert check("figure.png", png_bytes()) == ""
    assert check("report.pdf", PDF) == ""
    assert check("pixel.gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00;") == ""


def test_the_form_names_the_refused_archive_to_the_reader(client: FlaskClient, mali) -> None:
    page = client.get(FORM).get_data(as_text=True)
    hidden = dict(re.findall(r'name="(csrf_token|token)" type="hidden" value="([^"]*)"', page))
    response = client.post(
        FORM,
        data={
            **hidden,
            "message": "Sources attached.",
            "attachments": [(io.BytesIO(lying_zip(0xFFFF_FFF0)), "sources.zip")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "“sources.zip” is too large once unpacked" in response.get_data(as_text=True)
