"""The nightly clean-up: orphaned files go, referenced and young files stay; items left in
quarantine past the retention period go with their files; on local and S3 storage alike."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from desk.core.audit import AuditEvent
from desk.core.s3 import S3Storage
from desk.core.storage import LocalStorage, get_storage
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.cleanup import clean_up_quarantine, sweep_orphan_files
from desk.feedback.models import Attachment, Channel, Feedback, FeedbackEvent
from desk.feedback.operations import IncomingFile, Submission, receive_feedback
from desk.feedback.tasks import clean_up_intake
from tests.core.test_s3_storage import (  # noqa: F401  (fixtures: a real S3 API on loopback)
    bucket,
    object_names,
    s3_client,
    s3_endpoint,
    storage_url,
)
from tests.feedback.test_form import minimal_pdf

DAY = timedelta(days=1)


@pytest.fixture(params=["local", "s3"])
def storage(request, app):
    """The app's storage: the instance folder, or a fresh bucket on the S3 test server."""
    if request.param == "s3":
        url = storage_url(request.getfixturevalue("s3_endpoint"), request.getfixturevalue("bucket"))
        app.extensions["desk_storage"] = S3Storage.from_url(url)
    return get_storage()


def submit(profile, *, days_ago: float = 0, spam: bool = False, files: int = 1) -> Feedback:
    """A web submission with ``files`` PDFs, received ``days_ago``, held as spam if asked."""
    result = receive_feedback(
        Submission(
            channel=Channel.WEB,
            message=f"Item of {days_ago} days ago with {files} files.",
            profile=profile,
            files=[IncomingFile(f"scan-{n}.pdf", io.BytesIO(minimal_pdf())) for n in range(files)],
            spam_signs=["honeypot"] if spam else [],
            received_at=utcnow() - days_ago * DAY,
        )
    )
    db.session.commit()
    assert result.feedback.is_quarantined is spam
    return result.feedback


def keys_of(item: Feedback) -> list[str]:
    return [attachment.storage_key for attachment in item.attachments]


def test_orphans_older_than_the_grace_period_are_deleted(storage, create_profile):
    item = submit(create_profile("ML"), files=2)
    orphan = storage.save(io.BytesIO(b"the files of a submission that never committed")).key

    assert sweep_orphan_files(timedelta(hours=24)) == []  # still young: maybe in flight
    assert storage.exists(orphan)

    removed = sweep_orphan_files(timedelta(hours=24), now=utcnow() + 2 * DAY)
    assert removed == [orphan]
    assert not storage.exists(orphan)
    assert all(storage.exists(key) for key in keys_of(item))
    assert sorted(key for key, _ in storage.list_files()) == sorted(keys_of(item))


@pytest.mark.parametrize("storage", ["s3"], indirect=True)
def test_the_sweep_leaves_what_desk_did_not_write(storage):
    name = storage.bucket
    storage.client.put_object(Bucket=name, Key="desk/files/README.txt", Body=b"keep")
    storage.client.put_object(Bucket=name, Key="elsewhere/ab/cd/" + "0" * 32, Body=b"keep")
    orphan = storage.save(io.BytesIO(b"orphan")).key
    assert sweep_orphan_files(timedelta(0), now=utcnow() + DAY) == [orphan]
    assert sorted(object_names(storage)) == ["desk/files/README.txt", "elsewhere/ab/cd/" + "0" * 32]


def age(path: Path, days: float) -> None:
    when = (utcnow() - days * DAY).timestamp()
    os.utime(path, (when, when))


def test_the_nightly_job_sweeps_local_orphans_and_unfinished_writes(app, create_profile):
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    item = submit(create_profile("ML"))
    orphan = storage.save(io.BytesIO(b"orphan")).key
    young = storage.save(io.BytesIO(b"in flight")).key
    unfinished = storage.root / "ab" / "cd" / "tmpk3x_9qz1"
    unfinished.parent.mkdir(parents=True, exist_ok=True)
    unfinished.write_bytes(b"half a file")
    foreign = storage.root / "notes.txt"
    foreign.write_text("an operator's note")
    for path in (storage.root / orphan, storage.root / keys_of(item)[0], unfinished, foreign):
        age(path, 3)

    assert clean_up_intake.call_local() == {"purged": 0, "orphans": 2}
    assert not (storage.root / orphan).exists()
    assert not unfinished.exists()
    assert storage.exists(young)
    assert storage.exists(keys_of(item)[0])
    assert foreign.exists()


def test_stale_quarantine_is_purged_with_its_files(app, storage, create_profile):
    profile = create_profile("ML")
    stale = submit(profile, days_ago=100, spam=True, files=2)
    recent = submit(profile, days_ago=10, spam=True)
    old_but_real = submit(profile, days_ago=100)
    stale_reference, stale_keys, stale_id = stale.reference, keys_of(stale), stale.id

    assert clean_up_quarantine() == [stale_reference]

    db.session.expire_all()
    assert db.session.get(Feedback, stale_id) is None
    for model in (Attachment, FeedbackEvent):
        left = db.session.scalar(
            sa.select(sa.func.count()).select_from(model).where(model.feedback_id == stale_id)
        )
        assert left == 0
    assert not any(storage.exists(key) for key in stale_keys)
    for kept in (recent, old_but_real):
        assert db.session.get(Feedback, kept.id) is not None
        assert all(storage.exists(key) for key in keys_of(kept))
    audit = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "feedback.quarantine_purged")
    )
    assert audit.actor_id is None
    assert audit.data["references"] == [stale_reference]
    assert audit.data["files"] == 2


def test_a_retention_of_zero_keeps_quarantine(app, create_profile):
    app.config["DESK_QUARANTINE_RETENTION_DAYS"] = 0
    held = submit(create_profile("ML"), days_ago=1000, spam=True)
    assert clean_up_quarantine() == []
    assert db.session.get(Feedback, held.id) is not None


def test_the_clean_up_job_is_scheduled_daily(app):
    from desk.extensions import huey

    periodic = {task.name for task in huey._registry.periodic_tasks}
    assert "clean_up_intake" in periodic
