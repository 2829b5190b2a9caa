"""Notifications written to the outbox when something readers or staff care about happens."""

from __future__ import annotations

import sqlalchemy as sa

from desk.extensions import db
from desk.notify.models import Frequency, Subscription
from desk.notify.outbox import queue_email
from desk.profiles.models import ProfileUpdate


def queue_profile_update_notices(update: ProfileUpdate) -> int:
    """Write the "profile updated" email for every confirmed immediate subscriber.

    Daily and weekly subscribers get the update in their digest. The dedupe key pairs the update
    with the address, so nobody is told about the same update twice. Returns how many were queued.
    """
    subscriptions = db.session.scalars(
        sa.select(Subscription).where(
            Subscription.profile_id == update.profile_id,
            Subscription.confirmed_at.is_not(None),
            Subscription.ended_at.is_(None),
            Subscription.frequency == Frequency.IMMEDIATE,
        )
    )
    queued = 0
    for subscription in subscriptions:
        message = queue_email(
            "profile.updated",
            subscription.email,
            template="profile_updated",
            dedupe_key=f"profile.updated:{update.id}:{subscription.email}",
            language=subscription.language,
            update=update,
            profile=update.profile,
            subscription=subscription,
        )
        queued += message is not None
    return queued
