"""Drain the outbox: claim due messages, send them over one SMTP connection, record the outcome.

Claiming moves a message's next attempt a lease ahead in one statement (with SKIP LOCKED on
PostgreSQL), so any number of workers can drain at once without sending a message twice. Each
outcome is committed as soon as it is known: a worker killed mid-batch leaves the messages it
had not sent to be claimed again once their lease ends, and the ones it sent marked sent.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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


def as_mail_message(message: OutboxMessage) -> Message:
    mail_message = Message(
        subject=message.subject,
        recipients=[message.recipient],
        body=message.text,
        html=message.html or None,
        sender=current_app.config["DESK_MAIL_FROM"],
        extra_headers={str(k): str(v) for k, v in message.headers.items()},
    )
    mail_message.msgId = message.message_id
    return mail_message


def _record_failure(message: OutboxMessage, error: BaseException, now: datetime) -> OutboxState:
    message.last_error = f"{type(error).__name__}: {error}"[:2000]
    if message.attempts >= current_app.config["DESK_OUTBOX_MAX_ATTEMPTS"]:
        message.state = OutboxState.DEAD
    else:
        message.state = OutboxState.FAILED
        delay = current_app.config["DESK_OUTBOX_RETRY_SECONDS"] * 2 ** (message.attempts - 1)
        message.next_attempt_at = now + timedelta(seconds=delay)
    return message.state


def deliver_due(now: datetime | None = None) -> DeliveryReport:
    """Send one batch of due messages over one connection; returns what happened to each."""
    now = now or utcnow()
    report = DeliveryReport()
    ids = claim_due(current_app.config["DESK_OUTBOX_BATCH_SIZE"], now)
    if not ids:
        return report
    messages = list(
        db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)
        )
    )
    try:
        connection = mail.connect()
        connection.__enter__()
    except (OSError, smtplib.SMTPException) as error:
        log.warning("outbox: cannot reach the mail server: %s", error)
        for message in messages:
            _file(report, message, _record_failure(message, error, now))
        db.session.commit()
        return report
    try:
        for message in messages:
            try:
                connection.send(as_mail_message(message))
            except (OSError, smtplib.SMTPException) as error:
                _file(report, message, _record_failure(message, error, now))
            else:
                message.state = OutboxState.SENT
                message.sent_at = utcnow()
                message.last_error = ""
                report.sent.append(message.id)
            db.session.commit()
    finally:
        try:
            connection.__exit__(None, None, None)
        except (OSError, smtplib.SMTPException) as error:
            log.info("outbox: closing the mail connection failed: %s", error)
    return report


def _file(report: DeliveryReport, message: OutboxMessage, state: OutboxState) -> None:
    (report.dead if state == OutboxState.DEAD else report.failed).append(message.id)


def retry_dead(message: OutboxMessage) -> None:
    """An admin's retry: the message is due again, with a fresh count of attempts."""
    message.state = OutboxState.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.last_error = ""
