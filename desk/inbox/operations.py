"""Every triage change staff make to a feedback item. These flush and never commit.

Each operation checks that the actor may make the change (raising :class:`TriageError` with a
sentence fit to show when not), writes the item's timeline through :func:`record_event` — the
one place that stamps ``first_response_at`` — and an audit row with the state before and after.
The caller has already checked that the actor may see the item
(:func:`desk.inbox.queries.get_visible_feedback_or_404`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale, gettext

from desk.accounts.models import CountryAssignment, User
from desk.core.audit import record_audit
from desk.core.text import strip_nul
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import (
    EventKind,
    Feedback,
    FeedbackEvent,
    FeedbackStatus,
    Resolution,
)
from desk.feedback.operations import (
    acknowledgement_message_id,
    queue_acknowledgement,
    release_from_quarantine,
)
from desk.feedback.routing import choose_assignee
from desk.inbox.queries import assignable_users, user_country_ids
from desk.notify.models import OutboxMessage
from desk.notify.outbox import queue_email
from desk.notify.staff import notify_user
from desk.profiles.models import Country

#: Events that are never a first response, even with a person as actor: routing is sorting, and
#: the rest are the reader's or the system's.
NOT_A_RESPONSE = frozenset(
    {EventKind.RECEIVED, EventKind.ROUTED, EventKind.QUARANTINED, EventKind.REPLY_RECEIVED}
)
#: The status changes staff make by hand; closing, reopening, spam and duplicates have their own.
TRANSITIONS: dict[FeedbackStatus, frozenset[FeedbackStatus]] = {
    FeedbackStatus.NEW: frozenset({FeedbackStatus.TRIAGED, FeedbackStatus.IN_REVIEW}),
    FeedbackStatus.TRIAGED: frozenset({FeedbackStatus.IN_REVIEW}),
    FeedbackStatus.IN_REVIEW: frozenset({FeedbackStatus.TRIAGED}),
    FeedbackStatus.CLOSED: frozenset(),
}
MAX_TEXT_CHARS = 20_000


class TriageError(ValueError):
    """A change that cannot be made, with a message fit to show."""


# --------------------------------------------------------------------------- the timeline


def record_event(
    feedback: Feedback,
    kind: EventKind,
    actor: User | None,
    data: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> FeedbackEvent:
    """Add an event to the item's timeline.

    The first event by a person, other than routing, sets the item's ``first_response_at``
    (DESIGN.md: time to first response).
    """
    now = at or utcnow()
    event = FeedbackEvent(
        feedback=feedback,
        kind=kind,
        actor_id=actor.id if actor is not None else None,
        data=data or {},
        at=now,
    )
    db.session.add(event)
    if actor is not None and kind not in NOT_A_RESPONSE and feedback.first_response_at is None:
        feedback.first_response_at = now
    return event


def _state(feedback: Feedback) -> dict[str, Any]:
    """What the audit compares (read through the relationships: ids follow only on flush)."""

    def id_of(related: Any) -> int | None:
        return related.id if related is not None else None

    return {
        "status": str(feedback.status),
        "resolution": str(feedback.resolution) if feedback.resolution else None,
        "assignee_id": id_of(feedback.assignee),
        "country_id": id_of(feedback.country),
        "duplicate_of_id": id_of(feedback.duplicate_of),
        "is_quarantined": feedback.is_quarantined,
    }


def _audit(
    actor: User, action: str, feedback: Feedback, before: dict[str, Any], **extra: Any
) -> None:
    after = _state(feedback)
    changed = {key for key in after if before.get(key) != after[key]}
    record_audit(
        actor.id,
        action,
        "feedback",
        feedback.id,
        {
            "reference": feedback.reference,
            "before": {key: before.get(key) for key in sorted(changed)},
            "after": {key: after[key] for key in sorted(changed)},
            **extra,
        },
    )


def _clean_text(text: str, what: str) -> str:
    text = strip_nul(text or "").strip()
    if not text:
        raise TriageError(f"Write the {what} first.")
    if len(text) > MAX_TEXT_CHARS:
        raise TriageError(f"The {what} is longer than {MAX_TEXT_CHARS:,} characters.")
    return text


def _require_in_inbox(feedback: Feedback) -> None:
    if feedback.is_quarantined:
        raise TriageError(f"{feedback.reference} is in quarantine: release it first.")


def _require_open(feedback: Feedback) -> None:
    _require_in_inbox(feedback)
    if feedback.status == FeedbackStatus.CLOSED:
        raise TriageError(f"{feedback.reference} is closed: reopen it first.")


# --------------------------------------------------------------------------- assignment


def is_lead_of(user: User, country_id: int | None) -> bool:
    if country_id is None:
        return False
    return (
        db.session.scalar(
            sa.select(CountryAssignment.id).where(
                CountryAssignment.user_id == user.id,
                CountryAssignment.country_id == country_id,
                CountryAssignment.is_lead,
            )
        )
        is not None
    )


def may_reassign(actor: User, feedback: Feedback) -> bool:
    """Managers, admins and the lead editors of the item's country assign it to anyone."""
    return actor.sees_all_countries or is_lead_of(actor, feedback.country_id)


