"""Per-process caches of public profile data, so readers' requests rarely reach the database.

The page cache keeps finished profile pages; the profile cache (at the end) keeps the profiles
the feedback form is drawn and submitted against. Each page entry holds a page's ETag,
Last-Modified and bytes. An entry is trusted for DESK_PAGE_CACHE_SECONDS after the database
last confirmed it; then the next request checks the profile's content version again (one small
query) and keeps the bytes if nothing changed. A change made in this process is seen at once
(the local generation moves); one made by another worker or machine shows within that many
seconds. 0 checks the database on every request."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, current_app
from sqlalchemy.orm import Session
from werkzeug.http import http_date, parse_etags, quote_etag

from desk.core.security import SECURITY_HEADERS
from desk.extensions import db

if TYPE_CHECKING:
    from collections.abc import Callable

    from desk.profiles.models import Profile

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


def _trusted(confirmed_at: float, generation: int, ttl: float) -> bool:
    """May an entry the database confirmed then, in that generation, be used without asking?"""
    return ttl > 0 and generation == _generation and time.monotonic() - confirmed_at <= ttl


def _keep(entries: OrderedDict[tuple, Any], key: tuple, entry: Any) -> None:
    """Store ``entry`` as the newest, dropping the oldest past MAX_PAGES; the caller locks."""
    entries[key] = entry
    entries.move_to_end(key)
    while len(entries) > MAX_PAGES:
        entries.popitem(last=False)


class PageCache:
    def __init__(self) -> None:
        self._pages: OrderedDict[tuple, CachedPage] = OrderedDict()
        self._lock = Lock()

    def fresh(self, key: tuple, ttl: float) -> CachedPage | None:
        """The entry for key if it may be served without asking the database."""
        with self._lock:
            entry = self._pages.get(key)
        if entry is None or not _trusted(entry.confirmed_at, entry.generation, ttl):
            return None
        return entry

    def confirm(self, key: tuple, etag: str, last_modified: datetime) -> CachedPage:
        """Record what the database says now; the bytes stay if the ETag did not move."""
        with self._lock:
            entry = self._pages.get(key)
            if entry is None or entry.etag != etag:
                entry = CachedPage(etag, last_modified, None, 0.0, 0)
            entry.confirmed_at = time.monotonic()
            entry.generation = _generation
            _keep(self._pages, key, entry)
        return entry


class RevalidationMiddleware:
    """Answers a reader's revalidation of a cached profile page with 304 before Flask runs.

    Only a plain ``GET /profiles/<country>/<topic>[?lang=xx]`` with If-None-Match and no session
    cookie is answered here, from an entry the page cache may serve; anything else, including a
    miss, goes to the app unchanged.
    """

    def __init__(self, wsgi_app: Any, app: Flask) -> None:
        self.wsgi_app = wsgi_app
        self.app = app
        self.cache: PageCache = app.extensions["desk_page_cache"]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        key = self._key(environ)
        if key is not None:
            entry = self.cache.fresh(key, self.app.config["DESK_PAGE_CACHE_SECONDS"])
            if entry is not None and environ["HTTP_IF_NONE_MATCH"] == entry.headers[0][1]:
                start_response("304 NOT MODIFIED", [*entry.headers, *SECURITY_HEADERS])
                return []
        return self.wsgi_app(environ, start_response)

    def _key(self, environ: dict[str, Any]) -> tuple | None:
        if environ.get("REQUEST_METHOD") != "GET" or "HTTP_IF_NONE_MATCH" not in environ:
            return None
        if f"{self.app.config['SESSION_COOKIE_NAME']}=" in environ.get("HTTP_COOKIE", ""):
            return None
        parts = environ.get("PATH_INFO", "").split("/")
        if len(parts) != 4 or parts[1] != "profiles" or not parts[2] or not parts[3]:
            return None
        query = environ.get("QUERY_STRING", "")
        if query and not (query.startswith("lang=") and "&" not in query):
            return None
        language = query[5:] if query else None
        return (parts[2], parts[3], language, environ.get("HTTP_ACCEPT_LANGUAGE", ""))


def init_app(app: Flask) -> None:
    app.extensions["desk_page_cache"] = PageCache()
    app.extensions["desk_profile_cache"] = ProfileCache()
    app.wsgi_app = RevalidationMiddleware(app.wsgi_app, app)  # type: ignore[method-assign]


def page_cache() -> PageCache:
    return current_app.extensions["desk_page_cache"]


@dataclass
class _CachedProfile:
    profile: Profile | None
    confirmed_at: float
    generation: int


class ProfileCache:
    """Published profiles by URL, each with its country and sections, for the feedback form.

    A reader's submission needs the profile, its country and its section list and nothing
    else of the page; reading them costs two queries, and on SQLite a writing request's first
    query takes the database's write lock. The form therefore reads them from here: detached
    copies, loaded once and then trusted as the page cache trusts its pages (this process's
    changes at once, other workers' within DESK_PAGE_CACHE_SECONDS). The copies are only ever
    read, never added to a session; code that writes rows refers to them by id.
    """

    def __init__(self) -> None:
        self._profiles: OrderedDict[tuple, _CachedProfile] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple, ttl: float, load: Callable[[], Profile | None]) -> Profile | None:
        """The profile for key (None: there is none), from memory while fresh, else ``load()``."""
        with self._lock:
            entry = self._profiles.get(key)
        if entry is not None and _trusted(entry.confirmed_at, entry.generation, ttl):
            return entry.profile
        generation = _generation
        profile = load()
        with self._lock:
            _keep(self._profiles, key, _CachedProfile(profile, time.monotonic(), generation))
        return profile


def published_profile(country_slug: str, topic_slug: str, language: str | None) -> Profile | None:
    """The published profile at a URL, detached, with its country and sections loaded.

    Read-only: the objects are shared by the requests of this process. See :class:`ProfileCache`.
    """

    def load() -> Profile | None:
        from desk.profiles.queries import profile_at

        # A private session on the request's connection (and transaction): the copies are new
        # instances that no session of the caller's holds, detached when it closes with every
        # value they were loaded with.
        with Session(bind=db.session.connection()) as private:
            profile = private.scalars(profile_at(country_slug, topic_slug, language)).first()
            if profile is not None:
                list(profile.sections)
        return profile

    cache: ProfileCache = current_app.extensions["desk_profile_cache"]
    ttl = current_app.config["DESK_PAGE_CACHE_SECONDS"]
    return cache.get((country_slug, topic_slug, language), ttl, load)
