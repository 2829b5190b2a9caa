"""Line breaks in what readers and staff type never become extra headers of outgoing mail.

The forms refuse them with a clear message; what arrives by email (where a header may carry
an encoded line break) is flattened before it reaches a header; the mail that reaches a real
SMTP server (the sink) has exactly the headers Desk meant, and only the intended recipients.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from desk.extensions import db
from desk.feedback.email_in import deliver_email
from desk.feedback.models import Feedback
from desk.inbox.operations import reply_to_submitter
from desk.notify.delivery import deliver_due
from tests.conftest import csrf_token_from
from tests.security.conftest import FORM
from tests.smtp import SMTPSink

INJECTIONS = [
    "Eve\r\nBcc: victim@example.org",
    "Eve\nBcc: victim@example.org",
    "Eve\rBcc: victim@example.org",
    "Eve\r\n\r\nInjected body",
    "Eve\u2028Bcc: victim@example.org",
    "Eve\x85Bcc: victim@example.org",
]


@pytest.mark.parametrize("field", ["name", "email", "organisation"])
@pytest.mark.parametrize("value", INJECTIONS)
def test_the_form_refuses_a_line_break_in_a_one_line_field(
    client: FlaskClient, mali, field: str, value: str
) -> None:
    page = client.get(FORM).get_data(as_text=True)
    data = {"csrf_token": csrf_token_from(page), "message": "The date is wrong."}
    data[field] = value if field != "email" else value.replace("Eve", "eve@example.org")
    response = client.post(FORM, data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Please keep this on one line." in html or "does not look like an email" in html
    assert db.session.scalar(sa.select(sa.func.count(Feedback.id))) == 0


@pytest.mark.parametrize("field", ["name", "email", "organisation"])
def test_the_api_refuses_a_line_break_in_a_one_line_field(
    client: FlaskClient, mali, field: str
) -> None:
    value = "eve@example.org\r\nBcc: victim@example.org" if field == "email" else INJECTIONS[0]
    response = client.post(
        "/api/v1/feedback",
        data={"profile": f"mali/{mali.topic_slug}", "message": "Wrong date.", field: value},
    )
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def headers_of(sink: SMTPSink) -> list[list[tuple[str, str]]]:
    return [list(received.message.items()) for received in sink.received]


def assert_no_injected_headers(sink: SMTPSink, recipient: str) -> None:
    assert sink.received, "nothing was delivered"
    for received in sink.received:
        assert received.envelope_to == [recipient]
        names = [name.lower() for name, _ in received.message.items()]
        assert "bcc" not in names and "cc" not in names
        assert names.count("subject") == 1 and names.count("to") == 1
        assert "victim@example.org" not in str(received.message["To"])
        for name, value in received.message.items():
            assert "\n" not in str(value) and "\r" not in str(value), (name, value)


def test_encoded_line_breaks_in_an_incoming_email_do_not_reach_our_headers(
    app: Flask, mail_to_sink: SMTPSink, mali
) -> None:
    raw = (
        b"From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40example=2Eorg?= <eve@example.org>\r\n"
        b"To: feedback+ml@localhost\r\n"
        b"Subject: =?utf-8?q?Date_wrong=0D=0ABcc=3A_victim=40example=2Eorg?=\r\n"
        b"Message-ID: <m1@example.org>\r\n"
        b"\r\n"
        b"The date in the overview is wrong.\r\n"
    )
    outcome = deliver_email(app, raw, ["feedback+ml@localhost"])
    assert outcome.reference
    deliver_due()
    assert_no_injected_headers(mail_to_sink, "eve@example.org")


def test_a_staff_reply_subject_cannot_add_headers(
    app: Flask, mail_to_sink: SMTPSink, create_feedback, editor
) -> None:
    item = create_feedback(submitter_email="reader@example.org")
    for subject in INJECTIONS:
        reply_to_submitter(item, subject, "Thank you.", editor)
    db.session.commit()
    deliver_due()
    assert len(mail_to_sink.received) == 1 + len(INJECTIONS)
    assert_no_injected_headers(mail_to_sink, "reader@example.org")
