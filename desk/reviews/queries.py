"""Reads for review tasks and revisions, and who may see and approve what."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload, selectinload

from desk.accounts.models import CountryAssignment, Role, User
from desk.core.audit import AuditEvent
from desk.extensions import db
from desk.feedback.models import Feedback
from desk.profiles.models import (
    Country,
    Profile,
    ProfileUpdate,
    RevisionState,
    Section,
    SectionRevision,
)
from desk.reviews.models import OPEN_TASK_STATES, ReviewTask, TaskState

#: Tasks shown per page of a list.
PAGE_SIZE = 50
#: Task states in which the assignee holds the ball (a submitted task waits on its approver).
ASSIGNEE_STATES = (TaskState.OPEN, TaskState.IN_PROGRESS, TaskState.CHANGES_REQUESTED)
#: Revision states still being worked on or waiting for a decision.
PENDING_REVISION_STATES = (RevisionState.DRAFT, RevisionState.SUBMITTED)


# --------------------------------------------------------------------------- access


def four_eyes() -> bool:
    """May an author not approve their own revision? (Off only for one-person desks.)"""
    return bool(current_app.config.get("DESK_FOUR_EYES", True))


def visible_country_ids(user: User) -> set[int] | None:
    """The countries whose work the user sees; None for all (managers and admins)."""
    if user.sees_all_countries:
        return None
    return {assignment.country_id for assignment in user.assignments}


def can_see_country(user: User, country_id: int | None) -> bool:
    allowed = visible_country_ids(user)
    return allowed is None or country_id in allowed


def is_approver(user: User, country_id: int) -> bool:
    """Managers and admins approve for every country; a lead editor for their own."""
    if not user.is_active:
        return False
    if user.role in (Role.MANAGER, Role.ADMIN):
        return True
    return any(a.country_id == country_id and a.is_lead for a in user.assignments)


def may_approve(user: User, revision: SectionRevision) -> bool:
    """May this user approve (or send back) this revision?"""
    if not is_approver(user, revision.section.profile.country_id):
        return False
    return not (four_eyes() and revision.author_id == user.id)


def can_manage_profiles(user: User) -> bool:
    """Setting Last Updated by hand and marking a profile reviewed are managers' acts."""
    return user.role in (Role.MANAGER, Role.ADMIN)


def approvers_of(country_id: int) -> list[User]:
    """Every active approver of a country: managers, admins and the country's lead editors."""
    leads = sa.select(CountryAssignment.user_id).where(
        CountryAssignment.country_id == country_id, CountryAssignment.is_lead
    )
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.is_active, sa.or_(User.role != Role.EDITOR, User.id.in_(leads)))
            .order_by(User.name, User.id)
        )
    )


def assignable_staff(country_id: int) -> list[User]:
    """Who may be given a task of this country: its editors, managers and admins."""
    editors = sa.select(CountryAssignment.user_id).where(CountryAssignment.country_id == country_id)
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.is_active, sa.or_(User.role != Role.EDITOR, User.id.in_(editors)))
            .order_by(User.name, User.id)
        )
    )


def visible_profiles(user: User) -> list[Profile]:
    """Profiles of the user's countries, by country and topic, sections loaded."""
    statement = (
        sa.select(Profile)
        .join(Profile.country)
        .options(selectinload(Profile.sections), joinedload(Profile.country))
        .order_by(Country.name, Profile.topic, Profile.language)
    )
    allowed = visible_country_ids(user)
    if allowed is not None:
        statement = statement.where(Profile.country_id.in_(sorted(allowed)))
    return list(db.session.scalars(statement).unique())


# --------------------------------------------------------------------------- tasks


def open_task_for_section(section_id: int) -> ReviewTask | None:
    """The task that holds the section, if any (at most one, by the partial unique index)."""
    return db.session.scalar(
        sa.select(ReviewTask).where(
            ReviewTask.section_id == section_id, ReviewTask.state.in_(OPEN_TASK_STATES)
        )
    )


def open_tasks_by_section(profile: Profile) -> dict[int, ReviewTask]:
    tasks = db.session.scalars(
        sa.select(ReviewTask).where(
            ReviewTask.profile_id == profile.id,
            ReviewTask.section_id.is_not(None),
            ReviewTask.state.in_(OPEN_TASK_STATES),
        )
    )
    return {task.section_id: task for task in tasks if task.section_id is not None}


def profile_tasks(profile: Profile, limit: int = 50) -> list[ReviewTask]:
    """The profile's tasks, open ones first, then the most recent."""
    return list(
        db.session.scalars(
            sa.select(ReviewTask)
            .where(ReviewTask.profile_id == profile.id)
            .options(joinedload(ReviewTask.assignee), joinedload(ReviewTask.section))
            .order_by(ReviewTask.state.in_(OPEN_TASK_STATES).desc(), ReviewTask.id.desc())
            .limit(limit)
        )
    )


