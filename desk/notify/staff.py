"""Emails to staff: at once, or gathered into a daily digest, as each person chooses."""

from __future__ import annotations

from typing import Any

from desk.accounts.models import NotificationMode, User
from desk.notify.models import OutboxMessage
from desk.notify.outbox import queue_email


def notify_user(
    user: User | None,
    kind: str,
    *,
    template: str,
    dedupe_key: str,
    actor_id: int | None = None,
    **context: Any,
) -> OutboxMessage | None:
    """Tell a staff member about something that happened (assignment, review request, …).

    Nobody is told about their own action. Staff who chose the daily digest get nothing now: the
    digest job gathers the day's events from the timelines and task history instead.
    """
    if user is None or not user.is_active or user.id == actor_id:
        return None
    if user.notification_mode == NotificationMode.DAILY_DIGEST:
        return None
    return queue_email(
        kind, user.email, template=template, dedupe_key=dedupe_key, user=user, **context
    )
