"""The report pages, their CSV exports (``?format=csv&table=…``) and the rows behind a figure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from desk.core.permissions import staff_only
from desk.core.time import desk_today, desk_zone, utcnow
from desk.extensions import db
from desk.reports import bp, charts, queries, tables
from desk.reports.csv import csv_lines, csv_response
from desk.reports.filters import (
    ReportFilters,
    build_scope,
    choices,
    parse_filters,
)
from desk.reports.metrics import DAY, METRICS, METRICS_BY_KEY, Scope
from desk.reports.tables import ListTable, Table

staff_only(bp)

#: Default and bounds of the backlog report's "not updated or reviewed for N months".
AGING_MONTHS = 12
AGING_MONTHS_MAX = 240


@dataclass(frozen=True)
class ReportRequest:
    """What every report page starts from: the clock, the filters and the viewer's scope."""

    now: datetime
    today: date
    filters: ReportFilters
    scope: Scope


def _read_request() -> ReportRequest:
    now = utcnow()
    today = desk_today(now)
    filters = parse_filters(request.args, current_user, today)
    return ReportRequest(now, today, filters, build_scope(filters, current_user, now, desk_zone()))


def _csv_url(filters: ReportFilters, **extra: str) -> Callable[[str], str]:
    def url(table: str) -> str:
        assert request.endpoint is not None
        return url_for(request.endpoint, **filters.query_args(), **extra, format="csv", table=table)

    return url


def _wants_csv() -> bool:
    return request.args.get("format") == "csv"


def _export(
    report: str, table: Table | ListTable, req: ReportRequest, *, dated: bool = True
) -> ResponseReturnValue:
    """The table as a streamed CSV file, its header naming the filters and definitions."""
    about = [
        ("Report", f"{report}: {table.title}"),
        ("Made", req.now.astimezone(desk_zone()).strftime("%Y-%m-%d %H:%M %Z")),
        *req.filters.describe(dated=dated),
        *table.about,
    ]
    filename = f"{report.lower()}-{table.key}-{req.today.isoformat()}.csv"
    return csv_response(
        filename, csv_lines(f"Desk report: {report}", about, table.csv_header(), table.csv_rows())
    )


def _pick(tables_by_key: dict[str, Any]) -> Any:
    table = tables_by_key.get(request.args.get("table", ""))
    if table is None:
        abort(404)
    return table


@bp.get("/")
def index() -> str:
    return render_template("reports/index.html")


# --------------------------------------------------------------------------- turnaround


@bp.get("/turnaround")
def turnaround() -> ResponseReturnValue:
    req = _read_request()
    metrics = METRICS
    wanted = request.args.get("table", "")
    if _wants_csv() and wanted.startswith(("by-", "trend-")):
        metric = METRICS_BY_KEY.get(wanted.split("-", 1)[1])
        if metric is None:
            abort(404)
        metrics = (metric,)
    report = queries.turnaround(req.scope, req.filters.group, metrics=metrics)
    overall, trends, grouped = tables.turnaround_tables(report, req.filters)
    if _wants_csv():
        by_key = {table.key: table for table in [overall, *trends, *grouped]}
        return _export("Turnaround", _pick(by_key), req)
    trend_charts = [
        _trend_chart(figures)
        for figures in report.figures
        if figures.metric.key in queries.TREND_METRICS
    ]
    return render_template(
        "reports/turnaround.html",
        filters=req.filters,
        choices=choices(current_user),
        overall=overall,
        trends=[
            (chart, table, figures.metric.label)
            for chart, table, figures in zip(
                trend_charts,
                trends,
                [f for f in report.figures if f.metric.key in queries.TREND_METRICS],
                strict=True,
            )
        ],
        grouped=grouped,
        about=tables.turnaround_about(report),
        csv_url=_csv_url(req.filters),
    )


def _trend_chart(figures: queries.MetricFigures) -> Any:
    unit = figures.metric.unit
    months = figures.months
    return charts.line_chart(
        f"trend-{figures.metric.key}",
        f"{figures.metric.label}: median and 90th percentile by month",
        f"Median and 90th percentile of {figures.metric.label.lower()} in {unit.label}, "
        f"for each month with items, and the target as a dotted line where there is one; the "
        f"table beside the chart has the numbers.",
        [summary.key for summary in months],
        [
            charts.Series(
                "Median",
                [_in_unit(summary.median, unit) for summary in months],
                charts.OKABE_ITO["blue"],
            ),
            charts.Series(
                "90th percentile",
                [_in_unit(summary.p90, unit) for summary in months],
                charts.OKABE_ITO["vermillion"],
                dash="6 4",
                marker="square",
            ),
        ],
        unit.label,
        reference=(
            (figures.target_days * DAY / unit.seconds, f"target {figures.target_days} days")
            if figures.target_days is not None
            else None
        ),
    )


def _in_unit(seconds: float | None, unit: Any) -> float | None:
    return None if seconds is None else seconds / unit.seconds


