"""What readers send: feedback items, their attachments and the timeline of each item."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from desk.core.db import str_enum
from desk.core.time import utcnow
from desk.extensions import db
from desk.profiles.models import Country, Profile, Section

if TYPE_CHECKING:
    from desk.accounts.models import User


class Channel(enum.StrEnum):
    WEB = "web"
    EMAIL = "email"
    API = "api"


class FeedbackStatus(enum.StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    IN_REVIEW = "in_review"
    CLOSED = "closed"


class Resolution(enum.StrEnum):
    #: A linked review task was approved.
    UPDATED = "updated"
    #: Read and judged; the reason is required.
    NO_ACTION = "no_action"
    DUPLICATE = "duplicate"
    SPAM = "spam"


class ReferenceCounter(db.Model):
    """The last number handed out per reference prefix and year (ML-2026-00042)."""

    __tablename__ = "reference_counter"

    prefix: Mapped[str] = mapped_column(sa.String(4), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Feedback(db.Model):
    __tablename__ = "feedback"
    __table_args__ = (
        sa.Index(None, "country_id", "status", "received_at"),
        sa.Index(None, "assignee_id", "status", "received_at"),
        sa.Index(None, "is_quarantined", "received_at"),
        # The inbox's "My countries" and "Mine" pages walk these newest (or oldest) first.
        sa.Index(None, "country_id", "received_at"),
        sa.Index(None, "assignee_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What readers and staff quote: country code (or XX when unrouted), year, number.
    reference: Mapped[str] = mapped_column(sa.String(20), unique=True)
    #: The country whose editors handle it; NULL while unrouted.
    country_id: Mapped[int | None] = mapped_column(sa.ForeignKey("country.id"))
    profile_id: Mapped[int | None] = mapped_column(sa.ForeignKey("profile.id"), index=True)
    section_id: Mapped[int | None] = mapped_column(sa.ForeignKey("section.id"), index=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    submitter_name: Mapped[str] = mapped_column(sa.String(200), default="")
    submitter_email: Mapped[str] = mapped_column(sa.String(254), default="", index=True)
    submitter_organisation: Mapped[str] = mapped_column(sa.String(200), default="")
    #: The reader asked to be told when the item is resolved.
    wants_resolution_notice: Mapped[bool] = mapped_column(default=False)
    subject: Mapped[str] = mapped_column(sa.String(300), default="")
    message: Mapped[str] = mapped_column(sa.Text)
    #: Language the reader wrote in (the form's language, or the email's).
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    status: Mapped[FeedbackStatus] = mapped_column(
        str_enum(FeedbackStatus), default=FeedbackStatus.NEW
    )
    resolution: Mapped[Resolution | None] = mapped_column(str_enum(Resolution))
    #: Why "no action", or other words on the resolution.
    resolution_note: Mapped[str] = mapped_column(sa.Text, default="")
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    duplicate_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("feedback.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: The first event by a person (not routing) on the item.
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    #: Held for staff review, out of the inbox, until released.
    is_quarantined: Mapped[bool] = mapped_column(default=False)
    spam_score: Mapped[float] = mapped_column(default=0.0)
    spam_reasons: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    #: Hash of the submission's content: a double submit within minutes makes one item.
    content_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: Message-ID of the email it came in (threads replies onto it).
    email_message_id: Mapped[str] = mapped_column(sa.String(300), default="", index=True)
    #: The nonce of the signed form token it was sent with: a replayed token is suspect.
    form_nonce: Mapped[str] = mapped_column(sa.String(32), default="", index=True)
    #: The submitter's address, kept for abuse handling and purged with their other data.
    submitter_ip: Mapped[str] = mapped_column(sa.String(45), default="")
    #: The reference, subject, message, submitter and file names as lower-case words without
    #: accents; kept up to date by desk.inbox.search and indexed for full-text search there.
    search_text: Mapped[str] = mapped_column(sa.Text, default="", server_default="", deferred=True)

    country: Mapped[Country | None] = relationship()
    profile: Mapped[Profile | None] = relationship()
    section: Mapped[Section | None] = relationship()
    assignee: Mapped[User | None] = relationship()
    duplicate_of: Mapped[Feedback | None] = relationship(remote_side=[id])
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="feedback", order_by="Attachment.id"
    )
    events: Mapped[list[FeedbackEvent]] = relationship(
        back_populates="feedback", order_by="FeedbackEvent.id"
    )

    def __repr__(self) -> str:
        return f"<Feedback {self.reference} {self.status}>"


class ScanStatus(enum.StrEnum):
    PENDING = "pending"
    CLEAN = "clean"
    INFECTED = "infected"
    #: No scanner is configured.
    SKIPPED = "skipped"


class Attachment(db.Model):
    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    feedback_id: Mapped[int] = mapped_column(sa.ForeignKey("feedback.id"), index=True)
    #: As the reader named it; shown to staff, never used as a path.
    original_filename: Mapped[str] = mapped_column(sa.String(255))
    #: Sniffed from the content, not taken from the browser.
    content_type: Mapped[str] = mapped_column(sa.String(120), default="")
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    #: Generated name in the Storage; empty for a rejected file (nothing was kept).
    storage_key: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    scan_status: Mapped[ScanStatus] = mapped_column(
        str_enum(ScanStatus), default=ScanStatus.SKIPPED
    )
    #: Why the file was refused (listed on the item; the file itself is not stored).
    rejection_reason: Mapped[str] = mapped_column(sa.String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    feedback: Mapped[Feedback] = relationship(back_populates="attachments")

    @property
    def is_rejected(self) -> bool:
        return bool(self.rejection_reason)


class EventKind(enum.StrEnum):
    RECEIVED = "received"
    ROUTED = "routed"
    ASSIGNED = "assigned"
    STATUS_CHANGED = "status_changed"
    NOTE = "note"
    REPLY_SENT = "reply_sent"
    REPLY_RECEIVED = "reply_received"
    LINKED_TO_TASK = "linked_to_task"
    MERGED = "merged"
    REOPENED = "reopened"
    QUARANTINED = "quarantined"
    RELEASED = "released"


class FeedbackEvent(db.Model):
    """The item's timeline; turnaround metrics are computed from it."""

    __tablename__ = "feedback_event"
    __table_args__ = (sa.Index(None, "feedback_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feedback_id: Mapped[int] = mapped_column(sa.ForeignKey("feedback.id"))
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind))
    #: NULL when the system acted (intake, routing, a job).
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    feedback: Mapped[Feedback] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()
