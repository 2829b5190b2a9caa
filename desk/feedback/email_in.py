"""Email-in: a raw email becomes a feedback item, or a reply on the item it answers.

The LMTP receiver (:mod:`desk.feedback.lmtp`), the IMAP poller (:mod:`desk.feedback.imap`) and
``desk import-eml`` all hand the raw bytes to :func:`deliver_email` (or, inside a transaction of
the caller's, :func:`process_email`). Parsing is done by :func:`parse_email` and never fails on
what real mail clients send: unknown or wrong charsets fall back to a lenient decoding, HTML is
reduced to text (never kept as HTML), and forwarded messages are opened so their files count.

Which item, which country:

* A reply — In-Reply-To or References names an acknowledgement (``<ack.ML-2026-00042@…>``) or the
  Message-ID of the item's own email, or the subject quotes an existing reference — is added to
  that item (:func:`desk.feedback.operations.add_reader_reply`).
* Otherwise a new item, through the same intake as the web form. Its country is the plus tag of
  a recipient at the intake address's domain (``feedback+ml@…``: envelope recipients first, then
  the To, Cc, Delivered-To and X-Original-To headers), else a reference (``[ML-2026-00042]``), an
  ISO code tag (``[ML]``) or a country name in the subject; else it waits in the unrouted queue.
* The same Message-ID delivered twice (an MTA retry, an IMAP re-poll, a file imported again)
  never makes a second item or a second reply.
* Automatic mail (out-of-office replies, bounces, Desk's own messages) is taken and dropped, so
  an auto-responder can never start a loop with the acknowledgement.
"""

from __future__ import annotations

import codecs
import enum
import gettext
import hashlib
import logging
import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from functools import lru_cache
from html.parser import HTMLParser
from io import BytesIO
from typing import TYPE_CHECKING

import pycountry
import sqlalchemy as sa
from flask import current_app

from desk.admin.runtime import refresh_runtime_settings
from desk.core.text import fold
from desk.extensions import db
from desk.feedback.models import Channel, EventKind, Feedback, FeedbackEvent
from desk.feedback.operations import (
    MAX_MESSAGE_CHARS,
    UNROUTED_PREFIX,
    IncomingFile,
    Submission,
    add_reader_reply,
    receive_feedback,
)
from desk.profiles.models import Country, Profile
from desk.profiles.operations import UnknownCountry, ensure_country

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

#: Appended to a message cut at the intake's MAX_MESSAGE_CHARS.
TRUNCATED_NOTE = "\n\n(truncated)"
#: A reference as Desk writes it (ML-2026-00042); the number may outgrow five digits.
REFERENCE = re.compile(r"\b([A-Z]{2})-(\d{4})-(\d{5,})\b", re.IGNORECASE)
#: A country code tag in a subject: "[ML]".
CODE_TAG = re.compile(r"\[\s*([A-Za-z]{2})\s*\]")
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
#: Headers that name the recipients, in the order they are trusted after the envelope.
RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
SIGNATURE_TYPES = {
    "application/pgp-signature",
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
}
#: Few, very common words: enough to tell a French email from an English one.
FRENCH_WORDS = frozenset(
    {
        *("le", "la", "les", "des", "du", "un", "une", "est", "et", "pour", "dans", "vous"),
        *("nous", "je", "merci", "bonjour", "sur", "au", "aux", "avec", "que", "qui", "pas"),
        *("ce", "cette", "sont", "été", "être", "votre", "mais", "ou", "où", "très"),
    }
)
ENGLISH_WORDS = frozenset(
    {
        *("the", "and", "is", "of", "to", "for", "in", "you", "we", "i", "thanks", "thank"),
        *("hello", "on", "with", "that", "this", "are", "was", "be", "your", "but", "or"),
        *("not", "very"),
    }
)


class EmailRefused(ValueError):
    """A message that can never become feedback (no email at all); the sender should be told."""


class Outcome(enum.StrEnum):
    #: A new feedback item.
    CREATED = "created"
    #: Added to an existing item as the reader's reply.
    REPLY = "reply"
    #: Seen before (same Message-ID, or the same submission moments ago): nothing new.
    ALREADY = "already"
    #: Taken but not kept: an automatic reply, a bounce, Desk's own mail.
    IGNORED = "ignored"


