"""Every change to review tasks and section revisions, and the Last Updated stamp.

These flush and write the audit trail (and the feedback timeline); they never commit. The view,
job or command that calls one commits, so an approval — the text, the date, the stamp, the
closed feedback and the emails in the outbox — lands in one transaction or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from desk.accounts.models import User
from desk.core.audit import AuditEvent, record_audit
from desk.core.text import strip_nul
from desk.core.time import desk_today, format_day, utcnow
from desk.extensions import db
from desk.feedback.models import (
    EventKind,
    Feedback,
    FeedbackEvent,
    FeedbackStatus,
    Resolution,
)
from desk.notify.operations import queue_profile_update_notices
from desk.notify.outbox import queue_email
from desk.notify.staff import notify_user
from desk.profiles.models import (
    Profile,
    ProfileUpdate,
    RevisionState,
    Section,
    SectionRevision,
    UpdateType,
)
from desk.reviews import queries
from desk.reviews.diff import MergeConflict, merge_texts
from desk.reviews.models import OPEN_TASK_STATES, ReviewTask, TaskState, review_task_feedback


class ReviewError(ValueError):
    """A change that cannot be made, with a message fit to show."""


class NotAllowed(ReviewError):
    """The person may see the object but not make this change."""


class RevisionConflict(ReviewError):
    """The section's published text moved on since the revision was drafted from it."""

    def __init__(self, revision: SectionRevision, current: SectionRevision | None) -> None:
        super().__init__(
            f"“{revision.section.heading}” changed since revision {revision.number} was drafted;"
            " it must be rebased on the published text first."
        )
        self.revision = revision
        self.current = current


def _audit(actor: User | None, action: str, kind: str, object_id: int, **data: Any) -> AuditEvent:
    event = record_audit(actor.id if actor else None, action, kind, object_id, data)
    db.session.flush()
    return event


def clean_text(text: str | None) -> str:
    """Text as stored: no NUL bytes, Unix line ends, no trailing blank lines or spaces."""
    return strip_nul(text).replace("\r\n", "\n").replace("\r", "\n").rstrip()


# --------------------------------------------------------------------------- tasks


@dataclass
class OpenTaskResult:
    task: ReviewTask
    #: False when the section already had an open task, which the feedback was linked to.
    created: bool
    #: The items newly linked to the task.
    linked: list[Feedback] = field(default_factory=list)


def check_linkable(items: Iterable[Feedback], profile: Profile) -> None:
    """Refuse feedback that cannot go to a task on this profile (another country, closed, held)."""
    for item in items:
        if item.is_quarantined:
            raise ReviewError(f"{item.reference} is in quarantine; release it first.")
        if item.status == FeedbackStatus.CLOSED:
            raise ReviewError(f"{item.reference} is closed; reopen it first.")
        if item.country_id is not None and item.country_id != profile.country_id:
            raise ReviewError(f"{item.reference} belongs to another country.")
        if item.profile_id is not None and item.profile_id != profile.id:
            raise ReviewError(f"{item.reference} is about another profile.")


