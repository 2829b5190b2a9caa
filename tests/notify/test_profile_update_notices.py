from datetime import date

import sqlalchemy as sa

from desk.core.time import utcnow
from desk.extensions import db
from desk.notify.models import Frequency, OutboxMessage, Subscription
from desk.notify.operations import queue_profile_update_notices
from desk.profiles.models import ProfileUpdate


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
