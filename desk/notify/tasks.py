"""Jobs that deliver mail."""

from __future__ import annotations

from flask import current_app
from huey import crontab

from desk.extensions import huey
from desk.jobs import with_app_context
from desk.notify.delivery import deliver_due


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