def open_review_task(
    profile: Profile,
    section: Section | None,
    *,
    actor: User,
    title: str,
    description: str = "",
    assignee: User | None = None,
    reviewer: User | None = None,
    due_on: date | None = None,
    feedback: Iterable[Feedback] = (),
) -> OpenTaskResult:
    """Open a review task on a section (or the whole profile) and link feedback to it.

    A section holds one open task at a time: if it has one, the feedback is linked to that
    task instead and nothing new is made. The check runs first; the partial unique index
    ``uq_review_task_open_section`` settles a race between two people opening one at once.
    Linked feedback moves to ``in_review``. The assignee is told (unless they opened it).
    """
    items = list(feedback)
    if section is not None and section.profile_id != profile.id:
        raise ReviewError("That section is not part of this profile.")
    check_linkable(items, profile)
    if section is not None:
        existing = queries.open_task_for_section(section.id)
        if existing is not None:
            return OpenTaskResult(existing, False, link_feedback(existing, items, actor))
    task = ReviewTask(
        profile=profile,
        section=section,
        title=clean_text(title)[:300],
        description=clean_text(description),
        assignee=assignee,
        reviewer=reviewer,
        due_on=due_on,
        created_by_id=actor.id,
        state=TaskState.OPEN,
    )
    try:
        with db.session.begin_nested():
            db.session.add(task)
            db.session.flush()
    except IntegrityError:
        existing = queries.open_task_for_section(section.id) if section is not None else None
        if existing is None:
            raise
        return OpenTaskResult(existing, False, link_feedback(existing, items, actor))
    event = _audit(
        actor,
        "task.opened",
        "review_task",
        task.id,
        profile=profile.id,
        section=section.id if section else None,
        title=task.title,
        assignee=assignee.id if assignee else None,
        reviewer=reviewer.id if reviewer else None,
        due_on=due_on.isoformat() if due_on else None,
    )
    linked = link_feedback(task, items, actor)
    _tell_assignee(task, actor, event)
    return OpenTaskResult(task, True, linked)


def link_feedback(task: ReviewTask, items: Iterable[Feedback], actor: User) -> list[Feedback]:
    """Link feedback items to a task: each gets a ``linked_to_task`` event and goes in review."""
    items = list(items)
    check_linkable(items, task.profile)
    now = utcnow()
    linked: list[Feedback] = []
    for item in items:
        if item in task.feedback:
            continue
        task.feedback.append(item)
        db.session.add(
            FeedbackEvent(
                feedback=item,
                kind=EventKind.LINKED_TO_TASK,
                actor_id=actor.id,
                at=now,
                data={"task": task.id, "title": task.title},
            )
        )
        if item.status in (FeedbackStatus.NEW, FeedbackStatus.TRIAGED):
            _change_status(item, FeedbackStatus.IN_REVIEW, actor, now, task=task.id)
        if item.first_response_at is None:
            item.first_response_at = now
        linked.append(item)
    if linked:
        _audit(
            actor,
            "task.feedback_linked",
            "review_task",
            task.id,
            feedback=[item.reference for item in linked],
        )
    return linked


def _change_status(
    item: Feedback, status: FeedbackStatus, actor: User | None, at: datetime, **data: Any
) -> None:
    db.session.add(
        FeedbackEvent(
            feedback=item,
            kind=EventKind.STATUS_CHANGED,
            actor_id=actor.id if actor else None,
            at=at,
            data={"from": str(item.status), "to": str(status), **data},
        )
    )
    item.status = status


def update_task(
    task: ReviewTask,
    actor: User,
    *,
    title: str,
    description: str,
    assignee: User | None,
    reviewer: User | None,
    due_on: date | None,
) -> bool:
    """Change a task's title, description, people or due date; a new assignee is told.

    Returns False when nothing changed.
    """
    if not task.is_open:
        raise ReviewError("This task is closed.")
    after = {
        "title": clean_text(title)[:300],
        "description": clean_text(description),
        "assignee": assignee.id if assignee else None,
        "reviewer": reviewer.id if reviewer else None,
        "due_on": due_on.isoformat() if due_on else None,
    }
    before = {
        "title": task.title,
        "description": task.description,
        "assignee": task.assignee_id,
        "reviewer": task.reviewer_id,
        "due_on": task.due_on.isoformat() if task.due_on else None,
    }
    changed = {key: value for key, value in after.items() if before[key] != value}
    if not changed:
        return False
    task.title, task.description, task.due_on = after["title"], after["description"], due_on
    task.assignee, task.reviewer = assignee, reviewer
    event = _audit(
        actor,
        "task.updated",
        "review_task",
        task.id,
        before={key: before[key] for key in changed},
        after=changed,
    )
    if "assignee" in changed:
        _tell_assignee(task, actor, event)
    return True


