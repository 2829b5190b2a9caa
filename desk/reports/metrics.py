"""The turnaround metrics of DESIGN.md, each one SQL query that runs on SQLite and PostgreSQL.

A metric is a *facts* query: one row per item it measures (a feedback item, a review task, a
decided revision) with the moment it starts, the moment it ends (NULL while pending), the
duration between them in whole seconds, and the dimensions reports group and filter by.
:func:`summarise` turns facts into count, mean, median, 90th percentile and share within
target, overall and per group, in SQL.

Percentiles use one definition on both databases: linear interpolation between the closest
ranks, as PostgreSQL's ``percentile_cont`` computes it. PostgreSQL runs ``percentile_cont``
itself; SQLite has no percentile function, so the same definition is written with window
functions (``ROW_NUMBER`` and ``COUNT`` over the group) in :func:`_ranked_summary`, which runs on
PostgreSQL too (the tests compare the two there).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from desk.feedback.models import Feedback, FeedbackStatus, Resolution
from desk.profiles.models import Profile, ProfileUpdate, RevisionState, SectionRevision
from desk.reviews.models import ReviewTask, TaskState, review_task_feedback

HOUR = 3600
DAY = 86400

PERCENTILE_DEFINITION = (
    "Median and 90th percentile by linear interpolation between the closest ranks, as "
    "PostgreSQL's percentile_cont: the n durations sorted, the value at position p × (n − 1) "
    "counting from 0, interpolated between the two values either side of it."
)
SHARE_DEFINITION = (
    "Share within target: items that reached the end within the target, out of those plus the "
    "items that took longer and the pending items already older than the target (pending "
    "items still inside the target are not counted yet)."
)
COHORT_DEFINITION = (
    "An item is counted when its start falls in the date range; months are those of the start, "
    "in the desk's time zone. Durations are measured between timestamps truncated to the second."
)


class epoch_seconds(FunctionElement[int]):
    """Seconds since 1970 of a timestamp, truncated to the whole second, as an integer."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    # Timestamps are stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC; %s drops the fraction.
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_seconds_postgresql(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    argument = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM date_trunc('second', {argument})) AS BIGINT)"


def seconds_between(start: Any, end: Any) -> sa.ColumnElement[int]:
    """Whole seconds from ``start`` to ``end`` (NULL when either is NULL)."""
    return epoch_seconds(end) - epoch_seconds(start)


@dataclass(frozen=True)
class Month:
    #: "2026-03"
    label: str
    #: The first instant of the month in the desk's time zone, as UTC.
    starts_at: datetime


@dataclass(frozen=True)
class Scope:
    """What a report covers: a range of start times, the filters, and what the viewer may see.

    ``allowed_country_ids`` is None for staff who see every country (unrouted items included);
    otherwise only items of those countries are counted, whatever the other filters say.
    """

    starts_at: datetime
    ends_at: datetime
    months: tuple[Month, ...]
    now: datetime
    allowed_country_ids: frozenset[int] | None = None
    country_id: int | None = None
    profile_id: int | None = None
    section_id: int | None = None
    editor_id: int | None = None
    channel: str | None = None


class Unit(enum.Enum):
    HOURS = ("hours", "h", HOUR)
    DAYS = ("days", "d", DAY)

    def __init__(self, label: str, symbol: str, seconds: int) -> None:
        self.label = label
        self.symbol = symbol
        self.seconds = seconds


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    #: What is measured, in the words shown beside every figure.
    definition: str
    unit: Unit
    #: The DESK_* setting holding the target in days, if the metric has one.
    target_setting: str | None
    #: "feedback" when the facts are feedback items (their figures link to the inbox).
    subject: str
    facts: Callable[[Scope], sa.Select[Any]]


# --------------------------------------------------------------------------------- facts


def feedback_conditions(scope: Scope, *, dated: bool = True) -> list[sa.ColumnElement[bool]]:
    """The scope's filters on feedback items; ``dated``: received within its range too."""
    conditions: list[sa.ColumnElement[bool]] = []
    if dated:
        conditions += [
            Feedback.received_at >= scope.starts_at,
            Feedback.received_at < scope.ends_at,
        ]
    if scope.allowed_country_ids is not None:
        conditions.append(Feedback.country_id.in_(sorted(scope.allowed_country_ids)))
    if scope.country_id is not None:
        conditions.append(Feedback.country_id == scope.country_id)
    if scope.profile_id is not None:
        conditions.append(Feedback.profile_id == scope.profile_id)
    if scope.section_id is not None:
        conditions.append(Feedback.section_id == scope.section_id)
    if scope.editor_id is not None:
        conditions.append(Feedback.assignee_id == scope.editor_id)
    if scope.channel is not None:
        conditions.append(Feedback.channel == scope.channel)
    return conditions


