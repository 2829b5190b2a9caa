"""A real job consumer sends the mail a committed change wrote: SQLite queue, or Redis in CI."""

import time
from datetime import date, datetime, timedelta

import flask_migrate
import pytest
import sqlalchemy as sa

from desk import create_app
from desk.core.time import utcnow
from desk.extensions import db, huey, mail
from desk.feedback.models import Channel
from desk.feedback.operations import Submission, receive_feedback
from desk.jobs import start_consumer_thread
from desk.notify.models import OutboxMessage, OutboxState, Subscription
from desk.notify.operations import queue_profile_update_notices
from desk.notify.tasks import deliver_outbox
from desk.profiles.models import Profile, ProfileUpdate
from desk.profiles.operations import ensure_country
from tests.conftest import base_settings


@pytest.fixture
def committed_app(scratch_database_url, tmp_path, smtp_sink):
    """An app on its own database whose commits are real (the consumer is another thread)."""
    settings = base_settings(scratch_database_url, tmp_path / "instance")
    settings.update(
        DESK_MAIL_BACKEND="smtp", DESK_MAIL_SERVER="127.0.0.1", DESK_MAIL_PORT=smtp_sink.port
    )
    app = create_app(settings)
    with app.app_context():
        flask_migrate.upgrade()
        mail.init_app(app)
    huey.flush()
    yield app
    with app.app_context():
        db.engine.dispose()