def choose_task_section(task: ReviewTask, section: Section, actor: User) -> ReviewTask:
    """Narrow a task on the whole profile to one section, unless that section is taken.

    Returns the task holding the section: this one, or the section's other open task (in
    which case this one is left as it was).
    """
    if section.profile_id != task.profile_id:
        raise ReviewError("That section is not part of this task's profile.")
    if task.section_id is not None:
        raise ReviewError("This task is already on a section.")
    existing = queries.open_task_for_section(section.id)
    if existing is not None:
        return existing
    try:
        with db.session.begin_nested():
            task.section = section
            db.session.flush()
    except IntegrityError:
        db.session.refresh(task)
        existing = queries.open_task_for_section(section.id)
        if existing is None:
            raise
        return existing
    _audit(actor, "task.section_chosen", "review_task", task.id, section=section.id)
    return task


def cancel_task(task: ReviewTask, actor: User, reason: str = "") -> None:
    """Close a task without a change: its drafts are set aside, its feedback goes back to triage.

    An item stays in review if another open task still holds it.
    """
    if not task.is_open:
        raise ReviewError("This task is already closed.")
    now = utcnow()
    before = task.state
    task.state = TaskState.CANCELLED
    for revision in queries.task_revisions(task):
        if revision.state in queries.PENDING_REVISION_STATES:
            revision.state = RevisionState.SUPERSEDED
    for item in task.feedback:
        if item.status == FeedbackStatus.IN_REVIEW and not _held_by_other_task(item, task):
            _change_status(item, FeedbackStatus.TRIAGED, actor, now, task=task.id)
    _audit(
        actor,
        "task.cancelled",
        "review_task",
        task.id,
        before=str(before),
        reason=clean_text(reason),
    )


def _held_by_other_task(item: Feedback, task: ReviewTask) -> bool:
    other = db.session.scalar(
        sa.select(ReviewTask.id)
        .join(review_task_feedback, review_task_feedback.c.task_id == ReviewTask.id)
        .where(
            review_task_feedback.c.feedback_id == item.id,
            ReviewTask.id != task.id,
            ReviewTask.state.in_(OPEN_TASK_STATES),
        )
        .limit(1)
    )
    return other is not None


# --------------------------------------------------------------------------- drafting


def _new_revision(
    section: Section,
    author: User,
    *,
    base: SectionRevision | None,
    heading: str,
    body: str,
    change_note: str = "",
    update_type: UpdateType = UpdateType.MAJOR,
    task: ReviewTask | None = None,
) -> SectionRevision:
    """A new draft of the section, numbered after every revision it has (drafts included)."""
    for _attempt in range(3):
        revision = SectionRevision(
            section_id=section.id,
            number=queries.next_revision_number(section),
            heading=heading,
            body=body,
            author_id=author.id,
            base_revision_id=base.id if base else None,
            change_note=change_note,
            update_type=update_type,
            state=RevisionState.DRAFT,
            task_id=task.id if task else None,
        )
        try:
            with db.session.begin_nested():
                db.session.add(revision)
                db.session.flush()
        except IntegrityError:
            continue  # another draft took the number a moment ago: take the next one
        return revision
    raise ReviewError("Could not number the new draft; please try again.")


