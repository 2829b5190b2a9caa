"""Reading what arrived at the test SMTP server, and making subscribers and stamps quickly."""

from __future__ import annotations

import re
from datetime import date, datetime
from email.message import EmailMessage

from desk.core.time import utcnow
from desk.extensions import db
from desk.notify.models import Frequency, Subscription
from desk.profiles.models import Profile, ProfileUpdate

URL = re.compile(r"https?://[^\s<>\"]+")


def parts(message: EmailMessage) -> dict[str, str]:
    """The text and HTML parts of a received email, by content type."""
    return {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if not part.is_multipart()
    }


def links(message: EmailMessage, containing: str) -> list[str]:
    """The URLs in the text part that contain ``containing``."""
    return [url for url in URL.findall(parts(message)["text/plain"]) if containing in url]


def path_of(url: str, site: str = "http://desk.test") -> str:
    assert url.startswith(site), url
    return url[len(site) :]


def subscribe(
    profile: Profile,
    email: str,
    *,
    frequency: Frequency = Frequency.IMMEDIATE,
    language: str = "en",
    confirmed_at: datetime | None = None,
) -> Subscription:
    """A confirmed subscription, made directly (the web flow has tests of its own)."""
    subscription = Subscription(
        email=email,
        profile=profile,
        frequency=frequency,
        language=language,
        confirmed_at=confirmed_at or utcnow(),
    )
    db.session.add(subscription)
    db.session.flush()
    return subscription


def stamp(
    profile: Profile,
    *,
    note: str = "New figures on stockpile destruction.",
    on: date = date(2026, 11, 29),
    at: datetime | None = None,
) -> ProfileUpdate:
    """A "Last Updated" stamp of the profile, publishing its first section's current revision."""
    update = ProfileUpdate(profile=profile, stamped_on=on, change_note=note)
    if at is not None:
        update.created_at = at
    db.session.add(update)
    db.session.flush()
    section = profile.sections[0]
    if section.current_revision is not None:
        section.current_revision.profile_update = update
        section.current_revision.change_note = f"Revised: {section.heading}"
    profile.last_updated_on = on
    db.session.flush()
    return update
