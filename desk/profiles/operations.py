"""Every change to countries and profiles. These flush and audit; the caller commits."""

from __future__ import annotations

import pycountry
import sqlalchemy as sa

from desk.core.text import slugify
from desk.extensions import db
from desk.profiles.models import Country


class UnknownCountry(ValueError):
    """An ISO code or name that is not a country."""


def country_name(record: object) -> str:
    """The everyday English name pycountry knows ("Bolivia", not "Bolivia, Plurinational …")."""
    return getattr(record, "common_name", None) or record.name  # type: ignore[attr-defined]


def ensure_country(code: str) -> Country:
    """The Country with this ISO 3166-1 alpha-2 code, created from the ISO list if new."""
    code = code.strip().upper()
    country = db.session.scalar(sa.select(Country).where(Country.code == code))
    if country is not None:
        return country
    record = pycountry.countries.get(alpha_2=code)
    if record is None:
        raise UnknownCountry(f"{code!r} is not an ISO 3166-1 alpha-2 country code.")
    name = country_name(record)
    country = Country(code=code, name=name, slug=slugify(name))
    db.session.add(country)
    db.session.flush()
    return country
