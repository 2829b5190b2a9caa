"""Reads for the staff desk: who sees which feedback, the inbox views, filters and pages.

Visibility is decided in one place, :func:`visible_feedback`: managers and admins see every
item; an editor sees the items of their countries and the items assigned to them. Every list
adds it to its query and every page about one item loads it with
:func:`get_visible_feedback_or_404`, so another country's item is "not found", never "forbidden".

Pages are cut with a keyset (the received time and id of the last row shown), never an OFFSET:
the 500th page costs what the first does. View counts stop at :data:`COUNT_CAP`, for the same
reason.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import abort
from sqlalchemy.orm import joinedload, selectinload

from desk.accounts.models import CountryAssignment, Role, SavedView, User
from desk.core.audit import AuditEvent
from desk.core.time import desk_zone, utcnow
from desk.extensions import db
from desk.feedback.models import (
    Attachment,
    Channel,
    Feedback,
    FeedbackEvent,
    FeedbackStatus,
)
from desk.inbox.search import has_many_matches, search_feedback, search_feedback_between
from desk.profiles.models import Country, Profile, Section

PAGE_SIZE = 50
#: Counts above this show as "1000+": counting a million rows would cost what the page does not.
COUNT_CAP = 1000
OPEN_STATUSES = (FeedbackStatus.NEW, FeedbackStatus.TRIAGED, FeedbackStatus.IN_REVIEW)


class View(enum.StrEnum):
    MINE = "mine"
    COUNTRIES = "countries"
    UNASSIGNED = "unassigned"
    UNROUTED = "unrouted"
    QUARANTINE = "quarantine"
    ALL = "all"


VIEW_LABELS = {
    View.MINE: "Mine",
    View.COUNTRIES: "My countries",
    View.UNASSIGNED: "Unassigned",
    View.UNROUTED: "Unrouted",
    View.QUARANTINE: "Quarantine",
    View.ALL: "All",
}

#: The backlog-age buckets of the reports, in whole days since the item was received.
AGE_BUCKETS = {"0-2": (0, 2), "3-7": (3, 7), "8-30": (8, 30), "31+": (31, None)}


# --------------------------------------------------------------------------- who sees what


def user_country_ids(user: User) -> list[int]:
    """The ids of the countries the user is assigned to.

    Queries use the ids themselves rather than a subquery, so the planner sees the countries
    and walks an index in order.
    """
    return list(
        db.session.scalars(
            sa.select(CountryAssignment.country_id)
            .where(CountryAssignment.user_id == user.id)
            .order_by(CountryAssignment.country_id)
        )
    )


def visible_feedback(user: User) -> sa.ColumnElement[bool]:
    """The condition every staff query about feedback carries."""
    if user.sees_all_countries:
        return sa.true()
    return sa.or_(
        Feedback.country_id.in_(user_country_ids(user)),
        Feedback.assignee_id == user.id,
    )


def get_visible_feedback_or_404(
    reference: str, user: User, *, for_update: bool = False
) -> Feedback:
    """The item with this reference if the user may see it; 404 otherwise (even if it exists)."""
    statement = sa.select(Feedback).where(
        Feedback.reference == reference.upper(), visible_feedback(user)
    )
    if for_update:
        statement = statement.with_for_update(of=Feedback)
    feedback = db.session.scalar(statement)
    if feedback is None:
        abort(404)
    return feedback


def get_visible_feedback_by_id_or_404(
    feedback_id: int, user: User, *, for_update: bool = False
) -> Feedback:
    statement = sa.select(Feedback).where(Feedback.id == feedback_id, visible_feedback(user))
    if for_update:
        statement = statement.with_for_update(of=Feedback)
    feedback = db.session.scalar(statement)
    if feedback is None:
        abort(404)
    return feedback


def find_visible_feedback(reference: str, user: User) -> Feedback | None:
    return db.session.scalar(
        sa.select(Feedback).where(
            Feedback.reference == reference.strip().upper(), visible_feedback(user)
        )
    )


def visible_profiles(user: User) -> list[Profile]:
    """The profiles of the user's countries (all of them for managers and admins)."""
    statement = (
        sa.select(Profile)
        .join(Profile.country)
        .options(joinedload(Profile.country))
        .order_by(Country.name, Profile.topic, Profile.language)
    )
    if not user.sees_all_countries:
        statement = statement.where(Profile.country_id.in_(user_country_ids(user)))
    return list(db.session.scalars(statement))


