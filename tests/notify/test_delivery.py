"""The outbox is drained over real SMTP; outages delay mail and never lose or double it."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from desk.core.time import utcnow
from desk.extensions import db
from desk.notify.delivery import LEASE, as_mail_message, claim_due, deliver_due, retry_dead
from desk.notify.models import OutboxMessage, OutboxState
from desk.notify.outbox import build_message, queue_email
from tests.notify.helpers import parts


def queue(n: int = 1, *, recipient: str = "reader{}@example.org") -> list[OutboxMessage]:
    messages = []
    for i in range(n):
        messages.append(
            queue_email(
                "test.message",
                recipient.format(i),
                template="test_message",
                dedupe_key=f"test:{i}:{recipient.format(i)}",
                number=i,
            )
        )
    db.session.commit()
    return messages


@pytest.fixture(autouse=True)
def _test_template(app, tmp_path):
    """A paired text/HTML template only these tests use."""
    import jinja2

    folder = tmp_path / "templates" / "emails"
    folder.mkdir(parents=True)
    (folder / "test_message.txt").write_text(
        "Test subject {{ number }}\nPlain body {{ number }}.\n"
    )
    (folder / "test_message.html").write_text("<p>HTML body {{ number }}.</p>")
    app.jinja_loader = jinja2.ChoiceLoader(
        [app.jinja_loader, jinja2.FileSystemLoader(tmp_path / "templates")]
    )


def test_queued_mail_arrives_with_both_parts_and_a_stable_message_id(mail_to_sink):
    (message,) = queue()
    report = deliver_due()
    assert report.sent == [message.id]
    (received,) = mail_to_sink.to("reader0@example.org")
    assert received["Subject"] == "Test subject 0"
    assert received["Message-ID"] == message.message_id
    assert received["From"] == "desk@localhost"
    parts = {
        part.get_content_type(): part.get_content()
        for part in received.walk()
        if not part.is_multipart()
    }
    assert "Plain body 0." in parts["text/plain"]
    assert "<p>HTML body 0.</p>" in parts["text/html"]
    db.session.refresh(message)
    assert message.state == OutboxState.SENT
    assert message.sent_at is not None


def test_same_dedupe_key_is_queued_once(app):
    queue()
    again = queue_email(
        "test.message",
        "reader0@example.org",
        template="test_message",
        dedupe_key="test:0:reader0@example.org",
        number=0,
    )
    assert again is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


def test_smtp_outage_delays_mail_until_the_server_returns(mail_to_sink):
    (message,) = queue()
    mail_to_sink.stop()
    report = deliver_due()
    assert report.failed == [message.id]
    db.session.refresh(message)
    assert message.state == OutboxState.FAILED
    assert "Connection refused" in message.last_error or "Errno" in message.last_error
    assert message.next_attempt_at > utcnow()
    mail_to_sink.start()
    assert deliver_due().sent == []  # not due yet: backoff
    later = message.next_attempt_at + timedelta(seconds=1)
    assert deliver_due(now=later).sent == [message.id]
    assert len(mail_to_sink.to("reader0@example.org")) == 1


def test_backoff_doubles_and_a_message_dies_after_the_last_attempt(app, mail_to_sink):
    app.config.update(DESK_OUTBOX_MAX_ATTEMPTS=3, DESK_OUTBOX_RETRY_SECONDS=60)
    (message,) = queue()
    mail_to_sink.stop()
    now = utcnow()
    delays = []
    for _ in range(3):
        deliver_due(now=now)
        db.session.refresh(message)
        delays.append(message.next_attempt_at - now)
        now = message.next_attempt_at
    assert message.state == OutboxState.DEAD
    assert delays[:2] == [timedelta(seconds=60), timedelta(seconds=120)]
    mail_to_sink.start()
    assert deliver_due(now=now + timedelta(days=1)).claimed == 0
    retry_dead(message)
    db.session.commit()
    assert deliver_due().sent == [message.id]


def test_two_workers_never_claim_the_same_message(app):
    queue(5)
    now = utcnow()
    first = claim_due(3, now)
    second = claim_due(3, now)
    assert len(first) == 3
    assert len(second) == 2
    assert not set(first) & set(second)
    assert claim_due(3, now) == []


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(app, mail_to_sink, monkeypatch):
    messages = queue(5)
    from desk.core.mail import SMTPConnection

    real_send = SMTPConnection.send
    calls = {"n": 0}

    def send_then_die(self, message, *args, **kwargs):
        if calls["n"] == 2:
            raise SystemExit("worker killed")
        calls["n"] += 1
        return real_send(self, message, *args, **kwargs)

    monkeypatch.setattr(SMTPConnection, "send", send_then_die)
    with pytest.raises(SystemExit):
        deliver_due()
    db.session.rollback()
    monkeypatch.setattr(SMTPConnection, "send", real_send)
    assert len(mail_to_sink.received) == 2
    # The restarted worker sees the unsent ones once their lease ends.
    assert deliver_due().claimed == 0
    report = deliver_due(now=utcnow() + LEASE + timedelta(seconds=1))
    assert len(report.sent) == 3
    for i, _ in enumerate(messages):
        assert len(mail_to_sink.to(f"reader{i}@example.org")) == 1


def test_a_rolled_back_change_leaves_no_mail(app):
    queue_email(
        "test.message", "x@example.org", template="test_message", dedupe_key="rollback", number=1
    )
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_file_backend_writes_eml_files(app, tmp_path):
    app.config["DESK_MAIL_BACKEND"] = "file"
    (message,) = queue()
    assert deliver_due().sent == [message.id]
    files = list((tmp_path / "instance" / "mail").glob("*.eml"))
    assert len(files) == 1
    assert b"Subject: Test subject 0" in files[0].read_bytes()


def test_list_unsubscribe_goes_out_as_a_plain_header_line(app):
    """Not folded, not RFC 2047-encoded: mail clients must read the URL as it is."""
    url = "https://desk.example.org/unsubscribe/" + "x" * 120
    message = build_message(
        "test.message",
        "reader@example.org",
        template="test_message",
        dedupe_key="header-line",
        headers={"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "One-Click"},
        number=1,
    )
    raw = as_mail_message(message).as_bytes()
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n")[0].split(b"List-Unsubscribe")[1]


def test_non_ascii_subject_and_sender_arrive_intact(app, mail_to_sink):
    app.config["DESK_MAIL_FROM"] = "Observatoire des mines — Desk <desk@example.org>"
    (message,) = queue()
    message.subject = "Mise à jour : Côte d’Ivoire, « interdiction »"
    message.text = "Texte brut, été.\n" + "ligne " * 400
    db.session.commit()
    assert deliver_due().sent == [message.id]
    (received,) = mail_to_sink.to("reader0@example.org")
    assert received["Subject"] == "Mise à jour : Côte d’Ivoire, « interdiction »"
    assert received["From"].addresses[0].display_name == "Observatoire des mines — Desk"
    assert received["From"].addresses[0].addr_spec == "desk@example.org"
    assert mail_to_sink.received[0].envelope_from == "desk@example.org"
    text = parts(received)["text/plain"]
    assert text.startswith("Texte brut, été.\n")
    assert text.count("ligne") == 400


def test_a_header_with_a_line_break_fails_that_message_only(mail_to_sink):
    bad, good = queue(2)
    bad.headers = {"X-Reference": "ML-2026-00001\r\nBcc: victim@example.org"}
    db.session.commit()
    report = deliver_due()
    assert report.sent == [good.id]
    assert report.failed == [bad.id]
    assert [r.envelope_to for r in mail_to_sink.received] == [["reader1@example.org"]]
    db.session.refresh(bad)
    assert bad.state == OutboxState.FAILED
    assert "line break" in bad.last_error
