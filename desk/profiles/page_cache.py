"""A per-process cache of finished profile pages, so readers' requests rarely reach the database.

Each entry holds a page's ETag, Last-Modified and bytes. An entry is trusted for
DESK_PAGE_CACHE_SECONDS after the database last confirmed it; then the next request checks the
profile's content version again (one small query) and keeps the bytes if nothing changed. A
change made in this process is seen at once (the local generation moves); one made by another
worker or machine shows within that many seconds. 0 checks the database on every request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock

from flask import Flask, Request, current_app
from werkzeug.http import http_date, parse_etags, quote_etag

#: Pages kept per process.
MAX_PAGES = 512

_generation = 0
_generation_lock = Lock()


def bump_generation() -> None:
    """Note that this process changed a profile: every entry must be confirmed again."""
    global _generation
    with _generation_lock:
        _generation += 1


@dataclass
class CachedPage:
    etag: str
    last_modified: datetime
    body: bytes | None
    confirmed_at: float
    generation: int
    #: The validators and caching headers, formatted once for every response of this version.
    headers: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.headers = [
            ("ETag", quote_etag(self.etag)),
            ("Last-Modified", http_date(self.last_modified)),
            ("Cache-Control", "no-cache"),
            ("Vary", "Accept-Language"),
        ]

    def matches(self, request: Request) -> bool:
        """Is the client's copy this version (If-None-Match first, then If-Modified-Since)?"""
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match:
            return if_none_match == self.headers[0][1] or parse_etags(if_none_match).contains(
                self.etag
            )
        since = request.if_modified_since
        return since is not None and self.last_modified.replace(microsecond=0) <= since


class PageCache:
    def __init__(self) -> None:
        self._pages: OrderedDict[tuple, CachedPage] = OrderedDict()
        self._lock = Lock()

    def fresh(self, key: tuple) -> CachedPage | None:
        """The entry for key if it may be served without asking the database."""
        ttl = current_app.config["DESK_PAGE_CACHE_SECONDS"]
        with self._lock:
            entry = self._pages.get(key)
        if entry is None or ttl <= 0 or entry.generation != _generation:
            return None
        if time.monotonic() - entry.confirmed_at > ttl:
            return None
        return entry

    def confirm(self, key: tuple, etag: str, last_modified: datetime) -> CachedPage:
        """Record what the database says now; the bytes stay if the ETag did not move."""
        with self._lock:
            entry = self._pages.get(key)
            if entry is None or entry.etag != etag:
                entry = CachedPage(etag, last_modified, None, 0.0, 0)
                self._pages[key] = entry
            entry.confirmed_at = time.monotonic()
            entry.generation = _generation
            self._pages.move_to_end(key)
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        return entry


def init_app(app: Flask) -> None:
    app.extensions["desk_page_cache"] = PageCache()


def page_cache() -> PageCache:
    return current_app.extensions["desk_page_cache"]