def _feedback_columns(end: Any, value: Any = None) -> list[sa.ColumnElement[Any]]:
    return [
        Feedback.id.label("item_id"),
        Feedback.reference.label("reference"),
        Feedback.received_at.label("start_at"),
        end.label("end_at"),
        (seconds_between(Feedback.received_at, end) if value is None else value).label("value"),
        Feedback.country_id.label("country_id"),
        Feedback.profile_id.label("profile_id"),
        Feedback.section_id.label("section_id"),
        Feedback.assignee_id.label("editor_id"),
        Feedback.channel.label("channel"),
    ]


def first_response_facts(scope: Scope) -> sa.Select[Any]:
    """Every item received in range; pending until a person first acted on it."""
    return sa.select(*_feedback_columns(Feedback.first_response_at)).where(
        *feedback_conditions(scope)
    )


def resolution_facts(scope: Scope) -> sa.Select[Any]:
    """Items received in range, except those closed as spam; pending while open.

    ``resolved_at`` is the final close: reopening clears it and closing again sets it anew.
    """
    closed_at = sa.case((Feedback.status == FeedbackStatus.CLOSED, Feedback.resolved_at))
    return sa.select(*_feedback_columns(closed_at)).where(
        *feedback_conditions(scope),
        sa.or_(Feedback.resolution.is_(None), Feedback.resolution != Resolution.SPAM),
    )


def publication_facts(scope: Scope) -> sa.Select[Any]:
    """Items received in range and linked to a review task; ends at the first stamp publishing
    a revision drafted for one of those tasks.

    Grouped by the item's primary key alone (its other columns depend on it): a join rather
    than a correlated subquery keeps the statement parallel-safe on PostgreSQL.
    """
    return (
        sa.select(*_feedback_columns(sa.func.min(ProfileUpdate.created_at)))
        .join(review_task_feedback, review_task_feedback.c.feedback_id == Feedback.id)
        .outerjoin(
            SectionRevision,
            sa.and_(
                SectionRevision.task_id == review_task_feedback.c.task_id,
                SectionRevision.profile_update_id.is_not(None),
            ),
        )
        .outerjoin(ProfileUpdate, ProfileUpdate.id == SectionRevision.profile_update_id)
        .where(*feedback_conditions(scope))
        .group_by(Feedback.id)
    )


def task_conditions(scope: Scope, task: Any = ReviewTask) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if scope.allowed_country_ids is not None:
        conditions.append(Profile.country_id.in_(sorted(scope.allowed_country_ids)))
    if scope.country_id is not None:
        conditions.append(Profile.country_id == scope.country_id)
    if scope.profile_id is not None:
        conditions.append(task.profile_id == scope.profile_id)
    if scope.section_id is not None:
        conditions.append(task.section_id == scope.section_id)
    if scope.editor_id is not None:
        conditions.append(task.assignee_id == scope.editor_id)
    if scope.channel is not None:
        # A task has no channel of its own: it counts when feedback of that channel led to it.
        linked = (
            sa.select(review_task_feedback.c.task_id)
            .join(Feedback, Feedback.id == review_task_feedback.c.feedback_id)
            .where(
                review_task_feedback.c.task_id == task.id,
                Feedback.channel == scope.channel,
            )
        )
        conditions.append(linked.exists())
    return conditions


def _task_columns(start: Any, end: Any, section_id: Any) -> list[sa.ColumnElement[Any]]:
    return [
        start.label("start_at"),
        end.label("end_at"),
        seconds_between(start, end).label("value"),
        Profile.country_id.label("country_id"),
        ReviewTask.profile_id.label("profile_id"),
        section_id.label("section_id"),
        ReviewTask.assignee_id.label("editor_id"),
        sa.null().label("channel"),
    ]


