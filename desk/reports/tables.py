"""The reports' tables, built once for both the page and the CSV export.

A :class:`Table` holds the text of every cell exactly as the page shows it, so a CSV export of
a table has the same numbers as the table on the screen. List tables (tasks, revisions,
profiles) are :class:`ListTable`: the page shows their first rows, the CSV streams them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app, url_for

from desk.core.time import desk_zone
from desk.extensions import db
from desk.reports.filters import GROUP_CHOICES, ReportFilters
from desk.reports.metrics import (
    COHORT_DEFINITION,
    PERCENTILE_DEFINITION,
    SHARE_DEFINITION,
    Summary,
    Unit,
)
from desk.reports.queries import (
    BUCKET_DEFINITION,
    BUCKETS,
    OUTCOME_COLUMNS,
    OUTCOME_LABELS,
    TREND_METRICS,
    BucketRow,
    GroupLabel,
    MetricFigures,
    OutcomeRow,
    TurnaroundReport,
)

#: Rows of a list table shown on the page; the CSV has them all.
PAGE_ROWS = 100


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None = None
    #: Right-aligned (a number).
    numeric: bool = False


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False
    #: False for a column of links only (left out of the CSV).
    in_csv: bool = True


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]]
    #: Definitions and other notes, for the CSV header (the page shows them beside the table).
    about: list[tuple[str, str]] = field(default_factory=list)

    def csv_header(self) -> list[str]:
        return [column.label for column in self.columns if column.in_csv]

    def csv_rows(self) -> Iterator[list[str]]:
        for row in self.rows:
            yield [
                cell.text for cell, column in zip(row, self.columns, strict=True) if column.in_csv
            ]


@dataclass
class ListTable:
    key: str
    title: str
    columns: list[Column]
    statement: sa.Select[Any]
    #: One database row to the cells of one table row.
    render: Callable[[Any], list[Cell]]
    about: list[tuple[str, str]] = field(default_factory=list)
    empty: str = "None."

    def page_rows(self) -> tuple[list[list[Cell]], int]:
        """The first PAGE_ROWS rows, and how many rows there are in all."""
        rows = db.session.execute(self.statement.limit(PAGE_ROWS)).all()
        total = len(rows)
        if total == PAGE_ROWS:
            counted = self.statement.order_by(None).subquery()
            total = db.session.scalar(sa.select(sa.func.count()).select_from(counted)) or 0
        return [self.render(row) for row in rows], total

    def csv_header(self) -> list[str]:
        return [column.label for column in self.columns if column.in_csv]

    def csv_rows(self) -> Iterator[list[str]]:
        result = db.session.execute(self.statement.execution_options(yield_per=2000))
        for row in result:
            cells = self.render(row)
            yield [
                cell.text for cell, column in zip(cells, self.columns, strict=True) if column.in_csv
            ]


# ---------------------------------------------------------------------------- formatting


def duration(seconds: float | None, unit: Unit) -> str:
    """A duration in the metric's unit, one decimal ("" when there is none)."""
    return "" if seconds is None else f"{seconds / unit.seconds:.1f}"


def percent(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.1f}"


def timestamp(value: datetime | None) -> str:
    """A UTC timestamp in the desk's time zone, to the minute."""
    if value is None:
        return ""
    return value.astimezone(desk_zone()).strftime("%Y-%m-%d %H:%M")


def day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def inbox_url(
    filters: ReportFilters,
    group_args: dict[str, str] | None = None,
    *,
    status: str = "any",
    received: tuple[date, date] | None = None,
    dated: bool = True,
) -> str:
    """The inbox list (desk.inbox) filtered to the items behind a figure, as near as its
    filters go: status is "any", "open" or one status; ``age`` and ``view`` come in
    ``group_args``; quarantined items are never in its lists."""
    args: dict[str, str] = {"status": status}
    if dated:
        first, last = received or (filters.from_date, filters.to_date)
        args.update(received_from=first.isoformat(), received_to=last.isoformat())
    if filters.country is not None:
        args["country"] = filters.country.code
    if filters.profile is not None:
        args["profile"] = str(filters.profile.id)
    if filters.section is not None:
        args["section"] = str(filters.section.id)
    if filters.editor is not None:
        args["assignee"] = str(filters.editor.id)
    if filters.channel is not None:
        args["channel"] = filters.channel.value
    args.update(group_args or {})
    if "inbox.inbox" in current_app.view_functions:
        return url_for("inbox.inbox", **args)
    return f"{url_for('inbox.home')}inbox?{urlencode(args)}"


