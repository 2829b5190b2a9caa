"""Drain the outbox: claim due messages, send them over one SMTP connection, record the outcome.

Claiming moves a message's next attempt a lease ahead in one statement (with SKIP LOCKED on
PostgreSQL), so any number of workers can drain at once without sending a message twice. Each
outcome is committed as soon as it is known: a worker killed mid-batch leaves the messages it
had not sent to be claimed again once their lease ends, and the ones it sent marked sent.
"""

from __future__ import annotations

import binascii
import logging
import re
import smtplib
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.header import Header
from email.utils import formatdate
from typing import Any, Protocol

import sqlalchemy as sa
from flask import current_app
from flask_mail import BadHeaderError, Message, sanitize_address

from desk.core.mail import SMTPConnection
from desk.core.time import utcnow
from desk.extensions import db, mail
from desk.notify.models import OutboxMessage, OutboxState

log = logging.getLogger(__name__)

#: How long a claimed message is left to its worker before another may claim it.
LEASE = timedelta(minutes=5)
CRLF = "\r\n"


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return len(self.sent) + len(self.failed) + len(self.dead)


def claim_due(limit: int, now: datetime) -> list[int]:
    """Take up to ``limit`` due messages for this worker; commits the claim."""
    due = (
        sa.select(OutboxMessage.id)
        .where(
            OutboxMessage.state.in_([OutboxState.PENDING, OutboxState.FAILED]),
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claim = (
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + LEASE, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(db.session.scalars(claim))
    db.session.commit()
    return ids


class Sendable(Protocol):
    """What building an email needs: an outbox row, or a row of its columns."""

    recipient: str
    subject: str
    text: str
    html: str
    headers: dict[str, Any]
    message_id: str


#: Longest header line written as it is (RFC 5322's hard limit is 998 characters).
MAX_HEADER_LINE = 998
#: A bare address that needs no quoting or encoding in the To header.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def header_line(name: str, value: str) -> str:
    """One header as it goes on the wire, without its line end.

    Plain ASCII that fits on a line is written exactly as given: a List-Unsubscribe URL must
    reach mail clients as a link, not folded or RFC 2047-encoded. Anything else is encoded
    (non-ASCII, as RFC 2047 words) or folded at spaces (overlong ASCII). A line break in a
    value could smuggle in headers of its own, so it is refused.
    """
    if "\r" in value or "\n" in value:
        raise BadHeaderError(f"the {name} header has a line break")
    if value.isascii() and len(name) + 2 + len(value) <= MAX_HEADER_LINE:
        return f"{name}: {value}"
    if value.isascii():
        folded = Header(value, "us-ascii", maxlinelen=MAX_HEADER_LINE, header_name=name)
    else:
        folded = Header(value, "utf-8", header_name=name)
    return f"{name}: {folded.encode(linesep=CRLF)}"


def wire_address(address: str) -> str:
    """An address as headers and the envelope carry it: a bare ASCII address as it is,
    anything else (a display name, an international domain) as Flask-Mail writes it."""
    return address if _PLAIN_ADDRESS.fullmatch(address) else sanitize_address(address)


class HeaderLines:
    """Header lines already written, for one delivery run.

    Every reader of one update gets the same subject in their language, and every message the
    same sender: encoding a French subject costs more than sending the message, so each
    distinct line is written once per run. Per-reader headers (recipient, unsubscribe URL) are
    plain ASCII and cost nothing to write.
    """

    def __init__(self) -> None:
        self._lines: dict[tuple[str, str], str] = {}

    def line(self, name: str, value: str) -> str:
        key = (name, value)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = header_line(name, value)
        return line

    def sender(self, sender: str) -> str:
        """The sender as written in the From header and the envelope."""
        key = ("", sender)
        address = self._lines.get(key)
        if address is None:
            address = self._lines[key] = wire_address(sender)
        return address


def _body_part(content_type: str, text: str) -> str:
    """A UTF-8 body part, base64-encoded (any text, any line length, CRLF line ends)."""
    raw = binascii.b2a_base64(text.encode("utf-8"), newline=False).decode("ascii")
    # Lines of 76 characters (RFC 2045). The line end before a boundary belongs to the
    # boundary: an empty part still needs one.
    encoded = "".join(raw[start : start + 76] + CRLF for start in range(0, len(raw), 76)) or CRLF
    return (
        f'Content-Type: {content_type}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{encoded}"
    )


def wire_bytes(
    message: Sendable, *, sender: str, recipient: str, date: float, lines: HeaderLines
) -> bytes:
    """The email as sent: its headers, then the text part, or text and HTML as alternatives.

    Written directly rather than through the email package, which would re-parse and re-fold
    every header and part of every message: an outbox message always has this one shape, so
    building it costs a small part of sending it.
    """
    head = [
        lines.line("From", sender),
        header_line("To", recipient),
        lines.line("Subject", message.subject),
        f"Date: {formatdate(date, localtime=True)}",
        header_line("Message-ID", message.message_id),
        "MIME-Version: 1.0",
    ]
    head += [header_line(str(name), str(value)) for name, value in message.headers.items()]
    if not message.html:
        return CRLF.join([*head, _body_part("text/plain", message.text)]).encode("ascii")
    # Base64 lines never hold "-", so the boundary cannot occur inside a part.
    boundary = f"=={uuid.uuid4().hex}=="
    head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    return (
        CRLF.join(head)
        + f"{CRLF}{CRLF}--{boundary}{CRLF}"
        + _body_part("text/plain", message.text)
        + f"--{boundary}{CRLF}"
        + _body_part("text/html", message.html)
        + f"--{boundary}--{CRLF}"
    ).encode("ascii")


class OutboxMail(Message):
    """An outbox message in the form Flask-Mail's connection sends, its bytes already written.

    Flask-Mail's connection checks the sender, recipients and subject for line breaks and
    sends :meth:`as_bytes`, which here are :func:`wire_bytes`; :attr:`envelope` gives it the
    addresses already in the form it would otherwise parse and write out again for every
    message (desk.core.mail.SMTPConnection). Flask-Mail's own constructor is not used: it
    draws a Message-ID (a host name lookup) only to have it replaced.
    """

    def __init__(self, message: Sendable, *, sender: str, lines: HeaderLines | None = None) -> None:
        self.subject = message.subject
        self.recipients = [message.recipient]
        self.sender = sender
        self.reply_to = None
        self.cc = []
        self.bcc = []
        self.body = message.text
        self.alts = {"html": message.html} if message.html else {}
        self.date = time.time()
        self.msgId = message.message_id
        self.charset = "utf-8"
        self.extra_headers = {str(k): str(v) for k, v in message.headers.items()}
        self.mail_options = []
        self.rcpt_options = []
        self.attachments = []
        lines = lines or HeaderLines()
        envelope_from, recipient = lines.sender(sender), wire_address(message.recipient)
        self.envelope = (envelope_from, [recipient])
        self._bytes = wire_bytes(
            message, sender=envelope_from, recipient=recipient, date=self.date, lines=lines
        )

    def as_bytes(self) -> bytes:
        return self._bytes

    def as_string(self) -> str:
        return self._bytes.decode("ascii")


def as_mail_message(message: Sendable, lines: HeaderLines | None = None) -> OutboxMail:
    """The message ready for Flask-Mail's connection (``lines``: a delivery run's cache)."""
    return OutboxMail(message, sender=current_app.config["DESK_MAIL_FROM"], lines=lines)


#: The columns a delivery run reads: plain rows, so that committing each outcome has no loaded
#: objects to expire and reload.
_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.recipient,
    OutboxMessage.subject,
    OutboxMessage.text,
    OutboxMessage.html,
    OutboxMessage.headers,
    OutboxMessage.message_id,
    OutboxMessage.attempts,
)


_outbox = OutboxMessage.__table__

#: Marking a message sent: a plain UPDATE by id, built once and run once per message.
_MARK_SENT = (
    _outbox.update()
    .where(_outbox.c.id == sa.bindparam("outbox_id"))
    .values(state=OutboxState.SENT, sent_at=sa.bindparam("sent_at"), last_error="")
)
#: The same on PostgreSQL, with its transaction told not to wait for the disk at commit:
#: ``set_config(…, true)`` is ``SET LOCAL``, here in the same statement (PostgreSQL runs the
#: uncorrelated subquery once, first). The commit is still done for every other session, so
#: a worker killed after it resends nothing; only the database server itself crashing
#: within a fraction of a second (wal_writer_delay) could forget a "sent", and that one
#: email would go out a second time. Waiting for the disk instead would cost more than
#: sending the email.
_MARK_SENT_NO_DISK_WAIT = _MARK_SENT.where(
    sa.select(sa.func.set_config("synchronous_commit", "off", True)).scalar_subquery().is_not(None)
)


class _Outcomes:
    """Writes each message's outcome as a transaction of its own, all on one connection.

    The app's session hands its connection back to the pool at every commit and takes (and
    pings) one again for the next statement; holding one connection for the batch saves that
    round trip per message. On PostgreSQL the connection autocommits: an outcome is one
    UPDATE, and so its own transaction in one round trip instead of two. On a connection that
    is inside a transaction already (a test's outer transaction), each outcome is a savepoint.
    """

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.nested = connection.in_transaction()
        postgresql = connection.dialect.name == "postgresql"
        self.mark_sent = _MARK_SENT_NO_DISK_WAIT if postgresql else _MARK_SENT

    def write(self, statement: sa.Executable, parameters: dict[str, Any] | None = None) -> None:
        if self.nested:
            with self.connection.begin_nested():
                self.connection.execute(statement, parameters)
            return
        self.connection.execute(statement, parameters)
        self.connection.commit()

    def sent(self, message_id: int) -> None:
        self.write(self.mark_sent, {"outbox_id": message_id, "sent_at": utcnow()})

    def failed(self, message: Any, error: BaseException, now: datetime) -> OutboxState:
        """A failed attempt: another later (doubling delay), or dead after the last one."""
        last_error = f"{type(error).__name__}: {error}"[:2000]
        update = _outbox.update().where(_outbox.c.id == message.id)
        if message.attempts >= current_app.config["DESK_OUTBOX_MAX_ATTEMPTS"]:
            self.write(update.values(state=OutboxState.DEAD, last_error=last_error))
            return OutboxState.DEAD
        delay = current_app.config["DESK_OUTBOX_RETRY_SECONDS"] * 2 ** (message.attempts - 1)
        retry_at = now + timedelta(seconds=delay)
        self.write(
            update.values(state=OutboxState.FAILED, last_error=last_error, next_attempt_at=retry_at)
        )
        return OutboxState.FAILED


@contextmanager
def _outcomes() -> Iterator[_Outcomes]:
    """:class:`_Outcomes` on the app session's own connection when it is bound to one, else
    on a connection of its own (autocommitting on PostgreSQL)."""
    bind = db.session.get_bind()
    if isinstance(bind, sa.Connection):
        yield _Outcomes(bind)
        return
    with bind.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        yield _Outcomes(connection)


def deliver_due(now: datetime | None = None) -> DeliveryReport:
    """Send one batch of due messages over one connection; returns what happened to each."""
    now = now or utcnow()
    report = DeliveryReport()
    ids = claim_due(current_app.config["DESK_OUTBOX_BATCH_SIZE"], now)
    if not ids:
        return report
    messages = db.session.execute(
        sa.select(*_COLUMNS).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
    ).all()
    # Ended before the outcomes are written on a connection of their own (on SQLite this
    # read holds the write lock).
    db.session.commit()
    with _outcomes() as outcomes:
        try:
            connection = mail.connect()
            connection.__enter__()
        except (OSError, smtplib.SMTPException) as error:
            log.warning("outbox: cannot reach the mail server: %s", error)
            for message in messages:
                _file(report, message.id, outcomes.failed(message, error, now))
            return report
        try:
            _send_each(connection, messages, outcomes, report, now)
        finally:
            try:
                connection.__exit__(None, None, None)
            except (OSError, smtplib.SMTPException) as error:
                log.info("outbox: closing the mail connection failed: %s", error)
    return report


def _send_each(
    connection: Any,
    messages: list[Any],
    outcomes: _Outcomes,
    report: DeliveryReport,
    now: datetime,
) -> None:
    """Send each message; its outcome is committed before the next message's DATA goes out.

    So a worker killed at any moment has at most the one message in flight unrecorded. Over
    SMTP the "sent" of message n is committed while message n+1 is built and its envelope
    (MAIL FROM, RCPT TO) is sent, and n+1's DATA waits for that commit: a server takes a
    message only at the end of its DATA, so this overlaps the database's round trip with the
    mail server's without ever having two messages delivered and unrecorded.
    """
    lines = HeaderLines()
    records = _SentRecords(outcomes, overlap=isinstance(connection, SMTPConnection))
    if isinstance(connection, SMTPConnection):
        connection.before_data = records.settle
    try:
        for message in messages:
            try:
                connection.send(as_mail_message(message, lines))
            except (OSError, smtplib.SMTPException, BadHeaderError) as error:
                records.settle()
                _file(report, message.id, outcomes.failed(message, error, now))
            else:
                records.sent(message.id)
                report.sent.append(message.id)
        records.settle()
    finally:
        if isinstance(connection, SMTPConnection):
            connection.before_data = None
        records.close()


class _SentRecords:
    """Commits "sent" outcomes in order, one at a time, on a helper thread when ``overlap``.

    :meth:`sent` hands a message's outcome over (after the previous one is settled);
    :meth:`settle` waits until it is committed and raises what writing it raised. Without
    ``overlap`` each outcome is written at once, in the caller's thread.
    """

    def __init__(self, outcomes: _Outcomes, *, overlap: bool) -> None:
        self._outcomes = outcomes
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="desk-outbox") if overlap else None
        )
        self._pending: Future[None] | None = None

    def sent(self, message_id: int) -> None:
        self.settle()
        if self._executor is None:
            self._outcomes.sent(message_id)
        else:
            self._pending = self._executor.submit(self._outcomes.sent, message_id)

    def settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last outcome (also when the run is being abandoned), then stop."""
        if self._executor is None:
            return
        try:
            self.settle()
        except Exception:
            log.exception("outbox: recording the last message sent failed")
            raise
        finally:
            self._executor.shutdown(wait=True)


def _file(report: DeliveryReport, message_id: int, state: OutboxState) -> None:
    (report.dead if state == OutboxState.DEAD else report.failed).append(message_id)


def retry_dead(message: OutboxMessage) -> None:
    """An admin's retry: the message is due again, with a fresh count of attempts."""
    message.state = OutboxState.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.last_error = ""
