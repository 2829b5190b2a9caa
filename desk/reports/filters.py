"""A report's filters, read from the query string, and the scope they give for one viewer.

Editors see their countries only: every figure is filtered by their country assignments, and
naming a country, profile, section or editor outside them is a 404, as on every staff route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import abort

from desk.accounts.models import CountryAssignment, User
from desk.extensions import db
from desk.feedback.models import Channel
from desk.profiles.models import Country, Profile, Section
from desk.reports.metrics import Month, Scope

#: How a report may group its figures, in the order the form offers them.
GROUP_CHOICES = {
    "country": "Country",
    "editor": "Editor",
    "section": "Section",
    "month": "Month",
}
DEFAULT_GROUP = "country"
DEFAULT_DAYS = 90


@dataclass(frozen=True)
class ReportFilters:
    """What the viewer asked for; every object here is one they may see."""

    from_date: date
    to_date: date
    country: Country | None = None
    profile: Profile | None = None
    section: Section | None = None
    editor: User | None = None
    channel: Channel | None = None
    group: str = DEFAULT_GROUP

    def query_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for links to this report and its CSV)."""
        args = {
            "from": self.from_date.isoformat(),
            "to": self.to_date.isoformat(),
            "group": self.group,
        }
        if self.country is not None:
            args["country"] = self.country.code
        if self.profile is not None:
            args["profile"] = str(self.profile.id)
        if self.section is not None:
            args["section"] = str(self.section.id)
        if self.editor is not None:
            args["editor"] = str(self.editor.id)
        if self.channel is not None:
            args["channel"] = self.channel.value
        return args

    def describe(self, *, dated: bool = True) -> list[tuple[str, str]]:
        """The filters in words, for the page and the CSV header."""
        lines = []
        if dated:
            lines.append(
                ("Date range", f"{self.from_date.isoformat()} to {self.to_date.isoformat()}")
            )
        lines.append(("Country", self.country.name if self.country else "all"))
        if self.profile is not None:
            lines.append(("Profile", f"{self.profile.topic} ({self.profile.language})"))
        if self.section is not None:
            lines.append(("Section", self.section.heading))
        if self.editor is not None:
            lines.append(("Editor", self.editor.name))
        if self.channel is not None:
            lines.append(("Channel", self.channel.value))
        return lines


def allowed_country_ids(user: User | None) -> frozenset[int] | None:
    """The countries whose figures ``user`` may see; None means every country and unrouted.

    No user (the command line) sees everything, as managers do.
    """
    if user is None or user.sees_all_countries:
        return None
    rows = db.session.scalars(
        sa.select(CountryAssignment.country_id).where(CountryAssignment.user_id == user.id)
    )
    return frozenset(rows)


def _may_see(allowed: frozenset[int] | None, country_id: int | None) -> bool:
    return allowed is None or country_id in allowed


def _date(args: Mapping[str, str], name: str, default: date) -> date:
    raw = (args.get(name) or "").strip()
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400, description=f"{name!r} must be a date like 2026-03-31.")


def _id(args: Mapping[str, str], name: str) -> int | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        abort(400, description=f"{name!r} must be a number.")
    return int(raw)


def parse_filters(args: Mapping[str, str], user: User | None, today: date) -> ReportFilters:
    """Read the filters; 400 for a malformed one, 404 for anything the user may not see."""
    allowed = allowed_country_ids(user)
    to_date = _date(args, "to", today)
    from_date = _date(args, "from", to_date - timedelta(days=DEFAULT_DAYS - 1))
    if from_date > to_date:
        abort(400, description="The start of the date range is after its end.")

    country = None
    code = (args.get("country") or "").strip().upper()
    if code:
        country = db.session.scalar(sa.select(Country).where(Country.code == code))
        if country is None or not _may_see(allowed, country.id):
            abort(404)

    profile = None
    profile_id = _id(args, "profile")
    if profile_id is not None:
        profile = db.session.get(Profile, profile_id)
        if profile is None or not _may_see(allowed, profile.country_id):
            abort(404)

    section = None
    section_id = _id(args, "section")
    if section_id is not None:
        section = db.session.get(Section, section_id)
        if section is None or not _may_see(allowed, section.profile.country_id):
            abort(404)

    editor = None
    editor_id = _id(args, "editor")
    if editor_id is not None:
        editor = db.session.get(User, editor_id)
        if editor is None or not _shares_a_country(editor, allowed):
            abort(404)

    channel = None
    raw_channel = (args.get("channel") or "").strip()
    if raw_channel:
        try:
            channel = Channel(raw_channel)
        except ValueError:
            abort(400, description=f"Unknown channel {raw_channel!r}.")

    group = (args.get("group") or DEFAULT_GROUP).strip()
    if group not in GROUP_CHOICES:
        abort(400, description=f"Reports group by {', '.join(GROUP_CHOICES)}.")
    return ReportFilters(from_date, to_date, country, profile, section, editor, channel, group)


def _shares_a_country(editor: User, allowed: frozenset[int] | None) -> bool:
    if allowed is None:
        return True
    return any(assignment.country_id in allowed for assignment in editor.assignments)


def months_between(first: date, last: date, zone: ZoneInfo) -> tuple[Month, ...]:
    """The calendar months from ``first``'s to ``last``'s, with their first instants as UTC."""
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        starts_at = datetime.combine(date(year, month, 1), time(), zone).astimezone(UTC)
        months.append(Month(f"{year:04d}-{month:02d}", starts_at))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(months)


def build_scope(filters: ReportFilters, user: User | None, now: datetime, zone: ZoneInfo) -> Scope:
    """The scope of the filters for ``user`` (None: the command line, which sees everything).

    The date range covers whole days in the desk's time zone, ``to`` included.
    """
    starts_at = datetime.combine(filters.from_date, time(), zone).astimezone(UTC)
    ends_at = datetime.combine(filters.to_date + timedelta(days=1), time(), zone).astimezone(UTC)
    return Scope(
        starts_at=starts_at,
        ends_at=ends_at,
        months=months_between(filters.from_date, filters.to_date, zone),
        now=now,
        allowed_country_ids=allowed_country_ids(user),
        country_id=filters.country.id if filters.country else None,
        profile_id=filters.profile.id if filters.profile else None,
        section_id=filters.section.id if filters.section else None,
        editor_id=filters.editor.id if filters.editor else None,
        channel=filters.channel.value if filters.channel else None,
    )


def choices(user: User) -> dict[str, Any]:
    """What the filter form offers: the countries, profiles and editors the user may see."""
    allowed = allowed_country_ids(user)
    countries = sa.select(Country).order_by(Country.name)
    profiles = sa.select(Profile).join(Profile.country).order_by(Country.name, Profile.topic)
    editors = (
        sa.select(User)
        .where(
            User.id.in_(
                sa.select(CountryAssignment.user_id).where(
                    CountryAssignment.country_id.in_(sorted(allowed))
                    if allowed is not None
                    else sa.true()
                )
            )
        )
        .order_by(User.name)
    )
    if allowed is not None:
        countries = countries.where(Country.id.in_(sorted(allowed)))
        profiles = profiles.where(Profile.country_id.in_(sorted(allowed)))
    return {
        "countries": list(db.session.scalars(countries)),
        "profiles": list(db.session.scalars(profiles)),
        "editors": list(db.session.scalars(editors)),
        "channels": list(Channel),
        "groups": GROUP_CHOICES,
    }
