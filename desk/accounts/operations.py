"""Every change to staff accounts. These flush and audit; the caller commits."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from desk.accounts.models import CountryAssignment, Role, User
from desk.core.audit import record_audit
from desk.core.text import strip_nul
from desk.core.time import utcnow
from desk.extensions import db
from desk.profiles.models import Country


class AccountError(ValueError):
    """A change that cannot be made, with a message fit to show."""


def normalise_email(email: str) -> str:
    """Lower-cased, trimmed, and without NUL bytes (PostgreSQL refuses them in a query)."""
    return strip_nul(email).strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def create_user(
    email: str,
    *,
    name: str,
    role: Role,
    password: str | None = None,
    countries: Iterable[Country] = (),
    lead_countries: Iterable[Country] = (),
    actor_id: int | None = None,
) -> User:
    """Create a staff account with its country assignments; refuses an email already in use."""
    email = normalise_email(email)
    if "@" not in email:
        raise AccountError(f"{email!r} is not an email address.")
    if find_user_by_email(email) is not None:
        raise AccountError(f"There is already an account for {email}.")
    user = User(email=email, name=name.strip() or email, role=role)
    if password:
        user.set_password(password)
    db.session.add(user)
    leads = {country.id for country in lead_countries}
    for country in {c.id: c for c in [*countries, *lead_countries]}.values():
        user.assignments.append(CountryAssignment(country=country, is_lead=country.id in leads))
    db.session.flush()
    record_audit(
        actor_id,
        "user.created",
        "user",
        user.id,
        {
            "after": {
                "email": email,
                "role": str(role),
                "countries": sorted(c.code for c in (a.country for a in user.assignments)),
                "lead": sorted(a.country.code for a in user.assignments if a.is_lead),
            }
        },
    )
    return user


def record_login(user: User) -> None:
    """Note a successful login (the audit trail shows who signed in when)."""
    user.last_login_at = utcnow()
    record_audit(user.id, "user.logged_in", "user", user.id)
