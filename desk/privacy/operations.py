"""Personal data: purged from closed items after a retention period; exported or erased on request.

What counts as a reader's personal data here: the name, email address, organisation and IP
address they gave with an item, and every copy Desk made of them — the addresses and names in
the item's timeline (replies received and sent), in the audit rows about the item, in the
outbox rows addressed to them (recipient, text, dedupe key) and in ended subscriptions.

What stays: the item itself (reference, profile, status, dates, the message with the reader's
name and address taken out of it), its attachments, its
timeline and therefore every turnaround metric. A purge or an erasure is recorded as a timeline
note by Desk and an audit row, both without the data that was removed.

These operations flush and never commit; the command or job that calls them commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import flag_modified

from desk.core.audit import AuditEvent, record_audit
from desk.core.storage import StorageError, get_storage
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import (
    Attachment,
    EventKind,
    Feedback,
    FeedbackEvent,
    FeedbackStatus,
)
from desk.notify.models import OutboxMessage, OutboxState, Subscription

#: What replaces a removed value inside free text and JSON.
PURGED = "[removed]"
#: The reason an erased subscription is ended with.
ERASED_REASON = "erased"
#: The keys of timeline data that hold a reader's address or name.
EVENT_PERSONAL_KEYS = ("to", "from", "from_name")
#: Outbox states whose rows are history: nothing will send them again.
FINISHED_MAIL = (OutboxState.SENT, OutboxState.DEAD)


@dataclass
class PurgeReport:
    items: list[str] = field(default_factory=list)
    subscriptions: int = 0
    mails: int = 0


@dataclass
class ErasureReport:
    email: str
    items: list[str] = field(default_factory=list)
    #: Stored files to delete once the erasure is committed (:func:`delete_stored_files`).
    storage_keys: list[str] = field(default_factory=list)
    subscriptions_ended: int = 0
    subscriptions_blanked: int = 0
    mails: int = 0


def retention_days() -> int:
    """DESK_PERSONAL_DATA_RETENTION_DAYS; 0 keeps personal data for ever."""
    return int(current_app.config["DESK_PERSONAL_DATA_RETENTION_DAYS"])


def has_personal_data() -> sa.ColumnElement[bool]:
    return sa.or_(
        Feedback.submitter_name != "",
        Feedback.submitter_email != "",
        Feedback.submitter_organisation != "",
        Feedback.submitter_ip != "",
    )


def items_due_for_purge(now: datetime, days: int) -> sa.Select[tuple[Feedback]]:
    """Closed items resolved more than ``days`` ago that still hold a reader's data."""
    return (
        sa.select(Feedback)
        .where(
            Feedback.status == FeedbackStatus.CLOSED,
            Feedback.resolved_at.is_not(None),
            Feedback.resolved_at <= now - timedelta(days=days),
            has_personal_data(),
        )
        .order_by(Feedback.id)
    )


def purge_expired_personal_data(
    now: datetime | None = None, *, batch_size: int = 500
) -> PurgeReport:
    """Blank the reader's data on items closed longer than the retention period.

    Also blanks the addresses of subscriptions ended longer ago than the period: an ended
    subscription sends nothing, and its address was only kept so the reader could see their
    history; the row (profile, dates, reason) stays for the subscriber counts. At most
    ``batch_size`` items per call, so a first run on a large desk stays a short transaction.
    """
    report = PurgeReport()
    days = retention_days()
    if days <= 0:
        return report
    now = now or utcnow()
    for feedback in db.session.scalars(items_due_for_purge(now, days).limit(batch_size)):
        report.mails += _remove_submitter(feedback, action="privacy.purged", days=days)
        report.items.append(feedback.reference)
    report.subscriptions = _blank_ended_subscriptions(now - timedelta(days=days))
    db.session.flush()
    return report


def _remove_submitter(feedback: Feedback, *, action: str, days: int | None = None) -> int:
    """Blank one item's personal fields and their copies; returns the outbox rows cleaned."""
    values = _personal_values(feedback)
    emails = [feedback.submitter_email] if feedback.submitter_email else []
    feedback.message = redact(feedback.message, values)
    feedback.subject = redact(feedback.subject, values)
    feedback.submitter_name = ""
    feedback.submitter_email = ""
    feedback.submitter_organisation = ""
    feedback.submitter_ip = ""
    feedback.wants_resolution_notice = False
    for event in feedback.events:
        _scrub_event(event, values)
    _scrub_audit_rows(feedback, values)
    mails = _scrub_mail(emails, values, reference=feedback.reference)
    if action == "privacy.purged":
        text = f"The reader's name, address and IP address were removed after {days} days."
    else:
        text = "The reader's personal data was erased at their request."
    db.session.add(
        FeedbackEvent(
            feedback=feedback, kind=EventKind.NOTE, data={"text": text, "privacy": action}
        )
    )
    record_audit(None, action, "feedback", feedback.id, {"reference": feedback.reference})
    return mails