def task_cycle_facts(scope: Scope) -> sa.Select[Any]:
    """Review tasks created in range, except cancelled ones; pending until approved."""
    approved_at = sa.case((ReviewTask.state == TaskState.APPROVED, ReviewTask.decided_at))
    return (
        sa.select(
            ReviewTask.id.label("item_id"),
            ReviewTask.title.label("reference"),
            *_task_columns(ReviewTask.created_at, approved_at, ReviewTask.section_id),
        )
        .join(Profile, Profile.id == ReviewTask.profile_id)
        .where(
            ReviewTask.created_at >= scope.starts_at,
            ReviewTask.created_at < scope.ends_at,
            ReviewTask.state != TaskState.CANCELLED,
            *task_conditions(scope),
        )
    )


#: Revision states that were, or are, under review.
REVIEWED_STATES = (RevisionState.SUBMITTED, RevisionState.APPROVED, RevisionState.REJECTED)


def review_wait_facts(scope: Scope) -> sa.Select[Any]:
    """Revisions of review tasks submitted in range; pending until approved or sent back."""
    submitted_at = SectionRevision.submitted_at
    decided_at = sa.case(
        (
            SectionRevision.state.in_([RevisionState.APPROVED, RevisionState.REJECTED]),
            SectionRevision.decided_at,
        )
    )
    return (
        sa.select(
            SectionRevision.id.label("item_id"),
            ReviewTask.title.label("reference"),
            *_task_columns(submitted_at, decided_at, SectionRevision.section_id),
        )
        .join(ReviewTask, ReviewTask.id == SectionRevision.task_id)
        .join(Profile, Profile.id == ReviewTask.profile_id)
        .where(
            SectionRevision.state.in_(REVIEWED_STATES),
            submitted_at >= scope.starts_at,
            submitted_at < scope.ends_at,
            *task_conditions(scope),
        )
    )


def backlog_age_facts(scope: Scope) -> sa.Select[Any]:
    """Open items received in range (quarantine apart); all reach "now", none is pending."""
    now = sa.literal(int(scope.now.timestamp()), sa.BigInteger)
    age = now - epoch_seconds(Feedback.received_at)
    columns = _feedback_columns(sa.literal(scope.now, Feedback.received_at.type), age)
    return sa.select(*columns).where(
        *feedback_conditions(scope),
        Feedback.status != FeedbackStatus.CLOSED,
        Feedback.is_quarantined.is_(False),
    )


METRICS: tuple[Metric, ...] = (
    Metric(
        "first_response",
        "Time to first response",
        "From received_at to the first event by a person on the item (assigning, a note, a "
        "reply, a status change, a release from quarantine); routing and automatic assignment "
        "do not count. Unanswered items are pending.",
        Unit.HOURS,
        "DESK_SLA_FIRST_RESPONSE_DAYS",
        "feedback",
        first_response_facts,
    ),
    Metric(
        "resolution",
        "Time to resolution",
        "From received_at to the item's final close (resolved_at): a reopened item counts "
        "once, at its last close. Items closed as spam are left out; open items are pending.",
        Unit.DAYS,
        "DESK_SLA_RESOLUTION_DAYS",
        "feedback",
        resolution_facts,
    ),
    Metric(
        "publication",
        "Time to publication",
        "From received_at to the first Last Updated stamp (ProfileUpdate created_at) that "
        "published a revision drafted for a review task linked to the item. Only items linked "
        "to a review task count; they are pending until such a stamp (a task approved as a "
        "minor change never stamps).",
        Unit.DAYS,
        None,
        "feedback",
        publication_facts,
    ),
    Metric(
        "task_cycle",
        "Task cycle time",
        "From a review task's created_at to its approval (decided_at). Cancelled tasks are "
        "left out; tasks not approved yet are pending.",
        Unit.DAYS,
        None,
        "task",
        task_cycle_facts,
    ),
    Metric(
        "review_wait",
        "Review wait",
        "From the submission of a task's revision to the decision on it, approved or sent "
        "back; each decision counts once, so a revision sent back and a later one approved are "
        "two waits, each from its own submission (SectionRevision.submitted_at). Revisions "
        "awaiting a decision are pending.",
        Unit.DAYS,
        None,
        "revision",
        review_wait_facts,
    ),
    Metric(
        "backlog_age",
        "Backlog age",
        "From received_at to now, for items not closed (items in quarantine apart).",
        Unit.DAYS,
        None,
        "feedback",
        backlog_age_facts,
    ),
)
METRICS_BY_KEY = {metric.key: metric for metric in METRICS}


# ------------------------------------------------------------------------------ summaries

#: The facts column holding each grouping's key ("month" is derived from the start instead).
GROUP_COLUMNS = {
    "country": "country_id",
    "editor": "editor_id",
    "section": "section_id",
    "profile": "profile_id",
    "channel": "channel",
}


