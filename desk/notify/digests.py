"""Digests: the daily and weekly emails to subscribers, and the staff's daily digest.

A period ends at midnight in the desk's time zone (weekly: midnight starting Monday). A job
may run as often as it likes: each run covers the periods that have ended, and a period already
covered gives nothing again, because

* a subscription's ``digested_until`` moves to the end of the period its digest covered, and the
  next digest starts there (a new subscription starts when it was confirmed);
* each digest has a dedupe key naming the period and the address;
* an update already sent to the address on its own (before a move to a digest) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from desk.accounts.models import CountryAssignment, NotificationMode, Role, User
from desk.core.time import desk_zone, utcnow
from desk.extensions import db
from desk.feedback.models import EventKind, Feedback, FeedbackEvent
from desk.notify.models import Frequency, OutboxMessage, Subscription
from desk.notify.operations import (
    UpdateSummary,
    address_key,
    manage_url,
    subscriber_headers,
    summarise_update,
    unsubscribe_url,
)
from desk.notify.outbox import queue_email, site_context
from desk.notify.queries import profile_update_prefix
from desk.profiles.models import Profile, ProfileUpdate
from desk.reviews.models import ReviewTask, TaskState


def period_end(frequency: Frequency, now: datetime) -> datetime:
    """The end of the last period that has ended by ``now`` (UTC), for a daily or weekly digest."""
    zone = desk_zone()
    local = now.astimezone(zone)
    end = datetime.combine(local.date(), time(), tzinfo=zone)
    if frequency == Frequency.WEEKLY:
        end -= timedelta(days=local.weekday())
    return end.astimezone(UTC)


def period_days(frequency: Frequency, end: datetime) -> tuple[date, date]:
    """The first and last day of the period ending at ``end``, as the desk's calendar has them."""
    last = (end.astimezone(desk_zone()) - timedelta(days=1)).date()
    length = 7 if frequency == Frequency.WEEKLY else 1
    return last - timedelta(days=length - 1), last


# --------------------------------------------------------------------------- subscribers


@dataclass
class DigestProfile:
    profile: Profile
    updates: list[ProfileUpdate] = field(default_factory=list)
    #: The updates as the email shows them (filled in just before it is drawn).
    summaries: list[UpdateSummary] = field(default_factory=list)


@dataclass
class Digest:
    """One email: everything an address's subscriptions of one frequency missed in a period."""

    email: str
    language: str
    subscription_ids: list[int] = field(default_factory=list)
    profiles: dict[int, DigestProfile] = field(default_factory=dict)


def queue_subscriber_digests(frequency: Frequency, *, now: datetime | None = None) -> int:
    """Write the digests of the last ended period for every daily (or weekly) subscriber.

    One email per address and language, listing each profile's updates of the period, oldest
    first; an address with nothing new gets nothing. Every subscription of that frequency then
    counts as digested up to the period's end. Returns how many emails were written.
    """
    if frequency == Frequency.IMMEDIATE:
        raise ValueError("immediate subscribers get no digest")
    end = period_end(frequency, now or utcnow())
    first_day, last_day = period_days(frequency, end)
    digests = _gather(frequency, end)
    written = 0
    with site_context():
        summaries: dict[int, UpdateSummary] = {}
        for digest in digests:
            for entry in digest.profiles.values():
                for update in entry.updates:
                    if update.id not in summaries:
                        summaries[update.id] = summarise_update(update)
                    entry.summaries.append(summaries[update.id])
            unsubscribe = unsubscribe_url(digest.subscription_ids)
            message = queue_email(
                f"digest.{frequency.value}",
                digest.email,
                template="subscription_digest",
                dedupe_key=(
                    f"digest.{frequency.value}:{last_day.isoformat()}:"
                    f"{address_key(digest.email)}:{digest.language}"
                ),
                language=digest.language,
                headers=subscriber_headers(unsubscribe),
                frequency=frequency,
                first_day=first_day,
                last_day=last_day,
                profiles=sorted(
                    digest.profiles.values(),
                    key=lambda entry: (entry.profile.country.name, entry.profile.topic),
                ),
                unsubscribe_url=unsubscribe,
                manage_url=manage_url(digest.subscription_ids[0], digest.language),
            )
            written += message is not None
    _advance(frequency, end)
    db.session.flush()
    return written


