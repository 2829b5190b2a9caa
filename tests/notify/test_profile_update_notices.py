"""The "profile updated" notice: who gets it, what arrives, and that it is never lost or doubled."""

import re
from datetime import date, timedelta

import sqlalchemy as sa

from desk.core.time import utcnow
from desk.extensions import db
from desk.notify.delivery import deliver_due
from desk.notify.models import Frequency, OutboxMessage, OutboxState, Subscription
from desk.notify.operations import queue_profile_update_notices
from desk.notify.queries import delivery_counts, profile_update_prefix
from desk.profiles.models import ProfileUpdate
from tests.notify.helpers import links, parts, path_of, stamp, subscribe


def test_each_confirmed_immediate_subscriber_is_told_once(create_profile):
    profile = create_profile("ML")
    now = utcnow()
    db.session.add_all(
        [
            Subscription(email="a@example.org", profile=profile, confirmed_at=now),
            Subscription(email="b@example.org", profile=profile, confirmed_at=now, language="fr"),
            Subscription(email="unconfirmed@example.org", profile=profile),
            Subscription(
                email="ended@example.org", profile=profile, confirmed_at=now, ended_at=now
            ),
            Subscription(
                email="daily@example.org",
                profile=profile,
                confirmed_at=now,
                frequency=Frequency.DAILY,
            ),
        ]
    )
    update = ProfileUpdate(profile=profile, stamped_on=date(2026, 11, 29), change_note="New text.")
    db.session.add(update)
    db.session.flush()
    assert queue_profile_update_notices(update) == 2
    assert queue_profile_update_notices(update) == 0
    db.session.commit()
    messages = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.recipient)).all()
    assert [m.recipient for m in messages] == ["a@example.org", "b@example.org"]
    assert "29 November 2026" in messages[0].text
    assert "New text." in messages[0].text
    assert "/profiles/mali/cluster-munition-ban-policy" in messages[0].text


# --------------------------------------------------------------------------- as received


def test_a_notice_arrives_with_its_headers_both_parts_and_the_changes(
    app, create_profile, mail_to_sink
):
    profile = create_profile("ML", sections=[("Stockpiling", "No stockpile."), ("Use", "None.")])
    subscribe(profile, "reader@example.org")
    update = stamp(profile, note="New figures on stockpile destruction.")
    assert queue_profile_update_notices(update) == 1
    db.session.commit()
    (message,) = db.session.scalars(sa.select(OutboxMessage)).all()
    assert deliver_due().sent == [message.id]

    (received,) = mail_to_sink.to("reader@example.org")
    assert received["Message-ID"] == message.message_id
    assert received["Subject"] == "Mali: Cluster Munition Ban Policy was updated"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = received["List-Unsubscribe"]
    assert re.fullmatch(r"<http://desk\.test/unsubscribe/[\w.-]+>", unsubscribe), unsubscribe
    body = parts(received)
    text, html = body["text/plain"], body["text/html"]
    assert "29 November 2026" in text
    assert "New figures on stockpile destruction." in text
    assert "Revised: Stockpiling" in text
    assert "http://desk.test/profiles/mali/cluster-munition-ban-policy#stockpiling" in text
    assert unsubscribe.strip("<>") in text
    assert len(links(received, "/subscriptions/manage/")) == 1
    assert 'href="http://desk.test/profiles/mali/cluster-munition-ban-policy#stockpiling"' in html
    assert "29 November 2026" in html

    # The header's link ends the subscription by a one-click POST, as a mail client sends it.
    mail_client = app.test_client(use_cookies=False)
    response = mail_client.post(
        path_of(unsubscribe.strip("<>")), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    subscription = db.session.scalar(sa.select(Subscription))
    assert subscription.ended_reason == "one-click"


def test_a_french_subscriber_gets_the_notice_in_french(create_profile, mail_to_sink):
    profile = create_profile("ML")
    subscribe(profile, "lecteur@example.org", language="fr")
    queue_profile_update_notices(stamp(profile))
    db.session.commit()
    deliver_due()
    (received,) = mail_to_sink.to("lecteur@example.org")
    assert received["Subject"] == "Mali : Cluster Munition Ban Policy a été mis à jour"
    text = parts(received)["text/plain"]
    assert "29 novembre 2026" in text
    assert "Se désabonner" in text
    assert 'lang="fr"' in parts(received)["text/html"]


def test_nobody_is_told_twice_about_the_same_update(create_profile, mail_to_sink):
    profile = create_profile("ML")
    for n in range(3):
        subscribe(profile, f"reader{n}@example.org")
    update = stamp(profile)
    assert queue_profile_update_notices(update) == 3
    db.session.commit()
    deliver_due()
    # The same update approved again, or the job run again: nothing new is written or sent.
    assert queue_profile_update_notices(update) == 0
    db.session.commit()
    deliver_due()
    for n in range(3):
        assert len(mail_to_sink.to(f"reader{n}@example.org")) == 1


def test_an_smtp_outage_during_the_stamp_delays_the_notices_and_loses_none(
    create_profile, mail_to_sink
):
    profile = create_profile("ML")
    subscribe(profile, "reader@example.org")
    mail_to_sink.stop()
    update = stamp(profile)
    queue_profile_update_notices(update)
    db.session.commit()  # the "approval" commits whatever the mail server does
    report = deliver_due()
    assert len(report.failed) == 1
    assert db.session.get(ProfileUpdate, update.id) is not None
    assert delivery_counts(profile_update_prefix(update.id)) == {
        "sent": 0,
        "pending": 1,
        "failed": 0,
        "total": 1,
    }
    mail_to_sink.start()
    message = db.session.scalar(sa.select(OutboxMessage))
    assert deliver_due(now=message.next_attempt_at + timedelta(seconds=1)).sent == [message.id]
    assert len(mail_to_sink.to("reader@example.org")) == 1
    assert delivery_counts(profile_update_prefix(update.id))["sent"] == 1


def test_a_rolled_back_stamp_leaves_no_mail_and_asks_for_no_delivery(create_profile, monkeypatch):
    profile = create_profile("ML")
    subscribe(profile, "reader@example.org")
    db.session.commit()
    asked = []
    monkeypatch.setattr("desk.notify.tasks.deliver_outbox", lambda: asked.append(1))
    queue_profile_update_notices(stamp(profile))
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProfileUpdate)) == 0
    db.session.commit()
    assert asked == []