def visible_countries(user: User) -> list[Country]:
    statement = sa.select(Country).order_by(Country.name)
    if not user.sees_all_countries:
        statement = statement.where(Country.id.in_(user_country_ids(user)))
    return list(db.session.scalars(statement))


def profile_sections(profile_id: int) -> list[Section]:
    return list(
        db.session.scalars(
            sa.select(Section).where(Section.profile_id == profile_id).order_by(Section.position)
        )
    )


def colleagues(user: User) -> list[User]:
    """Active staff the user may filter by assignee: those sharing a country, and the managers."""
    statement = sa.select(User).where(User.is_active).order_by(User.name, User.id)
    if not user.sees_all_countries:
        shared = sa.select(CountryAssignment.user_id).where(
            CountryAssignment.country_id.in_(user_country_ids(user))
        )
        statement = statement.where(
            sa.or_(User.id.in_(shared), User.role != Role.EDITOR, User.id == user.id)
        )
    return list(db.session.scalars(statement))


def assignable_users(feedback: Feedback) -> list[User]:
    """Who may hold the item: active editors of its country, and every manager and admin."""
    editors = sa.select(CountryAssignment.user_id).where(
        CountryAssignment.country_id == feedback.country_id
    )
    condition = User.role != Role.EDITOR
    if feedback.country_id is not None:
        condition = sa.or_(condition, User.id.in_(editors))
    return list(
        db.session.scalars(
            sa.select(User).where(User.is_active, condition).order_by(User.name, User.id)
        )
    )


# --------------------------------------------------------------------------- views and filters


def views_for(user: User) -> list[View]:
    """The inbox views a user has, in the order the tabs show them."""
    if user.sees_all_countries:
        return [View.ALL, View.MINE, View.UNASSIGNED, View.UNROUTED, View.QUARANTINE]
    return [View.COUNTRIES, View.MINE, View.UNASSIGNED, View.QUARANTINE]


def view_condition(view: View, user: User) -> sa.ColumnElement[bool]:
    """Which items a view holds (before the user's visibility is applied)."""
    held = Feedback.is_quarantined.is_(True)
    not_held = Feedback.is_quarantined.is_(False)
    if view == View.MINE:
        return sa.and_(Feedback.assignee_id == user.id, not_held)
    if view == View.COUNTRIES:
        return sa.and_(Feedback.country_id.in_(user_country_ids(user)), not_held)
    if view == View.UNASSIGNED:
        return sa.and_(Feedback.assignee_id.is_(None), Feedback.country_id.is_not(None), not_held)
    if view == View.UNROUTED:
        return sa.and_(Feedback.country_id.is_(None), not_held)
    if view == View.QUARANTINE:
        return held
    return not_held


@dataclass
class InboxQuery:
    """Everything that picks the rows of an inbox page (the query string, parsed)."""

    view: View
    q: str = ""
    country: str = ""
    profile: int | None = None
    section: int | None = None
    #: "open" (new, triaged or in review), one status, or "any".
    status: str = "open"
    #: "", "me", "none" or a user id.
    assignee: str = ""
    channel: str = ""
    has_attachments: bool = False
    age: str = ""
    received_from: date | None = None
    received_to: date | None = None
    #: "newest" first or "oldest" first (the oldest first is the backlog by age).
    sort: str = "newest"

    def to_args(self, **changes: Any) -> dict[str, Any]:
        """The query string of this query (defaults left out), with ``changes`` applied."""
        args: dict[str, Any] = {}
        defaults = InboxQuery(view=self.view)
        for item in fields(self):
            value = changes.get(item.name, getattr(self, item.name))
            if item.name == "view" or value != getattr(defaults, item.name):
                if isinstance(value, bool):
                    value = "1" if value else None
                elif isinstance(value, date):
                    value = value.isoformat()
                if value not in (None, ""):
                    args[item.name] = str(value)
        return args

    @property
    def is_filtered(self) -> bool:
        return self.to_args(view=self.view, sort="newest") != {"view": str(self.view)}


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=desk_zone()).astimezone(UTC)


