"""Intake: the one way feedback enters Desk, whichever channel brought it.

The web form, the intake API, the LMTP receiver, the IMAP poller and ``desk import-eml`` all
build a :class:`Submission` and call :func:`receive_feedback`. It flushes and never commits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from desk.core.storage import StorageError, get_storage
from desk.core.text import strip_nul
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback import routing, spam
from desk.feedback.files import RejectedFile, check_file, clean_filename
from desk.feedback.models import (
    Attachment,
    Channel,
    EventKind,
    Feedback,
    FeedbackEvent,
    ReferenceCounter,
    ScanStatus,
)
from desk.feedback.timeline import NewTimeline
from desk.notify.outbox import queue_email
from desk.profiles.models import Country, Profile, Section

#: Longest message kept; the form refuses longer, email-in keeps the start and says so.
MAX_MESSAGE_CHARS = 20_000
#: The reference prefix of items that reached no country.
UNROUTED_PREFIX = "XX"


@dataclass
class IncomingFile:
    filename: str
    stream: BinaryIO
    #: The channel already measured it over the per-file limit (nothing of it was kept).
    is_over_limit: bool = False


@dataclass
class Submission:
    channel: Channel
    message: str
    profile: Profile | None = None
    section: Section | None = None
    #: For items with no profile (email-in): the country the address or subject named.
    country: Country | None = None
    #: Why that country (shown in the routed event).
    country_reason: str = ""
    submitter_name: str = ""
    submitter_email: str = ""
    submitter_organisation: str = ""
    wants_resolution_notice: bool = False
    subject: str = ""
    language: str = "en"
    files: list[IncomingFile] = field(default_factory=list)
    submitter_ip: str = ""
    email_message_id: str = ""
    form_nonce: str = ""
    #: Signs of abuse the channel saw (honeypot, timing token); content signs are added here.
    spam_signs: list[str] = field(default_factory=list)
    received_at: datetime | None = None


@dataclass
class IntakeResult:
    feedback: Feedback
    #: True when this was a repeat of an item received moments ago (nothing new was made).
    is_repeat: bool = False
    rejected_files: list[str] = field(default_factory=list)


def _counter_upsert(insert: type[postgresql.Insert] | type[sqlite.Insert]) -> sa.Executable:
    return (
        insert(ReferenceCounter)
        .values(prefix=sa.bindparam("counter_prefix"), year=sa.bindparam("counter_year"), value=1)
        .on_conflict_do_update(
            index_elements=["prefix", "year"], set_={"value": ReferenceCounter.value + 1}
        )
        .returning(ReferenceCounter.value)
    )


#: Take the next number of a prefix and year, per dialect; built once (every item runs one).
_NEXT_NUMBER = {
    "postgresql": _counter_upsert(postgresql.Insert),
    "sqlite": _counter_upsert(sqlite.Insert),
}


def next_reference(prefix: str, year: int) -> str:
    """The next reference for a country and year, e.g. ML-2026-00042; safe under concurrency."""
    statement = _NEXT_NUMBER[db.session.get_bind().dialect.name]
    # Straight to the connection: a plain statement needs none of the ORM's execution steps.
    value = (
        db.session.connection()
        .execute(statement, {"counter_prefix": prefix, "counter_year": year})
        .scalar_one()
    )
    return f"{prefix}-{year}-{value:05d}"


def content_hash(submission: Submission) -> str:
    parts = [
        str(submission.channel),
        str(submission.profile.id if submission.profile else ""),
        str(submission.section.id if submission.section else ""),
        submission.submitter_email.strip().lower(),
        " ".join(submission.message.split()),
        *sorted(clean_filename(f.filename) for f in submission.files),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _earlier_items(with_nonce: bool) -> sa.Select[tuple[int, int]]:
    same_content = sa.and_(
        Feedback.content_hash == sa.bindparam("digest"),
        Feedback.received_at >= sa.bindparam("since"),
    )
    found = sa.or_(same_content, Feedback.form_nonce == sa.bindparam("nonce"))
    is_repeat = sa.case((same_content, 1), else_=0)
    return (
        sa.select(Feedback.id, is_repeat)
        .where(found if with_nonce else same_content)
        .order_by(is_repeat.desc(), Feedback.id)
        .limit(1)
    )


#: The earlier item a submission repeats (same content within the window) or shares its form
#: nonce with, a repeat first; built once, with and without a nonce to look for.
_EARLIER_ITEM = {True: _earlier_items(with_nonce=True), False: _earlier_items(with_nonce=False)}


def _earlier_item(digest: str, now: datetime, nonce: str) -> tuple[Feedback, bool] | None:
    """An earlier item that this submission repeats or shares its form token with; which of both.

    One query answers both questions (once there is a repeat, the token no longer matters).
    ``(item, True)`` is a repeat, ``(item, False)`` a replayed token.
    """
    window = timedelta(minutes=current_app.config["DESK_DUPLICATE_WINDOW_MINUTES"])
    # An empty nonce (email, API) is no token at all: it must not match every such item.
    row = (
        db.session.connection()
        .execute(
            _EARLIER_ITEM[bool(nonce)], {"digest": digest, "since": now - window, "nonce": nonce}
        )
        .first()
    )
    if row is None:
        return None
    earlier = db.session.get(Feedback, row[0])
    assert earlier is not None
    return earlier, bool(row[1])


def _clean(submission: Submission) -> None:
    """Strip NUL bytes and trim every text to its column's size."""
    submission.message = strip_nul(submission.message).strip()[:MAX_MESSAGE_CHARS]
    submission.subject = strip_nul(submission.subject).strip()[:300]
    submission.submitter_name = strip_nul(submission.submitter_name).strip()[:200]
    submission.submitter_email = strip_nul(submission.submitter_email).strip()[:254]
    submission.submitter_organisation = strip_nul(submission.submitter_organisation).strip()[:200]
    submission.email_message_id = strip_nul(submission.email_message_id).strip()[:300]


