"""The daily purge of personal data from items closed longer than the retention period."""

from __future__ import annotations

from huey import crontab

from desk.extensions import db, huey
from desk.jobs import with_app_context
from desk.privacy.operations import purge_expired_personal_data


@huey.periodic_task(crontab(hour="2", minute="41"))
@huey.lock_task("desk.privacy.purge")
@with_app_context
def purge_personal_data() -> int:
    """Daily, in batches that each commit: a first run on a large desk does not hold a lock long."""
    purged = 0
    while True:
        report = purge_expired_personal_data()
        db.session.commit()
        purged += len(report.items)
        if not report.items:
            return purged
