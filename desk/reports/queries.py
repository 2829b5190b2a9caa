"""Reads for the three reports: every figure is aggregated in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from desk.accounts.models import User
from desk.extensions import db
from desk.feedback.models import Feedback, FeedbackStatus, Resolution
from desk.profiles.models import Country, Profile, RevisionState, Section, SectionRevision
from desk.reports.metrics import (
    DAY,
    METRICS,
    Metric,
    Scope,
    Summary,
    SummaryRequest,
    epoch_seconds,
    feedback_conditions,
    month_of,
    summarise,
    summarise_many,
    task_conditions,
)
from desk.reviews.models import OPEN_TASK_STATES, ReviewTask

#: The metrics whose monthly median and 90th percentile the turnaround report draws.
TREND_METRICS = ("first_response", "resolution")

#: Backlog age buckets: (label, lowest whole days of age, highest or None).
BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0–2 days", 0, 2),
    ("3–7 days", 3, 7),
    ("8–30 days", 8, 30),
    ("over 30 days", 31, None),
)
BUCKET_DEFINITION = (
    "Age = now − received_at, in whole days elapsed (an item received 71 hours ago is 2 days "
    "old, one received 72 hours ago is 3). Open items are those not closed, quarantine apart."
)

#: Closed-item outcomes in the order reports show them.
OUTCOMES = (
    Resolution.UPDATED,
    Resolution.NO_ACTION,
    Resolution.DUPLICATE,
    Resolution.SPAM,
)
OUTCOME_LABELS = {
    "received": "Received",
    "open": "Still open",
    Resolution.UPDATED.value: "Updated",
    Resolution.NO_ACTION.value: "No action",
    Resolution.DUPLICATE.value: "Duplicate",
    Resolution.SPAM.value: "Spam",
}


def target_days(metric: Metric) -> int | None:
    """The metric's target in days (DESK_SLA_* settings), None when it has none."""
    if metric.target_setting is None:
        return None
    default = {"DESK_SLA_FIRST_RESPONSE_DAYS": 3, "DESK_SLA_RESOLUTION_DAYS": 30}
    value = current_app.config.get(metric.target_setting, default[metric.target_setting])
    return int(value) if value not in (None, "") else None


def _connection() -> sa.Connection:
    return db.session.connection()


# ------------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class GroupLabel:
    label: str
    #: Query arguments of the inbox list that narrow it to this group.
    inbox_args: dict[str, str] = field(default_factory=dict)
    #: Query arguments of this report that narrow it to this group (report filters).
    report_args: dict[str, str] = field(default_factory=dict)


NO_KEY_LABELS = {
    "country": GroupLabel("Unrouted", {"view": "unrouted"}),
    "editor": GroupLabel("Unassigned", {"assignee": "none"}),
    "section": GroupLabel("Whole profile (no section)"),
    "profile": GroupLabel("No profile"),
    "channel": GroupLabel("No channel"),
    "month": GroupLabel("—"),
}


def group_labels(group: str, keys: Iterable[Any]) -> dict[Any, GroupLabel]:
    """A label (and the filters that pick it out) for each group key."""
    keys = set(keys)
    labels: dict[Any, GroupLabel] = {}
    if None in keys:
        labels[None] = NO_KEY_LABELS[group]
    ids = sorted(key for key in keys if key is not None)
    if group == "country" and ids:
        for country in db.session.scalars(sa.select(Country).where(Country.id.in_(ids))):
            args = {"country": country.code}
            labels[country.id] = GroupLabel(country.name, args, args)
    elif group == "editor" and ids:
        for user in db.session.scalars(sa.select(User).where(User.id.in_(ids))):
            labels[user.id] = GroupLabel(
                user.name, {"assignee": str(user.id)}, {"editor": str(user.id)}
            )
    elif group == "section" and ids:
        rows = db.session.execute(
            sa.select(Section.id, Section.heading, Profile.topic, Country.code)
            .join(Profile, Profile.id == Section.profile_id)
            .join(Country, Country.id == Profile.country_id)
            .where(Section.id.in_(ids))
        )
        for row in rows:
            labels[row.id] = GroupLabel(
                f"{row.code} · {row.topic} · {row.heading}",
                {"section": str(row.id)},
                {"section": str(row.id)},
            )
    elif group == "profile" and ids:
        rows = db.session.execute(
            sa.select(Profile.id, Profile.topic, Profile.language, Country.code)
            .join(Country, Country.id == Profile.country_id)
            .where(Profile.id.in_(ids))
        )
        for row in rows:
            labels[row.id] = GroupLabel(
                f"{row.code} · {row.topic} ({row.language})",
                {"profile": str(row.id)},
                {"profile": str(row.id)},
            )
    for key in keys:
        if key not in labels:
            text = str(key)
            args = {"channel": text} if group == "channel" else {}
            labels[key] = GroupLabel(text, args, args)
    return labels