def test_delivery_counts_group_the_notices_of_one_update(create_profile, mail_to_sink, app):
    profile = create_profile("ML")
    for n in range(4):
        subscribe(profile, f"reader{n}@example.org")
    first, second = stamp(profile), stamp(profile, note="Another change.")
    queue_profile_update_notices(first)
    queue_profile_update_notices(second)
    db.session.commit()
    app.config["DESK_OUTBOX_MAX_ATTEMPTS"] = 1
    messages = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    first_ids = [m.id for m in messages if m.dedupe_key.startswith(f"profile.updated:{first.id}:")]
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == first_ids[0])
        .values(state=OutboxState.DEAD)
    )
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == first_ids[1])
        .values(state=OutboxState.SENT)
    )
    db.session.commit()
    assert delivery_counts(profile_update_prefix(first.id)) == {
        "sent": 1,
        "pending": 2,
        "failed": 1,
        "total": 4,
    }
    assert delivery_counts(profile_update_prefix(second.id))["pending"] == 4
    assert delivery_counts("profile.updated:999999:")["total"] == 0


def test_one_delivery_run_gives_every_reader_their_own_links_in_their_language(
    app, create_profile, mail_to_sink
):
    """Subject and sender lines are written once per run and shared; nothing per reader is."""
    profile = create_profile("ML")
    readers = {f"reader{n}@example.org": "fr" if n % 2 else "en" for n in range(6)}
    for email, language in readers.items():
        subscribe(profile, email, language=language)
    assert queue_profile_update_notices(stamp(profile)) == len(readers)
    db.session.commit()
    assert len(deliver_due().sent) == len(readers)

    subjects = {
        "en": "Mali: Cluster Munition Ban Policy was updated",
        "fr": "Mali : Cluster Munition Ban Policy a été mis à jour",
    }
    unsubscribe_links = {}
    for email, language in readers.items():
        (received,) = mail_to_sink.to(email)
        assert received["To"] == email
        assert received["Subject"] == subjects[language]
        unsubscribe = received["List-Unsubscribe"].strip("<>")
        body = parts(received)
        assert unsubscribe in body["text/plain"]
        assert f'lang="{language}"' in body["text/html"]
        assert len(links(received, "/subscriptions/manage/")) == 1
        unsubscribe_links[email] = unsubscribe
    assert len(set(unsubscribe_links.values())) == len(readers)

    # A reader's link ends that reader's subscription and nobody else's.
    response = app.test_client(use_cookies=False).post(
        path_of(unsubscribe_links["reader3@example.org"]),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    ended = db.session.scalars(
        sa.select(Subscription.email).where(Subscription.ended_at.is_not(None))
    ).all()
    assert ended == ["reader3@example.org"]
