"""Daily and weekly digests for subscribers, and the staff's daily digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from desk.accounts.models import NotificationMode, Role
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import Channel, Feedback
from desk.feedback.operations import Submission, receive_feedback
from desk.notify.delivery import deliver_due
from desk.notify.digests import (
    period_end,
    queue_staff_digests,
    queue_subscriber_digests,
    staff_day,
)
from desk.notify.models import Frequency, OutboxMessage
from desk.notify.operations import change_subscription, queue_profile_update_notices
from desk.notify.tasks import send_digests
from desk.reviews.models import ReviewTask, TaskState
from tests.notify.helpers import links, parts, stamp, subscribe

#: Sunday 29 November 2026, 15:00 UTC; the desk runs on UTC in the tests.
SUNDAY = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def digests(kind: str = "digest.daily") -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
    )


def test_periods_end_at_midnight_in_the_desk_time_zone(app):
    assert period_end(Frequency.DAILY, SUNDAY) == datetime(2026, 11, 29, tzinfo=UTC)
    # Weekly periods end at the midnight that starts a Monday.
    assert period_end(Frequency.WEEKLY, SUNDAY) == datetime(2026, 11, 23, tzinfo=UTC)
    assert period_end(Frequency.WEEKLY, MIDNIGHT) == MIDNIGHT
    app.config["DESK_TIMEZONE"] = "Europe/Paris"
    assert period_end(Frequency.DAILY, SUNDAY) == datetime(2026, 11, 28, 23, 0, tzinfo=UTC)


def test_one_daily_email_gathers_every_update_of_the_day(create_profile, mail_to_sink):
    mali, laos = create_profile("ML"), create_profile("LA")
    before = SUNDAY - timedelta(days=2)
    subscribe(mali, "reader@example.org", frequency=Frequency.DAILY, confirmed_at=before)
    subscribe(laos, "reader@example.org", frequency=Frequency.DAILY, confirmed_at=before)
    stamp(mali, note="Morning change.", at=SUNDAY - timedelta(hours=6))
    stamp(mali, note="Afternoon change.", at=SUNDAY)
    stamp(laos, note="Lao change.", at=SUNDAY + timedelta(hours=1))
    stamp(laos, note="Tomorrow's change.", at=MIDNIGHT + timedelta(hours=1))

    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT + timedelta(hours=2)) == 1
    db.session.commit()
    deliver_due()
    (received,) = mail_to_sink.to("reader@example.org")
    assert received["Subject"] == "Profile updates of 29 November 2026"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = parts(received)["text/plain"]
    for note in ("Morning change.", "Afternoon change.", "Lao change."):
        assert note in text
    assert "Tomorrow's change." not in text
    assert text.index("Lao") < text.index("Mali")  # by country name
    assert links(received, "/subscriptions/manage/")

    # Running again for the same period sends nothing; the next day brings the late change.
    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT + timedelta(hours=3)) == 0
    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT + timedelta(days=1)) == 1
    db.session.commit()
    deliver_due()
    assert "Tomorrow's change." in parts(mail_to_sink.to("reader@example.org")[1])["text/plain"]
    assert len(digests()) == 2


def test_a_day_without_updates_sends_nothing(create_profile):
    profile = create_profile("ML")
    subscribe(profile, "reader@example.org", frequency=Frequency.DAILY, confirmed_at=SUNDAY)
    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT + timedelta(hours=1)) == 0
    assert digests() == []


def test_updates_before_the_subscription_are_not_sent(create_profile):
    profile = create_profile("ML")
    stamp(profile, note="Old news.", at=SUNDAY - timedelta(hours=2))
    subscribe(profile, "reader@example.org", frequency=Frequency.DAILY, confirmed_at=SUNDAY)
    stamp(profile, note="Fresh news.", at=SUNDAY + timedelta(hours=1))
    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT) == 1
    (message,) = digests()
    assert "Fresh news." in message.text
    assert "Old news." not in message.text


def test_the_weekly_digest_covers_monday_to_sunday(create_profile):
    profile = create_profile("ML")
    week_start = datetime(2026, 11, 23, tzinfo=UTC)
    subscribe(
        profile,
        "reader@example.org",
        frequency=Frequency.WEEKLY,
        confirmed_at=week_start - timedelta(days=3),
        language="fr",
    )
    stamp(profile, note="Lundi.", at=week_start + timedelta(hours=9))
    stamp(profile, note="Dimanche.", at=SUNDAY)
    assert queue_subscriber_digests(Frequency.WEEKLY, now=SUNDAY) == 0  # the week has not ended
    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT) == 0  # not a daily subscriber
    assert queue_subscriber_digests(Frequency.WEEKLY, now=MIDNIGHT + timedelta(hours=1)) == 1
    (message,) = digests("digest.weekly")
    assert "Lundi." in message.text and "Dimanche." in message.text
    assert message.subject == "Mises à jour des profils du 23 novembre 2026 au 29 novembre 2026"
    assert queue_subscriber_digests(Frequency.WEEKLY, now=MIDNIGHT + timedelta(days=2)) == 0


def test_moving_from_immediate_to_a_digest_never_repeats_an_update(create_profile):
    profile = create_profile("ML")
    subscription = subscribe(profile, "reader@example.org", confirmed_at=SUNDAY - timedelta(days=9))
    told = stamp(profile, note="Told at once.", at=SUNDAY - timedelta(hours=3))
    assert queue_profile_update_notices(told) == 1
    change_subscription(subscription, Frequency.DAILY, "en", now=SUNDAY - timedelta(hours=2))
    stamp(profile, note="After the move.", at=SUNDAY)
    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT) == 1
    (message,) = digests()
    assert "After the move." in message.text
    assert "Told at once." not in message.text


def test_a_digest_leaves_out_what_the_address_was_sent_on_its_own(create_profile):
    profile = create_profile("ML")
    subscription = subscribe(profile, "reader@example.org", confirmed_at=SUNDAY - timedelta(days=1))
    told = stamp(profile, note="Told at once.", at=SUNDAY)
    queue_profile_update_notices(told)
    # Moved by hand, without the digest's start being set: the outbox still knows.
    subscription.frequency = Frequency.DAILY
    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT) == 0


def test_ended_and_unconfirmed_subscriptions_get_no_digest(create_profile):
    profile = create_profile("ML")
    ended = subscribe(profile, "ended@example.org", frequency=Frequency.DAILY, confirmed_at=SUNDAY)
    ended.ended_at = SUNDAY + timedelta(hours=1)
    pending = subscribe(
        profile, "pending@example.org", frequency=Frequency.DAILY, confirmed_at=SUNDAY
    )
    pending.confirmed_at = None
    stamp(profile, at=SUNDAY + timedelta(minutes=30))
    assert queue_subscriber_digests(Frequency.DAILY, now=MIDNIGHT) == 0


# --------------------------------------------------------------------------- staff


@pytest.fixture
def digest_editor(create_staff):
    editor = create_staff(Role.EDITOR, countries=("ML",), leads=("ML",))
    editor.notification_mode = NotificationMode.DAILY_DIGEST
    db.session.commit()
    return editor


def routed_feedback(at: datetime, message: str) -> Feedback:
    """Feedback the routing assigns to Mali's lead editor (the default auto-assignment)."""
    from desk.profiles.operations import ensure_country

    feedback = receive_feedback(
        Submission(
            channel=Channel.WEB,
            country=ensure_country("ML"),
            country_reason="test",
            message=message,
        )
    ).feedback
    for event in feedback.events:
        event.at = at
    db.session.flush()
    return feedback