def start_revision(task: ReviewTask, actor: User) -> SectionRevision:
    """The draft the task's assignee works on: resumed, taken over, or begun.

    A task without an assignee goes to whoever starts it. The draft carries on from the task's
    own draft (another assignee's is taken over: copied, the old one set aside), else from the
    revision an approver sent back (keeping its base, so a conflict still shows), else from the
    section's published revision, which becomes its base.
    """
    if task.state not in queries.ASSIGNEE_STATES:
        if task.state == TaskState.SUBMITTED:
            raise ReviewError("The revision is waiting for approval; withdraw it to edit it again.")
        raise ReviewError("This task is closed.")
    if task.section is None:
        raise ReviewError("Choose the section this task revises first.")
    if task.assignee_id is None:
        task.assignee = actor
        _audit(actor, "task.updated", "review_task", task.id, after={"assignee": actor.id})
    if task.assignee_id != actor.id:
        raise NotAllowed("Only the task's assignee revises the section.")
    pending = queries.pending_revision(task)
    if pending is not None and pending.author_id == actor.id:
        return pending
    section = task.section
    source = pending or queries.latest_rejected_revision(task)
    if source is not None:
        revision = _new_revision(
            section,
            actor,
            base=source.base_revision,
            heading=source.heading,
            body=source.body,
            change_note=source.change_note,
            update_type=source.update_type,
            task=task,
        )
        if pending is not None:
            pending.state = RevisionState.SUPERSEDED
    else:
        current = section.current_revision
        revision = _new_revision(
            section,
            actor,
            base=current,
            heading=current.heading if current else section.heading,
            body=current.body if current else "",
            task=task,
        )
    task.state = TaskState.IN_PROGRESS
    _audit(
        actor,
        "revision.drafted",
        "section_revision",
        revision.id,
        task=task.id,
        section=section.id,
        number=revision.number,
        base=revision.base_revision_id,
        copied_from=source.id if source else None,
    )
    return revision


def start_section_draft(section: Section, actor: User) -> SectionRevision:
    """A draft outside any task (a quick correction), based on the published revision.

    The actor's own open task-less draft of the section is resumed instead of making another.
    Such drafts may run alongside a task's: approval's base check keeps them from overwriting
    each other.
    """
    existing = db.session.scalar(
        sa.select(SectionRevision)
        .where(
            SectionRevision.section_id == section.id,
            SectionRevision.task_id.is_(None),
            SectionRevision.author_id == actor.id,
            SectionRevision.state == RevisionState.DRAFT,
        )
        .order_by(SectionRevision.id.desc())
        .limit(1)
    )
    if existing is not None:
        return existing
    current = section.current_revision
    revision = _new_revision(
        section,
        actor,
        base=current,
        heading=current.heading if current else section.heading,
        body=current.body if current else "",
        update_type=UpdateType.MINOR,
    )
    _audit(
        actor,
        "revision.drafted",
        "section_revision",
        revision.id,
        section=section.id,
        number=revision.number,
        base=revision.base_revision_id,
    )
    return revision


def save_draft(
    revision: SectionRevision,
    actor: User,
    *,
    heading: str,
    body: str,
    change_note: str,
    update_type: UpdateType,
) -> None:
    """Keep the author's latest words in the draft (explicit saves and autosaves alike).

    Drafts change many times a minute while someone types, so saving is not audited; the
    audit trail records the draft's start, submission and decision.
    """
    _require_own_draft(revision, actor)
    revision.heading = clean_text(heading).strip()[:300]
    revision.body = clean_text(body)
    revision.change_note = clean_text(change_note)
    revision.update_type = update_type
    db.session.flush()


def _require_own_draft(revision: SectionRevision, actor: User) -> None:
    if revision.state != RevisionState.DRAFT:
        raise ReviewError(f"Revision {revision.number} is {revision.state}, no longer a draft.")
    if revision.author_id != actor.id:
        raise NotAllowed("Only the draft's author edits it.")


def submission_problems(revision: SectionRevision) -> list[str]:
    """Why a draft cannot be submitted yet (empty when it can)."""
    problems = []
    if not revision.heading.strip():
        problems.append("The heading is empty.")
    if not revision.body.strip():
        problems.append("The text is empty.")
    if revision.update_type == UpdateType.MAJOR and not revision.change_note.strip():
        problems.append("A major revision needs a change note: readers see it in “What changed”.")
    return problems


