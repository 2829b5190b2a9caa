"""The daily reminder: overdue tasks to their assignees, long approval waits to the approvers."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from desk.accounts.models import NotificationMode, Role
from desk.core.time import desk_today, utcnow
from desk.extensions import db, huey
from desk.notify.models import OutboxMessage
from desk.reviews import operations
from desk.reviews.tasks import send_review_reminders


def reminders() -> dict[str, OutboxMessage]:
    rows = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "review.reminder")
    )
    return {row.recipient: row for row in rows}


def test_reminders_go_to_overdue_assignees_and_waiting_approvers_once_a_day(
    app, profile, stockpiling, editor, manager, create_staff, open_task, draft_revision
):
    lead = create_staff(Role.EDITOR, email="lead@desk.test", countries=("ML",), leads=("ML",))
    lead.notification_mode = NotificationMode.DAILY_DIGEST
    late = open_task(profile.sections[0])
    late.due_on = desk_today() - timedelta(days=1)
    waiting_task = open_task(stockpiling, assignee=lead)
    waiting_task.due_on = desk_today() - timedelta(days=5)
    waiting = draft_revision(waiting_task, lead, "New text.")
    waiting_task.submitted_at = utcnow() - timedelta(days=3)
    fresh_task = open_task(profile.sections[-1])
    draft_revision(fresh_task, editor, "Fresh text.")
    db.session.commit()

    assert operations.queue_review_reminders() == 2

    sent = reminders()
    assert sorted(sent) == [editor.email, manager.email]
    assert late.title in sent[editor.email].text
    assert "1 overdue task" in sent[editor.email].subject
    assert waiting_task.title not in sent[editor.email].text
    assert f"/desk/revisions/{waiting.id}" in sent[manager.email].text
    assert "Contact" not in sent[manager.email].text, "a one-day wait is not yet a reminder"
    # The lead wrote the waiting revision: four-eyes keeps them off its reminder, and their
    # own submitted task is not overdue work of theirs.
    assert lead.email not in sent

    assert operations.queue_review_reminders() == 0, "one reminder a day"
    tomorrow = utcnow() + timedelta(days=1)
    assert operations.queue_review_reminders(now=tomorrow) == 2


def test_the_wait_before_a_reminder_is_a_setting(
    app, stockpiling, editor, manager, open_task, draft_revision
):
    app.config["DESK_REVIEW_REMINDER_DAYS"] = 5
    task = open_task(stockpiling)
    draft_revision(task, editor, "New text.")
    task.submitted_at = utcnow() - timedelta(days=3)
    db.session.commit()
    assert operations.queue_review_reminders() == 0
    assert operations.queue_review_reminders(now=utcnow() + timedelta(days=3)) == 1


def test_the_reminder_job_runs_daily_and_commits(app, stockpiling, editor, open_task):
    task = open_task(stockpiling)
    task.due_on = desk_today() - timedelta(days=2)
    db.session.commit()

    periodic = [task.name for task in huey._registry.periodic_tasks]
    assert "send_review_reminders" in periodic
    assert send_review_reminders.call_local() == 1
    assert list(reminders()) == [editor.email]