def _sort_key(label: GroupLabel, key: Any) -> tuple[int, str]:
    return (1 if key is None else 0, label.label.casefold())


# --------------------------------------------------------------------------- turnaround


@dataclass
class MetricFigures:
    metric: Metric
    target_days: int | None
    overall: Summary
    #: One per group, in label order.
    groups: list[tuple[GroupLabel, Summary]]
    #: One per month with items, in month order (the trend), when asked for.
    months: list[Summary]


@dataclass
class TurnaroundReport:
    group: str
    figures: list[MetricFigures]

    def of(self, key: str) -> MetricFigures:
        return next(figures for figures in self.figures if figures.metric.key == key)


def turnaround(
    scope: Scope,
    group: str,
    *,
    metrics: Sequence[Metric] = METRICS,
    trends: Sequence[str] = TREND_METRICS,
    dialect: str | None = None,
) -> TurnaroundReport:
    """Every metric overall and by ``group``; by month too for the ``trends`` metrics.

    One statement for them all (UNION ALL); on PostgreSQL one pass over each metric's facts
    (GROUPING SETS).
    """
    requests = []
    for metric in metrics:
        sets = ["all", "group"]
        if metric.key in trends and group != "month":
            sets.append("month")
        target = target_days(metric)
        requests.append(
            SummaryRequest(
                metric.key,
                metric.facts(scope),
                group,
                sets,
                target * DAY if target is not None else None,
            )
        )
    results = summarise_many(_connection(), requests, scope, dialect=dialect)
    figures = []
    for metric in metrics:
        summaries = results[metric.key]
        overall = next(s for s in summaries if s.kind == "all")
        grouped = [s for s in summaries if s.kind == "group"]
        labels = group_labels(group, [s.key for s in grouped])
        pairs = sorted(
            ((labels[s.key], s) for s in grouped),
            key=lambda pair: pair[1].key if group == "month" else _sort_key(pair[0], pair[1].key),
        )
        if group == "month":
            months = [s for _, s in pairs]
        else:
            months = sorted((s for s in summaries if s.kind == "month"), key=lambda s: s.key)
        figures.append(MetricFigures(metric, target_days(metric), overall, pairs, months))
    return TurnaroundReport(group, figures)


def metric_rows(metric: Metric, scope: Scope, *, pending: bool = False) -> sa.Select[Any]:
    """The facts behind a metric's figures, one row per item, oldest start first.

    ``pending``: only the items that have not reached the metric's end yet.
    """
    facts = metric.facts(scope).subquery("facts")
    statement = (
        sa.select(
            facts.c.item_id,
            facts.c.reference,
            Country.code.label("country"),
            User.name.label("editor"),
            facts.c.channel,
            facts.c.start_at,
            facts.c.end_at,
            facts.c.value,
        )
        .outerjoin(Country, Country.id == facts.c.country_id)
        .outerjoin(User, User.id == facts.c.editor_id)
        .order_by(facts.c.start_at, facts.c.item_id)
    )
    return statement.where(facts.c.value.is_(None)) if pending else statement


# ------------------------------------------------------------------------------ backlog


def _open_items(scope: Scope) -> list[sa.ColumnElement[bool]]:
    return [
        *feedback_conditions(scope, dated=False),
        Feedback.status != FeedbackStatus.CLOSED,
        Feedback.is_quarantined.is_(False),
    ]


