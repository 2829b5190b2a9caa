"""Nightly housekeeping jobs of intake: stale quarantine, then orphaned files."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from huey import crontab

from desk.extensions import huey
from desk.feedback.cleanup import clean_up_quarantine, sweep_orphan_files
from desk.jobs import with_app_context

log = logging.getLogger(__name__)


@huey.periodic_task(crontab(hour="4", minute="23"))
@huey.lock_task("desk.feedback.cleanup")
@with_app_context
def clean_up_intake() -> dict[str, int]:
    """Daily: purge items left in quarantine too long, then delete files no attachment names.

    Safe to run again, and on any number of workers (one at a time, by the lock); a run that
    dies half-way leaves only orphans, which the next run sweeps.
    """
    purged = clean_up_quarantine()
    grace = timedelta(hours=current_app.config["DESK_ORPHAN_FILE_GRACE_HOURS"])
    removed = sweep_orphan_files(grace)
    log.info(
        "clean-up: %d quarantined items purged, %d orphaned files deleted",
        len(purged),
        len(removed),
    )
    return {"purged": len(purged), "orphans": len(removed)}