def _gather(frequency: Frequency, end: datetime) -> list[Digest]:
    """The period's updates for each address, minus those the address was sent on their own."""
    since = sa.case(
        (
            sa.and_(
                Subscription.digested_until.is_not(None),
                Subscription.digested_until > Subscription.confirmed_at,
            ),
            Subscription.digested_until,
        ),
        else_=Subscription.confirmed_at,
    )
    rows = db.session.execute(
        sa.select(Subscription, ProfileUpdate)
        .join(ProfileUpdate, ProfileUpdate.profile_id == Subscription.profile_id)
        .join(Profile, Profile.id == Subscription.profile_id)
        .options(joinedload(ProfileUpdate.profile).joinedload(Profile.country))
        .where(
            Subscription.frequency == frequency,
            Subscription.confirmed_at.is_not(None),
            Subscription.confirmed_at < end,
            Subscription.ended_at.is_(None),
            Profile.is_published,
            ProfileUpdate.created_at > since,
            ProfileUpdate.created_at <= end,
        )
        .order_by(Subscription.email, Subscription.id, ProfileUpdate.created_at)
    ).all()
    told = _told_already({(s.email, u.id) for s, u in rows})
    digests: dict[tuple[str, str], Digest] = {}
    for subscription, update in rows:
        if (subscription.email, update.id) in told:
            continue
        digest = digests.setdefault(
            (subscription.email, subscription.language),
            Digest(email=subscription.email, language=subscription.language),
        )
        if subscription.id not in digest.subscription_ids:
            digest.subscription_ids.append(subscription.id)
        entry = digest.profiles.setdefault(update.profile_id, DigestProfile(update.profile))
        entry.updates.append(update)
    return list(digests.values())


def _told_already(pairs: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which (address, update) pairs already have an outbox message of their own."""
    keys = {
        f"{profile_update_prefix(update_id)}{address_key(email)}": (email, update_id)
        for email, update_id in pairs
    }
    found: set[tuple[str, int]] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        found.update(
            keys[key]
            for key in db.session.scalars(
                sa.select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(chunk))
            )
        )
    return found


def _advance(frequency: Frequency, end: datetime) -> None:
    """Every active subscription of this frequency is now digested up to ``end`` (never back)."""
    db.session.execute(
        sa.update(Subscription)
        .where(
            Subscription.frequency == frequency,
            Subscription.confirmed_at.is_not(None),
            Subscription.confirmed_at < end,
            Subscription.ended_at.is_(None),
            sa.or_(Subscription.digested_until.is_(None), Subscription.digested_until < end),
        )
        .values(digested_until=end)
        .execution_options(synchronize_session=False)
    )


# --------------------------------------------------------------------------- staff


@dataclass
class StaffDay:
    """What happened to one staff member's work in a day."""

    assigned_feedback: list[Feedback] = field(default_factory=list)
    assigned_tasks: list[ReviewTask] = field(default_factory=list)
    awaiting_approval: list[ReviewTask] = field(default_factory=list)
    changes_requested: list[ReviewTask] = field(default_factory=list)
    approved: list[ReviewTask] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.assigned_feedback
            or self.assigned_tasks
            or self.awaiting_approval
            or self.changes_requested
            or self.approved
        )