@dataclass
class _KeptFiles:
    """A submission's files once checked: accepted ones already in the storage."""

    #: One per file, in order, not yet attached to an item (refused ones say why).
    attachments: list[Attachment] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    #: Storage keys written, to delete again if the item is not recorded after all.
    keys: list[str] = field(default_factory=list)

    def forget(self) -> None:
        storage = get_storage()
        for key in self.keys:
            storage.delete(key)
        self.keys.clear()


def _keep_files(files: list[IncomingFile]) -> _KeptFiles:
    """Check each file and store the accepted ones; a refused one is listed with its reason.

    No database work: callers do this before they write rows, so that no transaction (and on
    SQLite no write lock) is held while the bytes go to disk.
    """
    kept = _KeptFiles()
    limit_mb = current_app.config["DESK_UPLOAD_MAX_FILE_BYTES"] // (1024 * 1024)
    try:
        for incoming in files:
            name = clean_filename(incoming.filename)
            try:
                if incoming.is_over_limit:
                    raise RejectedFile(f"“{name}” is larger than {limit_mb} MB.")
                checked = check_file(incoming.filename, incoming.stream)
            except RejectedFile as refusal:
                kept.rejected.append(str(refusal))
                kept.attachments.append(
                    Attachment(original_filename=name, rejection_reason=str(refusal)[:300])
                )
                continue
            stored = get_storage().save(incoming.stream)
            kept.keys.append(stored.key)
            kept.attachments.append(
                Attachment(
                    original_filename=checked.filename,
                    content_type=checked.content_type,
                    size=stored.size,
                    sha256=stored.sha256,
                    storage_key=stored.key,
                    scan_status=ScanStatus.SKIPPED,
                )
            )
    except (StorageError, OSError):
        kept.forget()
        raise
    return kept


def _store_files(feedback: Feedback, files: list[IncomingFile]) -> list[str]:
    """Check and store each file and add it to the item; returns the reasons of refused ones."""
    kept = _keep_files(files)
    feedback.attachments.extend(kept.attachments)
    return kept.rejected


