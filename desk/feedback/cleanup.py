"""Housekeeping of what intake leaves behind: orphaned files and items forgotten in quarantine.

An orphan is a stored file that no attachment names: a submission that died between writing
its files and committing (a killed worker, a database that went away), or the files of an item
purged from quarantine whose deletion failed. Files younger than a grace period are never
touched, so a submission still in flight keeps its files.

Quarantine is for a person to look at. An item nobody released within
``DESK_QUARANTINE_RETENTION_DAYS`` is deleted with its timeline, attachments and files; one
audit row keeps the references that went.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

import sqlalchemy as sa
from flask import current_app

from desk.core.audit import record_audit
from desk.core.storage import StorageError, get_storage
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import Attachment, Feedback, FeedbackEvent

log = logging.getLogger(__name__)

#: Keys looked up in the database per query (by the index on attachment.storage_key), and
#: items purged per transaction.
BATCH = 2000


@dataclass
class Purge:
    """What a quarantine purge deleted: the items' references and their files' keys."""

    references: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


def sweep_orphan_files(grace: timedelta, now: datetime | None = None) -> list[str]:
    """Delete stored files older than ``grace`` that no attachment names; return their keys."""
    cutoff = (now or utcnow()) - grace
    storage = get_storage()
    old_keys = (key for key, modified in storage.list_files() if modified < cutoff)
    removed: list[str] = []
    for batch in _batches(old_keys, BATCH):
        named = set(
            db.session.scalars(
                sa.select(Attachment.storage_key).where(Attachment.storage_key.in_(batch))
            )
        )
        for key in batch:
            if key not in named:
                storage.delete(key)
                removed.append(key)
    return removed


def purge_stale_quarantine(days: int, now: datetime | None = None) -> Purge:
    """Delete up to BATCH items held in quarantine longer than ``days``; flushes, never commits.

    An item something else points at (a duplicate, a review task) is left alone: it has been
    looked at. The caller deletes the returned files after committing, so a rollback never
    leaves an item without its files.
    """
    cutoff = (now or utcnow()) - timedelta(days=days)
    duplicate = sa.orm.aliased(Feedback)
    # Read from the metadata: intake does not import the review package that defines it.
    task_links = db.metadata.tables["review_task_feedback"]
    items = list(
        db.session.scalars(
            sa.select(Feedback)
            .where(
                Feedback.is_quarantined.is_(True),
                Feedback.received_at < cutoff,
                ~sa.exists().where(duplicate.duplicate_of_id == Feedback.id),
                ~sa.exists().where(task_links.c.feedback_id == Feedback.id),
            )
            .order_by(Feedback.id)
            .limit(BATCH)
        )
    )
    purge = Purge()
    if not items:
        return purge
    ids = [item.id for item in items]
    purge.references = [item.reference for item in items]
    purge.keys = list(
        db.session.scalars(
            sa.select(Attachment.storage_key).where(
                Attachment.feedback_id.in_(ids), Attachment.storage_key != ""
            )
        )
    )
    for item in items:
        db.session.expunge(item)
    db.session.execute(sa.delete(Attachment).where(Attachment.feedback_id.in_(ids)))
    db.session.execute(sa.delete(FeedbackEvent).where(FeedbackEvent.feedback_id.in_(ids)))
    db.session.execute(sa.delete(Feedback).where(Feedback.id.in_(ids)))
    record_audit(
        None,
        "feedback.quarantine_purged",
        "feedback",
        "",
        {"references": purge.references, "files": len(purge.keys), "older_than_days": days},
    )
    db.session.flush()
    return purge


def delete_files(keys: Iterable[str]) -> int:
    """Delete files whose rows are gone; one that fails is left for the orphan sweep."""
    storage = get_storage()
    deleted = 0
    for key in keys:
        try:
            storage.delete(key)
        except (StorageError, OSError) as error:
            log.warning("clean-up: could not delete %s now, the orphan sweep will: %s", key, error)
        else:
            deleted += 1
    return deleted


def clean_up_quarantine() -> list[str]:
    """Purge stale quarantine batch after batch, committing each; the purged references."""
    days = current_app.config["DESK_QUARANTINE_RETENTION_DAYS"]
    references: list[str] = []
    if days <= 0:
        return references
    while True:
        purge = purge_stale_quarantine(days)
        db.session.commit()
        delete_files(purge.keys)
        references += purge.references
        if len(purge.references) < BATCH:
            return references


def _batches(values: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(values)
    while batch := list(islice(iterator, size)):
        yield batch