def _bucket_columns(now: datetime) -> list[sa.ColumnElement[int]]:
    """One count per bucket; an age of d whole days is received_at in (now − (d+1) days, …]."""
    columns = []
    for index, (_, low, high) in enumerate(BUCKETS):
        conditions = []
        if low > 0:
            conditions.append(Feedback.received_at <= now - timedelta(days=low))
        if high is not None:
            conditions.append(Feedback.received_at > now - timedelta(days=high + 1))
        columns.append(sa.func.count(sa.case((sa.and_(*conditions), 1))).label(f"b{index}"))
    return columns


@dataclass
class BucketRow:
    label: GroupLabel
    key: Any
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


def backlog_buckets(scope: Scope, by: str) -> tuple[BucketRow, list[BucketRow]]:
    """Open items by age bucket: the total row, and one row per country or editor."""
    column = {"country": Feedback.country_id, "editor": Feedback.assignee_id}[by]
    buckets = _bucket_columns(scope.now)
    rows = db.session.execute(
        sa.select(column.label("key"), *buckets).where(*_open_items(scope)).group_by(column)
    ).all()
    labels = group_labels(by, [row.key for row in rows])
    grouped = sorted(
        (BucketRow(labels[row.key], row.key, list(row[1:])) for row in rows),
        key=lambda row: _sort_key(row.label, row.key),
    )
    totals = [sum(row.counts[i] for row in grouped) for i in range(len(BUCKETS))]
    return BucketRow(GroupLabel("All open items"), None, totals), grouped


def overdue_tasks(scope: Scope, today: date) -> sa.Select[Any]:
    """Open review tasks past their due date, most overdue first."""
    assignee = aliased(User)
    return (
        sa.select(
            ReviewTask.id,
            ReviewTask.title,
            ReviewTask.state,
            ReviewTask.due_on,
            Country.name.label("country"),
            Profile.topic.label("profile"),
            Section.heading.label("section"),
            assignee.name.label("assignee"),
        )
        .join(Profile, Profile.id == ReviewTask.profile_id)
        .join(Country, Country.id == Profile.country_id)
        .outerjoin(Section, Section.id == ReviewTask.section_id)
        .outerjoin(assignee, assignee.id == ReviewTask.assignee_id)
        .where(
            ReviewTask.state.in_(OPEN_TASK_STATES),
            ReviewTask.due_on < today,
            *task_conditions(scope),
        )
        .order_by(ReviewTask.due_on, ReviewTask.id)
    )


def waiting_revisions(scope: Scope) -> sa.Select[Any]:
    """Revisions submitted for approval and not decided yet, longest waiting first."""
    submitted_at = SectionRevision.submitted_at
    author = aliased(User)
    now = sa.literal(int(scope.now.timestamp()), sa.BigInteger)
    return (
        sa.select(
            SectionRevision.id,
            ReviewTask.title.label("task"),
            Country.name.label("country"),
            Profile.topic.label("profile"),
            Section.heading.label("section"),
            author.name.label("author"),
            submitted_at.label("submitted_at"),
            (now - epoch_seconds(submitted_at)).label("waited"),
        )
        .join(ReviewTask, ReviewTask.id == SectionRevision.task_id)
        .join(Profile, Profile.id == ReviewTask.profile_id)
        .join(Country, Country.id == Profile.country_id)
        .join(Section, Section.id == SectionRevision.section_id)
        .outerjoin(author, author.id == SectionRevision.author_id)
        .where(SectionRevision.state == RevisionState.SUBMITTED, *task_conditions(scope))
        .order_by(submitted_at, SectionRevision.id)
    )


def waiting_summary(scope: Scope) -> Summary:
    """Count, median and 90th percentile of how long the waiting revisions have waited."""
    waiting = waiting_revisions(scope).subquery("waiting")
    facts = sa.select(
        waiting.c.submitted_at.label("start_at"),
        waiting.c.waited.label("value"),
        sa.null().label("country_id"),
    )
    summaries = summarise(_connection(), facts, scope, group="country", sets=("all",))
    return summaries[0]


