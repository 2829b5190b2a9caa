"""Benchmark: the editors' inbox at 10,000 and at 1,000,000 items — does it stay as fast?

What runs (issue "The editors' inbox", last acceptance point):

1. One database per size (``--sizes``, default 10,000 and 1,000,000): SQLite files in
   ``--workdir`` by default, or PostgreSQL with ``--database-url`` (``{size}`` in it becomes
   "10k" or "1m"; without it the label is added to the database's name, which is created if
   missing). Each is migrated and filled with ``desk seed-scale --feedback N``, unless it
   already holds N items: a re-run reuses them (see ``bench._harness.seeded_desk``).
2. A test client logs in as the seeded manager (who sees every country) and asks for, through
   the real view ``GET /desk/inbox`` (which also counts the tabs):

   * **first page** — the default view ("All", open items, newest first), and an editor's
     (Mali's editor: "My countries");
   * **filtered page** — one country and one status (Mali, triaged);
   * **deep page** — the page after page 500 of the default view, its cursor found by walking
     the pages one after the other as the "Older →" link does (a shorter list gives its last
     page instead, and the page number reached is printed);
   * **search** — a common word ("ministry", in about a quarter of the messages) and an
     accented name typed with its accent ("Traoré", stored folded as "traore").

   Each is also timed as the query alone (``inbox_page``, what the view calls for its rows),
   and the manager's tab counts (``view_counts``, capped at 1,000) on their own.
3. After a warm-up, every measure at every size is timed ``--rounds`` times, alternating
   measures and sizes, so a busy neighbour slows them all alike. The table gives the medians
   at each size, the ratio of the largest size to the smallest, and PASS/MISS against the
   targets: the ratio at most 2, at most 3 for a search. The targets are judged on the view.

Run from the project root:

    .venv/bin/python -m bench.inbox
    .venv/bin/python -m bench.inbox --database-url postgresql+psycopg://u@host/desk_bench_{size}
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa

from bench._harness import (
    database_url_for,
    desk_settings,
    ensure_postgres_database,
    interleaved_times,
    log_in,
    seeded_desk,
    size_label,
)
from desk.accounts.models import User
from desk.extensions import db
from desk.inbox.queries import Cursor, InboxQuery, View, inbox_page, view_counts
from desk.scale import PASSWORD, STAFF_DOMAIN

MANAGER = f"manager1@{STAFF_DOMAIN}"
#: An editor of Mali, the busiest country: their tabs carry their countries' condition.
EDITOR = f"ml.editor@{STAFF_DOMAIN}"
PAGE_TARGET = 2.0
SEARCH_TARGET = 3.0
DEEP_PAGE = 500
COMMON_WORD = "ministry"
ACCENTED_TERM = "Traoré"


@dataclass(frozen=True)
class Measure:
    """One thing timed: an inbox query, through the view and as the query alone."""

    key: str
    label: str
    target: float
    query: InboxQuery
    after: Cursor | None = None
    #: Who asks: the manager (every country) unless said otherwise.
    email: str = MANAGER

    def path(self) -> str:
        args = self.query.to_args()
        if self.after is not None:
            args["after"] = self.after.encode()
        return f"/desk/inbox?{urlencode(args)}"


@dataclass
class Desk:
    """One size: its app, a logged-in client, and what is measured there."""

    count: int
    app: Any
    #: A logged-in test client and the user's id, per email.
    clients: dict[str, Any]
    user_ids: dict[str, int]
    note: str
    measures: list[Measure] = field(default_factory=list)
    #: The number of the page the deep page follows.
    deep_page: int = 0

    @property
    def label(self) -> str:
        return size_label(self.count)

    def view(self, measure: Measure) -> Callable[[], object]:
        path, client = measure.path(), self.clients[measure.email]

        def get() -> None:
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} answered {response.status_code}")

        return get

    def query(self, measure: Measure) -> Callable[[], object]:
        def run() -> None:
            with self.app.app_context():
                user = db.session.get(User, self.user_ids[measure.email])
                inbox_page(user, measure.query, after=measure.after)

        return run

    def counts(self) -> None:
        with self.app.app_context():
            view_counts(db.session.get(User, self.user_ids[MANAGER]))


def deep_cursor(desk: Desk, query: InboxQuery, pages: int) -> tuple[Cursor | None, int]:
    """The cursor of page ``pages`` of a list, reached by following each page's "next" cursor
    (or of the last page but one, if the list is shorter), and the page number reached."""
    with desk.app.app_context():
        user = db.session.get(User, desk.user_ids[MANAGER])
        after: Cursor | None = None
        reached = 0
        while reached < pages:
            page = inbox_page(user, query, after=after)
            if page.next is None:
                break
            after = Cursor.decode(page.next)
            reached += 1
        db.session.rollback()
    return after, reached


def build_desk(settings: dict[str, Any], count: int) -> Desk:
    app, note = seeded_desk(settings, count)
    clients, user_ids = {}, {}
    for email in (MANAGER, EDITOR):
        clients[email] = app.test_client()
        log_in(clients[email], email, PASSWORD)
        with app.app_context():
            user_ids[email] = db.session.scalar(sa.select(User.id).where(User.email == email))
    desk = Desk(count, app, clients, user_ids, note)
    default = InboxQuery(view=View.ALL)
    after, desk.deep_page = deep_cursor(desk, default, DEEP_PAGE)
    desk.measures = [
        Measure("first", "first page", PAGE_TARGET, default),
        Measure(
            "editor",
            "editor's first page",
            PAGE_TARGET,
            InboxQuery(view=View.COUNTRIES),
            email=EDITOR,
        ),
        Measure(
            "filtered",
            "country + status",
            PAGE_TARGET,
            InboxQuery(view=View.ALL, country="ML", status="triaged"),
        ),
        Measure("deep", "deep page (keyset)", PAGE_TARGET, default, after=after),
        Measure(
            "search_common",
            f"search {COMMON_WORD!r}",
            SEARCH_TARGET,
            InboxQuery(view=View.ALL, q=COMMON_WORD),
        ),
        Measure(
            "search_accent",
            f"search {ACCENTED_TERM!r}",
            SEARCH_TARGET,
            InboxQuery(view=View.ALL, q=ACCENTED_TERM),
        ),
    ]
    return desk


def measure(desks: list[Desk], rounds: int) -> dict[tuple[str, str, str], float]:
    """Median seconds per (size label, measure key, "view" or "query" or "counts")."""
    calls: dict[str, Callable[[], object]] = {}
    for desk in desks:
        for item in desk.measures:
            calls[f"{desk.label}|{item.key}|view"] = desk.view(item)
            calls[f"{desk.label}|{item.key}|query"] = desk.query(item)
        calls[f"{desk.label}|counts|query"] = desk.counts
    times = interleaved_times(calls, rounds=rounds, warmup=2)
    medians = {}
    for name, values in times.items():
        label, key, kind = name.split("|")
        medians[(label, key, kind)] = statistics.median(values)
    return medians


def report(desks: list[Desk], medians: dict[tuple[str, str, str], float]) -> bool:
    """Print the table; True if every judged ratio meets its target."""
    small, large = desks[0], desks[-1]
    width = 28
    print(
        f"\n{'median ms':<{width}} {small.label:>9} {large.label:>9} "
        f"{large.label + '/' + small.label:>8}  target"
    )
    met = True
    rows: list[tuple[str, str, float | None]] = []
    for item in small.measures:
        rows.append((item.key, item.label, item.target))
        rows.append((item.key, "  query alone", None))
    rows.append(("counts", "tab counts (query alone)", None))
    for key, label, target in rows:
        kind = "view" if target is not None else "query"
        a, b = medians[(small.label, key, kind)], medians[(large.label, key, kind)]
        ratio = b / a
        verdict = ""
        if target is not None:
            passed = ratio <= target
            met = met and passed
            verdict = f"≤ {target:g}: {'PASS' if passed else 'MISS'}"
        print(f"{label:<{width}} {a * 1000:9.1f} {b * 1000:9.1f} {ratio:8.2f}  {verdict}")
    return met


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--database-url",
        help="PostgreSQL URL; {size} in it becomes 10k, 1m… (default: SQLite files in --workdir)",
    )
    parser.add_argument("--workdir", default="/tmp/desk-bench-inbox", help="SQLite files, files")
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted(int(part) for part in text.split(",")),
        default=[10_000, 1_000_000],
        help="items per database, comma-separated (10000,1000000)",
    )
    parser.add_argument("--rounds", type=int, default=7, help="timed runs of each (7)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if len(args.sizes) < 2:
        raise SystemExit("--sizes needs two sizes or more to compare")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    desks = []
    for count in args.sizes:
        url = database_url_for(args.database_url, workdir, count)
        if ensure_postgres_database(url):
            print(f"  created database {sa.make_url(url).database}")
        settings = desk_settings(url, workdir / "instance", "bench-inbox")
        desk = build_desk(settings, count)
        print(f"{desk.label}: {sa.make_url(url).render_as_string()}\n  {desk.note}")
        print(f"  deep page: the page after page {desk.deep_page} of the default view")
        desks.append(desk)
    dialect = sa.make_url(database_url_for(args.database_url, workdir, 1)).get_backend_name()
    print(f"\nbench/inbox.py on {dialect}, {args.rounds} rounds")
    print(f"  load average before timing: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    medians = measure(desks, args.rounds)
    met = report(desks, medians)
    print(f"  load average at end: {os.getloadavg()[0]:.1f}")
    print("every target met" if met else "some targets missed")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
