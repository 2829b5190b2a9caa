"""Readers' data leaves closed items after the retention period; the items and metrics stay."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from desk.core.audit import AuditEvent
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import EventKind, Feedback, FeedbackStatus
from desk.feedback.operations import add_reader_reply
from desk.inbox.operations import close_feedback, reply_to_submitter
from desk.inbox.search import search_feedback
from desk.notify.models import OutboxMessage, OutboxState
from desk.privacy.operations import purge_expired_personal_data
from desk.privacy.tasks import purge_personal_data
from tests.notify.helpers import subscribe

READER = "zebediah.quux@example.org"
NAME = "Zebediah Quux"


def closed_item(create_feedback, editor, *, days_ago: int, email: str = READER) -> Feedback:
    """An item with a reply each way, closed ``days_ago`` days ago, its sent mail marked sent."""
    item = create_feedback(
        submitter_email=email,
        submitter_name=NAME,
        submitter_organisation="Quux Institute",
        submitter_ip="203.0.113.77",
        message=f"Signed by {NAME}: the stockpile figure is wrong.",
    )
    reply_to_submitter(item, "", f"Dear {NAME}, which figure?", editor)
    add_reader_reply(
        item,
        message_id="<r1@example.org>",
        from_email=email,
        from_name=NAME,
        text=f"The 2010 one. {NAME}",
    )
    close_feedback(item, "Checked: no change needed.", editor)
    item.resolved_at = utcnow() - timedelta(days=days_ago)
    db.session.execute(sa.update(OutboxMessage).values(state=OutboxState.SENT, sent_at=utcnow()))
    db.session.commit()
    return item


def test_an_item_closed_beyond_the_period_loses_the_readers_data_and_keeps_the_rest(
    app: Flask, create_feedback, editor
) -> None:
    item = closed_item(create_feedback, editor, days_ago=800)
    events_before = len(item.events)
    metrics = (item.received_at, item.first_response_at, item.resolved_at, item.status)

    report = purge_expired_personal_data()
    db.session.commit()

    assert report.items == [item.reference]
    db.session.expire_all()
    item = db.session.get(Feedback, item.id)
    assert (item.submitter_name, item.submitter_email) == ("", "")
    assert (item.submitter_organisation, item.submitter_ip) == ("", "")
    assert (item.received_at, item.first_response_at, item.resolved_at, item.status) == metrics
    assert item.message == "Signed by [removed]: the stockpile figure is wrong."
    assert len(item.events) == events_before + 1
    note = item.events[-1]
    assert note.kind == EventKind.NOTE and note.actor_id is None
    assert "800" not in note.data["text"] and "730 days" in note.data["text"]
    for event in item.events:
        flat = repr(event.data).lower()
        assert READER not in flat and NAME.lower() not in flat, event.kind
    for row in db.session.scalars(sa.select(AuditEvent)):
        assert READER not in repr(row.data) and NAME not in repr(row.data), row.action
    assert db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "privacy.purged")
    ).object_id == str(item.id)
    for mail in db.session.scalars(sa.select(OutboxMessage)):
        assert READER not in (mail.recipient + mail.text + mail.html + mail.dedupe_key)
        assert NAME not in mail.text + mail.html
    found = db.session.scalars(search_feedback(sa.select(Feedback.id), "zebediah")).all()
    assert found == []


def test_recent_and_open_items_keep_the_readers_data(app: Flask, create_feedback, editor) -> None:
    recent = closed_item(create_feedback, editor, days_ago=700, email="recent@example.org")
    still_open = create_feedback(submitter_email="open@example.org", submitter_name=NAME)
    still_open.received_at = utcnow() - timedelta(days=3000)
    db.session.commit()

    assert purge_expired_personal_data().items == []
    assert recent.submitter_email == "recent@example.org"
    assert still_open.submitter_name == NAME and still_open.status == FeedbackStatus.NEW


def test_a_period_of_zero_keeps_everything(app: Flask, create_feedback, editor) -> None:
    item = closed_item(create_feedback, editor, days_ago=5000)
    app.config["DESK_PERSONAL_DATA_RETENTION_DAYS"] = 0
    assert purge_expired_personal_data().items == []
    assert item.submitter_email == READER


def test_the_period_is_a_setting(app: Flask, create_feedback, editor) -> None:
    item = closed_item(create_feedback, editor, days_ago=40)
    app.config["DESK_PERSONAL_DATA_RETENTION_DAYS"] = 30
    assert purge_expired_personal_data().items == [item.reference]


def test_ended_subscriptions_lose_their_address_after_the_period(app: Flask, mali) -> None:
    old = subscribe(mali, "old@example.org")
    old.ended_at, old.ended_reason = utcnow() - timedelta(days=800), "unsubscribed"
    active = subscribe(mali, "active@example.org")
    db.session.commit()

    assert purge_expired_personal_data().subscriptions == 1
    db.session.expire_all()
    assert old.email == "" and old.ended_reason == "unsubscribed"
    assert active.email == "active@example.org"


def test_the_nightly_job_and_the_command_purge_in_batches(
    app: Flask, runner: FlaskCliRunner, create_feedback, editor
) -> None:
    first = closed_item(create_feedback, editor, days_ago=900, email="a@example.org")
    assert purge_personal_data.call_local() == 1
    second = closed_item(create_feedback, editor, days_ago=900, email="b@example.org")
    result = runner.invoke(args=["privacy", "purge"])
    assert result.exit_code == 0, result.output
    assert "Purged 1 items" in result.output
    db.session.expire_all()
    assert first.submitter_email == second.submitter_email == ""
    assert runner.invoke(args=["privacy", "purge"]).output.startswith("Purged 0 items")