def may_take(actor: User, feedback: Feedback) -> bool:
    """Any editor of the item may take it while nobody holds it."""
    return feedback.assignee_id is None and (
        actor.sees_all_countries or feedback.country_id in user_country_ids(actor)
    )


def assign_feedback(feedback: Feedback, assignee: User | None, actor: User) -> bool:
    """Give the item to ``assignee`` (None: to nobody). Returns False when nothing changed.

    An editor takes an unassigned item or gives back their own; managers, admins and lead
    editors assign to anyone who may hold it. The new assignee is told (at once or in their
    digest) unless they assigned it to themselves.
    """
    _require_open(feedback)
    if feedback.assignee_id == (assignee.id if assignee else None):
        return False
    if not may_reassign(actor, feedback):
        taking = assignee is not None and assignee.id == actor.id and may_take(actor, feedback)
        giving_back = assignee is None and feedback.assignee_id == actor.id
        if not (taking or giving_back):
            raise TriageError(
                f"Only a lead editor or a manager can give {feedback.reference} to someone else."
            )
    if assignee is not None and assignee not in assignable_users(feedback):
        raise TriageError(f"{assignee.name} does not work on {feedback.reference}'s country.")
    before = _state(feedback)
    previous = feedback.assignee_id
    feedback.assignee = assignee
    event = record_event(
        feedback,
        EventKind.ASSIGNED,
        actor,
        {"to": assignee.id if assignee else None, "from": previous},
    )
    _audit(actor, "feedback.assigned", feedback, before)
    db.session.flush()
    if assignee is not None:
        notify_user(
            assignee,
            "feedback.assigned",
            template="feedback_assigned",
            dedupe_key=f"feedback.assigned:{feedback.reference}:{event.id}",
            actor_id=actor.id,
            feedback=feedback,
            actor=actor,
        )
    return True


def route_feedback(feedback: Feedback, country: Country, actor: User) -> bool:
    """Send an item to a country's editors (managers and admins sort the unrouted queue).

    Like routing at intake it picks the first assignee by the country's auto-assign mode when
    nobody holds the item (and tells them); it is sorting, so it is not the item's first
    response.
    """
    if not actor.sees_all_countries:
        raise TriageError("Only a manager or an admin can move an item to another country.")
    if feedback.country_id == country.id:
        return False
    before = _state(feedback)
    previous = feedback.country.code if feedback.country else None
    feedback.country = country
    if feedback.profile is not None and feedback.profile.country_id != country.id:
        feedback.profile = None
        feedback.section = None
    assignee, why = (None, "already assigned")
    if feedback.assignee is None:
        assignee, why = choose_assignee(country)
    record_event(
        feedback,
        EventKind.ROUTED,
        actor,
        {"country": country.code, "from": previous, "reason": "by hand", "assignment": why},
    )
    if assignee is not None:
        feedback.assignee = assignee
        event = record_event(feedback, EventKind.ASSIGNED, None, {"to": assignee.id, "reason": why})
    _audit(actor, "feedback.routed", feedback, before)
    if assignee is not None:
        db.session.flush()
        notify_user(
            assignee,
            "feedback.assigned",
            template="feedback_assigned",
            dedupe_key=f"feedback.assigned:{feedback.reference}:{event.id}",
            actor_id=actor.id,
            feedback=feedback,
            actor=None,
        )
    return True


