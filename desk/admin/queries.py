"""Reads for the administration pages."""

from __future__ import annotations

from dataclasses import dataclass

import pycountry
import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from desk.accounts.models import CountryAssignment, Role, Setting, User
from desk.extensions import db
from desk.profiles.models import Country, Profile
from desk.profiles.operations import country_name


def all_users() -> list[User]:
    """Every account with its countries, by name."""
    return list(
        db.session.scalars(
            sa.select(User)
            .options(selectinload(User.assignments).joinedload(CountryAssignment.country))
            .order_by(sa.func.lower(User.name), User.id)
        )
    )


def countries_in_use() -> list[Country]:
    """Countries the desk knows (made for an editor, a profile or an item), by name."""
    return list(
        db.session.scalars(
            sa.select(Country).options(selectinload(Country.profiles)).order_by(Country.name)
        )
    )


def country_assignments(country: Country) -> list[CountryAssignment]:
    """The country's editors, lead first, then by name."""
    return list(
        db.session.scalars(
            sa.select(CountryAssignment)
            .join(CountryAssignment.user)
            .options(joinedload(CountryAssignment.user))
            .where(CountryAssignment.country_id == country.id)
            .order_by(CountryAssignment.is_lead.desc(), sa.func.lower(User.name), User.id)
        )
    )


def assignments_by_country() -> dict[int, list[CountryAssignment]]:
    rows = db.session.scalars(
        sa.select(CountryAssignment).options(joinedload(CountryAssignment.user))
    )
    grouped: dict[int, list[CountryAssignment]] = {}
    for assignment in rows:
        grouped.setdefault(assignment.country_id, []).append(assignment)
    return grouped


def editor_candidates(country: Country | None) -> list[User]:
    """Editors (active or invited) who do not work on the country yet (every one if it is new)."""
    statement = sa.select(User).where(
        User.role == Role.EDITOR, sa.or_(User.is_active, User.password_hash == "")
    )
    if country is not None:
        assigned = sa.select(CountryAssignment.user_id).where(
            CountryAssignment.country_id == country.id
        )
        statement = statement.where(User.id.not_in(assigned))
    return list(db.session.scalars(statement.order_by(sa.func.lower(User.name), User.id)))


@dataclass(frozen=True)
class IsoCountry:
    code: str
    name: str


def iso_countries() -> list[IsoCountry]:
    """Every ISO 3166-1 country, by name, for opening a country not in the desk yet."""
    records = [IsoCountry(r.alpha_2, country_name(r)) for r in pycountry.countries]
    return sorted(records, key=lambda c: c.name)


def iso_country(code: str) -> IsoCountry | None:
    record = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    return IsoCountry(record.alpha_2, country_name(record)) if record else None


def find_country(code: str) -> Country | None:
    return db.session.scalar(sa.select(Country).where(Country.code == code.upper()))


def all_profiles() -> list[Profile]:
    """Every profile, published or not, by country name, topic and language."""
    return list(
        db.session.scalars(
            sa.select(Profile)
            .join(Profile.country)
            .options(joinedload(Profile.country), selectinload(Profile.sections))
            .order_by(Country.name, Profile.topic, Profile.language)
        )
    )


def stored_settings() -> dict[str, Setting]:
    return {row.name: row for row in db.session.scalars(sa.select(Setting))}


def users_by_id(ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))}