def month_dates(label: str, filters: ReportFilters) -> tuple[date, date]:
    """The days of a month ("2026-03") that fall in the filters' date range."""
    year, month = (int(part) for part in label.split("-"))
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    last = date.fromordinal(following.toordinal() - 1)
    return max(first, filters.from_date), min(last, filters.to_date)


# ---------------------------------------------------------------------------- turnaround


def _metric_about(figures: MetricFigures) -> list[tuple[str, str]]:
    about = [(figures.metric.label, figures.metric.definition)]
    if figures.target_days is not None:
        about.append(("Target", f"{figures.target_days} days ({figures.metric.target_setting})"))
    return about


def turnaround_about(report: TurnaroundReport) -> list[tuple[str, str]]:
    about = [("Counting", COHORT_DEFINITION), ("Percentiles", PERCENTILE_DEFINITION)]
    about.append(("Within target", SHARE_DEFINITION))
    for figures in report.figures:
        about += _metric_about(figures)
    return about


def _items_url(
    figures: MetricFigures,
    filters: ReportFilters,
    report_args: dict[str, str] | None = None,
    *,
    pending: bool = False,
) -> str:
    args = {**filters.query_args(), **(report_args or {}), "metric": figures.metric.key}
    if pending:
        args["pending"] = "1"
    return url_for("reports.turnaround_items", **args)


#: The inbox status filter nearest to each metric's items, and to its pending ones.
INBOX_STATUS = {
    "first_response": ("any", "new"),
    "resolution": ("any", "open"),
    "backlog_age": ("open", "open"),
}


def _links(
    figures: MetricFigures,
    filters: ReportFilters,
    label: GroupLabel | None,
    received: tuple[date, date] | None,
) -> tuple[str | None, str | None, str | None]:
    """Where a row's item count, pending count and rows link lead."""
    report_args = dict(label.report_args) if label else {}
    if received is not None:
        report_args["from"] = received[0].isoformat()
        report_args["to"] = received[1].isoformat()
    narrowable = label is None or bool(label.report_args) or received is not None
    rows = _items_url(figures, filters, report_args) if narrowable else None
    pending_rows = _items_url(figures, filters, report_args, pending=True) if narrowable else None
    statuses = INBOX_STATUS.get(figures.metric.key)
    if statuses is None:
        return rows, pending_rows, rows
    inbox_args = dict(label.inbox_args) if label else {}
    items = inbox_url(filters, inbox_args, status=statuses[0], received=received)
    pending = inbox_url(filters, inbox_args, status=statuses[1], received=received)
    return items, pending, rows


def _summary_cells(
    figures: MetricFigures,
    summary: Summary,
    links: tuple[str | None, str | None, str | None],
) -> list[Cell]:
    unit = figures.metric.unit
    items, pending, rows = links
    return [
        Cell(str(summary.total), items, True),
        Cell(str(summary.pending), pending if summary.pending else None, True),
        Cell(duration(summary.median, unit), None, True),
        Cell(duration(summary.p90, unit), None, True),
        Cell(duration(summary.mean, unit), None, True),
        Cell(percent(summary.share_within), None, True),
        Cell("CSV" if rows else "", rows),
    ]


SUMMARY_COLUMNS = [
    Column("Items", True),
    Column("Pending", True),
    Column("Median", True),
    Column("90th percentile", True),
    Column("Mean", True),
    Column("Within target (%)", True),
    Column("Rows", in_csv=False),
]


def overall_table(report: TurnaroundReport, filters: ReportFilters) -> Table:
    rows = []
    for figures in report.figures:
        target = f"{figures.target_days}" if figures.target_days is not None else ""
        rows.append(
            [
                Cell(figures.metric.label),
                Cell(figures.metric.unit.label),
                Cell(target, None, True),
                *_summary_cells(figures, figures.overall, _links(figures, filters, None, None)),
            ]
        )
    columns = [Column("Metric"), Column("Unit"), Column("Target (d)", True), *SUMMARY_COLUMNS]
    return Table("overall", "All items", columns, rows, turnaround_about(report))


def group_table(figures: MetricFigures, filters: ReportFilters, group_label: str) -> Table:
    rows = []
    for label, summary in figures.groups:
        received = month_dates(summary.key, filters) if filters.group == "month" else None
        links = _links(figures, filters, label, received)
        rows.append([Cell(label.label), *_summary_cells(figures, summary, links)])
    title = f"{figures.metric.label} by {group_label.lower()} ({figures.metric.unit.label})"
    return Table(
        f"by-{figures.metric.key}",
        title,
        [Column(group_label), *SUMMARY_COLUMNS],
        rows,
        _metric_about(figures),
    )


