"""The outbox: every email Desk sends is first a row here, written with the change causing it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from desk.core.db import str_enum
from desk.core.time import utcnow
from desk.extensions import db


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    #: The last attempt failed; another is due at next_attempt_at.
    FAILED = "failed"
    #: Gave up after the configured attempts; an admin may retry.
    DEAD = "dead"


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"
    __table_args__ = (sa.Index(None, "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What the email is, e.g. "feedback.acknowledgement", "profile.updated".
    kind: Mapped[str] = mapped_column(sa.String(60), index=True)
    recipient: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(300))
    text: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str] = mapped_column(sa.Text, default="")
    #: Extra headers (List-Unsubscribe, In-Reply-To, …).
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Stable across retries, so a resent message is recognisably the same one.
    message_id: Mapped[str] = mapped_column(sa.String(300), unique=True)
    #: One message per recipient and cause: a second write with the same key is a no-op.
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    state: Mapped[OutboxState] = mapped_column(str_enum(OutboxState), default=OutboxState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
