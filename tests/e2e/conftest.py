"""Real-browser tests: a live Desk server on its own database, driven by Debian's Chromium.

Each test module gets a ``live_server``: an app built with ``create_app`` on a database of its
own (a fresh SQLite file by default; a scratch database created beside the one
``DESK_DATABASE_URL`` names when that is PostgreSQL, dropped afterwards), migrated with the
project's migrations and served by Werkzeug from a daemon thread. Data is committed for real,
because the browser reaches the app through that separate thread: these tests never use the
rolled-back ``app`` fixture of tests/conftest.py.

The browser is launched once per run; every test gets a fresh context (cookies, storage) and a
``page`` whose ``goto("/path")`` is relative to the live server. When a test fails, a screenshot
of each of its pages is saved into the test's tmp dir and its path shown in the report.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import flask_migrate
import pytest
from click.testing import Result
from flask import Flask, got_request_exception
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from desk import create_app
from desk.extensions import db, limiter
from desk.profiles.models import Profile, RevisionState, Section, SectionKind, SectionRevision
from desk.profiles.operations import ensure_country

T = TypeVar("T")

E2E_DIR = Path(__file__).resolve().parent
#: tests/e2e/conftest.py → parents: [0] tests/e2e, [1] tests, [2] the clone, [3] its parent.
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds Playwright waits for an element, a navigation or an ``expect`` to come true.
TIMEOUT_MS = 10_000
STAFF_PASSWORD = "correct horse battery staple"

_contexts_key = pytest.StashKey[list[BrowserContext]]()
_tmp_key = pytest.StashKey[Path]()
_server_key = pytest.StashKey["LiveServer"]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e ``e2e`` (first, so ``-m "not e2e"`` sees the mark)."""
    for item in items:
        if E2E_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """On a failed test, screenshot its pages and show the paths and any server tracebacks."""
    report = yield
    if report.when == "call" and report.failed:
        lines = _screenshots(item)
        server = item.stash.get(_server_key, None)
        if server is not None and server.errors:
            lines.append("server errors during the test:")
            lines.extend(server.errors)
        if lines:
            report.sections.append(("e2e: screenshots and server errors", "\n".join(lines)))
    return report


def _screenshots(item: pytest.Item) -> list[str]:
    contexts = item.stash.get(_contexts_key, [])
    lines: list[str] = []
    for c, context in enumerate(contexts):
        for p, page in enumerate(context.pages):
            path = item.stash[_tmp_key] / f"failure-{c}-{p}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
            except Exception as error:
                lines.append(f"screenshot of {page.url} failed: {error}")
            else:
                lines.append(f"screenshot of {page.url}: {path}")
    return lines


# --------------------------------------------------------------------------- the live server


