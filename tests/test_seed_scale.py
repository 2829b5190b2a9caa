"""``desk seed-scale``: a synthetic desk whose rows hang together as the desk would write them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from desk.accounts.models import Role, User
from desk.extensions import db
from desk.feedback.models import (
    EventKind,
    Feedback,
    FeedbackEvent,
    FeedbackStatus,
    ReferenceCounter,
    Resolution,
)
from desk.profiles.models import Profile, ProfileUpdate, RevisionState, SectionRevision
from desk.reviews.models import OPEN_TASK_STATES, ReviewTask, TaskState, review_task_feedback
from desk.scale import STAFF_DOMAIN, seed_scale

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def seeded(app):
    return seed_scale(600, countries=3, seed=7, now=NOW)


def scalar(statement):
    return db.session.scalar(statement)


def test_seed_scale_makes_the_items_their_timelines_tasks_and_staff(seeded):
    assert seeded.feedback == 600
    assert scalar(sa.select(sa.func.count()).select_from(Feedback)) == 600
    assert seeded.events == scalar(sa.select(sa.func.count()).select_from(FeedbackEvent))
    assert seeded.events > 4 * 600
    staff = db.session.execute(
        sa.select(User.role, sa.func.count())
        .where(User.email.like(f"%@{STAFF_DOMAIN}"))
        .group_by(User.role)
    ).all()
    assert dict(staff) == {Role.EDITOR: 6, Role.MANAGER: 2, Role.ADMIN: 1}
    assert scalar(sa.select(sa.func.count()).select_from(Profile)) == 6
    statuses = dict(
        db.session.execute(
            sa.select(Feedback.status, sa.func.count()).group_by(Feedback.status)
        ).all()
    )
    assert set(statuses) == set(FeedbackStatus)
    resolutions = dict(
        db.session.execute(
            sa.select(Feedback.resolution, sa.func.count())
            .where(Feedback.status == FeedbackStatus.CLOSED)
            .group_by(Feedback.resolution)
        ).all()
    )
    assert set(resolutions) == set(Resolution)
    assert scalar(sa.select(sa.func.count()).where(Feedback.received_at > NOW)) == 0
    oldest = scalar(sa.select(sa.func.min(Feedback.received_at)))
    assert (NOW - oldest).days > 400


def test_every_item_has_a_received_event_and_its_first_response_is_its_first_human_event(seeded):
    received = scalar(sa.select(sa.func.count()).where(FeedbackEvent.kind == EventKind.RECEIVED))
    assert received == 600
    first_human = (
        sa.select(sa.func.min(FeedbackEvent.at))
        .where(FeedbackEvent.feedback_id == Feedback.id, FeedbackEvent.actor_id.is_not(None))
        .scalar_subquery()
    )
    mismatched = scalar(
        sa.select(sa.func.count()).where(
            sa.or_(
                sa.and_(Feedback.first_response_at.is_(None), first_human.is_not(None)),
                sa.and_(Feedback.first_response_at.is_not(None), first_human.is_(None)),
                Feedback.first_response_at != first_human,
            )
        )
    )
    assert mismatched == 0
    assert scalar(sa.select(sa.func.count()).where(Feedback.first_response_at.is_(None))) > 0


def test_closed_items_end_at_their_last_close_and_open_ones_have_none(seeded):
    last_change = (
        sa.select(sa.func.max(FeedbackEvent.at))
        .where(
            FeedbackEvent.feedback_id == Feedback.id,
            FeedbackEvent.kind.in_([EventKind.STATUS_CHANGED, EventKind.MERGED]),
        )
        .scalar_subquery()
    )
    closed = Feedback.status == FeedbackStatus.CLOSED
    assert (
        scalar(sa.select(sa.func.count()).where(closed, Feedback.resolved_at != last_change)) == 0
    )
    assert scalar(sa.select(sa.func.count()).where(~closed, Feedback.resolved_at.is_not(None))) == 0
    reopened = scalar(
        sa.select(sa.func.count(sa.distinct(FeedbackEvent.feedback_id))).where(
            FeedbackEvent.kind == EventKind.REOPENED
        )
    )
    assert reopened > 0
    duplicates = sa.and_(closed, Feedback.resolution == Resolution.DUPLICATE)
    assert (
        scalar(sa.select(sa.func.count()).where(duplicates, Feedback.duplicate_of_id.is_(None)))
        == 0
    )
    no_reason = sa.and_(
        closed, Feedback.resolution == Resolution.NO_ACTION, Feedback.resolution_note == ""
    )
    assert scalar(sa.select(sa.func.count()).where(no_reason)) == 0


def test_review_tasks_revisions_and_stamps_follow_the_workflow(seeded):
    assert (
        scalar(
            sa.select(sa.func.count()).where(
                ReviewTask.state == TaskState.APPROVED,
                sa.or_(
                    ReviewTask.submitted_at < ReviewTask.created_at,
                    ReviewTask.decided_at < ReviewTask.submitted_at,
                ),
            )
        )
        == 0
    )
    open_per_section = db.session.execute(
        sa.select(ReviewTask.section_id, sa.func.count())
        .where(ReviewTask.state.in_(OPEN_TASK_STATES))
        .group_by(ReviewTask.section_id)
        .having(sa.func.count() > 1)
    ).all()
    assert open_per_section == []
    in_review_unlinked = scalar(
        sa.select(sa.func.count()).where(
            Feedback.status == FeedbackStatus.IN_REVIEW,
            ~sa.exists().where(review_task_feedback.c.feedback_id == Feedback.id),
        )
    )
    assert in_review_unlinked == 0
    states = dict(
        db.session.execute(
            sa.select(SectionRevision.state, sa.func.count())
            .where(SectionRevision.task_id.is_not(None))
            .group_by(SectionRevision.state)
        ).all()
    )
    assert states[RevisionState.APPROVED] > 0 and states[RevisionState.REJECTED] > 0
    stamps = scalar(sa.select(sa.func.count()).select_from(ProfileUpdate))
    assert stamps == seeded.stamps > 0
    published = scalar(
        sa.select(sa.func.count()).where(SectionRevision.profile_update_id.is_not(None))
    )
    assert published == stamps
    assert scalar(sa.select(sa.func.count()).where(Profile.last_updated_on.is_not(None))) > 0


def test_reference_counters_move_past_the_seeded_references(seeded):
    counters = {
        (row.prefix, row.year): row.value for row in db.session.scalars(sa.select(ReferenceCounter))
    }
    references = db.session.scalars(sa.select(Feedback.reference))
    highest: dict[tuple[str, int], int] = {}
    for reference in references:
        prefix, year, number = reference.split("-")
        key = (prefix, int(year))
        highest[key] = max(highest.get(key, 0), int(number))
    assert counters == highest


def test_seeding_again_is_refused_unless_appending(app, runner):
    first = runner.invoke(args=["seed-scale", "--feedback", "50", "--countries", "2"])
    assert first.exit_code == 0, first.output
    assert "Seeded 50 items" in first.output
    again = runner.invoke(args=["seed-scale", "--feedback", "50", "--countries", "2"])
    assert again.exit_code != 0
    assert "--append" in again.output
    more = runner.invoke(args=["seed-scale", "--feedback", "30", "--countries", "2", "--append"])
    assert more.exit_code == 0, more.output
    assert scalar(sa.select(sa.func.count()).select_from(Feedback)) == 80
    references = db.session.scalars(sa.select(Feedback.reference)).all()
    assert len(set(references)) == 80