# --------------------------------------------------------------------------- status


def change_status(feedback: Feedback, status: FeedbackStatus, actor: User) -> bool:
    """Move an open item along new → triaged → in review (and back from review to triaged)."""
    _require_open(feedback)
    if status == feedback.status:
        return False
    if status not in TRANSITIONS[feedback.status]:
        raise TriageError(
            f"{feedback.reference} cannot go from {feedback.status.replace('_', ' ')} "
            f"to {status.replace('_', ' ')}."
        )
    before = _state(feedback)
    record_event(
        feedback, EventKind.STATUS_CHANGED, actor, {"from": str(feedback.status), "to": str(status)}
    )
    feedback.status = status
    _audit(actor, "feedback.status_changed", feedback, before)
    return True


def _close(
    feedback: Feedback, resolution: Resolution, actor: User, note: str = ""
) -> FeedbackEvent:
    event = record_event(
        feedback,
        EventKind.STATUS_CHANGED,
        actor,
        {
            "from": str(feedback.status),
            "to": str(FeedbackStatus.CLOSED),
            "resolution": str(resolution),
            "note": note,
        },
    )
    feedback.status = FeedbackStatus.CLOSED
    feedback.resolution = resolution
    feedback.resolution_note = note
    feedback.resolved_at = utcnow()
    return event


def close_feedback(feedback: Feedback, reason: str, actor: User) -> None:
    """Close an item as "no action"; the reason is required and kept on the item.

    A reader who asked to hear when their feedback is resolved is told it was read and led to
    no change. The reason stays internal: it is written for colleagues, not for the reader.
    """
    _require_open(feedback)
    reason = _clean_text(reason, "reason for taking no action")
    before = _state(feedback)
    event = _close(feedback, Resolution.NO_ACTION, actor, reason)
    _audit(actor, "feedback.closed", feedback, before, reason=reason)
    if feedback.wants_resolution_notice and feedback.submitter_email:
        db.session.flush()
        queue_email(
            "feedback.closed",
            feedback.submitter_email,
            template="feedback_closed",
            # Per closing: an item reopened and closed again tells the reader again.
            dedupe_key=f"feedback.closed:{feedback.reference}:{event.id}",
            language=feedback.language,
            feedback=feedback,
        )


def mark_spam(feedback: Feedback, actor: User) -> bool:
    """Close an item as spam (from the inbox or the quarantine). Reopening undoes it."""
    if feedback.resolution == Resolution.SPAM:
        return False
    before = _state(feedback)
    was_held = feedback.is_quarantined
    feedback.is_quarantined = False
    _close(feedback, Resolution.SPAM, actor)
    _audit(actor, "feedback.marked_spam", feedback, before, was_quarantined=was_held)
    return True


def release_feedback(feedback: Feedback, actor: User) -> bool:
    """Let a held item into the inbox; the reader now gets the acknowledgement."""
    if not feedback.is_quarantined:
        return False
    before = _state(feedback)
    release_from_quarantine(feedback, actor.id)
    _audit(actor, "feedback.released", feedback, before, signs=list(feedback.spam_reasons))
    return True