def staff_day(user: User, start: datetime, end: datetime) -> StaffDay:
    """Feedback and review tasks that came to ``user`` between ``start`` and ``end``.

    Read from the timelines and the tasks' own dates: feedback assigned to them (and still
    theirs), tasks assigned to them, tasks submitted for their approval, and decisions on their
    tasks (changes requested, approved). Their own actions are left out.
    """
    day = StaffDay()
    events = db.session.scalars(
        sa.select(FeedbackEvent)
        .join(FeedbackEvent.feedback)
        .options(joinedload(FeedbackEvent.feedback).joinedload(Feedback.country))
        .where(
            Feedback.assignee_id == user.id,
            FeedbackEvent.kind == EventKind.ASSIGNED,
            FeedbackEvent.at >= start,
            FeedbackEvent.at < end,
        )
        .order_by(FeedbackEvent.at)
    )
    seen: set[int] = set()
    for event in events:
        if event.data.get("to") != user.id or event.actor_id == user.id:
            continue
        if event.feedback_id not in seen:
            seen.add(event.feedback_id)
            day.assigned_feedback.append(event.feedback)

    def tasks(*conditions: sa.ColumnElement[bool]) -> list[ReviewTask]:
        return list(
            db.session.scalars(
                sa.select(ReviewTask)
                .options(joinedload(ReviewTask.profile).joinedload(Profile.country))
                .where(*conditions)
                .order_by(ReviewTask.id)
            )
        )

    mine = ReviewTask.assignee_id == user.id
    day.assigned_tasks = tasks(
        mine,
        ReviewTask.created_at >= start,
        ReviewTask.created_at < end,
        sa.or_(ReviewTask.created_by_id.is_(None), ReviewTask.created_by_id != user.id),
    )
    day.awaiting_approval = tasks(
        ReviewTask.state == TaskState.SUBMITTED,
        ReviewTask.submitted_at >= start,
        ReviewTask.submitted_at < end,
        sa.or_(ReviewTask.assignee_id.is_(None), ReviewTask.assignee_id != user.id),
        _may_approve(user),
    )
    for state, bucket in (
        (TaskState.CHANGES_REQUESTED, day.changes_requested),
        (TaskState.APPROVED, day.approved),
    ):
        bucket.extend(
            tasks(
                mine,
                ReviewTask.state == state,
                ReviewTask.decided_at >= start,
                ReviewTask.decided_at < end,
            )
        )
    return day


def _may_approve(user: User) -> sa.ColumnElement[bool]:
    """Tasks whose approval waits on ``user``: named as reviewer, or open to any approver they are.

    A task without a named reviewer may be approved by any manager or admin, or by the lead
    editor of its country.
    """
    named = ReviewTask.reviewer_id == user.id
    if user.role in (Role.MANAGER, Role.ADMIN):
        return sa.or_(named, ReviewTask.reviewer_id.is_(None))
    lead_countries = sa.select(CountryAssignment.country_id).where(
        CountryAssignment.user_id == user.id, CountryAssignment.is_lead
    )
    led_profiles = sa.select(Profile.id).where(Profile.country_id.in_(lead_countries))
    return sa.or_(
        named, sa.and_(ReviewTask.reviewer_id.is_(None), ReviewTask.profile_id.in_(led_profiles))
    )


def queue_staff_digests(*, now: datetime | None = None) -> int:
    """Write yesterday's digest for each active staff member who chose the daily digest.

    "Yesterday" is the last whole day in the desk's time zone; a day with nothing for someone
    sends them nothing. Returns how many emails were written.
    """
    end = period_end(Frequency.DAILY, now or utcnow())
    start = end - timedelta(days=1)
    _, day_shown = period_days(Frequency.DAILY, end)
    users = db.session.scalars(
        sa.select(User)
        .where(User.is_active, User.notification_mode == NotificationMode.DAILY_DIGEST)
        .order_by(User.id)
    )
    written = 0
    for user in users:
        day = staff_day(user, start, end)
        if day.is_empty:
            continue
        message = queue_email(
            "staff.digest",
            user.email,
            template="staff_digest",
            dedupe_key=f"staff.digest:{day_shown.isoformat()}:{user.id}",
            user=user,
            day=day,
            day_shown=day_shown,
        )
        written += message is not None
    return written
