"""Every figure of the hand-checked history (tests/reports/conftest.py), exactly.

Durations are in seconds. Percentiles interpolate linearly between the closest ranks: for n
sorted values, position p × (n − 1) counted from 0.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from desk.extensions import db
from desk.feedback.models import Channel
from desk.reports import queries
from desk.reports.filters import ReportFilters, build_scope
from desk.reports.metrics import METRICS_BY_KEY, Summary, summarise
from tests.reports.conftest import FROM, NOW, TO

H = 3600
D = 86400
UTC = ZoneInfo("UTC")


def scope_for(user, **filters):
    return build_scope(ReportFilters(FROM, TO, **filters), user, NOW, UTC)


def figures(history, user=None, group="country", **filters):
    report = queries.turnaround(scope_for(user or history.manager, **filters), group)
    return {f.metric.key: f for f in report.figures}


def exact(summary: Summary) -> tuple:
    return (
        summary.total,
        summary.reached,
        summary.median,
        summary.p90,
        summary.mean,
        summary.within,
        summary.judged,
    )


def test_time_to_first_response_counts_every_item_and_its_first_human_event(history):
    overall = figures(history)["first_response"].overall
    # Answered: F10 30 s, F1 40 s, F6 1 h, F7 1.5 h, F5 6 h, N1 12 h, F2 24 h, F3 96 h (n = 8);
    # pending: F4, F8, N2, U1. Median at 3.5: 5400 + 0.5 × 16200; p90 at 6.3: 86400 + 0.3 ×
    # 259200. Within 3 days: 7; late: F3 and the pending F4, N2, U1 (F8 is exactly 3 days
    # old: not late yet).
    assert exact(overall) == (12, 8, 13500.0, 164160.0, 63233.75, 7, 11)
    assert overall.pending == 4
    assert overall.share_within == pytest.approx(7 / 11)


def test_time_to_resolution_leaves_out_spam_and_counts_a_reopened_item_at_its_last_close(
    history,
):
    overall = figures(history)["resolution"].overall
    # Closed: F1 1 d, F5 1 d, F2 10 d, N1 30 d (within: ≤), F3 42 d (reopened, last close);
    # F6 (spam) left out; pending: F4, F7, F8, F10, N2, U1. Median at 2: 10 d; p90 at 3.6:
    # 30 d + 0.6 × 12 d. Late: F3, and F4 (45 d) and U1 (39.5 d) still open.
    assert exact(overall) == (11, 5, 10 * D, 3214080.0, 1451520.0, 4, 7)
    assert overall.share_within == pytest.approx(4 / 7)


def test_time_to_publication_runs_to_the_stamp_that_published_the_linked_task(history):
    overall = figures(history)["publication"].overall
    # F2 → PU1: 10 d; N1 → PU2: 30 d. F9 (linked to T2) was received before the range.
    assert exact(overall) == (2, 2, 20 * D, 28 * D, 20 * D, None, None)


def test_task_cycle_time_runs_from_creation_to_approval_without_cancelled_tasks(history):
    overall = figures(history)["task_cycle"].overall
    # T1 6 d, T3 28 d; T2 and T5 pending; T4 cancelled.
    assert exact(overall) == (4, 2, 17 * D, 2229120.0, 17 * D, None, None)


def test_review_wait_counts_each_decision_once_including_a_revision_sent_back(history):
    overall = figures(history)["review_wait"].overall
    # r1 sent back after 1 d (measured from its creation: the task's submission time is r2's),
    # r2 approved 2 d after the task's submission, r4 23 d; r3 still waiting.
    assert exact(overall) == (4, 3, 2 * D, 1624320.0, 748800.0, None, None)


def test_backlog_age_is_now_minus_received_for_open_items_outside_quarantine(history):
    overall = figures(history)["backlog_age"].overall
    # F7 2 d, F8 3 d, F10 8 d, U1 39.5 d, F4 45 d; N2 is in quarantine.
    assert exact(overall) == (5, 5, 8 * D, 3697920.0, 1684800.0, None, None)


def test_figures_by_country(history):
    grouped = {
        label.label: exact(summary) for label, summary in figures(history)["first_response"].groups
    }
    assert grouped == {
        # 30, 40, 3600, 5400, 21600, 86400, 345600; pending F4 (late) and F8 (not yet).
        "Mali": (9, 7, 5400.0, 190080.0, 66095.714, 6, 8),
        "Niger": (2, 1, 43200.0, 43200.0, 43200.0, 1, 2),
        "Unrouted": (1, 0, None, None, None, 0, 1),
    }


def test_figures_by_month_of_receipt(history):
    months = {s.key: exact(s) for s in figures(history)["first_response"].months}
    assert months == {
        "2026-01": (3, 3, 43200.0, 77760.0, 43213.333, 3, 3),
        "2026-02": (3, 1, 345600.0, 345600.0, 345600.0, 0, 3),
        "2026-03": (6, 4, 4500.0, 16740.0, 7657.5, 4, 5),
    }
    by_month = figures(history, group="month")["first_response"]
    assert [label.label for label, _ in by_month.groups] == ["2026-01", "2026-02", "2026-03"]
    assert [exact(s) for s in by_month.months] == list(months.values())


def test_figures_by_editor_and_section(history):
    by_editor = {
        label.label: (s.total, s.reached)
        for label, s in figures(history, group="editor")["resolution"].groups
    }
    assert by_editor == {"Awa Diallo": (6, 4), "Ibrahim Moussa": (1, 1), "Unassigned": (4, 0)}
    by_section = {
        label.label: s.total for label, s in figures(history, group="section")["task_cycle"].groups
    }
    assert by_section == {
        "ML · Cluster Munition Ban Policy · Overview": 1,
        "ML · Cluster Munition Ban Policy · Policy": 1,
        "NE · Mine Ban Policy · Overview": 2,
    }


def test_filters_narrow_every_metric(history):
    email = figures(history, channel=Channel.EMAIL)
    assert exact(email["first_response"].overall)[:2] == (1, 1)
    assert email["task_cycle"].overall.total == 1  # T1: F2 came by email
    section = figures(history, section=history.sections["s2"])
    assert section["first_response"].overall.total == 1  # F10 (F9 is before the range)
    assert section["task_cycle"].overall.total == 1  # T2
    niger = figures(history, country=history.ne_profile.country)
    assert niger["review_wait"].overall.median == 23 * D


def test_an_editor_gets_the_figures_of_their_countries_only(history):
    mine = figures(history, user=history.ml_editor)
    assert mine["first_response"].overall.total == 9
    assert [label.label for label, _ in mine["first_response"].groups] == ["Mali"]
    assert mine["task_cycle"].overall.total == 2  # T1, T2 (T4 cancelled)
    assert mine["publication"].overall.median == 10 * D


@pytest.mark.postgres
def test_window_form_equals_percentile_cont_on_postgresql(history):
    scope = scope_for(history.manager)
    for metric in METRICS_BY_KEY.values():
        results = {}
        for dialect in ("postgresql", "window"):
            results[dialect] = sorted(
                (s.kind, str(s.key), exact(s))
                for s in summarise(
                    db.session.connection(),
                    metric.facts(scope),
                    scope,
                    group="country",
                    sets=("all", "group", "month"),
                    target_seconds=3 * D,
                    dialect=dialect,
                )
            )
        assert results["postgresql"] == results["window"], metric.key


def test_backlog_buckets_by_country_and_editor_at_their_edges(history):
    scope = scope_for(history.manager)
    total, by_country = queries.backlog_buckets(scope, "country")
    # F7 2 d | F8 exactly 3 d | F10 exactly 8 d | F4 45 d, F9 101.5 d, U1 39.5 d; N2 quarantined.
    assert total.counts == [1, 1, 1, 3]
    assert {row.label.label: row.counts for row in by_country} == {
        "Mali": [1, 1, 1, 2],
        "Unrouted": [0, 0, 0, 1],
    }
    _, by_editor = queries.backlog_buckets(scope, "editor")
    assert {row.label.label: row.counts for row in by_editor} == {
        "Awa Diallo": [1, 0, 1, 1],
        "Unassigned": [0, 1, 0, 2],
    }
    editor_total, editor_rows = queries.backlog_buckets(scope_for(history.ne_editor), "country")
    assert editor_total.counts == [0, 0, 0, 0] and editor_rows == []


def test_overdue_tasks_and_waiting_revisions(history):
    scope = scope_for(history.manager)
    today = NOW.date()
    overdue = db.session.execute(queries.overdue_tasks(scope, today)).all()
    assert [(row.title, row.due_on.isoformat()) for row in overdue] == [
        ("Review Policy (ML)", "2026-03-25")
    ]
    waiting = db.session.execute(queries.waiting_revisions(scope)).all()
    assert [(row.task, row.waited) for row in waiting] == [("Review Policy (ML)", 561600)]
    summary = queries.waiting_summary(scope)
    assert (summary.total, summary.median, summary.p90) == (1, 561600.0, 561600.0)
    assert (
        db.session.execute(queries.overdue_tasks(scope_for(history.ne_editor), today)).all() == []
    )


def test_aging_profiles_by_months_without_update_or_review(history):
    scope = scope_for(history.manager)
    today = NOW.date()
    twelve = db.session.execute(
        queries.aging_profiles(scope, queries.aging_cutoff(today, 12))
    ).all()
    assert [(row.country, row.topic) for row in twelve] == [("Mali", "Mine Ban Policy")]
    six = db.session.execute(queries.aging_profiles(scope, queries.aging_cutoff(today, 6))).all()
    assert [(row.country, row.topic) for row in six] == [
        ("Mali", "Mine Ban Policy"),
        ("Niger", "Mine Ban Policy"),
    ]
    assert queries.aging_by_country(scope, queries.aging_cutoff(today, 6)) == [
        ("Mali", 1),
        ("Niger", 1),
    ]


def test_aging_cutoff_counts_calendar_months():
    from datetime import date

    assert queries.aging_cutoff(date(2026, 3, 31), 12) == date(2025, 3, 31)
    assert queries.aging_cutoff(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert queries.aging_cutoff(date(2026, 1, 15), 3) == date(2025, 10, 15)


def test_outcomes_by_country_and_month(history):
    scope = scope_for(history.manager)
    by_country = {row.country.label: row.counts for row in queries.outcome_counts(scope, "country")}
    assert by_country == {
        "Mali": {
            "received": 9,
            "open": 4,
            "updated": 1,
            "no_action": 2,
            "duplicate": 1,
            "spam": 1,
        },
        "Niger": {
            "received": 2,
            "open": 1,
            "updated": 1,
            "no_action": 0,
            "duplicate": 0,
            "spam": 0,
        },
        "Unrouted": {
            "received": 1,
            "open": 1,
            "updated": 0,
            "no_action": 0,
            "duplicate": 0,
            "spam": 0,
        },
    }
    by_month = {
        row.month: tuple(row.counts.values()) for row in queries.outcome_counts(scope, "month")
    }
    assert by_month == {
        "2026-01": (3, 0, 2, 1, 0, 0),
        "2026-02": (3, 2, 0, 1, 0, 0),
        "2026-03": (6, 4, 0, 0, 1, 1),
    }
    both = queries.outcome_counts(scope, "country_month")
    assert [(row.country.label, row.month, row.counts["received"]) for row in both] == [
        ("Mali", "2026-01", 2),
        ("Mali", "2026-02", 2),
        ("Mali", "2026-03", 5),
        ("Niger", "2026-01", 1),
        ("Niger", "2026-03", 1),
        ("Unrouted", "2026-02", 1),
    ]
    assert queries.no_action_reasons(scope) == [("Already correct", 2)]