@dataclass(frozen=True)
class EmailOutcome:
    outcome: Outcome
    #: The item made, answered or found; empty when ignored.
    reference: str = ""
    #: Why files were refused (each is listed on the item).
    rejected_files: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        """One line for a log, the CLI or an LMTP answer."""
        if self.outcome == Outcome.CREATED:
            return self.reference
        if self.outcome == Outcome.REPLY:
            return f"reply to {self.reference}"
        if self.outcome == Outcome.ALREADY:
            return f"already imported ({self.reference})"
        return f"ignored ({self.detail})"


@dataclass
class ParsedEmail:
    message_id: str
    subject: str = ""
    from_name: str = ""
    from_email: str = ""
    language: str = "en"
    text: str = ""
    files: list[IncomingFile] = field(default_factory=list)
    #: Addresses from the recipient headers (To, Cc, Delivered-To, …), in that order.
    header_recipients: list[str] = field(default_factory=list)
    #: Message-IDs from In-Reply-To, then References.
    thread_ids: list[str] = field(default_factory=list)
    #: Why the message is automatic (RFC 3834 and common auto-responder headers); "" if not.
    automatic: str = ""
    #: The message had a header section (anything else is not an email).
    has_headers: bool = True


# --------------------------------------------------------------------------- decoding


def repair_text(text: str) -> str:
    """Text with undecodable bytes (kept as surrogates by the parser) decoded after all.

    Raw 8-bit header bytes are usually UTF-8; when they are not, Windows-1252 (a superset of
    Latin-1 in practice) is what the sender meant.
    """
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _codec(charset: str | None) -> str | None:
    """A text codec for a MIME charset name, or None when Python knows no such text encoding."""
    if not charset:
        return None
    try:
        info = codecs.lookup(charset.strip().strip('"').lower())
    except (LookupError, ValueError):
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(payload: bytes, charset: str | None) -> str:
    """Bytes of a text part as text: its charset if known, else UTF-8, else Windows-1252."""
    codec = _codec(charset)
    if codec in {"ascii", None}:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("cp1252", "replace")
    return payload.decode(codec, "replace")


def _header_end(raw: bytes) -> int:
    """Where the header section ends (the first empty line, CRLF or LF), or -1."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else -1


def _fix_header_block(raw: bytes) -> bytes:
    """Re-encode header lines written in a legacy 8-bit charset as UTF-8.

    Headers should be ASCII with RFC 2047 encoded words; some mailers put raw Latin-1 there.
    The parser keeps raw UTF-8 but replaces anything else, so such lines are transcoded first.
    """
    end = _header_end(raw)
    head = raw if end < 0 else raw[:end]
    if head.isascii():
        return raw
    lines = head.split(b"\n")
    for index, line in enumerate(lines):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            lines[index] = line.decode("cp1252", "replace").encode("utf-8")
    fixed = b"\n".join(lines)
    return fixed if end < 0 else fixed + raw[end:]


def _header(message: Message, name: str) -> str:
    """A header's decoded value ("" if absent); a malformed one falls back to its raw text."""
    try:
        value = message.get(name)
        text = "" if value is None else str(value)
    except Exception:  # the header registry can trip over badly malformed values
        raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), "")  # type: ignore[attr-defined]
        text = str(raw)
    return " ".join(repair_text(text).split())


def _header_all(message: Message, name: str) -> list[str]:
    try:
        values = [str(v) for v in message.get_all(name) or []]
    except Exception:
        values = [str(v) for k, v in message.raw_items() if k.lower() == name.lower()]  # type: ignore[attr-defined]
    return [" ".join(repair_text(v).split()) for v in values]


def _addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    """(name, address) pairs from address header values, leniently."""
    pairs: list[tuple[str, str]] = []
    for name, address in getaddresses(list(values)):
        address = address.strip()
        if address:
            pairs.append((name.strip(), address))
    return pairs