def submit_revision(revision: SectionRevision, actor: User) -> None:
    """Send a draft for approval: it and its task become ``submitted``; approvers are told.

    The task's named reviewer is told, or else every approver of the country (managers and
    its lead editors), the author apart while four-eyes holds.
    """
    _require_own_draft(revision, actor)
    problems = submission_problems(revision)
    if problems:
        raise ReviewError(" ".join(problems))
    now = utcnow()
    revision.state = RevisionState.SUBMITTED
    revision.submitted_at = now
    task = queries.task_of(revision)
    if task is not None:
        task.state = TaskState.SUBMITTED
        task.submitted_at = now
    event = _audit(
        actor,
        "revision.submitted",
        "section_revision",
        revision.id,
        task=task.id if task else None,
        update_type=str(revision.update_type),
    )
    for user in _approvers_to_tell(revision, task):
        notify_user(
            user,
            "revision.submitted",
            template="revision_submitted",
            dedupe_key=f"revision.submitted:{revision.id}:{user.id}:{event.id}",
            actor_id=actor.id,
            revision=revision,
            task=task,
            actor=actor,
        )


def _approvers_to_tell(revision: SectionRevision, task: ReviewTask | None) -> list[User]:
    if task is not None and task.reviewer is not None:
        candidates = [task.reviewer]
    else:
        candidates = queries.approvers_of(revision.section.profile.country_id)
    return [user for user in candidates if queries.may_approve(user, revision)]


def withdraw_revision(revision: SectionRevision, actor: User) -> None:
    """Take a submitted revision back to a draft, to edit it before anyone decides."""
    if revision.state != RevisionState.SUBMITTED:
        raise ReviewError(f"Revision {revision.number} is {revision.state}, not waiting.")
    if revision.author_id != actor.id:
        raise NotAllowed("Only the revision's author withdraws it.")
    revision.state = RevisionState.DRAFT
    task = queries.task_of(revision)
    if task is not None:
        task.state = TaskState.IN_PROGRESS
    _audit(actor, "revision.withdrawn", "section_revision", revision.id)


def discard_draft(revision: SectionRevision, actor: User) -> None:
    """Set a draft aside (it stays in the history as superseded)."""
    _require_own_draft(revision, actor)
    revision.state = RevisionState.SUPERSEDED
    task = queries.task_of(revision)
    if task is not None and task.is_open:
        sent_back = queries.latest_rejected_revision(task)
        task.state = TaskState.CHANGES_REQUESTED if sent_back else TaskState.OPEN
    _audit(actor, "revision.discarded", "section_revision", revision.id)


@dataclass
class RebaseResult:
    revision: SectionRevision
    #: Places both the draft and the published text changed (see merge_texts).
    conflicts: list[MergeConflict] = field(default_factory=list)


def rebase_revision(revision: SectionRevision, actor: User) -> RebaseResult:
    """Redraft a revision on the section's published text, keeping the author's changes.

    The new draft starts from the published revision with the author's changes merged in word
    by word (merge_texts): changes to different places all survive; where both changed the same
    words, the author's text is kept and the place is listed, with the published wording, for
    the author to fold in by hand. The old revision is set aside as superseded, and nothing of
    either text is lost: both stay in the history.
    """
    if revision.state not in queries.PENDING_REVISION_STATES:
        raise ReviewError(f"Revision {revision.number} is {revision.state}; nothing to rebase.")
    if revision.author_id != actor.id:
        raise NotAllowed("Only the revision's author rebases it.")
    section = revision.section
    current = section.current_revision
    if current is None or revision.base_revision_id == current.id:
        raise ReviewError("This draft is already based on the published text.")
    base = revision.base_revision
    body = merge_texts(base.body if base else "", revision.body, current.body)
    heading = merge_texts(base.heading if base else "", revision.heading, current.heading)
    task = queries.task_of(revision)
    rebased = _new_revision(
        section,
        actor,
        base=current,
        heading=heading.text,
        body=body.text,
        change_note=revision.change_note,
        update_type=revision.update_type,
        task=task,
    )
    revision.state = RevisionState.SUPERSEDED
    if task is not None and task.is_open:
        task.state = TaskState.IN_PROGRESS
    conflicts = heading.conflicts + body.conflicts
    _audit(
        actor,
        "revision.rebased",
        "section_revision",
        rebased.id,
        rebased_from=revision.id,
        base=current.id,
        conflicts=len(conflicts),
    )
    return RebaseResult(rebased, conflicts)