def _filters(query: InboxQuery, user: User, now: datetime) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [
        visible_feedback(user),
        view_condition(query.view, user),
    ]
    if query.status == "open":
        conditions.append(Feedback.status.in_(OPEN_STATUSES))
    elif query.status in FeedbackStatus.__members__.values():
        conditions.append(Feedback.status == FeedbackStatus(query.status))
    if query.country:
        # Resolved first, so the planner sees one country and walks its index in order.
        country_id = db.session.scalar(sa.select(Country.id).where(Country.code == query.country))
        conditions.append(Feedback.country_id == country_id)
    if query.profile is not None:
        conditions.append(Feedback.profile_id == query.profile)
    if query.section is not None:
        conditions.append(Feedback.section_id == query.section)
    if query.assignee == "me":
        conditions.append(Feedback.assignee_id == user.id)
    elif query.assignee == "none":
        conditions.append(Feedback.assignee_id.is_(None))
    elif query.assignee.isdigit():
        conditions.append(Feedback.assignee_id == int(query.assignee))
    if query.channel in Channel.__members__.values():
        conditions.append(Feedback.channel == Channel(query.channel))
    if query.has_attachments:
        conditions.append(
            sa.exists().where(Attachment.feedback_id == Feedback.id, Attachment.storage_key != "")
        )
    if query.age in AGE_BUCKETS:
        low, high = AGE_BUCKETS[query.age]
        if low > 0:
            conditions.append(Feedback.received_at <= now - timedelta(days=low))
        if high is not None:
            conditions.append(Feedback.received_at > now - timedelta(days=high + 1))
    if query.received_from is not None:
        conditions.append(Feedback.received_at >= _day_start(query.received_from))
    if query.received_to is not None:
        conditions.append(Feedback.received_at < _day_start(query.received_to + timedelta(1)))
    return conditions


def inbox_select(user: User, query: InboxQuery, now: datetime | None = None) -> sa.Select[Any]:
    """The items of a view with its filters and search, unordered and unpaged."""
    statement = sa.select(Feedback).where(*_filters(query, user, now or utcnow()))
    return search_feedback(statement, query.q)


# --------------------------------------------------------------------------- keyset pages

_CURSOR = re.compile(r"^(\d{20})-(\d{1,18})$")