def _plausible_address(address: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at or not local or any(c.isspace() for c in address):
        return ""
    if "." not in domain and domain != "localhost":
        return ""
    return address


# --------------------------------------------------------------------------- HTML to text


class _HTMLText(HTMLParser):
    """Readable text from HTML: no markup, scripts or styles; blocks on their own lines."""

    #: Elements that start a new line.
    BLOCKS = frozenset(
        {
            *("address", "article", "aside", "dd", "dl", "dt", "fieldset", "figcaption"),
            *("figure", "footer", "form", "header", "hr", "li", "main", "nav", "section"),
            *("tbody", "thead", "tfoot", "tr"),
        }
    )
    #: Elements that stand apart from the text around them by an empty line.
    PARAGRAPHS = frozenset(
        {"p", "div", "blockquote", "table", "ul", "ol", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "object"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        self.links: list[tuple[str, int]] = []

    def _newline(self, count: int = 1) -> None:
        """End the current line; with count 2, leave an empty line (never more than asked)."""
        tail = "".join(self.parts[-8:]).rstrip(" \t")
        if not tail.strip() and not "".join(self.parts).strip():
            return  # nothing written yet
        have = len(tail) - len(tail.rstrip("\n"))
        self.parts.append("\n" * max(0, count - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        attributes = dict(attrs)
        if tag == "br":
            self._newline()
        elif tag in self.PARAGRAPHS:
            self._newline(2)
        elif tag == "li":
            self._newline()
            self.parts.append("- ")
        elif tag in self.BLOCKS:
            self._newline()
        elif tag in {"td", "th"}:
            self.parts.append("\t")
        elif tag == "img" and attributes.get("alt"):
            self.parts.append(f"[{attributes['alt']}]")
        if tag == "pre":
            self.pre_depth += 1
        if tag == "a":
            self.links.append((attributes.get("href") or "", len(self.parts)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            return
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.parts[start:]).strip()
            href = href.strip()
            shown = href.removeprefix("mailto:")
            if href and not href.startswith(("#", "javascript:", "cid:")) and shown not in label:
                self.parts.append(f" ({shown})" if label else shown)
        elif tag in self.PARAGRAPHS:
            self._newline(2)
        elif tag in self.BLOCKS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = [line.strip(" \t") for line in "".join(self.parts).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """The text of an HTML part, with line breaks for blocks and link targets written out."""
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient; this is only a last resort
        return re.sub(r"<[^>]*>", " ", html)
    return parser.text()


# --------------------------------------------------------------------------- MIME walking


def _unflow(text: str, delsp: bool) -> str:
    """Join the soft line breaks of a format=flowed part (RFC 3676)."""
    out: list[str] = []
    for line in text.split("\n"):
        quoted = line.startswith(">")
        if line.startswith(" "):
            line = line[1:]
        if out and out[-1].endswith(" ") and out[-1] != "-- " and not quoted:
            out[-1] = (out[-1][:-1] if delsp else out[-1]) + line
        else:
            out.append(line)
    return "\n".join(out)


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload() or "").encode("utf-8", "surrogateescape")
    text = decode_bytes(payload, part.get_content_charset()).replace("\r\n", "\n")
    text = text.replace("\r", "\n")
    if part.get_content_subtype() == "html":
        return html_to_text(text)
    if (part.get_param("format") or "").lower() == "flowed":
        text = _unflow(text, (part.get_param("delsp") or "").lower() == "yes")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def _plain(raw: bytes, charset: str | None) -> str:
    text = decode_bytes(raw, charset)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    return repair_text(str(name)).strip()


class _Walker:
    """Collects the readable text and the files of a message, forwarded ones included."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.files: list[tuple[str, bytes]] = []

    def visit(self, part: Message, *, files_only: bool = False, depth: int = 0) -> None:
        if depth > 20:  # a pathological nesting; what was found so far is kept
            return
        content_type = part.get_content_type()
        maintype = part.get_content_maintype()
        if maintype == "multipart":
            payload = part.get_payload()
            if not isinstance(payload, list):
                # The boundary never came: what there is, is read as plain text.
                body = part.get_payload(decode=True)
                if not files_only and isinstance(body, bytes) and body.strip():
                    self.texts.append(_plain(body, part.get_content_charset()))
                return
            children = [c for c in payload if isinstance(c, Message)]
            self._multipart(part.get_content_subtype(), children, files_only, depth)
        elif content_type in {"message/rfc822", "message/global"}:
            # A forwarded email (inline or as an .eml attachment): its text and files count.
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                if not files_only:
                    self.texts.append(_forwarded_heading(inner))
                self.visit(inner, files_only=files_only, depth=depth + 1)
            else:
                self._leaf(part, files_only)
        else:
            self._leaf(part, files_only)

    def _multipart(
        self, subtype: str, children: list[Message], files_only: bool, depth: int
    ) -> None:
        if subtype == "alternative" and children:
            chosen = _choose_alternative(children)
            for child in children:
                self.visit(child, files_only=files_only or child is not chosen, depth=depth + 1)
        elif subtype == "signed" and children:
            self.visit(children[0], files_only=files_only, depth=depth + 1)
        elif subtype == "encrypted":
            if not files_only:
                self.texts.append("(This message is encrypted; Desk cannot read it.)")
        else:
            for child in children:
                self.visit(child, files_only=files_only, depth=depth + 1)

    def _leaf(self, part: Message, files_only: bool) -> None:
        content_type = part.get_content_type()
        if content_type in SIGNATURE_TYPES:
            return
        name = _filename(part)
        disposition = part.get_content_disposition()
        is_body = (
            content_type in {"text/plain", "text/html"} and not name and disposition != "attachment"
        )
        if is_body:
            if files_only:
                return
            text = _part_text(part)
            if text:
                self.texts.append(text)
            return
        if part.get_content_maintype() == "multipart":
            return
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            inner = part.get_payload()
            payload = inner.as_bytes() if isinstance(inner, Message) else b""
        self.files.append((name or _generated_name(content_type, len(self.files) + 1), payload))


def _choose_alternative(children: list[Message]) -> Message:
    """The plain text version when it says anything; else the richest (last) readable one."""
    for child in children:
        if child.get_content_type() == "text/plain" and _part_text(child):
            return child
    for child in reversed(children):
        if child.get_content_type() == "text/html" or child.get_content_maintype() == "multipart":
            return child
    return children[-1]


def _generated_name(content_type: str, number: int) -> str:
    extension = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    kind = "image" if content_type.startswith("image/") else "part"
    return f"{kind}-{number}{extension}"


def _forwarded_heading(inner: Message) -> str:
    lines = ["---------- Forwarded message ----------"]
    for name in ("From", "Date", "Subject", "To"):
        value = _header(inner, name)
        if value:
            lines.append(f"{name}: {value}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- parsing


def _language(message: Message, subject: str, text: str) -> str:
    declared = _header(message, "Content-Language").lower()
    if declared:
        return "fr" if declared.startswith("fr") else "en"
    words = re.findall(r"[a-zàâçéèêëîïôûùüÿœ]+", f"{subject} {text[:4000]}".lower())
    french = sum(word in FRENCH_WORDS for word in words)
    english = sum(word in ENGLISH_WORDS for word in words)
    return "fr" if french >= 3 and french > english else "en"


def _automatic(message: Message, from_email: str) -> str:
    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if _header(message, name):
            return f"{name} header"
    if _header(message, "Precedence").lower() in {"auto_reply", "auto-reply"}:
        return "Precedence: auto_reply"
    if message.get_content_type() == "multipart/report":
        return "delivery report"
    if from_email.lower().startswith(("mailer-daemon@", "postmaster@")):
        return "sent by a mail server"
    return ""


def _synthetic_message_id(message: Message, raw: bytes) -> str:
    """A stable stand-in for a missing Message-ID, so a re-delivery is still recognised."""
    digest = hashlib.sha256()
    for name in ("From", "Date", "Subject", "To"):
        digest.update(_header(message, name).encode() + b"\x00")
    end = _header_end(raw)
    digest.update(raw[end:] if end >= 0 else raw)
    return f"<desk.{digest.hexdigest()[:40]}@email-in.invalid>"


def parse_email(raw: bytes) -> ParsedEmail:
    """Read a raw email (bytes as received) into the parts Desk keeps. Never raises on content."""
    raw = _fix_header_block(raw)
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
    has_headers = bool(list(message.raw_items()))

    from_pairs = _addresses(_header_all(message, "From"))
    reply_pairs = _addresses(_header_all(message, "Reply-To"))
    from_name, from_email = from_pairs[0] if from_pairs else ("", "")
    if not from_email:
        from_name, from_email = parseaddr(_header(message, "From"))
    # A reply goes where Reply-To says (web forms and lists send on behalf of the reader).
    if len(reply_pairs) == 1 and _plausible_address(reply_pairs[0][1]):
        reply_name, reply_email = reply_pairs[0]
        if reply_email.lower() != from_email.lower():
            from_name, from_email = reply_name or from_name, reply_email
    from_email = _plausible_address(from_email)

    walker = _Walker()
    walker.visit(message)
    text = "\n\n".join(t for t in walker.texts if t.strip()).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - len(TRUNCATED_NOTE)].rstrip() + TRUNCATED_NOTE

    subject = _header(message, "Subject")
    recipients = [
        address
        for name in RECIPIENT_HEADERS
        for _, address in _addresses(_header_all(message, name))
    ]
    thread_ids = MESSAGE_ID.findall(_header(message, "In-Reply-To"))
    for message_id in MESSAGE_ID.findall(_header(message, "References")):
        if message_id not in thread_ids:
            thread_ids.append(message_id)
    message_id_match = MESSAGE_ID.search(_header(message, "Message-ID"))
    message_id = (
        message_id_match.group(0) if message_id_match else _synthetic_message_id(message, raw)
    )
    return ParsedEmail(
        message_id=message_id[:300],
        subject=subject,
        from_name=from_name,
        from_email=from_email,
        language=_language(message, subject, text),
        text=text,
        files=[IncomingFile(filename=name, stream=BytesIO(data)) for name, data in walker.files],
        header_recipients=recipients,
        thread_ids=thread_ids,
        automatic=_automatic(message, from_email),
        has_headers=has_headers,
    )


# --------------------------------------------------------------------------- country


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def _country_by_code(code: str) -> Country | None:
    code = code.strip().upper()
    if len(code) != 2 or code == UNROUTED_PREFIX or not code.isalpha():
        return None
    country = db.session.scalar(sa.select(Country).where(Country.code == code))
    if country is not None:
        return country
    try:
        return ensure_country(code)
    except UnknownCountry:
        return None


def _country_by_tag(tag: str) -> Country | None:
    """A plus tag: an ISO code ("ml") or a country's slug ("mali", "cote-d-ivoire")."""
    country = _country_by_code(tag) if len(tag) == 2 else None
    if country is None:
        country = db.session.scalar(sa.select(Country).where(Country.slug == tag.lower()))
    return country


def plus_address_country(addresses: Iterable[str]) -> tuple[Country | None, str]:
    """The country named by the plus tag of the first address at the intake's domain."""
    intake_domain = _domain(current_app.config["DESK_INTAKE_ADDRESS"])
    for address in addresses:
        address = address.strip().strip("<>")
        local, _, domain = address.rpartition("@")
        if domain.lower() != intake_domain or "+" not in local:
            continue
        tag = local.partition("+")[2].strip()
        country = _country_by_tag(tag) if tag else None
        if country is not None:
            return country, f"plus-address {address}"
    return None, ""


@lru_cache(maxsize=512)
def _french_name(code: str) -> str:
    record = pycountry.countries.get(alpha_2=code)
    if record is None:
        return ""
    try:
        translation = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["fr"])
    except OSError:
        return ""
    return translation.gettext(record.name)


def _names_in(subject: str) -> list[Country]:
    """Countries Desk knows that the subject names, in English or French (accents ignored)."""
    folded = f" {re.sub(r'[^a-z0-9]+', ' ', fold(subject))} "
    candidates: list[tuple[str, Country]] = []
    for country in db.session.scalars(sa.select(Country)):
        names = {country.name, country.slug.replace("-", " "), _french_name(country.code)}
        for name in names:
            key = re.sub(r"[^a-z0-9]+", " ", fold(name)).strip()
            if len(key) >= 3:
                candidates.append((key, country))
    found: list[Country] = []
    # Longest names first, each match blanked out: "Guinea-Bissau" is not also "Guinea".
    for key, country in sorted(candidates, key=lambda pair: -len(pair[0])):
        needle = f" {key} "
        if needle in folded:
            folded = folded.replace(needle, " " * len(needle))
            if country not in found:
                found.append(country)
    return found


def subject_country(subject: str) -> tuple[Country | None, str]:
    """The country a subject names: a reference, an ISO code tag, or a country name."""
    for match in REFERENCE.finditer(subject):
        country = _country_by_code(match.group(1))
        if country is not None:
            return country, f"subject reference {match.group(0).upper()}"
    for match in CODE_TAG.finditer(subject):
        country = _country_by_code(match.group(1))
        if country is not None:
            return country, f"subject tag [{country.code}]"
    named = _names_in(subject)
    if len(named) == 1:
        return named[0], f"subject names {named[0].name}"
    return None, ""


def find_country(
    parsed: ParsedEmail, envelope_recipients: Sequence[str] = ()
) -> tuple[Country | None, str]:
    """The item's country and why; (None, reason) when it goes to the unrouted queue."""
    country, why = plus_address_country([*envelope_recipients, *parsed.header_recipients])
    if country is None:
        country, why = subject_country(parsed.subject)
    return country, why or "no country in the address or the subject"


def find_profile(country: Country | None, subject: str, language: str) -> Profile | None:
    """The profile of that country whose topic the subject names, if exactly one topic is."""
    if country is None or not subject:
        return None
    folded = f" {re.sub(r'[^a-z0-9]+', ' ', fold(subject))} "
    profiles = db.session.scalars(
        sa.select(Profile)
        .where(Profile.country_id == country.id, Profile.is_published)
        .order_by(Profile.id)
    ).all()
    named = [
        p for p in profiles if f" {re.sub(r'[^a-z0-9]+', ' ', fold(p.topic)).strip()} " in folded
    ]
    if len({p.topic_slug for p in named}) != 1:
        return None
    return next((p for p in named if p.language == language), named[0])


# --------------------------------------------------------------------------- threading


def _own_domain() -> str:
    return _domain(current_app.config["DESK_MAIL_FROM"]) or "desk.invalid"


def _by_reference(reference: str) -> Feedback | None:
    return db.session.scalar(sa.select(Feedback).where(Feedback.reference == reference.upper()))


def find_thread(parsed: ParsedEmail) -> tuple[Feedback | None, str]:
    """The item this email answers, and how it was told; (None, "") for a new item."""
    own = _own_domain()
    for message_id in parsed.thread_ids:
        local, _, domain = message_id.strip("<>").rpartition("@")
        match = REFERENCE.search(local)
        # Desk's own messages name the item: <ack.ML-2026-00042@…> (any domain, for a desk
        # whose mail domain changed), or any <….REF@our domain>.
        if match and (local.startswith("ack.") or domain.lower() == own):
            item = _by_reference(match.group(0))
            if item is not None:
                return item, f"answers {message_id}"
    if parsed.thread_ids:
        item = db.session.scalar(
            sa.select(Feedback)
            .where(Feedback.email_message_id.in_(parsed.thread_ids[:50]))
            .order_by(Feedback.id)
            .limit(1)
        )
        if item is not None:
            return item, f"answers {item.email_message_id}"
    for match in REFERENCE.finditer(parsed.subject):
        item = _by_reference(match.group(0))
        if item is not None:
            return item, f"subject quotes {item.reference}"
    return None, ""


def _reply_seen(message_id: str) -> Feedback | None:
    event = db.session.scalar(
        sa.select(FeedbackEvent)
        .where(
            FeedbackEvent.kind == EventKind.REPLY_RECEIVED,
            FeedbackEvent.data["message_id"].as_string() == message_id,
        )
        .limit(1)
    )
    return event.feedback if event is not None else None


# --------------------------------------------------------------------------- processing


def _is_desk_address(address: str) -> bool:
    config = current_app.config
    own = {config["DESK_MAIL_FROM"].lower(), config["DESK_INTAKE_ADDRESS"].lower()}
    local, _, domain = address.lower().rpartition("@")
    return address.lower() in own or f"{local.partition('+')[0]}@{domain}" in own


def _measured(files: list[IncomingFile]) -> list[IncomingFile]:
    """The files, those over the per-file limit marked so (and their bytes let go)."""
    limit = int(current_app.config["DESK_UPLOAD_MAX_FILE_BYTES"])
    measured = []
    for incoming in files:
        size = incoming.stream.seek(0, 2)
        incoming.stream.seek(0)
        if size > limit:
            incoming = IncomingFile(incoming.filename, BytesIO(), is_over_limit=True)
        measured.append(incoming)
    return measured


def submission_from(parsed: ParsedEmail, envelope_recipients: Sequence[str] = ()) -> Submission:
    """The intake submission for a new item."""
    country, why = find_country(parsed, envelope_recipients)
    return Submission(
        channel=Channel.EMAIL,
        message=parsed.text,
        profile=find_profile(country, parsed.subject, parsed.language),
        country=country,
        country_reason=why,
        submitter_name=parsed.from_name,
        submitter_email=parsed.from_email,
        subject=parsed.subject,
        language=parsed.language,
        files=_measured(parsed.files),
        email_message_id=parsed.message_id,
    )


def process_email(raw: bytes, envelope_recipients: Sequence[str] = ()) -> EmailOutcome:
    """Take one raw email in the caller's transaction (flushed, not committed).

    Raises :class:`EmailRefused` for bytes that are no email at all.
    """
    if not raw.strip():
        raise EmailRefused("the message is empty")
    parsed = parse_email(raw)
    if not parsed.has_headers:
        raise EmailRefused("the message has no headers")

    existing = db.session.scalar(
        sa.select(Feedback.reference)
        .where(Feedback.email_message_id == parsed.message_id)
        .order_by(Feedback.id)
        .limit(1)
    )
    if existing is not None:
        return EmailOutcome(Outcome.ALREADY, existing, detail="same Message-ID")
    replied = _reply_seen(parsed.message_id)
    if replied is not None:
        return EmailOutcome(Outcome.ALREADY, replied.reference, detail="reply already recorded")

    if parsed.automatic:
        log.info("email-in: ignored %s (%s)", parsed.message_id, parsed.automatic)
        return EmailOutcome(Outcome.IGNORED, detail=f"automatic message: {parsed.automatic}")
    if parsed.from_email and _is_desk_address(parsed.from_email):
        return EmailOutcome(Outcome.IGNORED, detail="sent by Desk itself")

    item, how = find_thread(parsed)
    if item is not None:
        reply = add_reader_reply(
            item,
            message_id=parsed.message_id,
            from_email=parsed.from_email,
            from_name=parsed.from_name,
            subject=parsed.subject,
            text=parsed.text,
            files=_measured(parsed.files),
            how=how,
        )
        return EmailOutcome(
            Outcome.REPLY, reply.feedback.reference, tuple(reply.rejected_files), detail=how
        )

    result = receive_feedback(submission_from(parsed, envelope_recipients))
    if result.is_repeat:
        return EmailOutcome(Outcome.ALREADY, result.feedback.reference, detail="same submission")
    return EmailOutcome(Outcome.CREATED, result.feedback.reference, tuple(result.rejected_files))


def deliver_email(app: Flask, raw: bytes, envelope_recipients: Sequence[str] = ()) -> EmailOutcome:
    """Take one raw email in a transaction of its own, committed before returning.

    Any error rolls back and propagates: :class:`EmailRefused` means "never", anything else
    (database or storage down) means "try again later".
    """
    with app.app_context():
        try:
            refresh_runtime_settings()  # upload limits an admin changed, outside any request
            outcome = process_email(raw, envelope_recipients)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
    log.info("email-in: %s", outcome.describe())
    return outcome
