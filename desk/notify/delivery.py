"""Drain the outbox: claim due messages, send them over one SMTP connection, record the outcome.

Claiming moves a message's next attempt a lease ahead in one statement (with SKIP LOCKED on
PostgreSQL), so any number of workers can drain at once without sending a message twice. Each
outcome is committed as soon as it is known: a worker killed mid-batch leaves the messages it
had not sent to be claimed again once their lease ends, and the ones it sent marked sent.
"""

from __future__ import annotations

import email.policy
import logging
import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.mime.base import MIMEBase
from typing import Any, Protocol

import sqlalchemy as sa
from flask import current_app
from flask_mail import Message

from desk.core.time import utcnow
from desk.extensions import db, mail
from desk.notify.models import OutboxMessage, OutboxState

log = logging.getLogger(__name__)

#: How long a claimed message is left to its worker before another may claim it.
LEASE = timedelta(minutes=5)


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


#: Serialising for the wire: CRLF line ends, headers written as given, folded only past RFC
#: 5322's hard limit of 998 characters. Flask-Mail's own choice, the SMTP policy, rewrites a long
#: header it cannot fold as RFC 2047 encoded words, which turns List-Unsubscribe into something
#: no mail client reads as a link; it also re-parses every header of every message, which made
#: building a message cost more than sending it.
WIRE_POLICY = email.policy.compat32.clone(linesep="\r\n", max_line_length=998)


class OutboxMail(Message):
    """A Flask-Mail message written out with :data:`WIRE_POLICY`.

    Its multipart boundaries are random and set up front: left unset, the generator makes one
    and compiles a regular expression per part to prove the text does not contain it.
    """

    def _message(self) -> MIMEBase:
        message = super()._message()
        message.policy = WIRE_POLICY
        for part in message.walk():
            if part.is_multipart():
                part.set_boundary(f"=={uuid.uuid4().hex}==")
        return message


class Sendable(Protocol):
    """What building an email needs: an outbox row, or a row of its columns."""

    recipient: str
    subject: str
    text: str
    html: str
    headers: dict[str, Any]
    message_id: str


def as_mail_message(message: Sendable) -> Message:
    mail_message = OutboxMail(
        subject=message.subject,
        recipients=[message.recipient],
        body=message.text,
        html=message.html or None,
        sender=current_app.config["DESK_MAIL_FROM"],
        extra_headers={str(k): str(v) for k, v in message.headers.items()},
    )
    mail_message.msgId = message.message_id
    return mail_message


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


def _set(message_id: int, **values: Any) -> None:
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _record_failure(message: Any, error: BaseException, now: datetime) -> OutboxState:
    """A failed attempt: another later (doubling delay), or dead after the last one."""
    last_error = f"{type(error).__name__}: {error}"[:2000]
    if message.attempts >= current_app.config["DESK_OUTBOX_MAX_ATTEMPTS"]:
        _set(message.id, state=OutboxState.DEAD, last_error=last_error)
        return OutboxState.DEAD
    delay = current_app.config["DESK_OUTBOX_RETRY_SECONDS"] * 2 ** (message.attempts - 1)
    _set(
        message.id,
        state=OutboxState.FAILED,
        last_error=last_error,
        next_attempt_at=now + timedelta(seconds=delay),
    )
    return OutboxState.FAILED


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
    try:
        connection = mail.connect()
        connection.__enter__()
    except (OSError, smtplib.SMTPException) as error:
        log.warning("outbox: cannot reach the mail server: %s", error)
        for message in messages:
            _file(report, message.id, _record_failure(message, error, now))
        db.session.commit()
        return report
    relaxed = db.session.get_bind().dialect.name == "postgresql"
    try:
        for message in messages:
            if relaxed:
                # Each outcome is its own transaction; waiting for it to reach the disk would
                # cost more than sending the email. A worker dying loses nothing (the server
                # has the commit); only the database server crashing within a fraction of a
                # second could forget a "sent", and that email would go out a second time.
                db.session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
            try:
                connection.send(as_mail_message(message))
            except (OSError, smtplib.SMTPException) as error:
                _file(report, message.id, _record_failure(message, error, now))
            else:
                _set(message.id, state=OutboxState.SENT, sent_at=utcnow(), last_error="")
                report.sent.append(message.id)
            db.session.commit()
    finally:
        try:
            connection.__exit__(None, None, None)
        except (OSError, smtplib.SMTPException) as error:
            log.info("outbox: closing the mail connection failed: %s", error)
    return report


def _file(report: DeliveryReport, message_id: int, state: OutboxState) -> None:
    (report.dead if state == OutboxState.DEAD else report.failed).append(message_id)


def retry_dead(message: OutboxMessage) -> None:
    """An admin's retry: the message is due again, with a fresh count of attempts."""
    message.state = OutboxState.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.last_error = ""