def aging_cutoff(today: date, months: int) -> date:
    """The date ``months`` calendar months before ``today`` (the 31st → the month's last day)."""
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    month += 1
    for day in (today.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def aging_profiles(scope: Scope, cutoff: date) -> sa.Select[Any]:
    """Published profiles neither updated nor reviewed since ``cutoff``, the oldest first."""
    last_touched = sa.case(
        (Profile.reviewed_on.is_(None), Profile.last_updated_on),
        (Profile.last_updated_on.is_(None), Profile.reviewed_on),
        (Profile.reviewed_on > Profile.last_updated_on, Profile.reviewed_on),
        else_=Profile.last_updated_on,
    )
    conditions = [Profile.is_published.is_(True)]
    if scope.allowed_country_ids is not None:
        conditions.append(Profile.country_id.in_(sorted(scope.allowed_country_ids)))
    if scope.country_id is not None:
        conditions.append(Profile.country_id == scope.country_id)
    if scope.profile_id is not None:
        conditions.append(Profile.id == scope.profile_id)
    return (
        sa.select(
            Profile.id,
            Country.name.label("country"),
            Profile.topic,
            Profile.language,
            Profile.last_updated_on,
            Profile.reviewed_on,
            last_touched.label("last_touched_on"),
        )
        .join(Country, Country.id == Profile.country_id)
        .where(*conditions, sa.or_(last_touched.is_(None), last_touched < cutoff))
        .order_by(last_touched.asc().nulls_first(), Country.name, Profile.topic)
    )


def aging_by_country(scope: Scope, cutoff: date) -> list[tuple[str, int]]:
    """How many aging profiles each country has."""
    aging = aging_profiles(scope, cutoff).order_by(None).subquery("aging")
    rows = db.session.execute(
        sa.select(aging.c.country, sa.func.count().label("profiles"))
        .group_by(aging.c.country)
        .order_by(aging.c.country)
    )
    return [(row.country, row.profiles) for row in rows]


# ----------------------------------------------------------------------------- outcomes


@dataclass
class OutcomeRow:
    country: GroupLabel | None
    country_id: int | None
    month: str | None
    #: received, open, then one count per outcome of OUTCOMES.
    counts: dict[str, int]


OUTCOME_COLUMNS = ("received", "open", *(outcome.value for outcome in OUTCOMES))


def outcome_counts(scope: Scope, by: str) -> list[OutcomeRow]:
    """Items received in range by what they led to, per "country", "month" or "country_month"."""
    month = month_of(Feedback.received_at, scope.months)
    keys: list[sa.ColumnElement[Any]] = []
    if by in ("country", "country_month"):
        keys.append(Feedback.country_id.label("country_id"))
    if by in ("month", "country_month"):
        keys.append(month.label("month"))
    closed = Feedback.status == FeedbackStatus.CLOSED
    counts = [
        sa.func.count().label("received"),
        sa.func.count(sa.case((~closed, 1))).label("open"),
        *(
            sa.func.count(sa.case((sa.and_(closed, Feedback.resolution == outcome), 1))).label(
                outcome.value
            )
            for outcome in OUTCOMES
        ),
    ]
    inner = (
        sa.select(*keys, *counts)
        .where(*feedback_conditions(scope))
        .group_by(*(key.name for key in keys))
    )
    rows = db.session.execute(inner).mappings().all()
    labels = group_labels("country", [row["country_id"] for row in rows]) if by != "month" else {}
    result = [
        OutcomeRow(
            labels.get(row.get("country_id")) if by != "month" else None,
            row.get("country_id"),
            row.get("month"),
            {column: row[column] for column in OUTCOME_COLUMNS},
        )
        for row in rows
    ]
    return sorted(
        result,
        key=lambda row: (
            _sort_key(row.country, row.country_id) if row.country else (0, ""),
            row.month or "",
        ),
    )


def no_action_reasons(scope: Scope, limit: int = 25) -> list[tuple[str, int]]:
    """The commonest reasons given for closing items received in range as "no action"."""
    reason = sa.func.trim(Feedback.resolution_note)
    rows = db.session.execute(
        sa.select(reason.label("reason"), sa.func.count().label("items"))
        .where(
            *feedback_conditions(scope),
            Feedback.status == FeedbackStatus.CLOSED,
            Feedback.resolution == Resolution.NO_ACTION,
        )
        .group_by(reason)
        .order_by(sa.func.count().desc(), reason)
        .limit(limit)
    )
    return [(row.reason or "(no reason given)", row.items) for row in rows]
