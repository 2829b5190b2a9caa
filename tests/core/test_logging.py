"""Logs: one JSON object per line with the request id, an access line per request, and no
personal data anywhere, whatever the reader sent."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask, request

from desk.core.logging import DeskLogHandler, configure_logging, loggable_path
from desk.extensions import db
from desk.feedback.models import Feedback
from tests.feedback.test_form import FORM, SECTIONS, minimal_pdf, send

NAME = "Aminata Traoré-Quist"
EMAIL = "aminata.quist@example.org"
MESSAGE = "Paragraph four misquotes the minister; the real figure was 4,321 submunitions."


class Lines:
    """What Desk's log handler wrote, one parsed JSON object per line."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access(self) -> list[dict]:
        return [record for record in self.records() if record["logger"] == "desk.access"]


@pytest.fixture
def json_logs(app: Flask) -> Iterator[Lines]:
    """Desk's handler in JSON mode, writing into memory, everything from DEBUG up."""
    configure_logging("json", "DEBUG")
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, DeskLogHandler))
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield Lines(stream)
    finally:
        configure_logging(app.config["DESK_LOG_FORMAT"], app.config["DESK_LOG_LEVEL"])


@pytest.fixture
def mali(app, create_profile):
    app.config["DESK_FORM_MIN_SECONDS"] = 0
    return create_profile("ML", sections=SECTIONS)


def test_each_request_writes_one_json_access_line(client, json_logs):
    response = client.get("/profiles/?page=2&q=secret", headers={"X-Request-Id": "abc"})
    assert response.status_code == 200
    (line,) = json_logs.access()
    assert set(line) >= {"time", "level", "logger", "message", "request_id"}
    assert line["method"] == "GET"
    assert line["path"] == "/profiles/"
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    assert line["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    assert "secret" not in json_logs.text
    # "abc" is too short to be trusted: a fresh UUID instead, echoed to the client.
    assert str(uuid.UUID(line["request_id"])) == line["request_id"]
    assert response.headers["X-Request-Id"] == line["request_id"]


def test_a_safe_incoming_request_id_is_kept_and_echoed(client, json_logs):
    incoming = "0f3c2b9ad1e84f6c9b7a5d3e2f1a0b9c"  # nginx's $request_id
    response = client.get("/healthz", headers={"X-Request-Id": incoming})
    assert response.headers["X-Request-Id"] == incoming
    assert json_logs.access()[0]["request_id"] == incoming


@pytest.mark.parametrize(
    "hostile",
    [
        "urn:uuid:12345678-1234-5678-1234-567812345678",  # a UUID, but longer than audit rows keep
        "<script>alert(1)</script>",
        "id with spaces and more",
        "x" * 200,
    ],
)
def test_an_unsafe_incoming_request_id_is_replaced(client, json_logs, hostile):
    response = client.get("/healthz", headers={"X-Request-Id": hostile})
    echoed = response.headers["X-Request-Id"]
    assert echoed != hostile
    assert str(uuid.UUID(echoed)) == echoed
    assert hostile not in json_logs.text


def test_tokens_in_paths_are_redacted(client, json_logs):
    token = "InVzZXJAZXhhbXBsZS5vcmci.ZmFrZS1zaWduYXR1cmU"
    client.get(f"/unsubscribe/{token}")
    client.get(f"/subscriptions/confirm/{token}")
    client.get(f"/no/such/{token}/page")
    paths = [line["path"] for line in json_logs.access()]
    assert paths == [
        "/unsubscribe/redacted",
        "/subscriptions/confirm/redacted",
        "/no/such/redacted/page",
    ]
    assert token not in json_logs.text


def test_an_address_in_an_unknown_path_is_redacted(app):
    with app.test_request_context("/nothing/someone@example.org"):
        assert loggable_path(request) == "/nothing/redacted"


def test_a_feedback_submission_leaves_no_personal_data_in_the_logs(client, mali, json_logs):
    client.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    response = send(
        client,
        FORM,
        files=(("minister-letter.pdf", minimal_pdf()),),
        name=NAME,
        email=EMAIL,
        organisation="Coalition contre les armes à sous-munitions",
        message=MESSAGE,
        headers={"X-Forwarded-For": "203.0.113.77"},
    )
    assert response.status_code == 303
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200
    item = db.session.query(Feedback).one()
    assert item.submitter_email == EMAIL
    assert item.submitter_ip == "198.51.100.23"  # the address was there to be leaked

    text = json_logs.text
    for personal in (
        NAME,
        "Traoré",
        EMAIL,
        "aminata",
        MESSAGE,
        "4,321",
        "Coalition contre",
        "minister-letter.pdf",
        "198.51.100.23",
        "203.0.113.77",
    ):
        assert personal.lower() not in text.lower(), f"{personal!r} is in the logs"
    access = json_logs.access()
    assert [(line["method"], line["status"]) for line in access] == [
        ("GET", 200),
        ("POST", 303),
        ("GET", 200),
    ]
    assert "?" not in "".join(line["path"] for line in access)


def test_an_email_address_in_any_message_is_masked(json_logs):
    logging.getLogger("desk.feedback.lmtp").warning(
        "lmtp: refused a message from %s: %s", "reader@example.org", "too big"
    )
    (line,) = json_logs.records()
    assert line["message"] == "lmtp: refused a message from [email]: too big"


def test_sql_parameters_never_reach_the_logs(app, mali, client, json_logs):
    with pytest.raises(Exception) as raised:
        db.session.execute(
            db.text("INSERT INTO no_such_table (email) VALUES (:email)"), {"email": EMAIL}
        )
    db.session.rollback()
    assert EMAIL not in str(raised.value)
    logging.getLogger("desk").exception("it failed", exc_info=raised.value)
    assert EMAIL not in json_logs.text
    assert "it failed" in json_logs.text


def test_unhandled_errors_are_logged_with_the_path_redacted(app, json_logs):
    @app.get("/boom/<token>")
    def boom(token: str) -> str:
        raise RuntimeError("kaboom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/boom/s3cr3t-t0ken-value")
    assert response.status_code == 500
    errors = [line for line in json_logs.records() if line["level"] == "ERROR"]
    assert errors[0]["message"] == "Exception on /boom/redacted [GET]"
    assert "kaboom" in errors[0]["exception"]
    assert "s3cr3t" not in json_logs.text
    assert json_logs.access()[-1]["status"] == 500


def test_text_format_is_one_readable_line_with_the_request_id(app, client):
    configure_logging("text", "INFO")
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, DeskLogHandler))
    stream = io.StringIO()
    handler.setStream(stream)
    response = client.get("/healthz")
    (line,) = [line for line in stream.getvalue().splitlines() if "desk.access" in line]
    assert f"[{response.headers['X-Request-Id']}] GET /healthz 200" in line
    assert "duration_ms=" in line


def test_a_job_tags_its_lines_with_its_name(app, json_logs):
    from desk.core.logging import current_job

    token = current_job.set(("deliver_outbox", "task-1"))
    try:
        logging.getLogger("desk.notify.delivery").info("outbox: sent 3")
    finally:
        current_job.reset(token)
    (line,) = json_logs.records()
    assert line["job"] == "deliver_outbox"
    assert line["task_id"] == "task-1"
    assert line["request_id"] is None