@bp.get("/turnaround/items")
def turnaround_items() -> ResponseReturnValue:
    """The items behind a metric's figures, one CSV row each (all of them, streamed)."""
    metric = METRICS_BY_KEY.get(request.args.get("metric", ""))
    if metric is None:
        abort(404)
    req = _read_request()
    pending = request.args.get("pending") == "1"
    statement = queries.metric_rows(metric, req.scope, pending=pending)
    unit = metric.unit

    def rows() -> Iterator[list[str]]:
        result = db.session.execute(statement.execution_options(yield_per=2000))
        for row in result:
            yield [
                str(row.item_id),
                row.reference,
                row.country or "",
                row.editor or "",
                row.channel or "",
                _iso(row.start_at),
                _iso(row.end_at),
                tables.duration(row.value, unit),
            ]

    about = [
        ("Report", f"Turnaround: the items behind {metric.label.lower()}"),
        *req.filters.describe(),
        (metric.label, metric.definition),
        ("Rows", "only items still pending" if pending else "every item counted"),
        ("Times", "UTC, ISO 8601"),
    ]
    header = ["Id", "Reference", "Country", "Editor", "Channel", "Start", "End"]
    header.append(f"Duration ({unit.label})")
    filename = f"turnaround-{metric.key}-items-{req.today.isoformat()}.csv"
    return csv_response(filename, csv_lines("Desk report: Turnaround", about, header, rows()))


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------ backlog


def _aging_months() -> int:
    raw = request.args.get("months", "").strip()
    if not raw:
        return AGING_MONTHS
    if not raw.isdigit() or not 1 <= int(raw) <= AGING_MONTHS_MAX:
        abort(400, description=f"'months' must be a whole number from 1 to {AGING_MONTHS_MAX}.")
    return int(raw)


@bp.get("/backlog")
def backlog() -> ResponseReturnValue:
    req = _read_request()
    months = _aging_months()
    cutoff = queries.aging_cutoff(req.today, months)
    overdue = tables.overdue_table(queries.overdue_tasks(req.scope, req.today), req.today)
    waiting = tables.waiting_table(queries.waiting_revisions(req.scope))
    aging = tables.aging_table(queries.aging_profiles(req.scope, cutoff), req.today, months)
    lists = {table.key: table for table in (overdue, waiting, aging)}
    if _wants_csv() and request.args.get("table") in lists:
        return _export("Backlog", lists[request.args["table"]], req, dated=False)

    total, by_country = queries.backlog_buckets(req.scope, "country")
    _, by_editor = queries.backlog_buckets(req.scope, "editor")
    totals_table = tables.bucket_totals_table(total, req.filters)
    country_table = tables.bucket_table(
        "buckets-country", "Country", total, by_country, req.filters
    )
    editor_table = tables.bucket_table("buckets-editor", "Editor", total, by_editor, req.filters)
    aging_counts = tables.Table(
        "aging-by-country",
        "Aging profiles by country",
        [tables.Column("Country"), tables.Column("Profiles", True)],
        [
            [tables.Cell(country), tables.Cell(str(count), None, True)]
            for country, count in queries.aging_by_country(req.scope, cutoff)
        ],
        aging.about,
    )
    if _wants_csv():
        by_key = {t.key: t for t in (totals_table, country_table, editor_table, aging_counts)}
        return _export("Backlog", _pick(by_key), req, dated=False)

    chart = charts.bar_chart(
        "backlog-buckets",
        "Open items by age",
        "Number of open items in each age bucket (0–2, 3–7, 8–30 and over 30 days); the "
        "table beside the chart has the numbers.",
        [label for label, _, _ in queries.BUCKETS],
        total.counts,
        "open items",
    )
    return render_template(
        "reports/backlog.html",
        filters=req.filters,
        choices=choices(current_user),
        months=months,
        chart=chart,
        totals_table=totals_table,
        country_table=country_table,
        editor_table=editor_table,
        lists=[(table, *table.page_rows()) for table in (overdue, waiting, aging)],
        waiting_summary=queries.waiting_summary(req.scope),
        aging_counts=aging_counts,
        csv_url=_csv_url(req.filters, months=str(months)),
    )


# ----------------------------------------------------------------------------- outcomes


@bp.get("/outcomes")
def outcomes() -> ResponseReturnValue:
    req = _read_request()
    scope = req.scope
    by_country = tables.outcome_table(
        "by-country",
        "Outcomes by country",
        queries.outcome_counts(scope, "country"),
        req.filters,
        "country",
    )
    monthly = queries.outcome_counts(scope, "month")
    by_month = tables.outcome_table("by-month", "Outcomes by month", monthly, req.filters, "month")
    by_country_month = tables.outcome_table(
        "by-country-month",
        "Outcomes by country and month",
        queries.outcome_counts(scope, "country_month"),
        req.filters,
        "country_month",
    )
    reasons = tables.reasons_table(queries.no_action_reasons(scope))
    publication = queries.turnaround(
        scope, "country", metrics=(METRICS_BY_KEY["publication"],), trends=()
    ).figures[0]
    publication_table = tables.publication_table(publication, req.filters)
    all_tables = (by_country, by_month, by_country_month, reasons, publication_table)
    if _wants_csv():
        return _export("Outcomes", _pick({t.key: t for t in all_tables}), req)

    palette = charts.OKABE_ITO
    colours = {
        "updated": palette["bluish_green"],
        "no_action": palette["orange"],
        "duplicate": palette["sky_blue"],
        "spam": palette["vermillion"],
        "open": palette["reddish_purple"],
    }
    chart = charts.stacked_bar_chart(
        "outcomes-by-month",
        "Outcomes by month received",
        "For each month, the items received stacked by outcome: updated, no action, "
        "duplicate, spam, still open; the table beside the chart has the numbers.",
        [row.month or "" for row in monthly],
        [
            charts.Series(queries.OUTCOME_LABELS[key], [row.counts[key] for row in monthly], colour)
            for key, colour in colours.items()
        ],
        "items",
    )
    return render_template(
        "reports/outcomes.html",
        filters=req.filters,
        choices=choices(current_user),
        chart=chart,
        by_country=by_country,
        by_month=by_month,
        by_country_month=by_country_month,
        reasons=reasons,
        publication=publication_table,
        csv_url=_csv_url(req.filters),
    )
