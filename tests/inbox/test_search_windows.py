"""A search with many matches is paged in windows of ids on SQLite: the pages stay exact.

Thresholds are lowered so a handful of items take that path. Items are received out of id
order (backdated, as email-in and imports do), so a window's id range is not its time range.
On PostgreSQL the same pages come from the plain query, and must be the same.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from desk.core.time import utcnow
from desk.inbox import queries, search
from desk.inbox.queries import Cursor, InboxQuery, View, inbox_page


@pytest.fixture
def shuffled(create_feedback, monkeypatch):
    """Twelve items about mines received in an order unlike their ids, and two without."""
    monkeypatch.setattr(search, "SQLITE_MANY_MATCHES", 2)
    monkeypatch.setattr(queries, "SEARCH_WINDOWS", (3, 5))
    now = utcnow()
    hours = [5, 1, 9, 3, 3, 12, 0, 7, 2, 11, 6, 4]
    matching = [
        create_feedback(message=f"Mines report {n}", received_at=now - timedelta(hours=h))
        for n, h in enumerate(hours)
    ]
    for h in (8, 10):
        create_feedback(message="Nothing relevant", received_at=now - timedelta(hours=h))
    return matching


def _walk(user, query, size):
    pages, after = [], None
    while True:
        page = inbox_page(user, query, after=after, size=size)
        pages.append(page)
        if page.next is None:
            return pages
        after = Cursor.decode(page.next)


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_search_pages_in_windows_are_the_sorted_matches(staff, shuffled, sort):
    query = InboxQuery(view=View.ALL, q="mines", sort=sort)
    expected = sorted(
        shuffled, key=lambda item: (item.received_at, item.id), reverse=sort == "newest"
    )
    pages = _walk(staff.manager, query, size=3)
    assert [[item.id for item in page.items] for page in pages] == [
        [item.id for item in expected[start : start + 3]] for start in range(0, 12, 3)
    ]


def test_going_back_through_search_pages_gives_the_same_pages(staff, shuffled):
    query = InboxQuery(view=View.ALL, q="mines")
    pages = _walk(staff.manager, query, size=3)
    for later, earlier in zip(pages[1:], pages, strict=False):
        back = inbox_page(staff.manager, query, before=Cursor.decode(later.previous), size=3)
        assert [item.id for item in back.items] == [item.id for item in earlier.items]
