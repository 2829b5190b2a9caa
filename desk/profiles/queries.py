"""Reads of countries and profiles."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, joinedload, selectinload

from desk.extensions import db
from desk.profiles.models import Country, Profile, ProfileUpdate, Section


def published_profiles() -> list[Profile]:
    """Every published profile with its country, ordered by country name then topic."""
    statement = (
        sa.select(Profile)
        .join(Profile.country)
        .options(contains_eager(Profile.country))
        .where(Profile.is_published)
        .order_by(Country.name, Profile.topic, Profile.language)
    )
    return list(db.session.scalars(statement))


def find_profile(country_slug: str, topic_slug: str, language: str | None = None) -> Profile | None:
    """The published profile at /profiles/<country>/<topic>; the English one unless asked."""
    return db.session.scalars(profile_at(country_slug, topic_slug, language)).first()


def profile_at(
    country_slug: str, topic_slug: str, language: str | None
) -> sa.Select[tuple[Profile]]:
    """The query of :func:`find_profile`, for a session of the caller's choosing."""
    return (
        sa.select(Profile)
        .join(Profile.country)
        .options(contains_eager(Profile.country))
        .where(
            Country.slug == country_slug,
            Profile.topic_slug == topic_slug,
            Profile.is_published,
        )
        .order_by((Profile.language == (language or "en")).desc(), Profile.language)
        .limit(1)
    )


def profile_sections(profile: Profile) -> list[Section]:
    """The profile's sections in reading order, each with its current revision loaded."""
    statement = (
        sa.select(Section)
        .where(Section.profile_id == profile.id)
        .options(joinedload(Section.current_revision))
        .order_by(Section.position, Section.id)
    )
    return list(db.session.scalars(statement))


def find_profile_by_topic(country: Country, topic_slug: str, language: str) -> Profile | None:
    """A profile by its natural key, published or not (for import and export)."""
    statement = (
        sa.select(Profile)
        .where(
            Profile.country_id == country.id,
            Profile.topic_slug == topic_slug,
            Profile.language == language,
        )
        .options(selectinload(Profile.sections).joinedload(Section.current_revision))
    )
    return db.session.scalars(statement).first()


def what_changed(profile: Profile, limit: int = 20) -> list[ProfileUpdate]:
    """The public "What changed" list: stamps of approved revisions, newest first.

    Imports (made by no one) and dates set by hand (whose reason is for staff) are left out.
    """
    return list(
        db.session.scalars(
            sa.select(ProfileUpdate)
            .where(
                ProfileUpdate.profile_id == profile.id,
                ProfileUpdate.created_by_id.is_not(None),
                ProfileUpdate.is_manual.is_(False),
            )
            .order_by(ProfileUpdate.stamped_on.desc(), ProfileUpdate.id.desc())
            .limit(limit)
        )
    )
