"""Reads of the outbox and of subscriptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from desk.core.time import desk_zone
from desk.extensions import db
from desk.notify.models import OutboxMessage, OutboxState, Subscription
from desk.profiles.models import Country, Profile

#: Rows per page of the outbox list.
OUTBOX_PAGE_SIZE = 50

#: How delivery_counts() groups the outbox states.
_COUNTED = {
    OutboxState.SENT: "sent",
    OutboxState.PENDING: "pending",
    OutboxState.FAILED: "pending",
    OutboxState.DEAD: "failed",
}


def dedupe_prefix_filter(prefix: str) -> sa.ColumnElement[bool]:
    """Messages whose dedupe key starts with ``prefix``, found through the key's unique index.

    A range on the key is what both databases can answer from the index (SQLite's LIKE ignores
    case and skips it); the LIKE beside it keeps the answer exact under any collation.
    """
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return sa.and_(
        OutboxMessage.dedupe_key >= prefix,
        OutboxMessage.dedupe_key < upper,
        OutboxMessage.dedupe_key.startswith(prefix, autoescape=True),
    )


def delivery_counts(dedupe_prefix: str) -> dict[str, int]:
    """How the emails with this dedupe prefix fared: ``sent``, ``pending``, ``failed``, ``total``.

    The subscriber notices of ProfileUpdate N use the prefix ``profile.updated:N:``. "Pending"
    includes messages waiting for a retry after a failed attempt; "failed" are the dead ones
    (no more attempts until an admin retries them).
    """
    rows = db.session.execute(
        sa.select(OutboxMessage.state, sa.func.count())
        .where(dedupe_prefix_filter(dedupe_prefix))
        .group_by(OutboxMessage.state)
    )
    counts = {"sent": 0, "pending": 0, "failed": 0}
    for state, number in rows:
        counts[_COUNTED[OutboxState(state)]] += number
    counts["total"] = sum(counts.values())
    return counts


def profile_update_prefix(update_id: int) -> str:
    """The dedupe prefix of the subscriber notices of one ProfileUpdate."""
    return f"profile.updated:{update_id}:"


@dataclass(frozen=True)
class OutboxFilter:
    state: OutboxState | None = None
    kind: str = ""
    #: An exact address (stored lower-cased).
    recipient: str = ""
    #: The day the message was written, in the desk's time zone.
    day: date | None = None


def _filtered(statement: sa.Select, chosen: OutboxFilter) -> sa.Select:
    if chosen.state is not None:
        statement = statement.where(OutboxMessage.state == chosen.state)
    if chosen.kind:
        statement = statement.where(OutboxMessage.kind == chosen.kind)
    if chosen.recipient:
        statement = statement.where(
            sa.func.lower(OutboxMessage.recipient) == chosen.recipient.strip().lower()
        )
    if chosen.day is not None:
        start = datetime.combine(chosen.day, time(), tzinfo=desk_zone())
        statement = statement.where(
            OutboxMessage.created_at >= start,
            OutboxMessage.created_at < start + timedelta(days=1),
        )
    return statement


def outbox_page(chosen: OutboxFilter, before_id: int | None = None) -> list[OutboxMessage]:
    """One page of messages matching the filter, newest first, older than ``before_id``."""
    statement = _filtered(sa.select(OutboxMessage), chosen)
    if before_id is not None:
        statement = statement.where(OutboxMessage.id < before_id)
    statement = statement.order_by(OutboxMessage.id.desc()).limit(OUTBOX_PAGE_SIZE + 1)
    return list(db.session.scalars(statement))


def outbox_state_counts(chosen: OutboxFilter | None = None) -> dict[OutboxState, int]:
    """How many messages are in each state (among those matching the filter, if one is given)."""
    statement = sa.select(OutboxMessage.state, sa.func.count()).group_by(OutboxMessage.state)
    if chosen is not None:
        statement = _filtered(statement, chosen)
    counts = dict.fromkeys(OutboxState, 0)
    for state, number in db.session.execute(statement):
        counts[OutboxState(state)] = number
    return counts


def outbox_kinds() -> list[str]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage.kind).distinct().order_by(OutboxMessage.kind).limit(200)
        )
    )


def dead_message_ids(chosen: OutboxFilter) -> list[int]:
    statement = _filtered(sa.select(OutboxMessage.id), chosen).where(
        OutboxMessage.state == OutboxState.DEAD
    )
    return list(db.session.scalars(statement))


def subscriptions_of(email: str) -> list[Subscription]:
    """An address's subscriptions that have not ended (pending and active), by country."""
    statement = (
        sa.select(Subscription)
        .join(Subscription.profile)
        .join(Profile.country)
        .options(joinedload(Subscription.profile).joinedload(Profile.country))
        .where(Subscription.email == email, Subscription.ended_at.is_(None))
        .order_by(Country.name, Profile.topic, Profile.language)
    )
    return list(db.session.scalars(statement))


def open_subscription(email: str, profile_id: int) -> Subscription | None:
    """The address's subscription to the profile that has not ended (there is at most one)."""
    return db.session.scalar(
        sa.select(Subscription).where(
            Subscription.email == email,
            Subscription.profile_id == profile_id,
            Subscription.ended_at.is_(None),
        )
    )


def subscriptions_by_id(ids: list[int]) -> list[Subscription]:
    statement = (
        sa.select(Subscription)
        .options(joinedload(Subscription.profile).joinedload(Profile.country))
        .where(Subscription.id.in_(ids))
        .order_by(Subscription.id)
    )
    return list(db.session.scalars(statement))


def profiles_by_id(ids: list[int] | tuple[int, ...]) -> list[Profile]:
    """Published profiles with these ids, by country name and topic."""
    statement = (
        sa.select(Profile)
        .join(Profile.country)
        .options(joinedload(Profile.country))
        .where(Profile.id.in_(ids), Profile.is_published)
        .order_by(Country.name, Profile.topic, Profile.language)
    )
    return list(db.session.scalars(statement))
