"""Reads for the staff home page."""

from __future__ import annotations

import sqlalchemy as sa

from desk.accounts.models import CountryAssignment, User
from desk.extensions import db
from desk.profiles.models import Country, Profile


def visible_profiles(user: User) -> list[Profile]:
    """The profiles of the user's countries (all of them for managers and admins)."""
    statement = sa.select(Profile).join(Profile.country).order_by(Country.name, Profile.topic)
    if not user.sees_all_countries:
        statement = statement.join(
            CountryAssignment, CountryAssignment.country_id == Profile.country_id
        ).where(CountryAssignment.user_id == user.id)
    return list(db.session.scalars(statement))