def month_of(start_at: Any, months: Sequence[Month]) -> sa.ColumnElement[str]:
    """The label of the month ``start_at`` falls in, computed the same way on both databases.

    The months' boundaries are instants in the desk's time zone, compared in SQL, so neither
    database needs to know that zone.
    """
    if len(months) == 1:
        return sa.cast(sa.literal(months[0].label), sa.String)
    whens = [(start_at < following.starts_at, month.label) for month, following in pairwise(months)]
    return sa.case(*whens, else_=months[-1].label)


def shaped(facts: sa.Select[Any], scope: Scope, group: str) -> sa.Subquery:
    """The facts with two more columns: ``grp`` (the group's key) and ``month``."""
    inner = facts.subquery("facts")
    month = month_of(inner.c.start_at, scope.months)
    key = month if group == "month" else inner.c[GROUP_COLUMNS[group]]
    return sa.select(
        inner.c.value, inner.c.start_at, key.label("grp"), month.label("month")
    ).subquery("shaped")


@dataclass(frozen=True)
class Summary:
    """Figures for one group (or all items), durations in seconds."""

    #: "all", "group" or "month".
    kind: str
    key: Any
    #: Items in the cohort.
    total: int
    #: Items that reached the end (the rest are pending).
    reached: int
    mean: float | None
    median: float | None
    p90: float | None
    #: Items within the target / counted against it; None when the metric has no target.
    within: int | None
    judged: int | None

    @property
    def pending(self) -> int:
        return self.total - self.reached

    @property
    def share_within(self) -> float | None:
        if self.within is None or not self.judged:
            return None
        return self.within / self.judged


def _counts(
    value: Any, start_at: Any, target_seconds: int | None, now: datetime
) -> list[sa.ColumnElement[Any]]:
    columns: list[sa.ColumnElement[Any]] = [
        sa.func.count().label("total"),
        sa.func.count(value).label("reached"),
        sa.cast(sa.func.avg(value), sa.Float).label("mean"),
    ]
    if target_seconds is None:
        return [*columns, sa.null().label("within"), sa.null().label("late")]
    late = sa.or_(
        value > target_seconds,
        sa.and_(value.is_(None), start_at < now - timedelta(seconds=target_seconds)),
    )
    return [
        *columns,
        sa.func.count(sa.case((value <= target_seconds, 1))).label("within"),
        sa.func.count(sa.case((late, 1))).label("late"),
    ]


def _percentile_summary(
    s: sa.Subquery, sets: Sequence[str], target_seconds: int | None, now: datetime
) -> list[sa.Select[Any]]:
    """PostgreSQL: percentile_cont, every grouping set in one pass (one branch)."""
    keys = {"group": s.c.grp, "month": s.c.month}
    grouped = [name for name in ("group", "month") if name in sets]
    grouping_sets = [sa.tuple_(keys[name]) for name in grouped]
    if "all" in sets:
        grouping_sets.append(sa.text("()"))
    # GROUPING() may only name an expression of the grouping sets.
    whens = [(sa.func.grouping(keys[name]) == 0, name) for name in grouped]
    kind = sa.case(*whens, else_="all") if whens else sa.literal("all")
    key_whens = [
        (sa.func.grouping(keys[name]) == 0, sa.cast(keys[name], sa.String)) for name in grouped
    ]
    key = sa.case(*key_whens) if key_whens else sa.null()
    return [
        sa.select(
            kind.label("kind"),
            key.label("key"),
            *_counts(s.c.value, s.c.start_at, target_seconds, now),
            sa.func.percentile_cont(0.5).within_group(s.c.value).label("median"),
            sa.func.percentile_cont(0.9).within_group(s.c.value).label("p90"),
        ).group_by(sa.func.grouping_sets(*grouping_sets))
    ]


