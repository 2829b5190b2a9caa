"""Emails for the email-in tests, written the way real mail clients write them."""

from __future__ import annotations

import base64
import quopri
import struct
import zlib
from email import policy
from email.message import EmailMessage

INTAKE = "feedback@desk.example"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
#: A Windows program's first bytes: libmagic calls it application/x-dosexec.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>x</title></head><body><script>x()</script></body></html>"
)

FRENCH_SUBJECT = "Révision du profil : date de ratification"
FRENCH_BODY = (
    "Bonjour,\n\n"
    "La date de ratification indiquée dans le deuxième paragraphe est fausse : "
    "le Mali a ratifié la Convention le 30 juin 2010, pas en 2011.\n"
    "Vous trouverez le décret ci-joint. Merci pour votre travail très utile.\n\n"
    "Renée Touré\n"
)


def png() -> bytes:
    """A real 1×1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def french_report(
    *,
    to: str = "feedback+ml@desk.example",
    message_id: str = "<rapport.1@lecteur.example>",
    subject_header: str = "=?iso-8859-1?q?R=E9vision_du_profil_=3A_date_de_ratification?=",
) -> bytes:
    """The acceptance email: an RFC 2047 French subject, a quoted-printable ISO-8859-1 body
    and a base64 PDF, as Thunderbird would send it (raw bytes, CRLF line ends)."""
    body = quopri.encodestring(FRENCH_BODY.encode("iso-8859-1")).decode("ascii")
    pdf = base64.encodebytes(PDF).decode("ascii")
    text = f"""From: =?iso-8859-1?q?Ren=E9e_Tour=E9?= <renee@lecteur.example>
To: {to}
Subject: {subject_header}
Date: Tue, 03 Mar 2026 10:15:00 +0100
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="------------b0undary"

This is a multi-part message in MIME format.
--------------b0undary
Content-Type: text/plain; charset=ISO-8859-1; format=flowed
Content-Transfer-Encoding: quoted-printable

{body}
--------------b0undary
Content-Type: application/pdf; name="decret-ratification.pdf"
Content-Disposition: attachment; filename="decret-ratification.pdf"
Content-Transfer-Encoding: base64

{pdf}
--------------b0undary--
"""
    return text.replace("\n", "\r\n").encode("ascii")


def message(
    *,
    subject: str = "Feedback",
    body: str | None = "A correction, please.",
    html: str | None = None,
    to: str = INTAKE,
    sender: str = "Reader <reader@example.org>",
    message_id: str | None = "<m.1@example.org>",
    attachments: tuple[tuple[str, bytes, str], ...] = (),
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A message built with the standard library (multipart when it needs to be)."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = to
    email["Subject"] = subject
    if message_id:
        email["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        email[name] = value
    if body is not None:
        email.set_content(body)
    if html is not None:
        if body is None:
            email.set_content(html, subtype="html")
        else:
            email.add_alternative(html, subtype="html")
    for filename, data, content_type in attachments:
        maintype, _, subtype = content_type.partition("/")
        email.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return email


def as_bytes(email: EmailMessage) -> bytes:
    return email.as_bytes(policy=policy.SMTP)


def reply(
    *,
    in_reply_to: str | None,
    subject: str = "Re: We received your feedback",
    body: str = "One more thing: the decree number is 2010-012.\n\n> Thank you for writing.",
    message_id: str = "<reply.1@lecteur.example>",
    references: str | None = None,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
    sender: str = "Renée Touré <renee@lecteur.example>",
) -> bytes:
    headers = {}
    if in_reply_to:
        headers["In-Reply-To"] = in_reply_to
    if references or in_reply_to:
        headers["References"] = references or in_reply_to or ""
    email = message(
        subject=subject,
        body=body,
        to="desk@localhost",
        sender=sender,
        message_id=message_id,
        attachments=attachments,
        headers=headers,
    )
    return as_bytes(email)
