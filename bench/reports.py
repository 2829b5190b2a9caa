"""Benchmark: the turnaround report against one raw SQL statement computing the same figures,
and the peak memory of a row-level CSV export.

What runs (issue "Turnaround reports"):

1. The database (``--database-url``; default a SQLite file in ``--workdir``) is migrated and,
   unless seed-scale already filled it, seeded with ``desk seed-scale --feedback N``, whose
   time is printed.
2. **Report against raw SQL.** The turnaround report's figures for the default range (the last
   90 days, every country, grouped by country, with the monthly trend of the two SLA
   metrics) are computed by ``desk.reports.queries.turnaround`` — six statements built with
   SQLAlchemy, one per metric — and by one hand-written SQL statement (a UNION ALL of the
   same six aggregates: ``percentile_cont`` with GROUPING SETS on PostgreSQL, the
   ``ROW_NUMBER``/``COUNT`` window form on SQLite). The bench checks both give the same
   counts, medians and 90th percentiles, then times them alternately, ``--rounds`` times each
   after a warm-up, and prints the medians and the ratio report/raw (target ≤ 1.5 on
   PostgreSQL). The whole page (``GET /desk/reports/turnaround`` through the app, charts and
   template included) is timed too, against the same raw statement.
3. **CSV export memory.** A separate process builds the app, logs in as the seeded manager and
   streams ``/desk/reports/turnaround/items?metric=first_response`` over every item ever
   received (one row per item: the largest export Desk has) to /dev/null, reading the
   response chunk by chunk as a client would. It prints its resident memory after start-up
   and its peak while exporting (VmHWM from /proc, reset once the app is up), with rows and
   rows/s (target: peak under 100 MB).

The machine it runs on has 2 cores, usually shared: every figure is a median of alternating
runs, so a noisy neighbour slows the report and the raw statement alike.

Run from the project root:

    .venv/bin/python -m bench.reports --feedback 100000
    .venv/bin/python -m bench.reports --database-url postgresql+psycopg://u@host/scratch \\
        --feedback 100000 --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from desk import create_app
from desk.core.time import desk_today, desk_zone, utcnow
from desk.extensions import db
from desk.reports import queries
from desk.reports.filters import ReportFilters, build_scope
from desk.reports.metrics import DAY, Scope
from desk.scale import PASSWORD, STAFF_DOMAIN, seed_scale

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RATIO_TARGET = 1.5
MEMORY_TARGET_MB = 100
MANAGER = f"manager1@{STAFF_DOMAIN}"


# --------------------------------------------------------------------------------------------
# The raw statement: the same figures, written by hand.


def _epoch(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM date_trunc('second', {column})) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def _literal(dialect: str, moment: datetime) -> str:
    if dialect == "postgresql":
        return f"TIMESTAMPTZ '{moment.isoformat()}'"
    return f"'{moment.astimezone(UTC).replace(tzinfo=None).isoformat(' ', 'microseconds')}'"


def _facts(dialect: str, scope: Scope) -> dict[str, str]:
    """Per metric: a SELECT of (grp, s, v) — country, start, seconds — over the scope."""
    e = lambda column: _epoch(dialect, column)  # noqa: E731
    start, end = _literal(dialect, scope.starts_at), _literal(dialect, scope.ends_at)
    received = f"f.received_at >= {start} AND f.received_at < {end}"
    now = int(scope.now.timestamp())
    submitted = "r.submitted_at"
    closed_at = e("CASE WHEN f.status = 'closed' THEN f.resolved_at END")
    approved_at = e("CASE WHEN t.state = 'approved' THEN t.decided_at END")
    decided_at = e("CASE WHEN r.state IN ('approved', 'rejected') THEN r.decided_at END")
    return {
        "first_response": (
            f"SELECT f.country_id AS grp, f.received_at AS s, "
            f"{e('f.first_response_at')} - {e('f.received_at')} AS v "
            f"FROM feedback f WHERE {received}"
        ),
        "resolution": (
            f"SELECT f.country_id AS grp, f.received_at AS s, "
            f"{closed_at} - "
            f"{e('f.received_at')} AS v FROM feedback f WHERE {received} "
            f"AND (f.resolution IS NULL OR f.resolution <> 'spam')"
        ),
        "publication": (
            f"SELECT f.country_id AS grp, f.received_at AS s, "
            f"{e('min(u.created_at)')} - {e('f.received_at')} AS v "
            f"FROM feedback f JOIN review_task_feedback l ON l.feedback_id = f.id "
            f"LEFT JOIN section_revision r ON r.task_id = l.task_id "
            f"AND r.profile_update_id IS NOT NULL "
            f"LEFT JOIN profile_update u ON u.id = r.profile_update_id "
            f"WHERE {received} GROUP BY f.id, f.country_id, f.received_at"
        ),
        "task_cycle": (
            f"SELECT p.country_id AS grp, t.created_at AS s, "
            f"{approved_at} - "
            f"{e('t.created_at')} AS v FROM review_task t JOIN profile p ON p.id = t.profile_id "
            f"WHERE t.created_at >= {start} AND t.created_at < {end} "
            f"AND t.state <> 'cancelled'"
        ),
        "review_wait": (
            f"SELECT p.country_id AS grp, {submitted} AS s, "
            f"{decided_at} - "
            f"{e(submitted)} AS v FROM section_revision r "
            f"JOIN review_task t ON t.id = r.task_id JOIN profile p ON p.id = t.profile_id "
            f"WHERE r.state IN ('submitted', 'approved', 'rejected') "
            f"AND {submitted} >= {start} AND {submitted} < {end}"
        ),
        "backlog_age": (
            f"SELECT f.country_id AS grp, f.received_at AS s, {now} - {e('f.received_at')} AS v "
            f"FROM feedback f WHERE {received} AND f.status <> 'closed' "
            f"AND f.is_quarantined = {'false' if dialect == 'postgresql' else '0'}"
        ),
    }


def raw_statement(dialect: str, scope: Scope) -> str:
    """One statement: every metric overall, by country, and by month for the trend metrics."""
    months = scope.months
    month = (
        "CASE "
        + "".join(
            f"WHEN s < {_literal(dialect, following.starts_at)} THEN '{current.label}' "
            for current, following in pairwise(months)
        )
        + f"ELSE '{months[-1].label}' END"
    )
    targets = {"first_response": 3 * DAY, "resolution": 30 * DAY}
    parts = []
    for key, facts in _facts(dialect, scope).items():
        target = targets.get(key)
        within = late_count = "NULL"
        if target is not None:
            overdue = _literal(dialect, scope.now - timedelta(seconds=target))
            within = f"count(CASE WHEN v <= {target} THEN 1 END)"
            late_count = (
                f"count(CASE WHEN v > {target} OR (v IS NULL AND s < {overdue}) THEN 1 END)"
            )
        sets = ["all", "group", "month"] if key in queries.TREND_METRICS else ["all", "group"]
        shaped = f"SELECT grp, {month} AS month, s, v FROM ({facts}) facts"
        if dialect == "postgresql":
            grouping = ", ".join(
                {"all": "()", "group": "(grp)", "month": "(month)"}[k] for k in sets
            )
            kind = "CASE WHEN GROUPING(grp) = 0 THEN 'group' "
            kind += "WHEN GROUPING(month) = 0 THEN 'month' " if "month" in sets else ""
            kind += "ELSE 'all' END"
            label = "CASE WHEN GROUPING(grp) = 0 THEN CAST(grp AS TEXT) "
            label += "WHEN GROUPING(month) = 0 THEN month " if "month" in sets else ""
            label += "END"
            parts.append(
                f"SELECT '{key}' AS metric, {kind} AS kind, {label} AS key, count(*) AS total, "
                f"count(v) AS reached, percentile_cont(0.5) WITHIN GROUP (ORDER BY v) AS median, "
                f"percentile_cont(0.9) WITHIN GROUP (ORDER BY v) AS p90, avg(v) AS mean, "
                f"{within} AS within, {late_count} AS late "
                f"FROM ({shaped}) shaped GROUP BY GROUPING SETS ({grouping})"
            )
            continue
        for kind in sets:
            k = {"all": "NULL", "group": "grp", "month": "month"}[kind]
            over = "" if kind == "all" else f"PARTITION BY {k} "
            ranked = (
                f"SELECT {k} AS k, s, v, row_number() OVER ({over}ORDER BY v NULLS LAST) AS rn, "
                f"count(v) OVER ({over.strip()}) AS n FROM ({shaped}) shaped"
            )
            percentiles = []
            for q in (50, 90):
                low = f"(({q} * (n - 1)) / 100 + 1)"
                rem = f"(({q} * (n - 1)) % 100)"
                high = f"({low} + CASE WHEN {rem} > 0 THEN 1 ELSE 0 END)"
                at_low = f"max(CASE WHEN rn = {low} THEN v END)"
                at_high = f"max(CASE WHEN rn = {high} THEN v END)"
                percentiles.append(
                    f"{at_low} + ({at_high} - {at_low}) * CAST(max({rem}) AS REAL) / 100.0"
                )
            group_by = "" if kind == "all" else " GROUP BY k"
            parts.append(
                f"SELECT '{key}' AS metric, '{kind}' AS kind, CAST(k AS TEXT) AS key, "
                f"count(*) AS total, count(v) AS reached, {percentiles[0]} AS median, "
                f"{percentiles[1]} AS p90, avg(v) AS mean, {within} AS within, "
                f"{late_count} AS late FROM ({ranked}) ranked{group_by}"
            )
    return "\nUNION ALL\n".join(parts)


# --------------------------------------------------------------------------------------------
# Measuring


def _figures_of_report(report: queries.TurnaroundReport) -> dict[tuple[str, str, str], tuple]:
    figures = {}
    for metric in report.figures:
        key = metric.metric.key
        rows = [("all", metric.overall), *(("group", s) for _, s in metric.groups)]
        rows += [("month", s) for s in metric.months]
        for kind, summary in rows:
            figures[(key, kind, "" if summary.key is None else str(summary.key))] = (
                summary.total,
                summary.reached,
                summary.median,
                summary.p90,
            )
    return figures


def _figures_of_raw(rows: list[Any]) -> dict[tuple[str, str, str], tuple]:
    def number(value: Any) -> float | None:
        return None if value is None else round(float(value), 3)

    return {
        (row.metric, row.kind, "" if row.key is None else str(row.key)): (
            row.total,
            row.reached,
            number(row.median),
            number(row.p90),
        )
        for row in rows
    }


def _timed(fn: Any) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def measure_report(app: Any, rounds: int) -> dict[str, Any]:
    with app.app_context():
        dialect = db.engine.dialect.name
        now = utcnow()
        today = desk_today(now)
        filters = ReportFilters(today - timedelta(days=89), today)
        scope = build_scope(filters, None, now, desk_zone())
        sql = raw_statement(dialect, scope)

        def report() -> queries.TurnaroundReport:
            result = queries.turnaround(scope, "country")
            db.session.rollback()
            return result

        def raw() -> list[Any]:
            rows = db.session.connection().exec_driver_sql(sql).all()
            db.session.rollback()
            return rows

        ours, theirs = _figures_of_report(report()), _figures_of_raw(raw())
        if ours != theirs:
            differing = sorted(set(ours.items()) ^ set(theirs.items()))[:6]
            raise SystemExit(f"the report and the raw statement disagree: {differing}")
        items = sum(v[0] for k, v in ours.items() if k[1] == "all" and k[0] == "first_response")

    client = app.test_client()
    _log_in(client)
    page_path = "/desk/reports/turnaround"
    assert client.get(page_path).status_code == 200

    times: dict[str, list[float]] = {"report": [], "page": [], "raw": []}
    with app.app_context():
        for _ in range(rounds):
            times["report"].append(_timed(report))
            times["raw"].append(_timed(raw))
            times["page"].append(_timed(lambda: client.get(page_path)))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "dialect": dialect,
        "items_in_range": items,
        "figures": len(ours),
        "times": times,
        "medians": medians,
    }


def _log_in(client: Any) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    response = client.post(
        "/login",
        data={
            "email": MANAGER,
            "password": PASSWORD,
            "csrf_token": token.group(1) if token else "",
        },
    )
    if response.status_code != 302:
        raise SystemExit(f"could not log in as {MANAGER} (status {response.status_code})")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def export_worker(settings: dict[str, Any]) -> None:
    """In its own process: stream the largest CSV export, print memory and speed as JSON."""
    app = create_app(settings)
    client = app.test_client()
    _log_in(client)
    path = "/desk/reports/turnaround/items?metric=first_response&from=2000-01-01"
    started_kb = _status_kb("VmRSS")
    start_peak_kb = _status_kb("VmHWM")
    # Reset the peak (Linux ≥ 4.0) so that it measures the export, not the start-up (building
    # the app briefly takes more than the export does; see start_peak_kb).
    Path("/proc/self/clear_refs").write_text("5")
    began = time.perf_counter()
    response = client.get(path, buffered=False)
    size = lines = header_lines = 0
    with open(os.devnull, "wb") as sink:
        for chunk in response.response:
            data = chunk if isinstance(chunk, bytes) else chunk.encode()
            if not size:
                # The '#' lines, the empty line and the column names come before the rows.
                header_lines = data[: data.index(b"\r\nId,") + 2].count(b"\n") + 1
            size += len(data)
            lines += data.count(b"\n")
            sink.write(data)
    response.close()
    seconds = time.perf_counter() - began
    print(
        json.dumps(
            {
                "status": response.status_code,
                "bytes": size,
                "rows": lines - header_lines,
                "seconds": seconds,
                "rss_after_start_kb": started_kb,
                "start_peak_kb": start_peak_kb,
                "peak_rss_kb": _status_kb("VmHWM"),
            }
        )
    )


def measure_export(settings: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.reports", "--export-worker", json.dumps(settings)]
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=3600
    )
    if done.returncode != 0:
        raise SystemExit(f"the export worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Set-up and output


def prepare(settings: dict[str, Any], count: int) -> tuple[Any, str]:
    # Here, not at the top: the export worker imports this module and must not carry Alembic,
    # which the app itself leaves unloaded (desk.core.migrations).
    import flask_migrate

    app = create_app(settings)
    with app.app_context():
        flask_migrate.upgrade(directory=str(PROJECT_ROOT / "migrations"))
        seeded = db.session.scalar(sa.select(sa.func.count()).select_from(sa.table("feedback")))
        if seeded:
            note = f"database already holds {seeded:,} items (seed-scale not run)"
        else:
            result = seed_scale(count, progress=lambda text: print(f"  seeding: {text}", end="\r"))
            print()
            s = result.seconds
            note = (
                f"seed-scale --feedback {count:,}: {s['total']:.1f} s "
                f"(generate {s['generate']:.1f} s, write {s['write']:.1f} s, analyze "
                f"{s['analyze']:.1f} s; {s['cpu']:.1f} s CPU in this process); "
                f"{result.events:,} events, {result.tasks:,} tasks, {result.revisions:,} "
                f"revisions, {result.stamps:,} stamps"
            )
    return app, note


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--database-url", help="default: a SQLite file in --workdir")
    parser.add_argument("--workdir", default="/tmp/desk-bench-reports", help="instance folder")
    parser.add_argument("--feedback", type=int, default=100_000, help="items to seed (100000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each (5)")
    parser.add_argument("--no-export", action="store_true", help="skip the CSV memory test")
    parser.add_argument("--export-worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.export_worker:
        export_worker(json.loads(args.export_worker))
        return 0
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {
        "DESK_ENV": "testing",
        "DESK_SECRET_KEY": "bench-reports",
        "DESK_INSTANCE_PATH": str(workdir / "instance"),
        "DESK_DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'desk.sqlite3'}",
        "WTF_CSRF_ENABLED": False,
    }
    print(f"bench/reports.py on {sa.make_url(settings['DESK_DATABASE_URL']).drivername}")
    print(f"  load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    app, note = prepare(settings, args.feedback)
    print(f"  {note}")

    result = measure_report(app, args.rounds)
    medians = result["medians"]
    ratio = medians["report"] / medians["raw"]
    page_ratio = medians["page"] / medians["raw"]
    target = "PASS" if ratio <= RATIO_TARGET else "MISS"
    print(
        f"\nTurnaround, last 90 days by country ({result['items_in_range']:,} items in range, "
        f"{result['figures']} groups of figures, identical in both):"
    )
    for name in ("report", "page", "raw"):
        runs = " ".join(f"{value:.3f}" for value in result["times"][name])
        print(f"  {name:<7} median {medians[name]:7.3f} s   runs: {runs}")
    print(f"  report/raw = {ratio:.2f} (target ≤ {RATIO_TARGET} on PostgreSQL: {target})")
    print(f"  page/raw   = {page_ratio:.2f} (the whole page: charts, template, login check)")

    if not args.no_export:
        export = measure_export(settings)
        peak_mb = export["peak_rss_kb"] / 1024
        verdict = "PASS" if peak_mb < MEMORY_TARGET_MB else "MISS"
        rows = export["rows"]
        print(
            f"\nCSV export of every item's first response ({rows:,} rows, "
            f"{export['bytes'] / 1e6:.1f} MB) streamed in {export['seconds']:.1f} s "
            f"({rows / export['seconds']:,.0f} rows/s), status {export['status']}:"
        )
        started_mb = export["rss_after_start_kb"] / 1024
        print(
            f"  RSS after start-up {started_mb:.1f} MB (peak while starting "
            f"{export['start_peak_kb'] / 1024:.0f} MB); peak while exporting {peak_mb:.1f} MB, "
            f"{peak_mb - started_mb:+.1f} MB (target < {MEMORY_TARGET_MB} MB: {verdict})"
        )
    print(f"  load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