def receive_feedback(submission: Submission) -> IntakeResult:
    """Record a submission as a feedback item, route it, and queue the acknowledgement.

    A repeat of an item received within DESK_DUPLICATE_WINDOW_MINUTES (a double click, a
    resubmitted form) returns that item instead of making a second one. Suspect items are kept
    in quarantine: routed, but out of the inbox and without an acknowledgement until released.

    The files are checked and stored first, before any row is read or written (and deleted
    again if the submission turns out to be a repeat or recording it fails), so the item's
    transaction stays short: it reads, takes the reference number last, then writes every row
    in one flush. That matters under load: on SQLite a writing transaction holds the database's
    write lock, and on PostgreSQL the reference counter's row stays locked until commit.
    """
    _clean(submission)
    now = submission.received_at or utcnow()
    digest = content_hash(submission)
    kept = _keep_files(submission.files)
    timeline = NewTimeline()
    try:
        result = _record(submission, digest, now, kept, timeline)
        if not result.is_repeat:
            db.session.flush()
            timeline.write(result.feedback.id)
    except BaseException:
        kept.forget()
        raise
    if result.is_repeat:
        kept.forget()
        return result
    if not result.feedback.is_quarantined:
        queue_acknowledgement(result.feedback)
    return result


def _record(
    submission: Submission, digest: str, now: datetime, kept: _KeptFiles, timeline: NewTimeline
) -> IntakeResult:
    """The item with its files and routing added to the session, its events to ``timeline``."""
    signs = list(submission.spam_signs)
    earlier = _earlier_item(digest, now, submission.form_nonce)
    if earlier is not None:
        item, is_repeat = earlier
        if is_repeat:
            return IntakeResult(feedback=item, is_repeat=True)
        signs.append("token_replayed")
    signs += spam.content_signs(submission.message)
    signs = list(dict.fromkeys(signs))
    # Nothing is flushed until every row is there: one INSERT per table instead of several
    # flushes, and no routing query writes the item half-made.
    with db.session.no_autoflush:
        feedback = _new_item(submission, digest, now, signs, kept, timeline)
    return IntakeResult(feedback=feedback, rejected_files=kept.rejected)


def _new_item(
    submission: Submission,
    digest: str,
    now: datetime,
    signs: list[str],
    kept: _KeptFiles,
    timeline: NewTimeline,
) -> Feedback:
    """The item with its files, its events and its routing, then its reference number."""
    spam_score = spam.score(signs)
    country = submission.profile.country if submission.profile else submission.country
    # By id: the form's profile and section are shared read-only copies (the profile cache),
    # which must never be added to this session as a relationship would.
    feedback = Feedback(
        profile_id=submission.profile.id if submission.profile else None,
        section_id=submission.section.id if submission.section else None,
        channel=submission.channel,
        submitter_name=submission.submitter_name,
        submitter_email=submission.submitter_email,
        submitter_organisation=submission.submitter_organisation,
        wants_resolution_notice=submission.wants_resolution_notice,
        subject=submission.subject,
        message=submission.message,
        language=submission.language,
        received_at=now,
        content_hash=digest,
        email_message_id=submission.email_message_id,
        form_nonce=submission.form_nonce,
        submitter_ip=submission.submitter_ip,
        spam_score=spam_score,
        spam_reasons=signs,
        is_quarantined=spam_score >= current_app.config["DESK_SPAM_THRESHOLD"],
    )
    db.session.add(feedback)
    timeline.add(EventKind.RECEIVED, {"channel": str(submission.channel)}, now)
    feedback.attachments.extend(kept.attachments)
    if submission.profile is not None:
        why = f"profile {submission.profile.country.name}: {submission.profile.topic}"
    else:
        why = submission.country_reason or "no country could be told"
    routing.route(feedback, country, why, timeline)
    if feedback.is_quarantined:
        timeline.add(EventKind.QUARANTINED, {"signs": signs}, now)
    # Last of all: from here until commit, other submissions of this country and year wait.
    feedback.reference = next_reference(country.code if country else UNROUTED_PREFIX, now.year)
    return feedback


def acknowledgement_message_id(feedback: Feedback) -> str:
    """The Message-ID of the acknowledgement: replies to it name the item in In-Reply-To."""
    domain = current_app.config["DESK_MAIL_FROM"].rpartition("@")[2] or "desk.invalid"
    return f"<ack.{feedback.reference}@{domain}>"