def trend_table(figures: MetricFigures, filters: ReportFilters) -> Table:
    unit = figures.metric.unit
    rows = []
    for summary in figures.months:
        received = month_dates(summary.key, filters)
        link = _links(figures, filters, None, received)[0]
        rows.append(
            [
                Cell(summary.key),
                Cell(str(summary.total), link, True),
                Cell(str(summary.pending), None, True),
                Cell(duration(summary.median, unit), None, True),
                Cell(duration(summary.p90, unit), None, True),
            ]
        )
    return Table(
        f"trend-{figures.metric.key}",
        f"{figures.metric.label} by month ({unit.label})",
        [
            Column("Month"),
            Column("Items", True),
            Column("Pending", True),
            Column("Median", True),
            Column("90th percentile", True),
        ],
        rows,
        _metric_about(figures),
    )


def turnaround_tables(
    report: TurnaroundReport, filters: ReportFilters
) -> tuple[Table, list[Table], list[Table]]:
    """The overall table, the monthly trend tables and one table per metric by group."""
    group_label = GROUP_CHOICES[filters.group]
    overall = overall_table(report, filters)
    trends = [
        trend_table(figures, filters)
        for figures in report.figures
        if figures.metric.key in TREND_METRICS
    ]
    grouped = [group_table(figures, filters, group_label) for figures in report.figures]
    return overall, trends, grouped


# ------------------------------------------------------------------------------- backlog


#: The inbox's own age filter, bucket by bucket (the same whole-day buckets).
INBOX_AGES = ("0-2", "3-7", "8-30", "31+")


def bucket_table(
    key: str, by_label: str, total: BucketRow, rows: list[BucketRow], filters: ReportFilters
) -> Table:
    def cells(row: BucketRow) -> list[Cell]:
        args = dict(row.label.inbox_args)
        result = [Cell(row.label.label)]
        for age, count in zip(INBOX_AGES, row.counts, strict=True):
            href = inbox_url(filters, {**args, "age": age}, status="open", dated=False)
            result.append(Cell(str(count), href if count else None, True))
        href = inbox_url(filters, args, status="open", dated=False)
        result.append(Cell(str(row.total), href if row.total else None, True))
        return result

    columns = [Column(by_label), *(Column(label, True) for label, _, _ in BUCKETS)]
    columns.append(Column("Open items", True))
    return Table(
        key,
        f"Open items by age and {by_label.lower()}",
        columns,
        [cells(total), *(cells(row) for row in rows)],
        [("Backlog age", BUCKET_DEFINITION)],
    )


def bucket_totals_table(total: BucketRow, filters: ReportFilters) -> Table:
    rows = []
    for (label, _, _), age, count in zip(BUCKETS, INBOX_AGES, total.counts, strict=True):
        href = inbox_url(filters, {"age": age}, status="open", dated=False)
        rows.append([Cell(label), Cell(str(count), href if count else None, True)])
    href = inbox_url(filters, status="open", dated=False)
    rows.append([Cell("All open items"), Cell(str(total.total), href, True)])
    return Table(
        "buckets",
        "Open items by age",
        [Column("Age"), Column("Open items", True)],
        rows,
        [("Backlog age", BUCKET_DEFINITION)],
    )


def overdue_table(statement: sa.Select[Any], today: date) -> ListTable:
    def render(row: Any) -> list[Cell]:
        return [
            Cell(row.title),
            Cell(row.country),
            Cell(row.profile),
            Cell(row.section or ""),
            Cell(row.assignee or "Unassigned"),
            Cell(str(row.state)),
            Cell(day(row.due_on)),
            Cell(str((today - row.due_on).days), None, True),
        ]

    return ListTable(
        "overdue-tasks",
        "Overdue review tasks",
        [
            Column("Task"),
            Column("Country"),
            Column("Profile"),
            Column("Section"),
            Column("Assignee"),
            Column("State"),
            Column("Due on"),
            Column("Days overdue", True),
        ],
        statement,
        render,
        [("Overdue", f"Open review tasks whose due date is before {today.isoformat()}.")],
        "No review task is overdue.",
    )


