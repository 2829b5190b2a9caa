"""Send each new item to its country's editors, and pick its first assignee."""

from __future__ import annotations

import sqlalchemy as sa

from desk.accounts.models import CountryAssignment, Role, User
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import EventKind, Feedback, FeedbackStatus
from desk.feedback.timeline import NewTimeline
from desk.profiles.models import AutoAssign, Country

#: A country's active editors, each with whether they lead it. Built once: every item that
#: arrives runs it, and building a statement costs about as much as running this one.
_EDITORS = (
    sa.select(User, CountryAssignment.is_lead)
    .join(CountryAssignment, CountryAssignment.user_id == User.id)
    .where(
        CountryAssignment.country_id == sa.bindparam("country_id"),
        User.is_active,
        User.role == Role.EDITOR,
    )
    .order_by(User.id)
)


def _editors(country: Country) -> list[tuple[User, bool]]:
    rows = db.session.execute(_EDITORS, {"country_id": country.id})
    return [(user, is_lead) for user, is_lead in rows]


def _open_items(user_ids: list[int]) -> dict[int, int]:
    rows = db.session.execute(
        sa.select(Feedback.assignee_id, sa.func.count().label("open_items"))
        .where(Feedback.assignee_id.in_(user_ids), Feedback.status != FeedbackStatus.CLOSED)
        .group_by(Feedback.assignee_id)
    )
    return {row.assignee_id: row.open_items for row in rows}


def choose_assignee(country: Country) -> tuple[User | None, str]:
    """The editor a new item of this country goes to under its auto-assign mode, and why."""
    editors = _editors(country)
    if not editors:
        return None, f"no active editor is assigned to {country.name}"
    if country.auto_assign == AutoAssign.NONE:
        return None, "auto-assign is off for this country"
    if country.auto_assign == AutoAssign.LEAD:
        leads = [user for user, is_lead in editors if is_lead]
        if leads:
            return leads[0], "lead editor"
        return None, f"{country.name} has no lead editor"
    load = _open_items([user.id for user, _ in editors])
    chosen = min((user for user, _ in editors), key=lambda u: (load.get(u.id, 0), u.id))
    return chosen, f"least loaded editor ({load.get(chosen.id, 0)} open items)"


def route(feedback: Feedback, country: Country | None, why: str, timeline: NewTimeline) -> None:
    """Give the new item its country (or leave it unrouted) and its first assignee; record both."""
    now = utcnow()
    if country is None:
        timeline.add(
            EventKind.ROUTED,
            {"country": None, "reason": f"{why}: sent to the unrouted queue"},
            now,
        )
        return
    # By id: the country may be a shared read-only copy (see desk.profiles.page_cache).
    feedback.country_id = country.id
    assignee, assign_reason = choose_assignee(country)
    timeline.add(
        EventKind.ROUTED,
        {"country": country.code, "reason": why, "assignment": assign_reason},
        now,
    )
    if assignee is not None:
        feedback.assignee = assignee
        timeline.add(EventKind.ASSIGNED, {"to": assignee.id, "reason": assign_reason}, now)