def _ranked_summary(
    s: sa.Subquery, sets: Sequence[str], target_seconds: int | None, now: datetime
) -> list[sa.Select[Any]]:
    """Any database: the same percentiles from window functions, one branch a set.

    Within a group the n non-NULL values are numbered 1..n in ascending order (NULLs last).
    For a percentile of q per cent the position q(n − 1)/100 is split, in integer arithmetic,
    into the rank below it, ``q(n − 1) div 100 + 1``, and the remainder ``q(n − 1) mod 100``;
    the result is the value at that rank plus remainder/100 of the step to the next one.
    """
    branches = []
    for kind in sets:
        key = {"group": s.c.grp, "month": s.c.month, "all": None}[kind]
        partition = [key] if key is not None else None
        n = sa.func.count(s.c.value).over(partition_by=partition)
        ranked = sa.select(
            s.c.value,
            s.c.start_at,
            (key if key is not None else sa.null()).label("key"),
            sa.func.row_number()
            .over(partition_by=partition, order_by=s.c.value.asc().nulls_last())
            .label("rn"),
            n.label("n"),
        ).subquery(f"ranked_{kind}")
        percentiles = []
        for name, q in (("median", 50), ("p90", 90)):
            position = q * (ranked.c.n - 1)
            low = position // 100 + 1
            remainder = position % 100
            high = low + sa.case((remainder > 0, 1), else_=0)
            at_low = sa.func.max(sa.case((ranked.c.rn == low, ranked.c.value)))
            at_high = sa.func.max(sa.case((ranked.c.rn == high, ranked.c.value)))
            fraction = sa.cast(sa.func.max(remainder), sa.Float) / 100.0
            percentiles.append((at_low + (at_high - at_low) * fraction).label(name))
        branch = sa.select(
            sa.literal(kind).label("kind"),
            (sa.cast(ranked.c.key, sa.String) if key is not None else sa.null()).label("key"),
            *_counts(ranked.c.value, ranked.c.start_at, target_seconds, now),
            *percentiles,
        )
        if key is not None:
            branch = branch.group_by(ranked.c.key)
        branches.append(branch)
    return branches


@dataclass(frozen=True)
class SummaryRequest:
    """One metric's facts to summarise, and how."""

    name: str
    facts: sa.Select[Any]
    group: str
    sets: Sequence[str] = ("all", "group")
    target_seconds: int | None = None


def summary_statement(
    requests: Sequence[SummaryRequest], scope: Scope, dialect: str
) -> sa.CompoundSelect[Any] | sa.Select[Any]:
    """One statement summarising every request for each of its sets ("all", "group", "month").

    Every branch starts with the request's name. ``dialect`` picks percentile_cont
    ("postgresql") or the window-function form (any other). One statement rather than one per
    metric: a single round trip, and PostgreSQL may run the branches in parallel.
    """
    branches = []
    for request in requests:
        s = shaped(request.facts, scope, request.group)
        build = _percentile_summary if dialect == "postgresql" else _ranked_summary
        for branch in build(s, request.sets, request.target_seconds, scope.now):
            name = sa.literal(request.name).label("request")
            branches.append(branch.with_only_columns(name, *branch.selected_columns))
    return branches[0] if len(branches) == 1 else sa.union_all(*branches)


def summarise_many(
    connection: sa.Connection,
    requests: Sequence[SummaryRequest],
    scope: Scope,
    *,
    dialect: str | None = None,
) -> dict[str, list[Summary]]:
    """Run :func:`summary_statement`: one :class:`Summary` per row, by request name."""
    statement = summary_statement(requests, scope, dialect or connection.dialect.name)
    by_name = {request.name: request for request in requests}
    results: dict[str, list[Summary]] = {request.name: [] for request in requests}
    for row in connection.execute(statement).mappings():
        request = by_name[row["request"]]
        key = row["key"]
        if row["kind"] == "group" and key is not None and request.group not in ("month", "channel"):
            key = int(key)
        has_target = request.target_seconds is not None
        results[request.name].append(
            Summary(
                kind=row["kind"],
                key=key,
                total=row["total"],
                reached=row["reached"],
                mean=_number(row["mean"]),
                median=_number(row["median"]),
                p90=_number(row["p90"]),
                within=row["within"] if has_target else None,
                judged=(row["within"] + row["late"]) if has_target else None,
            )
        )
    return results


def summarise(
    connection: sa.Connection,
    facts: sa.Select[Any],
    scope: Scope,
    *,
    group: str,
    sets: Sequence[str] = ("all", "group"),
    target_seconds: int | None = None,
    dialect: str | None = None,
) -> list[Summary]:
    """The summaries of one set of facts (see :func:`summarise_many`)."""
    request = SummaryRequest("facts", facts, group, sets, target_seconds)
    return summarise_many(connection, [request], scope, dialect=dialect)["facts"]


def _number(value: Any) -> float | None:
    """A duration in seconds, rounded to the millisecond so both databases agree exactly."""
    return None if value is None else round(float(value), 3)