def reopen_feedback(feedback: Feedback, actor: User, reason: str = "") -> bool:
    """Take a closed item back into the inbox as triaged, whatever it was closed as.

    An item that was spam ("not spam after all") gets the acknowledgement it may never have had.
    """
    _require_in_inbox(feedback)
    if feedback.status != FeedbackStatus.CLOSED:
        return False
    before = _state(feedback)
    original = feedback.duplicate_of
    record_event(
        feedback,
        EventKind.REOPENED,
        actor,
        {
            "from": str(feedback.status),
            "to": str(FeedbackStatus.TRIAGED),
            "previous_resolution": str(feedback.resolution) if feedback.resolution else None,
            "previous_note": feedback.resolution_note,
            "duplicate_of": original.reference if original else None,
            "reason": strip_nul(reason).strip()[:2000],
        },
    )
    if original is not None:
        record_event(original, EventKind.MERGED, actor, {"unmerged": feedback.reference})
    was_spam = feedback.resolution == Resolution.SPAM
    feedback.status = FeedbackStatus.TRIAGED
    feedback.resolution = None
    feedback.resolution_note = ""
    feedback.resolved_at = None
    feedback.duplicate_of = None
    _audit(actor, "feedback.reopened", feedback, before)
    if was_spam:
        # Spam held at intake never had its acknowledgement; the outbox sends it only once.
        db.session.flush()
        queue_acknowledgement(feedback)
    return True


# --------------------------------------------------------------------------- duplicates


def mark_duplicate(feedback: Feedback, original: Feedback, actor: User) -> Feedback:
    """Close ``feedback`` as a duplicate of ``original`` and merge it there.

    If ``original`` is itself a duplicate, the item goes to the one it duplicates. Both
    timelines get a note; the duplicate's files are listed on the original's page (they stay
    the duplicate's, so nothing is lost); items that were duplicates of this one follow it.
    Returns the item it was merged into.
    """
    _require_open(feedback)
    root, seen = original, {original.id}
    while root.resolution == Resolution.DUPLICATE and root.duplicate_of is not None:
        root = root.duplicate_of
        if root.id in seen:
            break
        seen.add(root.id)
    if root.id == feedback.id:
        raise TriageError(f"{feedback.reference} cannot be a duplicate of itself.")
    if root.is_quarantined or root.resolution == Resolution.SPAM:
        raise TriageError(f"{root.reference} is spam or in quarantine: choose another item.")
    before = _state(feedback)
    files = [a.original_filename for a in feedback.attachments if not a.is_rejected]
    _close(feedback, Resolution.DUPLICATE, actor, f"Duplicate of {root.reference}")
    feedback.duplicate_of = root
    record_event(feedback, EventKind.MERGED, actor, {"into": root.reference})
    followers = list(
        db.session.scalars(sa.select(Feedback).where(Feedback.duplicate_of_id == feedback.id))
    )
    for follower in followers:
        follower.duplicate_of = root
    record_event(
        root,
        EventKind.MERGED,
        actor,
        {
            "from": feedback.reference,
            "files": files,
            "also": [follower.reference for follower in followers],
        },
    )
    _audit(actor, "feedback.merged", feedback, before, into=root.reference)
    return root


# --------------------------------------------------------------------------- notes and replies


def add_note(feedback: Feedback, text: str, actor: User) -> FeedbackEvent:
    """An internal note on the timeline (staff only; the reader never sees it)."""
    text = _clean_text(text, "note")
    event = record_event(feedback, EventKind.NOTE, actor, {"text": text})
    db.session.flush()
    record_audit(
        actor.id,
        "feedback.noted",
        "feedback",
        feedback.id,
        {"reference": feedback.reference, "event_id": event.id, "after": {"note": text}},
    )
    return event


def reply_subject(feedback: Feedback) -> str:
    """The subject a reply starts with; it always carries the reference in brackets."""
    about = feedback.subject or (feedback.profile.topic if feedback.profile else "")
    if not about:
        with force_locale(feedback.language):
            about = gettext("your feedback")
    if about.lower().startswith("re:"):
        about = about[3:].strip()
    return f"Re: {about} [{feedback.reference}]"