def test_the_staff_digest_gathers_the_day_from_the_timelines(
    create_profile, create_staff, digest_editor, mail_to_sink
):
    profile = create_profile("ML")
    manager = create_staff(Role.MANAGER)
    feedback = routed_feedback(SUNDAY, "Footnote 3 cites the wrong page.")
    routed_feedback(SUNDAY - timedelta(days=2), "An old item.")
    db.session.add_all(
        [
            ReviewTask(
                profile=profile,
                title="Check the stockpile figures",
                assignee_id=digest_editor.id,
                created_by_id=manager.id,
                created_at=SUNDAY,
            ),
            ReviewTask(
                profile=profile,
                title="Rewrite the summary",
                state=TaskState.SUBMITTED,
                assignee_id=manager.id,
                submitted_at=SUNDAY,
                created_at=SUNDAY - timedelta(days=1),
            ),
            ReviewTask(
                profile=profile,
                title="My own task",
                assignee_id=digest_editor.id,
                created_by_id=digest_editor.id,
                created_at=SUNDAY,
            ),
        ]
    )
    db.session.commit()
    day = staff_day(digest_editor, SUNDAY - timedelta(hours=15), MIDNIGHT)
    assert [item.reference for item in day.assigned_feedback] == [feedback.reference]
    assert [task.title for task in day.assigned_tasks] == ["Check the stockpile figures"]
    assert [task.title for task in day.awaiting_approval] == ["Rewrite the summary"]

    assert queue_staff_digests(now=MIDNIGHT + timedelta(hours=1)) == 1
    assert queue_staff_digests(now=MIDNIGHT + timedelta(hours=2)) == 0
    db.session.commit()
    deliver_due()
    (received,) = mail_to_sink.to(digest_editor.email)
    assert received["Subject"] == "Your day on Desk: 29 November 2026"
    text = parts(received)["text/plain"]
    assert feedback.reference in text
    assert "Check the stockpile figures" in text
    assert "Rewrite the summary" in text
    assert "My own task" not in text
    assert "An old item." not in text
    assert "/desk/me/notifications" in text
    assert mail_to_sink.to(manager.email) == []  # immediate users get no digest


def test_a_day_with_nothing_sends_no_staff_digest(digest_editor):
    assert queue_staff_digests(now=MIDNIGHT) == 0
    assert digests("staff.digest") == []


def test_the_hourly_job_writes_and_commits_the_digests(app, create_profile):
    profile = create_profile("ML")
    yesterday = utcnow() - timedelta(days=1)
    subscribe(
        profile,
        "reader@example.org",
        frequency=Frequency.DAILY,
        confirmed_at=yesterday - timedelta(days=1),
    )
    stamp(profile, note="Yesterday's change.", at=yesterday)
    db.session.commit()
    assert send_digests.call_local() == 1
    assert send_digests.call_local() == 0
    (message,) = digests()
    assert "Yesterday's change." in message.text
