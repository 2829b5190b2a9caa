"""Every change to subscriptions, and the notifications written when a profile is updated.

These flush, never commit: the view, job or command that calls them commits, and the emails
they write to the outbox go out only once it has.

A subscriber who subscribes again while subscribed keeps the same subscription: once the new
request is confirmed, its frequency and language are changed in place. The row's history (when
it was confirmed, how far its digests have gone) stays whole, and a change of preference is not
a new subscription. Until confirmed, a request changes nothing of an active subscription, so a
stranger typing someone's address cannot alter what they receive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from desk.accounts.models import NotificationMode, User
from desk.accounts.operations import normalise_email
from desk.core.audit import record_audit
from desk.core.time import utcnow
from desk.extensions import db
from desk.notify.delivery import retry_dead
from desk.notify.models import Frequency, OutboxMessage, OutboxState, Subscription
from desk.notify.outbox import (
    add_messages,
    deliver_after_commit,
    new_message,
    queue_email,
    render_email,
    site_context,
    site_url_for,
)
from desk.notify.queries import (
    dedupe_prefix_filter,
    open_subscription,
    profile_update_prefix,
    profiles_by_id,
    subscriptions_of,
)
from desk.notify.tokens import (
    ConfirmRequest,
    confirm_hours,
    make_confirm_token,
    make_manage_token,
    make_unsubscribe_token,
)
from desk.profiles.models import Profile, ProfileUpdate

#: Why a subscription ended (Subscription.ended_reason).
ENDED_UNSUBSCRIBED = "unsubscribed"
ENDED_ONE_CLICK = "one-click"
ENDED_NEVER_CONFIRMED = "never confirmed"

#: Repeats of the same subscription request within this window send one confirmation email
#: (a double click, a reload); a later repeat sends a fresh one.
CONFIRM_RESEND_WINDOW = timedelta(minutes=10)


def address_key(email: str) -> str:
    """The address as a part of a dedupe key, which must stay within its column's 200 characters."""
    if len(email) <= 120:
        return email
    return "sha256:" + hashlib.sha256(email.encode()).hexdigest()[:40]


# --------------------------------------------------------------------------- subscribing