def queue_acknowledgement(feedback: Feedback) -> None:
    """Write the "we received your feedback" email, if the reader gave an address."""
    if not feedback.submitter_email:
        return
    # Replies go to the intake address, where email-in threads them onto the item.
    headers = {"Reply-To": current_app.config["DESK_INTAKE_ADDRESS"]}
    if feedback.email_message_id:
        headers["In-Reply-To"] = feedback.email_message_id
        headers["References"] = feedback.email_message_id
    queue_email(
        "feedback.acknowledgement",
        feedback.submitter_email,
        template="feedback_acknowledgement",
        dedupe_key=f"feedback.acknowledgement:{feedback.reference}",
        language=feedback.language,
        headers=headers,
        message_id=acknowledgement_message_id(feedback),
        feedback=feedback,
    )


def release_from_quarantine(feedback: Feedback, actor_id: int) -> None:
    """Put a suspect item into the inbox; the reader now gets the acknowledgement."""
    if not feedback.is_quarantined:
        return
    feedback.is_quarantined = False
    db.session.add(
        FeedbackEvent(
            feedback=feedback,
            kind=EventKind.RELEASED,
            actor_id=actor_id,
            data={"signs": list(feedback.spam_reasons)},
        )
    )
    if feedback.first_response_at is None:
        feedback.first_response_at = utcnow()
    db.session.flush()
    queue_acknowledgement(feedback)


@dataclass
class ReplyResult:
    #: The item the reply was added to (for a reply to a duplicate: the item it duplicates).
    feedback: Feedback
    event: FeedbackEvent
    #: True when the reply took a closed item back into the inbox.
    reopened: bool = False
    rejected_files: list[str] = field(default_factory=list)


#: Resolutions of closed items that a reader's reply takes back into the inbox (spam stays
#: closed; a duplicate passes the reply to the item it duplicates).
REOPEN_ON_REPLY = frozenset({"updated", "no_action"})


def add_reader_reply(
    feedback: Feedback,
    *,
    message_id: str,
    from_email: str,
    from_name: str = "",
    subject: str = "",
    text: str = "",
    files: list[IncomingFile] | None = None,
    how: str = "",
    received_at: datetime | None = None,
) -> ReplyResult:
    """Add a reader's emailed reply to the item it answers. Flushes, never commits.

    The reply is a ``reply_received`` event (from, subject, text, Message-ID); its files go
    through the same checks as the form's and are added to the item, refused ones listed.
    A reply to an item closed as a duplicate goes to the item it duplicates. A closed item
    (resolution ``updated`` or ``no_action``) is reopened as ``triaged`` with its assignee, so
    the reply is seen; an item closed as spam stays closed. Quarantine is left as it is.
    """
    from desk.feedback.models import FeedbackStatus, Resolution

    target, seen = feedback, {feedback.id}
    while target.resolution == Resolution.DUPLICATE and target.duplicate_of is not None:
        if target.duplicate_of.id in seen:
            break
        target = target.duplicate_of
        seen.add(target.id)
    now = received_at or utcnow()
    before = len(target.attachments)
    rejected = _store_files(target, list(files or []))
    added = target.attachments[before:]
    event = FeedbackEvent(
        feedback=target,
        kind=EventKind.REPLY_RECEIVED,
        at=now,
        data={
            "from": strip_nul(from_email)[:254],
            "from_name": strip_nul(from_name)[:200],
            "subject": strip_nul(subject)[:300],
            "text": strip_nul(text)[:MAX_MESSAGE_CHARS],
            "message_id": strip_nul(message_id)[:300],
            "threaded_by": how,
            "files": [a.original_filename for a in added if not a.is_rejected],
            "rejected_files": rejected,
        },
    )
    db.session.add(event)
    reopened = False
    if target.status == FeedbackStatus.CLOSED and target.resolution in REOPEN_ON_REPLY:
        reopened = True
        db.session.add(
            FeedbackEvent(
                feedback=target,
                kind=EventKind.REOPENED,
                at=now,
                data={
                    "reason": "the reader replied",
                    "from": str(target.status),
                    "to": str(FeedbackStatus.TRIAGED),
                    "previous_resolution": str(target.resolution),
                    "previous_note": target.resolution_note,
                },
            )
        )
        target.status = FeedbackStatus.TRIAGED
        target.resolution = None
        target.resolution_note = ""
        target.resolved_at = None
    db.session.flush()
    return ReplyResult(feedback=target, event=event, reopened=reopened, rejected_files=rejected)