def restore_revision(old: SectionRevision, actor: User) -> SectionRevision:
    """A new draft with the text of an earlier published revision; it needs approval as usual."""
    if old.state != RevisionState.APPROVED:
        raise ReviewError("Only a text that was once published can be restored.")
    section = old.section
    current = section.current_revision
    if current is not None and current.id == old.id:
        raise ReviewError("That is the text the page shows now.")
    revision = _new_revision(
        section,
        actor,
        base=current,
        heading=old.heading,
        body=old.body,
        change_note=f"Restores the text of revision {old.number}.",
        update_type=UpdateType.MAJOR,
    )
    _audit(
        actor,
        "revision.restored",
        "section_revision",
        revision.id,
        restored=old.id,
        number=old.number,
        base=current.id if current else None,
    )
    return revision


# --------------------------------------------------------------------------- decisions


def request_changes(revision: SectionRevision, actor: User, comment: str) -> None:
    """Send a submitted revision back with a comment; its author (and the assignee) are emailed.

    The revision is rejected (decided by the actor); the task goes to ``changes_requested``
    and its next draft starts from the rejected text.
    """
    _, revision = _lock(revision)
    _require_decidable(revision, actor)
    comment = clean_text(comment)
    if not comment:
        raise ReviewError("Say what should change.")
    now = utcnow()
    revision.state = RevisionState.REJECTED
    revision.decided_by_id = actor.id
    revision.decided_at = now
    task = queries.task_of(revision)
    if task is not None:
        task.state = TaskState.CHANGES_REQUESTED
        task.decided_at = now
    _audit(
        actor,
        "revision.changes_requested",
        "section_revision",
        revision.id,
        task=task.id if task else None,
        comment=comment,
    )
    people = {revision.author_id, task.assignee_id if task else None} - {None}
    for user in queries.users_by_id(people).values():
        notify_user(
            user,
            "revision.changes_requested",
            template="task_changes_requested",
            dedupe_key=f"revision.changes_requested:{revision.id}:{user.id}",
            actor_id=actor.id,
            revision=revision,
            task=task,
            actor=actor,
            comment=comment,
        )


@dataclass
class Approval:
    revision: SectionRevision
    #: The stamp written (major revisions only).
    update: ProfileUpdate | None
    closed_feedback: list[Feedback] = field(default_factory=list)
    #: Outbox rows written for subscribers and readers.
    notices: int = 0