def _personal_values(feedback: Feedback) -> list[str]:
    values = [
        feedback.submitter_email,
        feedback.submitter_name,
        feedback.submitter_organisation,
        feedback.submitter_ip,
    ]
    for event in feedback.events:
        if event.kind == EventKind.REPLY_RECEIVED:
            values += [str(event.data.get("from", "")), str(event.data.get("from_name", ""))]
    # Longest first, so "Ann Lee" is replaced before "Ann"; very short values are not
    # searched for inside free text (they would also match ordinary words).
    return sorted({v for v in values if len(v.strip()) >= 3}, key=len, reverse=True)


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (text, or JSON made of lists and mappings) with each secret replaced."""
    secrets = list(secrets)
    if isinstance(value, str):
        for secret in secrets:
            if secret.lower() in value.lower():
                value = _replace_folded(value, secret)
        return value
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    return value


def _replace_folded(text: str, secret: str) -> str:
    """Replace every case-insensitive occurrence of ``secret`` in ``text``."""
    lowered, needle = text.lower(), secret.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer: no index mapping
        return text.replace(secret, PURGED)
    parts, start = [], 0
    while (found := lowered.find(needle, start)) >= 0:
        parts += [text[start:found], PURGED]
        start = found + len(secret)
    return "".join([*parts, text[start:]])


def _scrub_event(event: FeedbackEvent, values: list[str]) -> None:
    data = dict(event.data or {})
    personal = {key for key in EVENT_PERSONAL_KEYS if key in data}
    if event.kind in (EventKind.REPLY_SENT, EventKind.REPLY_RECEIVED) and personal:
        for key in personal:
            data.pop(key)
    cleaned = redact(data, values)
    if cleaned != event.data:
        event.data = cleaned
        flag_modified(event, "data")


def _scrub_audit_rows(feedback: Feedback, values: list[str]) -> None:
    rows = db.session.scalars(
        sa.select(AuditEvent).where(
            AuditEvent.object_type == "feedback", AuditEvent.object_id == str(feedback.id)
        )
    )
    for row in rows:
        cleaned = redact(row.data, values)
        if cleaned != row.data:
            row.data = cleaned
            flag_modified(row, "data")


def _scrub_mail(emails: list[str], values: list[str], *, reference: str | None = None) -> int:
    """Blank the recipient, text and key of finished mail to these addresses; returns a count.

    Pending mail is left to be sent (or to fail): it is mail the reader is still owed.
    """
    if not emails:
        return 0
    lowered = [e.lower() for e in emails]
    query = sa.select(OutboxMessage).where(
        sa.func.lower(OutboxMessage.recipient).in_(lowered),
        OutboxMessage.state.in_(FINISHED_MAIL),
    )
    if reference is not None:
        query = query.where(OutboxMessage.dedupe_key.contains(reference, autoescape=True))
    count = 0
    for message in db.session.scalars(query):
        message.recipient = ""
        message.subject = redact(message.subject, values)
        message.text = redact(message.text, values)
        message.html = redact(message.html, values)
        message.headers = redact(message.headers, values)
        message.dedupe_key = f"privacy.removed:{message.id}"
        message.last_error = ""
        count += 1
    return count


def _blank_ended_subscriptions(ended_before: datetime) -> int:
    result = db.session.execute(
        sa.update(Subscription)
        .where(
            Subscription.ended_at.is_not(None),
            Subscription.ended_at <= ended_before,
            Subscription.email != "",
        )
        .values(email="")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- data subjects


def items_of(email: str) -> list[Feedback]:
    """Every item sent from this address (addresses compare without regard to case)."""
    return list(
        db.session.scalars(
            sa.select(Feedback)
            .where(sa.func.lower(Feedback.submitter_email) == email.strip().lower())
            .order_by(Feedback.id)
        )
    )


def replies_from(email: str) -> list[FeedbackEvent]:
    """Replies received from this address on any item (a reply may come from a new address)."""
    needle = email.strip().lower()
    events = db.session.scalars(
        sa.select(FeedbackEvent)
        .where(FeedbackEvent.kind == EventKind.REPLY_RECEIVED)
        .order_by(FeedbackEvent.id)
    )
    return [e for e in events if str(e.data.get("from", "")).lower() == needle]


def subscriptions_of(email: str) -> list[Subscription]:
    return list(
        db.session.scalars(
            sa.select(Subscription)
            .where(sa.func.lower(Subscription.email) == email.strip().lower())
            .order_by(Subscription.id)
        )
    )


def mail_to(email: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(sa.func.lower(OutboxMessage.recipient) == email.strip().lower())
            .order_by(OutboxMessage.id)
        )
    )


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_personal_data(email: str) -> dict[str, Any]:
    """Everything Desk holds about an address, as JSON-ready data (for a subject access request)."""
    return {
        "email": email.strip(),
        "exported_at": utcnow().isoformat(),
        "feedback": [_export_item(item) for item in items_of(email)],
        "replies": [
            {
                "item": event.feedback.reference,
                "at": _when(event.at),
                "from": event.data.get("from", ""),
                "from_name": event.data.get("from_name", ""),
                "subject": event.data.get("subject", ""),
                "text": event.data.get("text", ""),
                "files": event.data.get("files", []),
            }
            for event in replies_from(email)
        ],
        "subscriptions": [
            {
                "profile": f"{s.profile.country.name}: {s.profile.topic}",
                "frequency": str(s.frequency),
                "language": s.language,
                "created_at": _when(s.created_at),
                "confirmed_at": _when(s.confirmed_at),
                "ended_at": _when(s.ended_at),
                "ended_reason": s.ended_reason,
            }
            for s in subscriptions_of(email)
        ],
        "emails_sent": [
            {
                "kind": m.kind,
                "subject": m.subject,
                "state": str(m.state),
                "written_at": _when(m.created_at),
                "sent_at": _when(m.sent_at),
                "text": m.text,
            }
            for m in mail_to(email)
        ],
    }


def _export_item(item: Feedback) -> dict[str, Any]:
    return {
        "reference": item.reference,
        "received_at": _when(item.received_at),
        "channel": str(item.channel),
        "profile": (f"{item.profile.country.name}: {item.profile.topic}" if item.profile else None),
        "section": item.section.heading if item.section else None,
        "name": item.submitter_name,
        "email": item.submitter_email,
        "organisation": item.submitter_organisation,
        "ip_address": item.submitter_ip,
        "subject": item.subject,
        "message": item.message,
        "language": item.language,
        "status": str(item.status),
        "resolution": str(item.resolution) if item.resolution else None,
        "resolved_at": _when(item.resolved_at),
        "wants_resolution_notice": item.wants_resolution_notice,
        "attachments": [
            {
                "filename": a.original_filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "received_at": _when(a.created_at),
                "kept": bool(a.storage_key),
            }
            for a in item.attachments
        ],
        "replies_sent_to_you": [
            {
                "at": _when(e.at),
                "subject": e.data.get("subject", ""),
                "text": e.data.get("text", ""),
            }
            for e in item.events
            if e.kind == EventKind.REPLY_SENT
        ],
    }


def erase_personal_data(email: str, *, blank_messages: bool = False) -> ErasureReport:
    """Erase what Desk holds about an address, at the person's request.

    On their items: the personal fields are blanked everywhere (as a purge does), the files
    they sent are deleted from storage and their rows marked, and their own words are kept
    with their name and address taken out — the feedback is about a public record, and the
    corrections it led to must stay explainable — unless ``blank_messages`` asks for the text
    to go too. Their active subscriptions are ended (reason "erased") and every subscription
    row loses the address; mail sent to them loses its recipient and their name. The files
    are deleted by :func:`delete_stored_files` once the caller has committed.
    """
    email = email.strip()
    report = ErasureReport(email=email)
    files: list[str] = []
    for item in items_of(email):
        values = _personal_values(item)
        if blank_messages:
            item.message = "[erased at the sender's request]"
            item.subject = ""
        else:
            item.message = redact(item.message, values)
            item.subject = redact(item.subject, values)
        files += _erase_files(item.attachments)
        report.mails += _remove_submitter(item, action="privacy.erased")
        report.items.append(item.reference)
    for event in replies_from(email):
        values = [v for v in (email, str(event.data.get("from_name", ""))) if len(v) >= 3]
        _scrub_event(event, values)
    now = utcnow()
    for subscription in subscriptions_of(email):
        if subscription.ended_at is None:
            subscription.ended_at = now
            subscription.ended_reason = ERASED_REASON
            report.subscriptions_ended += 1
        subscription.email = ""
        report.subscriptions_blanked += 1
    report.mails += _scrub_mail([email], [email])
    record_audit(
        None,
        "privacy.erased",
        "data_subject",
        "-",
        {"items": report.items, "subscriptions": report.subscriptions_blanked},
    )
    db.session.flush()
    report.storage_keys = files
    return report


def _erase_files(attachments: list[Attachment]) -> list[str]:
    """Mark the item's files erased; returns the storage keys to delete once flushed."""
    keys = []
    for attachment in attachments:
        if attachment.storage_key:
            keys.append(attachment.storage_key)
        attachment.storage_key = ""
        attachment.sha256 = ""
        attachment.original_filename = "erased"
        attachment.rejection_reason = "Erased at the sender's request."
    return keys


def delete_stored_files(keys: list[str]) -> int:
    """Delete erased files from storage, after the erasure is committed; returns the count.

    Deleting first could leave a committed item pointing at nothing if the commit failed. A
    file that cannot be deleted now is logged by its key (no personal data) and counted out.
    """
    storage = get_storage()
    deleted = 0
    for key in keys:
        try:
            storage.delete(key)
        except (StorageError, OSError):
            current_app.logger.warning("privacy: could not delete stored file %s", key)
            continue
        deleted += 1
    return deleted
