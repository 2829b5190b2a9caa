"""``desk report turnaround|backlog|outcomes``: a report's table as CSV, as the pages export it."""

from __future__ import annotations

from collections.abc import Iterator

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.exceptions import HTTPException

from desk.core.time import desk_today, desk_zone, utcnow
from desk.reports import queries, tables
from desk.reports.csv import csv_lines
from desk.reports.filters import GROUP_CHOICES, ReportFilters, build_scope, parse_filters
from desk.reports.metrics import METRICS

report_group = AppGroup("report", help="Write a report's table as CSV (every country).")

TURNAROUND_TABLES = [
    "overall",
    *(f"by-{metric.key}" for metric in METRICS),
    *(f"trend-{key}" for key in queries.TREND_METRICS),
]


def register(app: Flask) -> None:
    app.cli.add_command(report_group)


def _filters(start: str | None, end: str | None, country: str | None, group: str) -> ReportFilters:
    args = {"from": start or "", "to": end or "", "country": country or "", "group": group}
    try:
        return parse_filters(args, None, desk_today())
    except HTTPException as error:  # the shared parser's abort(400) or abort(404)
        problem = error.description if error.code == 400 else f"unknown country {country!r}"
        raise click.UsageError(str(problem)) from error


def _write(target: str, lines: Iterator[str]) -> None:
    if target == "-":
        out = click.get_text_stream("stdout")
        for chunk in lines:
            out.write(chunk)
        return
    with open(target, "w", encoding="utf-8", newline="") as file:
        for chunk in lines:
            file.write(chunk)


def _export(report: str, table: tables.Table, filters: ReportFilters, target: str) -> None:
    about = [
        ("Report", f"{report}: {table.title}"),
        ("Made", utcnow().astimezone(desk_zone()).strftime("%Y-%m-%d %H:%M %Z")),
        *filters.describe(),
        *table.about,
    ]
    _write(
        target,
        csv_lines(f"Desk report: {report}", about, table.csv_header(), table.csv_rows()),
    )


date_options = [
    click.option("--from", "start", metavar="YYYY-MM-DD", help="First day (default: 90 days ago)."),
    click.option("--to", "end", metavar="YYYY-MM-DD", help="Last day (default: today)."),
    click.option("--country", metavar="CODE", help="ISO code of one country (default: all)."),
]


def _with_dates(command):  # type: ignore[no-untyped-def]
    for option in reversed(date_options):
        command = option(command)
    return command


@report_group.command("turnaround")
@_with_dates
@click.option(
    "--group-by",
    "group",
    type=click.Choice(list(GROUP_CHOICES)),
    default="country",
    show_default=True,
)
@click.option(
    "--table",
    type=click.Choice(TURNAROUND_TABLES),
    default="overall",
    show_default=True,
    help="overall: every metric; by-METRIC: one metric by group; trend-METRIC: by month.",
)
@click.option("--csv", "target", required=True, metavar="FILE", help="Where to write ('-': out).")
def turnaround_command(
    start: str | None, end: str | None, country: str | None, group: str, table: str, target: str
) -> None:
    """Turnaround metrics (count, median, 90th percentile, mean, share within target)."""
    with current_app.test_request_context():
        filters = _filters(start, end, country, group)
        scope = build_scope(filters, None, utcnow(), desk_zone())
        report = queries.turnaround(scope, filters.group)
        overall, trends, grouped = tables.turnaround_tables(report, filters)
        chosen = {t.key: t for t in [overall, *trends, *grouped]}[table]
        _export("Turnaround", chosen, filters, target)
    if target != "-":
        click.echo(f"Wrote {chosen.title} ({len(chosen.rows)} rows) to {target}.", err=True)


@report_group.command("outcomes")
@_with_dates
@click.option("--by", type=click.Choice(["country", "month", "country_month"]), default="country")
@click.option("--csv", "target", required=True, metavar="FILE", help="Where to write ('-': out).")
def outcomes_command(
    start: str | None, end: str | None, country: str | None, by: str, target: str
) -> None:
    """What feedback received in the range led to, by country and/or month."""
    with current_app.test_request_context():
        filters = _filters(start, end, country, "country")
        scope = build_scope(filters, None, utcnow(), desk_zone())
        rows = queries.outcome_counts(scope, by)
        table = tables.outcome_table(f"by-{by}", f"Outcomes by {by}", rows, filters, by)
        _export("Outcomes", table, filters, target)
