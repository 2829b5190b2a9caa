"""Clock and calendar: one place that knows about UTC and the desk's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only kind stored)."""
    return datetime.now(UTC)


def desk_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["DESK_TIMEZONE"])


def desk_today(now: datetime | None = None) -> date:
    """Today's date in the desk's time zone: the date a stamp carries."""
    return (now or utcnow()).astimezone(desk_zone()).date()


def format_day(value: date | None) -> str:
    """'16 August 2011', the Monitor's date style (no leading zero)."""
    if value is None:
        return ""
    return f"{value.day} {value:%B %Y}"