def wait_for(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_consumer_delivers_the_acknowledgement_after_commit(committed_app, smtp_sink):
    consumer = start_consumer_thread()
    try:
        with committed_app.app_context():
            country = ensure_country("ML")
            result = receive_feedback(
                Submission(
                    channel=Channel.WEB,
                    country=country,
                    country_reason="test",
                    message="Footnote 3 cites the wrong page.",
                    submitter_email="reader@example.org",
                )
            )
            db.session.commit()
            reference = result.feedback.reference
        assert wait_for(lambda: smtp_sink.to("reader@example.org")), "no mail arrived"
        (received,) = smtp_sink.to("reader@example.org")
        assert reference in received["Subject"]
        with committed_app.app_context():
            message = db.session.scalar(db.select(OutboxMessage))
            assert message.state == OutboxState.SENT
    finally:
        consumer.stop(graceful=True)


def test_notices_written_during_an_smtp_outage_go_out_when_it_returns(committed_app, smtp_sink):
    committed_app.config["DESK_OUTBOX_RETRY_SECONDS"] = 0  # due again as soon as it failed
    smtp_sink.stop()
    consumer = start_consumer_thread()
    try:
        with committed_app.app_context():
            profile = Profile(
                country=ensure_country("ML"), topic="Cluster Munition Ban Policy", topic_slug="c"
            )
            db.session.add(profile)
            db.session.add(
                Subscription(email="reader@example.org", profile=profile, confirmed_at=utcnow())
            )
            db.session.flush()
            update = ProfileUpdate(
                profile=profile, stamped_on=date(2026, 11, 29), change_note="New."
            )
            db.session.add(update)
            db.session.flush()
            assert queue_profile_update_notices(update) == 1
            db.session.commit()  # the approval commits; the job it asks for finds no server

        def state() -> OutboxState:
            with committed_app.app_context():
                return db.session.scalar(
                    db.select(OutboxMessage.state).where(OutboxMessage.kind == "profile.updated")
                )

        assert wait_for(lambda: state() == OutboxState.FAILED), state()
        smtp_sink.start()
        deliver_outbox()  # what the every-minute job does
        assert wait_for(lambda: smtp_sink.to("reader@example.org")), "the notice never arrived"
        assert wait_for(lambda: state() == OutboxState.SENT)
        time.sleep(0.5)
        assert len(smtp_sink.to("reader@example.org")) == 1
    finally:
        consumer.stop(graceful=True)


def queue_notices(app, tag: str, count: int) -> datetime:
    """``count`` subscriber notices to <tag><n>@example.org, committed, due only at the moment
    returned (an hour ahead), so that no consumer thread sends them before the test does."""
    with app.app_context():
        profile = Profile(country=ensure_country("ML"), topic=tag, topic_slug=tag)
        db.session.add(profile)
        for n in range(count):
            db.session.add(
                Subscription(
                    email=f"{tag}{n}@example.org",
                    profile=profile,
                    confirmed_at=utcnow(),
                    language="fr" if n % 2 else "en",
                )
            )
        db.session.flush()
        update = ProfileUpdate(profile=profile, stamped_on=date(2026, 11, 29), change_note="New.")
        db.session.add(update)
        db.session.flush()
        assert queue_profile_update_notices(update) == count
        later = utcnow() + timedelta(hours=1)
        db.session.execute(
            db.update(OutboxMessage)
            .where(OutboxMessage.recipient.like(f"{tag}%"))
            .values(next_attempt_at=later)
        )
        db.session.commit()
    return later


def test_a_worker_killed_mid_batch_has_committed_every_message_it_sent(
    committed_app, smtp_sink, monkeypatch
):
    """On a real database each outcome is its own commit, on the run's own connection."""
    from desk.core.mail import SMTPConnection
    from desk.notify.delivery import LEASE, deliver_due

    later = queue_notices(committed_app, "killed", 5)

    real_send = SMTPConnection.send
    sent = {"n": 0}

    def send_then_die(self, message, *args, **kwargs):
        if sent["n"] == 3:
            raise SystemExit("worker killed")
        sent["n"] += 1
        return real_send(self, message, *args, **kwargs)

    monkeypatch.setattr(SMTPConnection, "send", send_then_die)
    with committed_app.app_context(), pytest.raises(SystemExit):
        deliver_due(now=later)
    monkeypatch.setattr(SMTPConnection, "send", real_send)

    # Seen from a new session: the three that went out are recorded as sent.
    with committed_app.app_context():
        ours = OutboxMessage.recipient.like("killed%")
        states = db.session.scalars(db.select(OutboxMessage.state).where(ours)).all()
    assert sorted(states) == [OutboxState.PENDING] * 2 + [OutboxState.SENT] * 3
    assert len(smtp_sink.received) == 3

    with committed_app.app_context():
        report = deliver_due(now=later + LEASE + timedelta(seconds=1))
    assert len(report.sent) == 2
    for n in range(5):
        assert len(smtp_sink.to(f"killed{n}@example.org")) == 1


def test_each_message_is_recorded_sent_before_the_next_one_reaches_the_server(
    committed_app, smtp_sink, scratch_database_url, monkeypatch
):
    """The "sent" of one message is committed while the next one's envelope goes out, and
    always before that next message's DATA ends: the server never holds two unrecorded."""
    from desk.notify import delivery
    from desk.notify.delivery import deliver_due

    later = queue_notices(committed_app, "order", 6)
    # A slow database: a run that did not wait for each record would be caught out.
    record_sent = delivery._Outcomes.sent

    def slowly(self, message_id: int) -> None:
        time.sleep(0.05)
        record_sent(self, message_id)

    monkeypatch.setattr(delivery._Outcomes, "sent", slowly)
    observer = sa.create_engine(scratch_database_url)
    recorded_at_arrival: list[int] = []

    def count_recorded(_received) -> None:
        with observer.connect() as connection:
            recorded_at_arrival.append(
                connection.scalar(
                    sa.select(sa.func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.recipient.like("order%"),
                        OutboxMessage.state == OutboxState.SENT,
                    )
                )
            )

    smtp_sink.on_data(count_recorded)
    try:
        with committed_app.app_context():
            report = deliver_due(now=later)
    finally:
        smtp_sink.on_data(None)
        observer.dispose()
    assert len(report.sent) == 6
    # As message k's DATA ends, exactly the k before it are recorded: all of them, and not it.
    assert recorded_at_arrival == [0, 1, 2, 3, 4, 5]
    with committed_app.app_context():
        states = db.session.scalars(
            db.select(OutboxMessage.state).where(OutboxMessage.recipient.like("order%"))
        ).all()
    assert states == [OutboxState.SENT] * 6