class LiveServer:
    """The running app: ``url``, ``app``, and helpers that act on its database."""

    def __init__(self, app: Flask, server: BaseWSGIServer) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{server.server_port}"
        #: Tracebacks of exceptions the app raised while serving, oldest first.
        self.errors: list[str] = []
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def start(self) -> None:
        got_request_exception.connect(self._record_error, self.app)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        got_request_exception.disconnect(self._record_error, self.app)

    def _record_error(self, sender: Flask, exception: BaseException, **_: Any) -> None:
        self.errors.append("".join(traceback.format_exception(exception)))

    def take_errors(self) -> list[str]:
        """The server's tracebacks since the last call (a test expecting a 500 clears them)."""
        errors, self.errors = self.errors, []
        return errors

    def at(self, path: str) -> str:
        """The absolute URL of a path on this server."""
        return f"{self.url}{path}"

    def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` in an app context and commit; rolls back and re-raises on error.

        Return plain values: ORM objects are expired by the commit and detached afterwards.
        """
        with self.app.app_context():
            try:
                result = fn(*args, **kwargs)
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise
            return result

    def cli(self, *args: str, check: bool = True) -> Result:
        """Run ``desk ARGS…`` against this app; with ``check``, fail unless it exits 0."""
        with self.app.app_context():
            result = self.app.test_cli_runner().invoke(args=list(args))
        if check and result.exit_code != 0:
            detail = ""
            if result.exc_info and not isinstance(result.exception, SystemExit):
                detail = "".join(traceback.format_exception(*result.exc_info))
            pytest.fail(
                f"`desk {' '.join(args)}` exited {result.exit_code}:\n{result.output}{detail}",
                pytrace=False,
            )
        return result

    def create_user(
        self,
        email: str,
        *,
        password: str = STAFF_PASSWORD,
        role: str = "editor",
        countries: Sequence[str] = ("ML",),
        name: str = "",
    ) -> None:
        """A staff account made the way an admin makes one: ``desk create-user``."""
        args = ["create-user", email, "--role", role, "--password", password]
        for code in countries:
            args += ["--country", code]
        if name:
            args += ["--name", name]
        self.cli(*args)

    def publish_profile(
        self,
        country: str,
        topic: str,
        sections: Sequence[tuple[str, str] | tuple[str, str, SectionKind]],
        *,
        last_updated_on: date | None = None,
        language: str = "en",
    ) -> str:
        """Commit a published profile whose sections are (heading, Markdown body[, kind]).

        Each section gets one approved revision, made current. Returns the page's path.
        """
        from desk.core.text import slugify

        def create() -> str:
            place = ensure_country(country)
            profile = Profile(
                country=place,
                topic=topic,
                topic_slug=slugify(topic),
                language=language,
                last_updated_on=last_updated_on,
            )
            db.session.add(profile)
            for position, (heading, body, *rest) in enumerate(sections, start=1):
                kind = rest[0] if rest else SectionKind.TEXT
                section = Section(
                    position=position,
                    anchor=slugify(heading),
                    heading=heading,
                    level=3 if kind == SectionKind.FIELD else 2,
                    kind=kind,
                )
                profile.sections.append(section)
                revision = SectionRevision(
                    section=section,
                    number=1,
                    heading=heading,
                    body=body,
                    state=RevisionState.APPROVED,
                )
                db.session.add(revision)
                db.session.flush()
                section.current_revision = revision
            db.session.flush()
            path = f"/profiles/{place.slug}/{profile.topic_slug}"
            return path if language == "en" else f"{path}?lang={language}"

        return self.run(create)


def _settings(database_url: str, instance_path: Path) -> dict[str, object]:
    return {
        "DESK_ENV": "testing",
        "DESK_SECRET_KEY": "e2e-secret-key",
        "DESK_DATABASE_URL": database_url,
        "DESK_INSTANCE_PATH": str(instance_path),
        "DESK_TIMEZONE": "UTC",
    }


@pytest.fixture(scope="module")
def live_server(
    scratch_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app, migrated from empty on its own database and served on 127.0.0.1:<free port>."""
    app = create_app(_settings(scratch_database_url, tmp_path_factory.mktemp("e2e-instance")))
    with app.app_context():
        flask_migrate.upgrade()
        limiter.reset()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    live = LiveServer(app, server)
    app.config["DESK_SITE_URL"] = live.url
    live.start()
    try:
        yield live
    finally:
        live.stop()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(autouse=True)
def _watch_live_server(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test during which the live server raised (a 500 otherwise looks like a timeout)."""
    if "live_server" not in request.fixturenames:
        yield
        return
    live: LiveServer = request.getfixturevalue("live_server")
    live.take_errors()
    request.node.stash[_server_key] = live
    yield
    errors = live.take_errors()
    if errors:
        pytest.fail("the live server raised:\n" + "\n".join(errors), pytrace=False)


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. Install it with "
            "`apt-get update && apt-get install -y chromium` (never `playwright install`).",
            pytrace=False,
        )
    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def new_context(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., BrowserContext]]:
    """Make extra browser contexts (``java_script_enabled=False``, ``viewport=…``, …).

    Each has ``base_url`` set to the live server and the default timeout; all are closed when
    the test ends, and screenshotted first if it failed.
    """
    contexts = request.node.stash.setdefault(_contexts_key, [])
    request.node.stash[_tmp_key] = tmp_path

    def make(**options: Any) -> BrowserContext:
        options.setdefault("base_url", live_server.url)
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    """A fresh context (no cookies) for this test, at the default 1280×720 viewport."""
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