def _lock(revision: SectionRevision) -> tuple[Section, SectionRevision]:
    """The revision's section row, locked until the transaction ends, and both re-read.

    ``SELECT … FOR UPDATE`` on PostgreSQL: a second decision on the section waits here until
    the first one commits, then sees its outcome. SQLite ignores the clause; its single writer
    serialises decisions anyway. Re-reading (populate_existing) replaces whatever this session
    loaded before the lock with the committed rows.
    """
    section = db.session.scalars(
        sa.select(Section)
        .where(Section.id == revision.section_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    fresh = db.session.scalars(
        sa.select(SectionRevision)
        .where(SectionRevision.id == revision.id)
        .execution_options(populate_existing=True)
    ).one()
    return section, fresh


def _require_decidable(revision: SectionRevision, actor: User) -> None:
    if revision.state != RevisionState.SUBMITTED:
        raise ReviewError(f"Revision {revision.number} is {revision.state}; nothing to decide.")
    if not queries.may_approve(actor, revision):
        if queries.four_eyes() and revision.author_id == actor.id:
            raise NotAllowed("You wrote this revision: someone else approves it.")
        raise NotAllowed("Only a manager or the country's lead editor decides on revisions.")


def approve_revision(revision: SectionRevision, actor: User) -> Approval:
    """Publish a submitted revision; for a major one, stamp the profile. One transaction.

    The section's row is locked first and the revision's base compared with the section's
    current revision: if the section moved on, RevisionConflict is raised and nothing changes.
    Otherwise the revision becomes approved and immutable (decided by, decided at), the section
    shows it (heading included), the previous revision stays in the history, and the task is
    approved. A MAJOR revision also sets Last Updated to today in the desk's time zone, writes
    a ProfileUpdate listing it, and queues the subscribers' notices and the "your feedback led
    to an update" emails of readers who asked. Linked feedback is closed as ``updated`` either
    way (unless another open task still holds it); a MINOR revision writes no email at all.
    """
    section, revision = _lock(revision)
    _require_decidable(revision, actor)
    if revision.base_revision_id != section.current_revision_id:
        current = (
            db.session.get(SectionRevision, section.current_revision_id)
            if section.current_revision_id
            else None
        )
        raise RevisionConflict(revision, current)

    now = utcnow()
    previous_id = section.current_revision_id
    revision.state = RevisionState.APPROVED
    revision.decided_by_id = actor.id
    revision.decided_at = now
    section.current_revision = revision
    section.heading = revision.heading
    task = queries.task_of(revision)
    if task is not None:
        task.state = TaskState.APPROVED
        task.decided_at = now

    profile = section.profile
    update: ProfileUpdate | None = None
    if revision.update_type == UpdateType.MAJOR:
        today = desk_today(now)
        profile.last_updated_on = today
        update = ProfileUpdate(
            profile=profile,
            stamped_on=today,
            change_note=revision.change_note,
            created_by_id=actor.id,
            revisions=[revision],
        )
        db.session.add(update)
    profile.touch()
    db.session.flush()

    closed = _close_linked_feedback(task, actor, update, now) if task is not None else []
    _audit(
        actor,
        "revision.approved",
        "section_revision",
        revision.id,
        section=section.id,
        number=revision.number,
        update_type=str(revision.update_type),
        previous=previous_id,
        task=task.id if task else None,
        profile_update=update.id if update else None,
        stamped_on=update.stamped_on.isoformat() if update else None,
        feedback_closed=[item.reference for item in closed],
    )
    notices = 0
    if update is not None:
        notices += queue_profile_update_notices(update)
        notices += sum(_tell_reader(item, update) for item in closed)
        if revision.author_id is not None:
            notify_user(
                db.session.get(User, revision.author_id),
                "revision.approved",
                template="revision_approved",
                dedupe_key=f"revision.approved:{revision.id}:{revision.author_id}",
                actor_id=actor.id,
                revision=revision,
                task=task,
                update=update,
                actor=actor,
            )
    return Approval(revision, update, closed, notices)


def _close_linked_feedback(
    task: ReviewTask, actor: User, update: ProfileUpdate | None, now: datetime
) -> list[Feedback]:
    closed = []
    for item in task.feedback:
        if item.status == FeedbackStatus.CLOSED or _held_by_other_task(item, task):
            continue
        _change_status(
            item,
            FeedbackStatus.CLOSED,
            actor,
            now,
            resolution=str(Resolution.UPDATED),
            task=task.id,
            profile_update=update.id if update else None,
        )
        item.resolution = Resolution.UPDATED
        item.resolution_note = (
            f"Published in the update of {format_day(update.stamped_on)}."
            if update
            else "Corrected by a minor revision (no new Last Updated date)."
        )
        item.resolved_at = now
        closed.append(item)
    db.session.flush()
    return closed


def _tell_reader(item: Feedback, update: ProfileUpdate) -> bool:
    """The "your feedback led to an update" email, in the reader's language, if they asked."""
    if not (item.wants_resolution_notice and item.submitter_email):
        return False
    message = queue_email(
        "feedback.resolved",
        item.submitter_email,
        template="feedback_resolved",
        dedupe_key=f"feedback.resolved:{item.reference}:{update.id}",
        language=item.language,
        feedback=item,
        update=update,
        profile=update.profile,
    )
    return message is not None


# --------------------------------------------------------------------------- profiles


def set_last_updated(profile: Profile, on: date, reason: str, actor: User) -> ProfileUpdate:
    """Set a profile's Last Updated date by hand (a manager's act), with a reason, audited.

    Written as a manual ProfileUpdate; no email goes out, since the text did not change.
    """
    if not queries.can_manage_profiles(actor):
        raise NotAllowed("Only managers set the Last Updated date by hand.")
    reason = clean_text(reason)
    if not reason:
        raise ReviewError("Give the reason for the new date.")
    if on > desk_today():
        raise ReviewError("Last Updated cannot be a date in the future.")
    before = profile.last_updated_on
    profile.last_updated_on = on
    update = ProfileUpdate(
        profile=profile, stamped_on=on, change_note=reason, is_manual=True, created_by_id=actor.id
    )
    db.session.add(update)
    profile.touch()
    db.session.flush()
    _audit(
        actor,
        "profile.last_updated_set",
        "profile",
        profile.id,
        before=before.isoformat() if before else None,
        after=on.isoformat(),
        reason=reason,
        profile_update=update.id,
    )
    return update


def mark_reviewed(profile: Profile, actor: User) -> None:
    """Record that the profile was read and is still current today (text and date unchanged)."""
    if not queries.can_manage_profiles(actor):
        raise NotAllowed("Only managers mark a profile as reviewed.")
    before = profile.reviewed_on
    profile.reviewed_on = desk_today()
    _audit(
        actor,
        "profile.reviewed",
        "profile",
        profile.id,
        before=before.isoformat() if before else None,
        after=profile.reviewed_on.isoformat(),
    )


# --------------------------------------------------------------------------- staff emails


def _tell_assignee(task: ReviewTask, actor: User, event: AuditEvent) -> None:
    if task.assignee is None:
        return
    notify_user(
        task.assignee,
        "task.assigned",
        template="task_assigned",
        dedupe_key=f"task.assigned:{task.id}:{task.assignee.id}:{event.id}",
        actor_id=actor.id,
        task=task,
        actor=actor,
    )


@dataclass
class Reminder:
    overdue: list[ReviewTask] = field(default_factory=list)
    waiting: list[SectionRevision] = field(default_factory=list)


def queue_review_reminders(now: datetime | None = None) -> int:
    """The daily reminder: overdue tasks to their assignees, long waits to the approvers.

    A task is overdue once its due date has passed and the next step is its assignee's. A
    revision waits too long once submitted more than DESK_REVIEW_REMINDER_DAYS days ago; its
    task's named reviewer is reminded, or else every approver of the country. Each person gets
    one email a day, whatever their notification mode (a reminder is already a daily summary);
    the dedupe key names the day, so running the job again the same day sends nothing.
    Returns how many emails were written.
    """
    now = now or utcnow()
    today = desk_today(now)
    days = int(current_app.config.get("DESK_REVIEW_REMINDER_DAYS", 2))
    reminders: dict[int, Reminder] = defaultdict(Reminder)
    for task in queries.overdue_tasks(today):
        reminders[task.assignee_id].overdue.append(task)
    for revision in queries.waiting_revisions(now - timedelta(days=days)):
        for user in _approvers_to_tell(revision, queries.task_of(revision)):
            reminders[user.id].waiting.append(revision)
    written = 0
    for user_id, reminder in sorted(reminders.items()):
        user = db.session.get(User, user_id)
        if user is None or not user.is_active:
            continue
        message = queue_email(
            "review.reminder",
            user.email,
            template="task_reminder",
            dedupe_key=f"review.reminder:{today.isoformat()}:{user.id}",
            user=user,
            reminder=reminder,
            today=today,
            days=days,
        )
        written += message is not None
    return written
