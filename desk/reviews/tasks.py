"""The daily reminder job for review tasks and revisions waiting for approval."""

from __future__ import annotations

from huey import crontab

from desk.extensions import db, huey
from desk.jobs import with_app_context
from desk.reviews.operations import queue_review_reminders


@huey.periodic_task(crontab(hour="6", minute="0"))
@with_app_context
def send_review_reminders() -> int:
    """Every morning (06:00 UTC): overdue tasks to assignees, long waits to approvers.

    Safe to run again: each person's reminder is keyed by the day, so a rerun sends nothing new.
    """
    written = queue_review_reminders()
    db.session.commit()
    return written
