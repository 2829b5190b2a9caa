"""Redis down: readers' submissions are still taken, and their mail goes out once a worker runs.

Both Redis uses point at a closed port: the job queue (the after-commit "send now" nudge fails
and is logged) and the rate-limit counters (each process counts in memory meanwhile).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from desk import create_app
from desk.extensions import db, huey
from desk.feedback.models import Feedback
from desk.notify.models import OutboxMessage, OutboxState
from desk.notify.tasks import deliver_outbox_every_minute
from tests.conftest import base_settings, rolled_back
from tests.core.test_health import closed_port
from tests.feedback.test_form import SECTIONS, minimal_pdf, reference_on, send, thanks_page

READER = "reader@example.org"


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """Like the shared fixture (one rolled-back transaction per test), with both Redis URLs
    at a closed port: the shared one resets the rate-limit counters, which needs Redis."""
    dead = f"redis://127.0.0.1:{closed_port()}"
    settings = base_settings(database_url, tmp_path / "instance")
    settings.update(DESK_REDIS_URL=f"{dead}/7", DESK_RATELIMIT_STORAGE_URL=f"{dead}/8")
    app = create_app(settings)
    assert type(huey.storage).__name__ == "RedisStorage"
    app.config["DESK_FORM_MIN_SECONDS"] = 0
    with rolled_back(app):
        yield app


def test_the_form_takes_a_submission_while_redis_is_down(client, create_profile, caplog):
    create_profile("ML", sections=SECTIONS)
    response = send(client, files=(("report.pdf", minimal_pdf()),), email=READER)
    reference = reference_on(thanks_page(client, response))
    item = db.session.scalar(sa.select(Feedback).where(Feedback.reference == reference))
    assert item is not None
    assert [attachment.original_filename for attachment in item.attachments] == ["report.pdf"]
    (ack,) = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.recipient == READER))
    assert ack.state == OutboxState.PENDING
    assert "could not queue delivery; the periodic job will send it" in caplog.text


def test_the_periodic_drain_sends_what_waited(app, client, create_profile, mail_to_sink):
    create_profile("ML", sections=SECTIONS)
    send(client, email=READER)
    (ack,) = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.recipient == READER))
    assert ack.state == OutboxState.PENDING
    # The worker's minute job, once one runs (a consumer needs a live queue; its work does not).
    assert deliver_outbox_every_minute.call_local() == 1
    db.session.refresh(ack)
    assert ack.state == OutboxState.SENT
    assert len(mail_to_sink.to(READER)) == 1


def test_rate_limits_still_hold_in_memory_while_redis_is_down(app, client, create_profile):
    create_profile("ML", sections=SECTIONS)
    app.config["DESK_FEEDBACK_RATE_LIMIT"] = "2 per hour"
    statuses = [send(client, message=f"Correction number {n}.").status_code for n in range(3)]
    assert statuses == [303, 303, 429]
