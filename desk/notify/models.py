"""The outbox: every email Desk sends is first a row here, written with the change causing it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from desk.core.db import str_enum
from desk.core.time import utcnow
from desk.extensions import db
from desk.profiles.models import Profile


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


class Frequency(enum.StrEnum):
    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


class Subscription(db.Model):
    """ "Email me when this profile is updated". Never deleted: ended, with the reason."""

    __tablename__ = "subscription"
    __table_args__ = (
        sa.Index(
            "uq_subscription_active_email_profile",
            "email",
            "profile_id",
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        ),
        sa.Index(None, "profile_id", "confirmed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased.
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    profile_id: Mapped[int] = mapped_column(sa.ForeignKey("profile.id"))
    frequency: Mapped[Frequency] = mapped_column(str_enum(Frequency), default=Frequency.IMMEDIATE)
    #: Language of the emails ("en", "fr").
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set when the subscriber confirmed by the emailed link (double opt-in); NULL until then.
    confirmed_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    #: "unsubscribed", "one-click", "bounced", "replaced", "never confirmed", …
    ended_reason: Mapped[str] = mapped_column(sa.String(60), default="")
    #: Updates up to this moment have been sent in a digest (daily and weekly subscribers).
    digested_until: Mapped[datetime | None]

    profile: Mapped[Profile] = relationship()

    @property
    def is_active(self) -> bool:
        return self.confirmed_at is not None and self.ended_at is None
