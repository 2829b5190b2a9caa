"""Jobs: deliver the outbox, write the digests, end subscription requests never confirmed."""

from __future__ import annotations

from flask import current_app
from huey import crontab

from desk.extensions import db, huey
from desk.jobs import with_app_context
from desk.notify.delivery import deliver_due
from desk.notify.digests import queue_staff_digests, queue_subscriber_digests
from desk.notify.models import Frequency
from desk.notify.operations import end_unconfirmed


@huey.task()
@with_app_context
def deliver_outbox() -> int:
    """Drain the outbox now (queued after every commit that wrote mail), batch after batch."""
    report = deliver_due()
    if report.claimed >= current_app.config["DESK_OUTBOX_BATCH_SIZE"]:
        deliver_outbox()
    return len(report.sent)


@huey.periodic_task(crontab(minute="*"))
@with_app_context
def deliver_outbox_every_minute() -> int:
    """Catches retries that have come due and anything a lost trigger left behind."""
    return len(deliver_due().sent)


@huey.periodic_task(crontab(minute="5"))
@huey.lock_task("desk.notify.digests")
@with_app_context
def send_digests() -> int:
    """Hourly: the digests of the periods that have ended (a covered period sends nothing again).

    Running every hour rather than once a day means a worker that was down at midnight catches
    up within the hour, whatever the desk's time zone.
    """
    written = queue_subscriber_digests(Frequency.DAILY)
    written += queue_subscriber_digests(Frequency.WEEKLY)
    written += queue_staff_digests()
    db.session.commit()
    return written


@huey.periodic_task(crontab(hour="3", minute="17"))
@with_app_context
def end_expired_requests() -> int:
    """Daily: subscription requests whose confirmation link expired unused are ended."""
    ended = end_unconfirmed()
    db.session.commit()
    return ended
