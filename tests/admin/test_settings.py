"""Run-time settings: validated, stored, audited, and in force at once without a restart."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from desk.accounts.models import Setting
from desk.admin import runtime
from desk.admin.operations import effective_values
from desk.admin.runtime import BY_NAME, MEGABYTE
from desk.extensions import db
from desk.feedback.email_in import deliver_email
from desk.feedback.models import Feedback
from tests.admin.conftest import audit_rows, log_in, post
from tests.feedback.emails import PDF, as_bytes, message
from tests.feedback.test_form import FORM, SECTIONS, minimal_pdf, send, tiny_png


def settings_form(**changes: str) -> dict[str, str]:
    """The settings form as the page fills it in, with ``changes`` typed over it."""
    shown = {
        name: str(BY_NAME[name].to_display(value)) for name, value in effective_values().items()
    }
    return {**shown, **changes}


def save(client, **changes: str):
    return post(client, "/desk/admin/settings", settings_form(**changes))


def feedback_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Feedback))


@pytest.fixture
def mali(app, create_profile):
    app.config["DESK_FORM_MIN_SECONDS"] = 0
    return create_profile("ML", sections=SECTIONS)


def test_a_lower_file_count_refuses_the_next_submission_at_once(app, client, cast, mali):
    three = tuple((f"p{n}.png", tiny_png()) for n in range(3))
    reader = app.test_client()
    assert send(reader, files=three).status_code == 303
    assert feedback_count() == 1

    log_in(client, cast.admin)
    assert save(client, DESK_UPLOAD_MAX_FILES="2").status_code == 302

    response = send(reader, files=three)
    assert response.status_code == 422
    assert "Too many files: you can send up to 2 at once." in response.get_data(as_text=True)
    assert feedback_count() == 1
    assert send(reader, files=three[:2]).status_code == 303


def test_a_lower_file_size_refuses_a_larger_file_at_once(app, client, cast, mali):
    big = minimal_pdf() + b"%" * (MEGABYTE + MEGABYTE // 2)
    reader = app.test_client()
    assert send(reader, files=(("big.pdf", big),)).status_code == 303

    log_in(client, cast.admin)
    save(client, DESK_UPLOAD_MAX_FILE_BYTES="1")
    assert app.config["DESK_UPLOAD_MAX_FILE_BYTES"] == MEGABYTE

    response = send(reader, files=(("big.pdf", big),))
    assert response.status_code == 413
    assert "“big.pdf” is too large: each file can be up to 1 MB." in response.get_data(as_text=True)
    assert feedback_count() == 1
    form = reader.get(FORM).get_data(as_text=True)
    assert "1 MB" in form


def test_email_intake_applies_the_changed_file_size(app, cast):
    app.config["DESK_INTAKE_ADDRESS"] = "feedback@desk.example"
    db.session.add(Setting(name="DESK_UPLOAD_MAX_FILE_BYTES", value={"value": 1024}))
    db.session.commit()
    raw = as_bytes(message(attachments=(("big.pdf", PDF + b"0" * 2048, "application/pdf"),)))
    outcome = deliver_email(app, raw)
    item = db.session.scalar(sa.select(Feedback).where(Feedback.reference == outcome.reference))
    [attachment] = item.attachments
    assert attachment.is_rejected


def test_a_change_made_by_another_worker_is_picked_up_within_the_interval(
    app, client, cast, monkeypatch
):
    client.get("/login")  # this worker has looked just now
    db.session.add(Setting(name="DESK_SLA_RESOLUTION_DAYS", value={"value": 12}))
    db.session.commit()
    monkeypatch.setattr(runtime, "CHECK_SECONDS", 3600)
    client.get("/login")
    assert app.config["DESK_SLA_RESOLUTION_DAYS"] == 30
    monkeypatch.setattr(runtime, "CHECK_SECONDS", 0)
    client.get("/login")
    assert app.config["DESK_SLA_RESOLUTION_DAYS"] == 12
    db.session.execute(sa.delete(Setting))
    db.session.commit()
    client.get("/login")
    assert app.config["DESK_SLA_RESOLUTION_DAYS"] == 30


def test_an_sla_target_shows_in_the_reports_at_once(client, cast):
    log_in(client, cast.admin)
    save(client, DESK_SLA_FIRST_RESPONSE_DAYS="7", DESK_SLA_RESOLUTION_DAYS="45")
    html = client.get("/desk/reports/turnaround").get_data(as_text=True)
    assert "7 days (DESK_SLA_FIRST_RESPONSE_DAYS)" in html
    assert "45 days (DESK_SLA_RESOLUTION_DAYS)" in html


def test_each_change_is_stored_and_audited_with_before_and_after(app, client, cast):
    log_in(client, cast.admin)
    response = save(client, DESK_UPLOAD_MAX_FILES="4", DESK_UPLOAD_MAX_SUBMISSION_BYTES="60")
    assert response.status_code == 302
    stored = {row.name: row for row in db.session.scalars(sa.select(Setting))}
    assert {name: row.value for name, row in stored.items()} == {
        "DESK_UPLOAD_MAX_FILES": {"value": 4},
        "DESK_UPLOAD_MAX_SUBMISSION_BYTES": {"value": 60 * MEGABYTE},
    }
    assert all(row.updated_by_id == cast.admin.id for row in stored.values())
    rows = {row.object_id: row for row in audit_rows("setting.changed")}
    assert rows["DESK_UPLOAD_MAX_FILES"].data == {"before": {"value": 10}, "after": {"value": 4}}
    assert rows["DESK_UPLOAD_MAX_SUBMISSION_BYTES"].data == {
        "before": {"value": 50 * MEGABYTE},
        "after": {"value": 60 * MEGABYTE},
    }
    assert app.config["MAX_CONTENT_LENGTH"] == 2 * 60 * MEGABYTE + MEGABYTE
    page = client.get("/desk/admin/settings").get_data(as_text=True)
    assert 'value="4"' in page and "by Admin" in page

    assert save(client).status_code == 302  # the same values again: nothing new
    assert len(audit_rows("setting.changed")) == 2


def test_reset_goes_back_to_the_configured_value(app, client, cast):
    log_in(client, cast.admin)
    save(client, DESK_UPLOAD_MAX_FILES="3")
    assert app.config["DESK_UPLOAD_MAX_FILES"] == 3
    post(client, "/desk/admin/settings/DESK_UPLOAD_MAX_FILES/reset")
    assert app.config["DESK_UPLOAD_MAX_FILES"] == 10
    assert db.session.get(Setting, "DESK_UPLOAD_MAX_FILES") is None
    [row] = audit_rows("setting.reset")
    assert row.data == {"before": {"value": 3}, "after": {"value": 10}}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"DESK_UPLOAD_MAX_FILE_BYTES": "80"}, "cannot be larger than the largest submission"),
        ({"DESK_SLA_FIRST_RESPONSE_DAYS": "0"}, "must be between 1 days and 365 days"),
        ({"DESK_SLA_RESOLUTION_DAYS": "2.5"}, "give a whole number"),
        ({"DESK_UPLOAD_MAX_FILES": "many"}, "Not a valid decimal value"),
        ({"DESK_UPLOAD_MAX_FILES": "-1"}, "Number must be at least 0"),
        ({"DESK_UPLOAD_MAX_SUBMISSION_BYTES": "5000"}, "must be between"),
    ],
)
def test_invalid_values_are_refused_and_nothing_changes(app, client, cast, changes, says):
    log_in(client, cast.admin)
    before = dict(app.config)
    response = save(client, **changes)
    assert response.status_code == 422
    assert says in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Setting)) == 0
    assert audit_rows("setting.changed") == []
    assert {name: app.config[name] for name in BY_NAME} == {name: before[name] for name in BY_NAME}


def test_a_manager_sees_the_values_but_cannot_change_them(client, cast):
    log_in(client, cast.manager)
    page = client.get("/desk/admin/settings").get_data(as_text=True)
    assert "50 MB" in page and "<input" not in page.split("<h1>Settings</h1>")[1]
    assert save(client, DESK_UPLOAD_MAX_FILES="1").status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Setting)) == 0


def test_a_database_error_while_looking_keeps_the_values_in_force(app, client, monkeypatch):
    def broken() -> dict[str, int]:
        raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(runtime, "CHECK_SECONDS", 0)
    monkeypatch.setattr(runtime, "stored_values", broken)
    assert client.get("/login").status_code == 200
    assert app.config["DESK_UPLOAD_MAX_FILES"] == 10
