"""Keyset pages: stable order with equal times, both ways, and never an OFFSET."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from desk.core.time import utcnow
from desk.extensions import db
from desk.inbox import queries
from desk.inbox.queries import Cursor, InboxQuery, View, inbox_page
from tests.inbox.conftest import log_in


@pytest.fixture
def crowd(create_feedback):
    """Nine Mali items: seven received at the very same moment, one before, one after."""
    moment = utcnow().replace(microsecond=0) - timedelta(hours=2)
    same = [create_feedback(message=f"Same moment {n}", received_at=moment) for n in range(7)]
    before = create_feedback(message="Earlier", received_at=moment - timedelta(seconds=1))
    after = create_feedback(message="Later", received_at=moment + timedelta(seconds=1))
    return [before, *same, after]


def walk(user, query: InboxQuery, size: int) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = inbox_page(user, query, after=cursor, size=size)
        pages.append([item.id for item in page.items])
        if page.next is None:
            return pages
        cursor = Cursor.decode(page.next)


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_pages_cover_every_item_once_in_a_stable_order(staff, crowd, sort):
    query = InboxQuery(view=View.ALL, sort=sort)
    expected = sorted(crowd, key=lambda item: (item.received_at, item.id), reverse=sort == "newest")
    pages = walk(staff.manager, query, size=2)
    assert [len(page) for page in pages] == [2, 2, 2, 2, 1]
    assert [item_id for page in pages for item_id in page] == [item.id for item in expected]


def test_going_back_gives_the_same_pages(staff, crowd):
    query = InboxQuery(view=View.ALL)
    forward = walk(staff.manager, query, size=2)
    last = inbox_page(staff.manager, query, after=None, size=2)
    while last.next:
        last = inbox_page(staff.manager, query, after=Cursor.decode(last.next), size=2)
    backward, page = [[item.id for item in last.items]], last
    while page.previous:
        page = inbox_page(staff.manager, query, before=Cursor.decode(page.previous), size=2)
        backward.append([item.id for item in page.items])
    assert backward[::-1] == forward


def test_a_page_is_one_limited_range_scan_without_offset(staff, crowd):
    statements: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, *_args):
        statements.append((statement, parameters))

    engine = db.session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        first = inbox_page(staff.manager, InboxQuery(view=View.ALL), size=2)
        inbox_page(
            staff.manager, InboxQuery(view=View.ALL), after=Cursor.decode(first.next), size=2
        )
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    pages = [(s, p) for s, p in statements if "FROM feedback" in s and "ORDER BY" in s]
    assert len(pages) == 2
    for statement, parameters in pages:
        assert re.search(r"\bLIMIT\b", statement)
        # SQLite's dialect always writes "LIMIT ? OFFSET ?": the offset it passes must be 0.
        if re.search(r"\bOFFSET \?", statement):
            assert list(parameters)[-1] == 0
        else:
            assert not re.search(r"\bOFFSET\b", statement)


def test_a_cursor_that_is_not_one_is_ignored():
    assert Cursor.decode("20260101000000000000-5") is not None
    for junk in ("", "abc", "1-2", "20261399000000000000-5", "2026010100000000000-5", None):
        assert Cursor.decode(junk) is None


def test_the_inbox_links_to_older_and_newer_pages(client, staff, crowd, monkeypatch):
    monkeypatch.setattr(queries, "PAGE_SIZE", 4)
    log_in(client, staff.manager)
    first = client.get("/desk/inbox?view=all").get_data(as_text=True)
    newest = sorted(crowd, key=lambda i: (i.received_at, i.id), reverse=True)
    assert all(item.reference in first for item in newest[:4])
    assert newest[4].reference not in first
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert all(item.reference in second for item in newest[4:8])
    assert newest[0].reference not in second
    newer = re.search(r'href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")
    again = client.get(newer).get_data(as_text=True)
    assert all(item.reference in again for item in newest[:4])
    assert 'rel="prev"' not in again
