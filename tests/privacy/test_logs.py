"""Readers' addresses, names and IP addresses never reach the logs, whatever the path taken."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from desk.core.logging import ContextFilter, JsonFormatter, TextFormatter
from desk.feedback.email_in import deliver_email
from desk.notify.delivery import deliver_due
from tests.conftest import csrf_token_from

EMAIL = "secret.reader@example.org"
NAME = "Philomena Zzyzx"
ORGANISATION = "Zzyzx Foundation"
IP = "203.0.113.199"
PERSONAL = (EMAIL, NAME, ORGANISATION, IP, "secret.reader")


@pytest.fixture(params=["json", "text"])
def log_output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Everything logged at DEBUG and above, through Desk's own formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if request.param == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_readers_journey_leaves_no_personal_data_in_the_logs(
    app: Flask, client: FlaskClient, mali, log_output: io.StringIO
) -> None:
    environ = {"REMOTE_ADDR": IP}
    form = "/profiles/mali/cluster-munition-ban-policy/feedback"
    page = client.get(form, environ_base=environ).get_data(as_text=True)
    sent = client.post(
        form,
        data={
            "csrf_token": csrf_token_from(page),
            "message": "The date is wrong.",
            "name": NAME,
            "email": EMAIL,
            "organisation": ORGANISATION,
        },
        environ_base=environ,
    )
    assert sent.status_code == 303
    subscribe = "/profiles/mali/cluster-munition-ban-policy/subscribe"
    page = client.get(subscribe, environ_base=environ).get_data(as_text=True)
    client.post(
        subscribe,
        data={"csrf_token": csrf_token_from(page), "email": EMAIL, "frequency": "immediate"},
        environ_base=environ,
    )
    raw = (
        f"From: {NAME} <{EMAIL}>\r\nTo: feedback+ml@localhost\r\nSubject: More\r\n"
        f"Message-ID: <m1@example.org>\r\n\r\nFrom {ORGANISATION}.\r\n"
    ).encode()
    deliver_email(app, raw, ["feedback+ml@localhost"])
    app.config.update(DESK_MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=9)
    deliver_due()  # the SMTP server is unreachable: the failure is logged

    logged = log_output.getvalue()
    assert "POST" in logged and "/feedback" in logged
    for value in PERSONAL:
        assert value not in logged, value
