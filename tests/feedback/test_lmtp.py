"""The LMTP receiver over a real socket, on a database of its own with real commits.

The receiver takes each message in a worker thread with an app context of its own, as in
production, so these tests use a migrated scratch database (SQLite file, or a scratch
PostgreSQL database when DESK_DATABASE_URL is PostgreSQL) rather than the rolled-back ``app``.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask

from desk import create_app
from desk.core.storage import get_storage
from desk.extensions import db
from desk.feedback.lmtp import LMTPController, make_controller
from desk.feedback.models import EventKind, Feedback, FeedbackEvent
from desk.feedback.operations import acknowledgement_message_id
from tests.conftest import base_settings
from tests.feedback.emails import INTAKE, PDF, as_bytes, french_report, message, reply
from tests.smtp import free_port

T = TypeVar("T")


@pytest.fixture(scope="module")
def lmtp_app(
    scratch_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    settings = base_settings(scratch_database_url, tmp_path_factory.mktemp("lmtp-instance"))
    app = create_app({**settings, "DESK_INTAKE_ADDRESS": INTAKE})
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def receiver(lmtp_app: Flask) -> Iterator[LMTPController]:
    controller = make_controller(lmtp_app, "127.0.0.1", free_port())
    controller.start()
    yield controller
    controller.stop()


def run(app: Flask, fn: Callable[[], T]) -> T:
    with app.app_context():
        return fn()


def by_message_id(message_id: str) -> list[Feedback]:
    return list(
        db.session.scalars(sa.select(Feedback).where(Feedback.email_message_id == message_id))
    )


def reply_events(feedback: Feedback) -> list[FeedbackEvent]:
    return [e for e in feedback.events if e.kind == EventKind.REPLY_RECEIVED]


def test_french_report_through_lmtp_becomes_a_mali_item_and_the_reply_threads_onto_it(
    lmtp_app, receiver
):
    report = french_report(message_id="<rapport.lmtp@lecteur.example>")
    with smtplib.LMTP(receiver.hostname, receiver.port, timeout=30) as client:
        refused = client.sendmail("renee@lecteur.example", ["feedback+ml@desk.example"], report)
    assert refused == {}

    def check_item() -> tuple[str, str]:
        [feedback] = by_message_id("<rapport.lmtp@lecteur.example>")
        assert feedback.country.code == "ML"
        assert feedback.reference.startswith("ML-")
        assert feedback.language == "fr"
        assert "ratifié la Convention le 30 juin 2010" in feedback.message
        [pdf] = feedback.attachments
        assert (pdf.original_filename, pdf.content_type) == (
            "decret-ratification.pdf",
            "application/pdf",
        )
        with get_storage().open(pdf.storage_key) as stored:
            assert stored.read() == PDF
        return feedback.reference, acknowledgement_message_id(feedback)

    reference, ack_id = run(lmtp_app, check_item)

    answer = reply(in_reply_to=ack_id, message_id="<reply.lmtp@lecteur.example>")
    with smtplib.LMTP(receiver.hostname, receiver.port, timeout=30) as client:
        client.sendmail("renee@lecteur.example", ["desk@localhost"], answer)
        # The mail server retries both (a lost answer, a restart): nothing is taken twice.
        client.sendmail("renee@lecteur.example", ["feedback+ml@desk.example"], report)
        client.sendmail("renee@lecteur.example", ["desk@localhost"], answer)

    def check_reply() -> None:
        [feedback] = by_message_id("<rapport.lmtp@lecteur.example>")
        assert feedback.reference == reference
        [event] = reply_events(feedback)
        assert event.data["message_id"] == "<reply.lmtp@lecteur.example>"
        assert event.data["from"] == "renee@lecteur.example"
        assert by_message_id("<reply.lmtp@lecteur.example>") == []

    run(lmtp_app, check_reply)


def test_every_recipient_gets_its_own_answer_and_one_item_is_made(lmtp_app, receiver):
    raw = as_bytes(message(message_id="<two-rcpts@example.org>", body="Two recipients."))
    with smtplib.LMTP(receiver.hostname, receiver.port, timeout=30) as client:
        client.ehlo()
        assert client.mail("reader@example.org")[0] == 250
        assert client.rcpt("feedback+sn@desk.example")[0] == 250
        assert client.rcpt("feedback+ml@desk.example")[0] == 250
        first = client.data(raw)
        second = client.getreply()
        assert client.noop()[0] == 250  # the conversation is still in step
    assert first[0] == second[0] == 250
    assert b"SN-" in first[1] and first == second
    assert len(run(lmtp_app, lambda: by_message_id("<two-rcpts@example.org>"))) == 1


def test_a_message_over_the_size_limit_is_refused_for_every_recipient(lmtp_app):
    lmtp_app.config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"] = 10_000
    try:
        controller = make_controller(lmtp_app, "127.0.0.1", free_port())
    finally:
        lmtp_app.config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"] = 50 * 1024 * 1024
    controller.start()
    try:
        raw = as_bytes(message(message_id="<big@example.org>", body="x" * 30_000))
        with smtplib.LMTP(controller.hostname, controller.port, timeout=30) as client:
            client.ehlo()
            assert client.esmtp_features["size"] == "20000"
            client.mail("reader@example.org")
            client.rcpt("feedback+ml@desk.example")
            client.rcpt("feedback+sn@desk.example")
            answers = [client.data(raw), client.getreply()]
            assert client.noop()[0] == 250
    finally:
        controller.stop()
    assert [code for code, _ in answers] == [552, 552]
    assert run(lmtp_app, lambda: by_message_id("<big@example.org>")) == []


def test_something_that_is_no_email_is_refused_for_good(receiver):
    with smtplib.LMTP(receiver.hostname, receiver.port, timeout=30) as client:
        client.ehlo()
        client.mail("reader@example.org")
        client.rcpt(INTAKE)
        code, text = client.data(b"\r\njust some text without any header\r\n")
    assert code == 554
    assert b"no headers" in text


def test_a_database_outage_is_a_temporary_failure(tmp_path):
    # A PostgreSQL server nobody listens for: every connection is refused, as when it is down.
    settings = base_settings("postgresql+psycopg://desk@127.0.0.1:1/desk", tmp_path / "instance")
    down = create_app({**settings, "DESK_INTAKE_ADDRESS": INTAKE})
    controller = make_controller(down, "127.0.0.1", free_port())
    controller.start()
    try:
        raw = as_bytes(message(message_id="<outage@example.org>"))
        with (
            smtplib.LMTP(controller.hostname, controller.port, timeout=30) as client,
            pytest.raises(smtplib.SMTPDataError) as error,
        ):
            client.sendmail("reader@example.org", ["feedback+ml@desk.example"], raw)
    finally:
        controller.stop()
    assert error.value.smtp_code == 451


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"desk lmtp exited early:\n{process.stdout.read() if process.stdout else ''}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail("desk lmtp did not start listening")


def test_desk_lmtp_command_serves_until_ctrl_c(lmtp_app, scratch_database_url, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DESK_DATABASE_URL": scratch_database_url,
        "DESK_INSTANCE_PATH": str(tmp_path / "instance"),
        "DESK_INTAKE_ADDRESS": INTAKE,
        "DESK_SECRET_KEY": "test-secret-key",
        "DESK_ENV": "testing",
    }
    desk = Path(sys.executable).with_name("desk")
    process = subprocess.Popen(
        [str(desk), "lmtp", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_port(port, process)
        raw = as_bytes(message(message_id="<cli@example.org>", subject="[SN] via the command"))
        with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
            assert client.sendmail("reader@example.org", [INTAKE], raw) == {}
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert f"Desk LMTP receiver on 127.0.0.1:{port}" in output
    [feedback] = run(lmtp_app, lambda: by_message_id("<cli@example.org>"))
    assert feedback.reference.startswith("SN-")