def request_subscriptions(
    email: str,
    profiles: Iterable[Profile],
    frequency: Frequency,
    language: str,
    *,
    now: datetime | None = None,
) -> list[Subscription]:
    """Start the double opt-in: pending subscriptions, and the email with the link to confirm.

    A profile the address has no open subscription to gets a pending one; a pending one takes
    the new frequency and language; an active one is left as it is until the link is confirmed.
    The confirmation link carries the request itself, so it works whichever of these applied.
    Returns the address's open subscriptions to these profiles.
    """
    now = now or utcnow()
    email = normalise_email(email)
    profiles = list(profiles)
    subscriptions = []
    for profile in profiles:
        subscription = open_subscription(email, profile.id)
        if subscription is None:
            subscription = _add_subscription(email, profile.id, frequency, language)
        elif subscription.confirmed_at is None:
            subscription.frequency = frequency
            subscription.language = language
        subscriptions.append(subscription)
    request = ConfirmRequest(
        email=email,
        profile_ids=tuple(sorted(profile.id for profile in profiles)),
        frequency=frequency,
        language=language,
    )
    bucket = int(now.timestamp() // CONFIRM_RESEND_WINDOW.total_seconds())
    fingerprint = hashlib.sha256(repr(request).encode()).hexdigest()[:16]
    queue_email(
        "subscription.confirm",
        email,
        template="subscription_confirm",
        dedupe_key=f"subscription.confirm:{address_key(email)}:{fingerprint}:{bucket}",
        language=language,
        profiles=sorted(profiles, key=lambda p: (p.country.name, p.topic)),
        frequency=frequency,
        confirm_url=site_url_for("notify.confirm", token=make_confirm_token(request)),
        hours=confirm_hours(),
    )
    db.session.flush()
    return subscriptions


def _add_subscription(
    email: str,
    profile_id: int,
    frequency: Frequency,
    language: str,
    confirmed_at: datetime | None = None,
) -> Subscription:
    """A new open subscription; if a concurrent request just made one, that one."""
    subscription = Subscription(
        email=email,
        profile_id=profile_id,
        frequency=frequency,
        language=language,
        confirmed_at=confirmed_at,
    )
    try:
        with db.session.begin_nested():
            db.session.add(subscription)
    except IntegrityError:
        existing = open_subscription(email, profile_id)
        if existing is None:
            raise
        return existing
    return subscription


def confirm_subscriptions(
    request: ConfirmRequest, *, now: datetime | None = None
) -> list[Subscription]:
    """Do what a confirmation link asks: the address's subscriptions to these profiles are active.

    Pending ones are confirmed; active ones take the frequency and language asked for; a profile
    with neither (the request was cleaned up, or ended since) gets a new, confirmed one.
    Profiles no longer published are left out. Returns the subscriptions, by profile.
    """
    now = now or utcnow()
    confirmed = []
    for profile in profiles_by_id(request.profile_ids):
        subscription = open_subscription(request.email, profile.id)
        if subscription is None:
            subscription = _add_subscription(
                request.email, profile.id, request.frequency, request.language, confirmed_at=now
            )
        if subscription.confirmed_at is None:
            subscription.confirmed_at = now
            subscription.frequency = request.frequency
            subscription.language = request.language
        else:
            change_subscription(subscription, request.frequency, request.language, now=now)
        confirmed.append(subscription)
    db.session.flush()
    return confirmed


def change_subscription(
    subscription: Subscription,
    frequency: Frequency,
    language: str,
    *,
    now: datetime | None = None,
) -> None:
    """Change how often and in which language a subscriber hears about a profile.

    Moving from immediate emails to a digest starts the digest now: the updates before were
    sent one by one already. Moving between digests keeps the digest's place, so nothing is
    skipped or repeated. (Updates still waiting for a digest when a subscriber moves to
    immediate emails are not sent.)
    """
    if (
        subscription.frequency == Frequency.IMMEDIATE
        and frequency != Frequency.IMMEDIATE
        and subscription.confirmed_at is not None
    ):
        subscription.digested_until = now or utcnow()
    subscription.frequency = frequency
    subscription.language = language


def end_subscriptions(
    subscriptions: Iterable[Subscription], reason: str, *, now: datetime | None = None
) -> list[Subscription]:
    """End the subscriptions that have not ended yet (nothing is deleted); returns those ended."""
    now = now or utcnow()
    ended = []
    for subscription in subscriptions:
        if subscription.ended_at is None:
            subscription.ended_at = now
            subscription.ended_reason = reason
            ended.append(subscription)
    db.session.flush()
    return ended


def end_unconfirmed(*, now: datetime | None = None) -> int:
    """End requests whose confirmation link has expired unused; returns how many."""
    now = now or utcnow()
    cutoff = now - timedelta(hours=confirm_hours())
    result = db.session.execute(
        sa.update(Subscription)
        .where(
            Subscription.confirmed_at.is_(None),
            Subscription.ended_at.is_(None),
            Subscription.created_at < cutoff,
        )
        .values(ended_at=now, ended_reason=ENDED_NEVER_CONFIRMED)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def queue_manage_link(email: str, language: str) -> OutboxMessage | None:
    """Email an address the link to its subscriptions, if it has any (none: nothing is sent).

    At most one such email per address every ten minutes, however often it is asked for.
    """
    email = normalise_email(email)
    subscriptions = subscriptions_of(email)
    if not subscriptions:
        return None
    bucket = int(utcnow().timestamp() // CONFIRM_RESEND_WINDOW.total_seconds())
    return queue_email(
        "subscription.manage_link",
        email,
        template="subscription_manage_link",
        dedupe_key=f"subscription.manage:{address_key(email)}:{bucket}",
        language=language,
        subscriptions=subscriptions,
        manage_url=manage_url(subscriptions[-1].id, language),
    )


# --------------------------------------------------------------------------- links and headers


def manage_url(subscription_id: int, language: str) -> str:
    """The page listing every subscription of this subscription's address."""
    return site_url_for("notify.manage", token=make_manage_token(subscription_id, language))


def unsubscribe_url(subscription_ids: list[int]) -> str:
    return site_url_for("notify.unsubscribe", token=make_unsubscribe_token(subscription_ids))


def subscriber_headers(unsubscribe: str) -> dict[str, str]:
    """The headers of every email to subscribers: one-click unsubscribe (RFC 2369, RFC 8058)."""
    return {
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def profile_url(profile: Profile, anchor: str | None = None) -> str:
    """The public page of a profile (in its own language), or one of its sections."""
    url = site_url_for(
        "profiles.detail",
        country_slug=profile.country.slug,
        topic_slug=profile.topic_slug,
        lang=profile.language if profile.language != "en" else None,
    )
    return f"{url}#{anchor}" if anchor else url


@dataclass(frozen=True)
class SectionChange:
    heading: str
    url: str
    change_note: str


@dataclass(frozen=True)
class UpdateSummary:
    """What an email says about one ProfileUpdate, drawn once for all its readers."""

    update: ProfileUpdate
    profile: Profile
    url: str
    sections: list[SectionChange]


def summarise_update(update: ProfileUpdate) -> UpdateSummary:
    profile = update.profile
    revisions = sorted(update.revisions, key=lambda revision: revision.section.position)
    sections = [
        SectionChange(
            heading=revision.heading,
            url=profile_url(profile, revision.section.anchor),
            change_note=revision.change_note if revision.change_note != update.change_note else "",
        )
        for revision in revisions
    ]
    return UpdateSummary(
        update=update, profile=profile, url=profile_url(profile), sections=sections
    )


# --------------------------------------------------------------------------- notices


#: Stand-ins for a reader's own links in a notice drawn once for all readers of a language.
_UNSUBSCRIBE_SLOT = "https://desk.invalid/unsubscribe-slot"
_MANAGE_SLOT = "https://desk.invalid/manage-slot"


def queue_profile_update_notices(update: ProfileUpdate) -> int:
    """Write the "profile updated" email for every confirmed immediate subscriber.

    Daily and weekly subscribers get the update in their digest. The dedupe key pairs the update
    with the address (prefix ``profile.updated:<update id>:``), so nobody is told about the same
    update twice, however often this runs. Returns how many were queued.

    The email is drawn once per language and each reader's copy gets their own unsubscribe and
    manage links: an approval with ten thousand subscribers stays a matter of seconds.
    """
    subscriptions = db.session.scalars(
        sa.select(Subscription)
        .where(
            Subscription.profile_id == update.profile_id,
            Subscription.confirmed_at.is_not(None),
            Subscription.ended_at.is_(None),
            Subscription.frequency == Frequency.IMMEDIATE,
        )
        .order_by(Subscription.id)
    ).all()
    if not subscriptions:
        return 0
    prefix = profile_update_prefix(update.id)
    already = set(
        db.session.scalars(sa.select(OutboxMessage.dedupe_key).where(dedupe_prefix_filter(prefix)))
    )
    drawn: dict[str, tuple[str, str, str]] = {}
    messages = []
    with site_context():
        summary = summarise_update(update)
        for subscription in subscriptions:
            key = f"{prefix}{address_key(subscription.email)}"
            if key in already:
                continue
            already.add(key)
            language = subscription.language
            if language not in drawn:
                drawn[language] = render_email(
                    "profile_updated",
                    language,
                    summary=summary,
                    update=update,
                    profile=update.profile,
                    unsubscribe_url=_UNSUBSCRIBE_SLOT,
                    manage_url=_MANAGE_SLOT,
                )
            subject, text, html = drawn[language]
            unsubscribe = unsubscribe_url([subscription.id])
            manage = manage_url(subscription.id, language)
            messages.append(
                new_message(
                    "profile.updated",
                    subscription.email,
                    subject=subject,
                    text=_fill(text, unsubscribe, manage),
                    html=_fill(html, unsubscribe, manage),
                    dedupe_key=key,
                    headers=subscriber_headers(unsubscribe),
                )
            )
    add_messages(messages)
    return len(messages)


def _fill(body: str, unsubscribe: str, manage: str) -> str:
    """A reader's copy: their own links in place of the stand-ins (URL-safe: no escaping)."""
    return body.replace(_UNSUBSCRIBE_SLOT, unsubscribe).replace(_MANAGE_SLOT, manage)


# --------------------------------------------------------------------------- staff


def retry_messages(messages: Iterable[OutboxMessage], *, actor_id: int) -> int:
    """An admin's retry: dead emails are due again with fresh attempts; one audit row each.

    Messages that are not dead are left alone. Returns how many were retried.
    """
    retried = 0
    for message in messages:
        if message.state != OutboxState.DEAD:
            continue
        record_audit(
            actor_id,
            "outbox.retried",
            "outbox_message",
            message.id,
            {
                "kind": message.kind,
                "recipient": message.recipient,
                "attempts": message.attempts,
                "last_error": message.last_error,
            },
        )
        retry_dead(message)
        retried += 1
    if retried:
        db.session.flush()
        deliver_after_commit()
    return retried


def set_notification_mode(user: User, mode: NotificationMode, *, actor_id: int) -> bool:
    """Choose how a staff member hears of their work: at once, or in a daily digest (audited).

    Returns False when nothing changed.
    """
    if user.notification_mode == mode:
        return False
    before = user.notification_mode
    user.notification_mode = mode
    record_audit(
        actor_id,
        "user.notification_mode_changed",
        "user",
        user.id,
        {"before": str(before), "after": str(mode)},
    )
    db.session.flush()
    return True