def waiting_table(statement: sa.Select[Any]) -> ListTable:
    def render(row: Any) -> list[Cell]:
        return [
            Cell(row.task),
            Cell(row.country),
            Cell(row.profile),
            Cell(row.section),
            Cell(row.author or ""),
            Cell(timestamp(row.submitted_at)),
            Cell(duration(row.waited, Unit.DAYS), None, True),
        ]

    return ListTable(
        "waiting-revisions",
        "Revisions waiting for approval",
        [
            Column("Task"),
            Column("Country"),
            Column("Profile"),
            Column("Section"),
            Column("Author"),
            Column("Submitted"),
            Column("Waiting (days)", True),
        ],
        statement,
        render,
        [
            (
                "Waiting",
                "Submitted revisions not yet approved or sent back; waiting = now − the task's "
                "submitted_at (the revision's created_at when that is earlier than the revision).",
            )
        ],
        "No revision is waiting for approval.",
    )


def aging_table(statement: sa.Select[Any], today: date, months: int) -> ListTable:
    def render(row: Any) -> list[Cell]:
        touched = row.last_touched_on
        since = "" if touched is None else f"{(today - touched).days / (365.25 / 12):.1f}"
        return [
            Cell(row.country),
            Cell(row.topic),
            Cell(row.language),
            Cell(day(row.last_updated_on)),
            Cell(day(row.reviewed_on)),
            Cell(since or "never", None, True),
        ]

    return ListTable(
        "aging-profiles",
        f"Profiles not updated or reviewed for more than {months} months",
        [
            Column("Country"),
            Column("Profile"),
            Column("Language"),
            Column("Last Updated"),
            Column("Reviewed"),
            Column("Months since", True),
        ],
        statement,
        render,
        [
            (
                "Aging",
                f"Published profiles whose later of Last Updated and Reviewed dates is more than "
                f"{months} calendar months before today, or that have neither.",
            )
        ],
        "Every profile was updated or reviewed recently.",
    )


# ------------------------------------------------------------------------------ outcomes

OUTCOME_ABOUT = [
    (
        "Outcomes",
        "Items received in the date range, by their resolution now: updated (a linked review "
        "task was approved), no action (with a reason), duplicate, spam; still open if not "
        "closed. A reopened item counts by its current state.",
    )
]


def outcome_table(
    key: str, title: str, rows: list[OutcomeRow], filters: ReportFilters, by: str
) -> Table:
    def cells(row: OutcomeRow) -> list[Cell]:
        first: list[Cell] = []
        args = dict(row.country.inbox_args) if row.country else {}
        received = month_dates(row.month, filters) if row.month else None
        if row.country is not None:
            first.append(Cell(row.country.label))
        if row.month is not None:
            first.append(Cell(row.month))
        counts = []
        for column in OUTCOME_COLUMNS:
            value = row.counts[column]
            status = {"received": "any", "open": "open"}.get(column, "closed")
            href = inbox_url(filters, args, status=status, received=received)
            counts.append(Cell(str(value), href if value else None, True))
        return first + counts

    columns = []
    if by in ("country", "country_month"):
        columns.append(Column("Country"))
    if by in ("month", "country_month"):
        columns.append(Column("Month"))
    columns += [Column(OUTCOME_LABELS[column], True) for column in OUTCOME_COLUMNS]
    totals: dict[str, int] = {
        column: sum(r.counts[column] for r in rows) for column in OUTCOME_COLUMNS
    }
    total_row = [Cell("All")] + [Cell("") for _ in columns[1 : len(columns) - len(OUTCOME_COLUMNS)]]
    total_row += [Cell(str(totals[column]), None, True) for column in OUTCOME_COLUMNS]
    return Table(key, title, columns, [*(cells(row) for row in rows), total_row], OUTCOME_ABOUT)


def reasons_table(reasons: list[tuple[str, int]]) -> Table:
    return Table(
        "no-action-reasons",
        "No action, by reason",
        [Column("Reason"), Column("Items", True)],
        [[Cell(reason), Cell(str(count), None, True)] for reason, count in reasons],
        [("Reasons", "The reason given when closing as no action, as written (trimmed).")],
    )


def publication_table(figures: MetricFigures, filters: ReportFilters) -> Table:
    rows = [
        [
            Cell("All"),
            *_summary_cells(figures, figures.overall, _links(figures, filters, None, None))[:5],
        ]
    ]
    for label, summary in figures.groups:
        links = _links(figures, filters, label, None)
        rows.append([Cell(label.label), *_summary_cells(figures, summary, links)[:5]])
    return Table(
        "publication",
        "Time to publication by country (days)",
        [Column("Country"), *SUMMARY_COLUMNS[:5]],
        rows,
        [("Percentiles", PERCENTILE_DEFINITION), *_metric_about(figures)],
    )
