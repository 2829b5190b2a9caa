"""A data subject's export and erasure, by email address, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskCliRunner

from desk.core.storage import get_storage
from desk.extensions import db
from desk.feedback.models import Feedback
from desk.notify.models import OutboxMessage, OutboxState
from desk.notify.tokens import make_manage_token
from tests.notify.helpers import subscribe
from tests.security.conftest import PDF

READER = "Ann.Reader@example.org"
NAME = "Annabel Reader"


def readers_items(create_feedback, mali) -> tuple[Feedback, Feedback]:
    mine = create_feedback(
        submitter_email=READER,
        submitter_name=NAME,
        submitter_organisation="Reader Trust",
        submitter_ip="198.51.100.23",
        message=f"Please correct the date. {NAME}, {READER.lower()}",
        files=(("annabel-cv.pdf", PDF),),
    )
    other = create_feedback(
        submitter_email="someone.else@example.org",
        submitter_name="Someone Else",
        message="Another reader's words.",
        files=(("theirs.pdf", PDF),),
    )
    subscribe(mali, READER.lower())
    db.session.execute(sa.update(OutboxMessage).values(state=OutboxState.SENT))
    db.session.commit()
    return mine, other


def test_export_lists_everything_held_about_an_address(
    app: Flask, runner: FlaskCliRunner, create_feedback, mali, tmp_path: Path
) -> None:
    mine, other = readers_items(create_feedback, mali)
    output = tmp_path / "export.json"
    result = runner.invoke(args=["privacy", "export", READER.lower(), "--output", str(output)])
    assert result.exit_code == 0, result.output
    exported = json.loads(output.read_text())
    assert output.stat().st_mode & 0o777 == 0o600
    [item] = exported["feedback"]
    assert item["reference"] == mine.reference
    assert (item["name"], item["organisation"]) == (NAME, "Reader Trust")
    assert item["ip_address"] == "198.51.100.23"
    assert item["attachments"][0]["filename"] == "annabel-cv.pdf"
    assert item["attachments"][0]["sha256"] == mine.attachments[0].sha256
    assert [s["profile"] for s in exported["subscriptions"]] == [f"Mali: {mali.topic}"]
    assert [m["kind"] for m in exported["emails_sent"]] == ["feedback.acknowledgement"]
    assert other.reference not in output.read_text()
    assert "someone.else" not in output.read_text()


def test_erase_removes_the_person_and_keeps_the_items(
    app: Flask, runner: FlaskCliRunner, create_feedback, mali
) -> None:
    mine, other = readers_items(create_feedback, mali)
    key, other_key = mine.attachments[0].storage_key, other.attachments[0].storage_key
    storage = get_storage()
    assert storage.exists(key)

    result = runner.invoke(args=["privacy", "erase", READER, "--yes"])
    assert result.exit_code == 0, result.output
    assert "Erased 1 items (1 of 1 files deleted), ended 1 subscriptions" in result.output

    db.session.expire_all()
    mine, other = db.session.get(Feedback, mine.id), db.session.get(Feedback, other.id)
    assert (mine.submitter_email, mine.submitter_name, mine.submitter_ip) == ("", "", "")
    assert mine.message == "Please correct the date. [removed], [removed]"
    assert not storage.exists(key) and storage.exists(other_key)
    erased = mine.attachments[0]
    assert (erased.storage_key, erased.original_filename, erased.sha256) == ("", "erased", "")
    assert erased.is_rejected
    assert other.submitter_email == "someone.else@example.org"
    assert other.attachments[0].original_filename == "theirs.pdf"
    for mail in db.session.scalars(sa.select(OutboxMessage)):
        assert READER.lower() not in (mail.recipient + mail.text + mail.dedupe_key).lower()
    from desk.notify.models import Subscription

    [subscription] = db.session.scalars(sa.select(Subscription)).all()
    assert (subscription.email, subscription.ended_reason) == ("", "erased")
    assert subscription.ended_at is not None
    assert "privacy" in mine.events[-1].data

    exported = runner.invoke(args=["privacy", "export", READER])
    assert json.loads(exported.output)["feedback"] == []


def test_erase_can_remove_the_words_too(
    app: Flask, runner: FlaskCliRunner, create_feedback, mali
) -> None:
    mine, _ = readers_items(create_feedback, mali)
    result = runner.invoke(args=["privacy", "erase", READER, "--yes", "--blank-messages"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Feedback, mine.id).message == "[erased at the sender's request]"


def test_erase_asks_before_it_acts(app: Flask, runner: FlaskCliRunner, create_feedback, mali):
    mine, _ = readers_items(create_feedback, mali)
    result = runner.invoke(args=["privacy", "erase", READER], input="n\n")
    assert result.exit_code == 1
    assert db.session.get(Feedback, mine.id).submitter_email == READER


def test_an_erased_subscribers_manage_link_shows_nothing_of_them(
    app: Flask, runner: FlaskCliRunner, client, mali
) -> None:
    subscription = subscribe(mali, "leaving@example.org")
    db.session.commit()
    token = make_manage_token(subscription.id, "en")
    assert runner.invoke(args=["privacy", "erase", "leaving@example.org", "--yes"]).exit_code == 0
    page = client.get(f"/subscriptions/manage/{token}")
    assert page.status_code < 500
    assert "leaving@example.org" not in page.get_data(as_text=True)