def _reader_thread(feedback: Feedback) -> list[str]:
    """Message-IDs the reply answers: the reader's first email (or our acknowledgement), then
    the reader's latest reply."""
    first = feedback.email_message_id or acknowledgement_message_id(feedback)
    latest = db.session.scalar(
        sa.select(FeedbackEvent)
        .where(
            FeedbackEvent.feedback_id == feedback.id,
            FeedbackEvent.kind == EventKind.REPLY_RECEIVED,
        )
        .order_by(FeedbackEvent.at.desc(), FeedbackEvent.id.desc())
        .limit(1)
    )
    thread = [first]
    if latest is not None and latest.data.get("message_id"):
        thread.append(latest.data["message_id"])
    return list(dict.fromkeys(thread))


@dataclass
class Reply:
    event: FeedbackEvent
    message: OutboxMessage | None
    headers: dict[str, str] = field(default_factory=dict)


def reply_to_submitter(feedback: Feedback, subject: str, text: str, actor: User) -> Reply:
    """Email the reader through the outbox, threaded so their answer comes back to this item.

    The Message-ID names the item (``<reply.….ML-2026-00042@desk domain>``) and the subject
    carries ``[ML-2026-00042]``: email-in recognises either. Replies go to the intake address.
    """
    _require_in_inbox(feedback)
    if not feedback.submitter_email:
        raise TriageError(f"{feedback.reference} has no email address to reply to.")
    text = _clean_text(text, "reply")
    subject = " ".join(strip_nul(subject or "").split())[:250] or reply_subject(feedback)
    if f"[{feedback.reference}]" not in subject:
        subject = f"{subject} [{feedback.reference}]"
    config = current_app.config
    domain = config["DESK_MAIL_FROM"].rpartition("@")[2] or "desk.invalid"
    token = uuid.uuid4().hex[:16]
    message_id = f"<reply.{token}.{feedback.reference}@{domain}>"
    thread = _reader_thread(feedback)
    headers = {
        "In-Reply-To": thread[-1],
        "References": " ".join(thread),
        "Reply-To": config["DESK_INTAKE_ADDRESS"],
    }
    event = record_event(
        feedback,
        EventKind.REPLY_SENT,
        actor,
        {
            "to": feedback.submitter_email,
            "subject": subject,
            "text": text,
            "message_id": message_id,
            "in_reply_to": thread[-1],
        },
    )
    db.session.flush()
    message = queue_email(
        "feedback.reply",
        feedback.submitter_email,
        template="feedback_reply",
        dedupe_key=f"feedback.reply:{feedback.reference}:{token}",
        language=feedback.language,
        headers=headers,
        message_id=message_id,
        feedback=feedback,
        subject=subject,
        text=text,
        staff=actor,
    )
    event.data = {**event.data, "outbox_id": message.id if message else None}
    record_audit(
        actor.id,
        "feedback.replied",
        "feedback",
        feedback.id,
        {
            "reference": feedback.reference,
            "event_id": event.id,
            "after": {"to": feedback.submitter_email, "subject": subject},
        },
    )
    return Reply(event=event, message=message, headers=headers)


# --------------------------------------------------------------------------- bulk


@dataclass
class BulkOutcome:
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def apply_to_each(items: list[Feedback], change: Any) -> BulkOutcome:
    """Apply ``change(item) -> bool`` to each item; a refusal skips that item, not the rest.

    Each item runs in a SAVEPOINT, so a refused item leaves nothing half-done behind.
    """
    outcome = BulkOutcome()
    for item in items:
        try:
            with db.session.begin_nested():
                changed = change(item)
        except TriageError as refusal:
            outcome.refused.append(str(refusal))
            continue
        (outcome.changed if changed is not False else outcome.unchanged).append(item.reference)
    return outcome