def feedback_by_references(references: list[str]) -> list[Feedback]:
    """The items with these references, in the order given; unknown references are left out."""
    wanted = [ref.strip().upper() for ref in references if ref.strip()]
    if not wanted:
        return []
    found = {
        item.reference: item
        for item in db.session.scalars(
            sa.select(Feedback)
            .where(Feedback.reference.in_(wanted))
            .options(joinedload(Feedback.profile), joinedload(Feedback.section))
        )
    }
    return [found[ref] for ref in dict.fromkeys(wanted) if ref in found]


class TaskView(enum.StrEnum):
    MINE = "mine"
    COUNTRIES = "countries"
    OVERDUE = "overdue"


@dataclass
class TaskFilters:
    view: TaskView = TaskView.MINE
    #: "" (every open state), "all", or one TaskState value.
    state: str = ""
    country_id: int | None = None
    assignee_id: int | None = None
    text: str = ""
    #: Keyset: only tasks with a smaller id (the next page).
    before: int | None = None


def task_list(user: User, filters: TaskFilters, today: date) -> list[ReviewTask]:
    """One page of tasks for a list view, newest first; one more than a page tells of a next."""
    statement = (
        sa.select(ReviewTask)
        .join(Profile, Profile.id == ReviewTask.profile_id)
        .options(
            joinedload(ReviewTask.profile).joinedload(Profile.country),
            joinedload(ReviewTask.section),
            joinedload(ReviewTask.assignee),
            joinedload(ReviewTask.reviewer),
        )
        .order_by(ReviewTask.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    allowed = visible_country_ids(user)
    if allowed is not None:
        statement = statement.where(Profile.country_id.in_(sorted(allowed)))
    if filters.view == TaskView.MINE:
        statement = statement.where(ReviewTask.assignee_id == user.id)
    elif filters.view == TaskView.OVERDUE:
        statement = statement.where(ReviewTask.due_on < today)
    if filters.view == TaskView.OVERDUE or not filters.state:
        statement = statement.where(ReviewTask.state.in_(OPEN_TASK_STATES))
    elif filters.state in set(TaskState):
        statement = statement.where(ReviewTask.state == TaskState(filters.state))
    if filters.country_id is not None:
        statement = statement.where(Profile.country_id == filters.country_id)
    if filters.assignee_id is not None:
        statement = statement.where(ReviewTask.assignee_id == filters.assignee_id)
    if filters.text:
        escaped = filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(ReviewTask.title.ilike(f"%{escaped}%", escape="\\"))
    if filters.before is not None:
        statement = statement.where(ReviewTask.id < filters.before)
    return list(db.session.scalars(statement))


def awaiting_approval(user: User) -> list[SectionRevision]:
    """Submitted revisions waiting on this user, oldest first.

    A task that names a reviewer waits on that reviewer; any other submitted revision waits on
    every approver of its country. Their own revisions are left out while four-eyes holds.
    """
    statement = (
        sa.select(SectionRevision)
        .join(Section, Section.id == SectionRevision.section_id)
        .join(Profile, Profile.id == Section.profile_id)
        .outerjoin(ReviewTask, ReviewTask.id == SectionRevision.task_id)
        .options(
            joinedload(SectionRevision.section).joinedload(Section.profile),
            joinedload(SectionRevision.author),
        )
        .where(SectionRevision.state == RevisionState.SUBMITTED)
        .order_by(SectionRevision.id)
    )
    named = ReviewTask.reviewer_id == user.id
    open_to_any = sa.or_(ReviewTask.id.is_(None), ReviewTask.reviewer_id.is_(None))
    if user.role in (Role.MANAGER, Role.ADMIN):
        statement = statement.where(sa.or_(named, open_to_any))
    else:
        led = sa.select(CountryAssignment.country_id).where(
            CountryAssignment.user_id == user.id, CountryAssignment.is_lead
        )
        statement = statement.where(
            sa.or_(named, sa.and_(open_to_any, Profile.country_id.in_(led)))
        )
    if four_eyes():
        statement = statement.where(
            sa.or_(SectionRevision.author_id.is_(None), SectionRevision.author_id != user.id)
        )
    return list(db.session.scalars(statement))


def task_revisions(task: ReviewTask) -> list[SectionRevision]:
    """The revisions drafted for a task, newest first."""
    return list(
        db.session.scalars(
            sa.select(SectionRevision)
            .where(SectionRevision.task_id == task.id)
            .options(joinedload(SectionRevision.author), joinedload(SectionRevision.decided_by))
            .order_by(SectionRevision.id.desc())
        )
    )


def task_of(revision: SectionRevision) -> ReviewTask | None:
    """The task a revision was drafted for (None for restores and imports)."""
    return db.session.get(ReviewTask, revision.task_id) if revision.task_id else None


def pending_revision(task: ReviewTask) -> SectionRevision | None:
    """The task's draft or submitted revision, if it has one."""
    return db.session.scalar(
        sa.select(SectionRevision)
        .where(
            SectionRevision.task_id == task.id,
            SectionRevision.state.in_(PENDING_REVISION_STATES),
        )
        .order_by(SectionRevision.id.desc())
        .limit(1)
    )


def latest_rejected_revision(task: ReviewTask) -> SectionRevision | None:
    return db.session.scalar(
        sa.select(SectionRevision)
        .where(SectionRevision.task_id == task.id, SectionRevision.state == RevisionState.REJECTED)
        .order_by(SectionRevision.id.desc())
        .limit(1)
    )


def next_revision_number(section: Section) -> int:
    current = db.session.scalar(
        sa.select(sa.func.max(SectionRevision.number)).where(
            SectionRevision.section_id == section.id
        )
    )
    return (current or 0) + 1


def activity(object_type: str, object_id: int) -> list[AuditEvent]:
    """The audit rows of one task or revision, oldest first (decisions, comments, reasons)."""
    return list(
        db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
            .order_by(AuditEvent.at, AuditEvent.id)
        )
    )


@dataclass(frozen=True)
class ChangeRequest:
    """What an approver asked for when sending a revision back."""

    revision: SectionRevision
    comment: str
    by: User | None
    at: datetime


def change_request_answered_by(draft: SectionRevision) -> ChangeRequest | None:
    """The request for changes this draft answers: its task's latest sent-back revision, if the
    draft was begun after it (a draft of before, withdrawn, answers nothing)."""
    task = task_of(draft)
    sent_back = latest_rejected_revision(task) if task is not None else None
    if sent_back is None or sent_back.id > draft.id:
        return None
    event = db.session.scalar(
        sa.select(AuditEvent)
        .where(
            AuditEvent.action == "revision.changes_requested",
            AuditEvent.object_type == "section_revision",
            AuditEvent.object_id == str(sent_back.id),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    if event is None:
        return None
    by = db.session.get(User, event.actor_id) if event.actor_id else None
    return ChangeRequest(sent_back, str(event.data.get("comment", "")), by, event.at)


def users_by_id(ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(sorted(ids))))}


# --------------------------------------------------------------------------- history


def section_revisions(section: Section) -> list[SectionRevision]:
    """Every revision of a section, newest first, with who wrote and decided it."""
    return list(
        db.session.scalars(
            sa.select(SectionRevision)
            .where(SectionRevision.section_id == section.id)
            .options(
                joinedload(SectionRevision.author),
                joinedload(SectionRevision.decided_by),
                joinedload(SectionRevision.profile_update),
            )
            .order_by(SectionRevision.number.desc())
        )
    )


def profile_revisions(profile: Profile) -> list[SectionRevision]:
    """Every revision of every section of a profile, newest first."""
    return list(
        db.session.scalars(
            sa.select(SectionRevision)
            .join(Section, Section.id == SectionRevision.section_id)
            .where(Section.profile_id == profile.id)
            .options(
                joinedload(SectionRevision.section),
                joinedload(SectionRevision.author),
                joinedload(SectionRevision.decided_by),
            )
            .order_by(SectionRevision.created_at.desc(), SectionRevision.id.desc())
        )
    )


def profile_stamps(profile: Profile) -> list[ProfileUpdate]:
    """Every Last Updated stamp of a profile, newest first."""
    return list(
        db.session.scalars(
            sa.select(ProfileUpdate)
            .where(ProfileUpdate.profile_id == profile.id)
            .options(joinedload(ProfileUpdate.created_by))
            .order_by(ProfileUpdate.id.desc())
        )
    )


# --------------------------------------------------------------------------- reminders


def overdue_tasks(today: date) -> list[ReviewTask]:
    """Tasks past their due date whose next step is the assignee's."""
    return list(
        db.session.scalars(
            sa.select(ReviewTask)
            .where(
                ReviewTask.state.in_(ASSIGNEE_STATES),
                ReviewTask.due_on < today,
                ReviewTask.assignee_id.is_not(None),
            )
            .options(joinedload(ReviewTask.profile).joinedload(Profile.country))
            .order_by(ReviewTask.due_on, ReviewTask.id)
        )
    )


def submitted_at(revision: SectionRevision) -> datetime | None:
    """When the revision was (last) submitted: its task says so, or else the audit trail."""
    task = task_of(revision)
    if task is not None and task.submitted_at is not None:
        return task.submitted_at
    return db.session.scalar(
        sa.select(sa.func.max(AuditEvent.at)).where(
            AuditEvent.action == "revision.submitted",
            AuditEvent.object_type == "section_revision",
            AuditEvent.object_id == str(revision.id),
        )
    )


def waiting_revisions(submitted_before: datetime) -> list[SectionRevision]:
    """Submitted revisions that have waited for a decision since before the given time."""
    revisions = db.session.scalars(
        sa.select(SectionRevision)
        .where(SectionRevision.state == RevisionState.SUBMITTED)
        .options(joinedload(SectionRevision.section).joinedload(Section.profile))
        .order_by(SectionRevision.id)
    )
    waiting = []
    for revision in revisions:
        since = submitted_at(revision)
        if since is not None and since < submitted_before:
            waiting.append(revision)
    return waiting


def can_manage_task(user: User, task: ReviewTask) -> bool:
    """Edit or cancel a task: its assignee, whoever opened it, and the country's approvers."""
    return user.id in (task.assignee_id, task.created_by_id) or is_approver(
        user, task.profile.country_id
    )