@dataclass(frozen=True)
class Cursor:
    """A place in a list: the received time and id of the row it follows or precedes."""

    received_at: datetime
    id: int

    @classmethod
    def of(cls, feedback: Feedback) -> Cursor:
        return cls(feedback.received_at, feedback.id)

    def encode(self) -> str:
        return f"{self.received_at.astimezone(UTC):%Y%m%d%H%M%S%f}-{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """The cursor a link carries; None for anything that is not one."""
        match = _CURSOR.match(text or "")
        if match is None:
            return None
        try:
            moment = datetime.strptime(match.group(1), "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(moment, int(match.group(2)))


def keyset_after(
    cursor: Cursor, *, descending: bool, at: Any = None, key: Any = None
) -> sa.ColumnElement[bool]:
    """Rows that come after ``cursor`` in (time, id) order, written so an index on time serves.

    ``at`` and ``key`` are the time and id columns (the feedback's by default).
    """
    at = Feedback.received_at if at is None else at
    key = Feedback.id if key is None else key
    if descending:
        return sa.and_(at <= cursor.received_at, sa.or_(at < cursor.received_at, key < cursor.id))
    return sa.and_(at >= cursor.received_at, sa.or_(at > cursor.received_at, key > cursor.id))


@dataclass
class Page:
    items: list[Any]
    #: Cursor of the page before (towards the top of the list), if any.
    previous: str | None = None
    #: Cursor of the page after, if any.
    next: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def keyset_page(
    statement: sa.Select[Any],
    *,
    descending: bool,
    after: Cursor | None = None,
    before: Cursor | None = None,
    size: int = PAGE_SIZE,
    at: Any = None,
    key: Any = None,
    cursor_of: Any = Cursor.of,
) -> Page:
    """One page of ``statement`` in (time, id) order, after or before a cursor.

    Each page is one indexed range scan of ``size + 1`` rows, wherever it is in the list.
    """
    at = Feedback.received_at if at is None else at
    key = Feedback.id if key is None else key

    def ordered(reverse: bool) -> list[Any]:
        order = descending != reverse
        columns = (at.desc(), key.desc()) if order else (at.asc(), key.asc())
        return [*columns]

    if before is not None:
        rows = list(
            db.session.scalars(
                statement.where(keyset_after(before, descending=not descending, at=at, key=key))
                .order_by(*ordered(reverse=True))
                .limit(size + 1)
            )
        )
        more_before = len(rows) > size
        items = list(reversed(rows[:size]))
        return Page(
            items,
            previous=cursor_of(items[0]).encode() if more_before and items else None,
            next=cursor_of(items[-1]).encode() if items else None,
        )
    if after is not None:
        statement = statement.where(keyset_after(after, descending=descending, at=at, key=key))
    rows = list(db.session.scalars(statement.order_by(*ordered(reverse=False)).limit(size + 1)))
    items = rows[:size]
    return Page(
        items,
        previous=cursor_of(items[0]).encode() if after is not None and items else None,
        next=cursor_of(items[-1]).encode() if len(rows) > size else None,
    )


#: How many of the items that come next in the list (from the cursor) a search with many
#: matches looks among for its page on SQLite, widening until a window holds a full page.
SEARCH_WINDOWS = (5_000, 50_000)

_ROW_OPTIONS = (
    joinedload(Feedback.country),
    joinedload(Feedback.profile),
    joinedload(Feedback.section),
    joinedload(Feedback.assignee),
    selectinload(Feedback.attachments),
)


def inbox_page(
    user: User,
    query: InboxQuery,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    size: int | None = None,
) -> Page:
    """One page of the inbox, with what each row shows loaded in a fixed number of queries."""
    descending = query.sort != "oldest"
    size = size or PAGE_SIZE
    if has_many_matches(query.q):
        for rows in SEARCH_WINDOWS:
            page = _search_page_in_window(user, query, rows, descending, after, before, size)
            if page is not None:
                return page
    statement = inbox_select(user, query).options(*_ROW_OPTIONS)
    return keyset_page(statement, descending=descending, after=after, before=before, size=size)


def _search_page_in_window(
    user: User,
    query: InboxQuery,
    rows: int,
    descending: bool,
    after: Cursor | None,
    before: Cursor | None,
    size: int,
) -> Page | None:
    """A page of a search with many matches, looked for among the next ``rows`` items of the
    list's order only (SQLite); None if they do not hold a full page.

    Fetching every match of a common word and sorting them costs a lookup per match. Here the
    received-time index gives the ``rows`` items that come next (from the cursor, in the
    direction of the page) and the range of their ids; only the matches in that id range are
    looked up. Every item received within the window has its id in the range, whatever order
    items were received in, so the page is exact whenever the window holds a full page (more
    than ``size`` matches).
    """
    cursor = after or before
    forward = descending if before is None else not descending
    order = Feedback.received_at.desc() if forward else Feedback.received_at.asc()
    following = sa.select(Feedback.received_at)
    if cursor is not None:
        following = following.where(keyset_after(cursor, descending=forward))
    edge = db.session.scalar(following.order_by(order).offset(rows - 1).limit(1))
    window = [keyset_after(cursor, descending=forward)] if cursor is not None else []
    if edge is not None:
        window.append(Feedback.received_at >= edge if forward else Feedback.received_at <= edge)
    low_id, high_id = db.session.execute(
        sa.select(sa.func.min(Feedback.id), sa.func.max(Feedback.id)).where(*window)
    ).one()
    if low_id is None:
        return Page([]) if edge is None else None
    statement = sa.select(Feedback).where(*_filters(query, user, utcnow()), *window)
    statement = search_feedback_between(statement, query.q, low_id, high_id)
    page = keyset_page(
        statement.options(*_ROW_OPTIONS),
        descending=descending,
        after=after,
        before=before,
        size=size,
    )
    full = (page.previous if before is not None else page.next) is not None
    return page if full or edge is None else None


def capped_count(
    statement: sa.Select[Any], cap: int | None = None, *, newest_first: bool = False
) -> int:
    """How many rows ``statement`` has, counting no further than ``cap + 1``.

    ``newest_first`` counts along the inbox's own order, the rows the first pages show; see
    :func:`view_counts` for when that is the cheaper way.
    """
    cap = COUNT_CAP if cap is None else cap
    limited = statement.with_only_columns(sa.literal(1))
    if newest_first:
        limited = limited.order_by(Feedback.received_at.desc())
    subquery = limited.limit(cap + 1).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(subquery)) or 0


def count_label(count: int) -> str:
    """A count as shown: "1,000+" past the cap."""
    return f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}"


def view_counts(user: User) -> dict[View, int]:
    """Open items per view (held items for the quarantine), each counted up to the cap.

    Most views are counted unordered, along an index that starts with their own condition
    and the status. Two are counted newest first, along their (condition, received time)
    index, because with a million items the unordered count reads far more than it counts:
    "All" holds nearly the whole table and no index leads with the status, so the database may
    start from the oldest rows, nearly all closed (0.4 s before it finds a thousand open
    ones); and for an editor SQLite answers "Quarantine" by reading every item of their
    countries for the few held ones (0.3 s).
    """
    counts = {}
    for view in views_for(user):
        query = InboxQuery(view=view, status="any" if view == View.QUARANTINE else "open")
        newest_first = view in (View.ALL, View.QUARANTINE)
        counts[view] = capped_count(inbox_select(user, query), newest_first=newest_first)
    return counts


def saved_views(user: User) -> list[SavedView]:
    return list(
        db.session.scalars(
            sa.select(SavedView).where(SavedView.user_id == user.id).order_by(SavedView.name)
        )
    )


# --------------------------------------------------------------------------- one item


def timeline(feedback: Feedback) -> list[FeedbackEvent]:
    return list(
        db.session.scalars(
            sa.select(FeedbackEvent)
            .where(FeedbackEvent.feedback_id == feedback.id)
            .options(joinedload(FeedbackEvent.actor))
            .order_by(FeedbackEvent.at, FeedbackEvent.id)
        )
    )


def users_by_id(ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {user.id: user for user in db.session.scalars(sa.select(User).where(User.id.in_(ids)))}


def duplicates_of(feedback: Feedback) -> list[Feedback]:
    """The items closed as duplicates of this one, with their files."""
    return list(
        db.session.scalars(
            sa.select(Feedback)
            .where(Feedback.duplicate_of_id == feedback.id)
            .options(selectinload(Feedback.attachments))
            .order_by(Feedback.received_at, Feedback.id)
        )
    )


def earlier_from_submitter(feedback: Feedback, user: User, limit: int = 5) -> list[Feedback]:
    """Other items the same reader sent that the user may see (the likely duplicates)."""
    if not feedback.submitter_email:
        return []
    return list(
        db.session.scalars(
            sa.select(Feedback)
            .where(
                Feedback.submitter_email == feedback.submitter_email,
                Feedback.id != feedback.id,
                visible_feedback(user),
            )
            .order_by(Feedback.received_at.desc(), Feedback.id.desc())
            .limit(limit)
        )
    )


def merged_attachment_or_404(feedback: Feedback, attachment_id: int) -> Attachment:
    """A file of the item or of an item merged into it (listed on the original)."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or attachment.is_rejected:
        abort(404)
    if attachment.feedback_id != feedback.id:
        owner = db.session.get(Feedback, attachment.feedback_id)
        if owner is None or owner.duplicate_of_id != feedback.id:
            abort(404)
    return attachment


# --------------------------------------------------------------------------- the audit log


@dataclass
class AuditQuery:
    actor: int | None = None
    #: Only what the system did (jobs, commands).
    system_only: bool = False
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    date_from: date | None = None
    date_to: date | None = None


def audit_page(query: AuditQuery, *, after: Cursor | None, before: Cursor | None) -> Page:
    statement = sa.select(AuditEvent)
    if query.actor is not None:
        statement = statement.where(AuditEvent.actor_id == query.actor)
    if query.system_only:
        statement = statement.where(AuditEvent.actor_id.is_(None))
    if query.action:
        statement = statement.where(AuditEvent.action.startswith(query.action, autoescape=True))
    if query.object_type:
        statement = statement.where(AuditEvent.object_type == query.object_type)
    if query.object_id:
        statement = statement.where(AuditEvent.object_id == query.object_id)
    if query.date_from is not None:
        statement = statement.where(AuditEvent.at >= _day_start(query.date_from))
    if query.date_to is not None:
        statement = statement.where(AuditEvent.at < _day_start(query.date_to + timedelta(1)))
    return keyset_page(
        statement,
        descending=True,
        after=after,
        before=before,
        at=AuditEvent.at,
        key=AuditEvent.id,
        cursor_of=lambda event: Cursor(event.at, event.id),
    )
