"""Load test: readers, feedback senders and editors at once against a running Desk (loopback).

Three kinds of virtual users share one asyncio loop (aiohttp), each with its own cookies:

* **readers** (200 by default) read profile pages, and now and then the profile list, back to
  back with no pause: the public site under pressure;
* **senders** (20) draw a profile's feedback form, wait as long as a person takes to type
  (``--form-seconds``, at least the site's DESK_FORM_MIN_SECONDS, or the item is quarantined
  as "sent too fast"), post a message with an email address and one or two attachments (a PDF,
  and every other time a text file), follow the 303 to the thank-you page and keep the
  reference it shows, with the name, size and SHA-256 of every file sent;
* **editors** (10) log in once, then work the inbox: the list, one of its items, and an
  action on it (an internal note, "assign to me" or a status), with a short pause between.

Every request is timed on its own (redirects are not followed), under a route name such as
``GET /profiles/<country>/<topic>``. A response whose status is not the one that route expects,
a timeout and a failed connection are errors; 5xx responses are counted apart. New requests
stop after ``--seconds``; requests under way then finish (or time out).

What is measured is what the server answered; whether every accepted submission is really in
the database with its files is for the caller to check (tests/topology/test_load.py does) from
:attr:`LoadReport.submissions`.

Run against a server you started (its feedback rate limit must allow the senders, who all come
from one address; editors' accounts must exist)::

    .venv/bin/python -m bench.load --base-url http://127.0.0.1:8000 \\
        --profile /profiles/mali/cluster-munition-ban-policy \\
        --editor editor@desk.example:demo-editor-pass --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from bench._harness import percentile

#: Hidden and visible inputs of Desk's forms, read from the HTML drawn for this user.
_INPUT = re.compile(r'<input\b[^>]*\bname="(csrf_token|token)"[^>]*\bvalue="([^"]*)"')
_REFERENCE = re.compile(r'class="reference">([A-Z]{2}-\d{4}-\d{5})<')
_ITEM_LINK = re.compile(r'href="/desk/feedback/([A-Z]{2}-\d{4}-\d{5})[?"]')
REDIRECT = (302, 303)


class RequestFailed(Exception):
    """A request that did not get the answer its route expects (already recorded)."""


@dataclass(frozen=True)
class SentFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Submission:
    """A submission the site accepted: the reference its thank-you page showed."""

    reference: str
    email: str
    files: tuple[SentFile, ...]


@dataclass
class Scenario:
    base_url: str
    profile_paths: Sequence[str]
    editors: Sequence[tuple[str, str]]
    readers: int = 200
    senders: int = 20
    seconds: float = 120.0
    #: How long a sender "types" between drawing the form and sending it.
    form_seconds: float = 3.5
    #: The longest an editor pauses between two steps (a random pause up to this).
    editor_pause: float = 1.0
    timeout: float = 60.0
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))


@dataclass
class RouteFigures:
    route: str
    count: int
    errors: int
    rps: float
    p50_ms: float
    p95_ms: float
    max_ms: float


@dataclass
class LoadReport:
    seconds: float
    routes: list[RouteFigures]
    errors: Counter[str]
    server_errors: int
    submissions: list[Submission]
    users: dict[str, int]

    @property
    def requests(self) -> int:
        return sum(route.count for route in self.routes)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def table(self) -> str:
        """The figures as a Markdown table, for the console and the README."""
        lines = [
            "| route | requests | req/s | p50 ms | p95 ms | max ms | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in self.routes:
            lines.append(
                f"| `{r.route}` | {r.count} | {r.rps:.1f} | {r.p50_ms:.0f} | {r.p95_ms:.0f} "
                f"| {r.max_ms:.0f} | {r.errors} |"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        users = ", ".join(f"{count} {kind}" for kind, count in self.users.items())
        head = (
            f"{users} for {self.seconds:.0f} s: {self.requests} requests, {self.rps:.1f} req/s, "
            f"errors {self.error_count}, 5xx {self.server_errors}, "
            f"submissions accepted {len(self.submissions)}"
        )
        kinds = "".join(f"\n  {kind}: {n}" for kind, n in self.errors.most_common())
        return f"{head}\n{self.table()}{kinds}"


class Recorder:
    """Latencies and outcomes per route, shared by every virtual user."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.failures: Counter[str] = Counter()
        self.route_errors: Counter[str] = Counter()
        self.server_errors = 0

    def ok(self, route: str, seconds: float) -> None:
        self.requests[route] += 1
        self.latencies[route].append(seconds)

    def failed(self, route: str, kind: str, seconds: float | None = None) -> None:
        """An error; ``seconds`` when the server did answer (its latency counts too)."""
        self.requests[route] += 1
        self.failures[f"{route}: {kind}"] += 1
        self.route_errors[route] += 1
        if seconds is not None:
            self.latencies[route].append(seconds)

    def report(
        self, seconds: float, submissions: list[Submission], users: dict[str, int]
    ) -> LoadReport:
        routes = [
            RouteFigures(
                route=route,
                count=count,
                errors=self.route_errors[route],
                rps=count / seconds if seconds else 0.0,
                p50_ms=percentile(self.latencies[route], 50) * 1000,
                p95_ms=percentile(self.latencies[route], 95) * 1000,
                max_ms=max(self.latencies[route], default=float("nan")) * 1000,
            )
            for route, count in sorted(self.requests.items())
        ]
        return LoadReport(seconds, routes, self.failures, self.server_errors, submissions, users)


class User:
    """One virtual user: its own cookies, every request timed and checked."""

    def __init__(
        self, base_url: str, connector: aiohttp.BaseConnector, recorder: Recorder, timeout: float
    ) -> None:
        self.base = base_url.rstrip("/")
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[self.base])
        self.session = aiohttp.ClientSession(
            connector=connector,
            connector_owner=False,
            cookie_jar=jar,
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        self.recorder = recorder

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self,
        method: str,
        path: str,
        route: str,
        expect: tuple[int, ...] = (200,),
        **kwargs: object,
    ) -> tuple[str, str]:
        """The body and the Location header of an answer with an expected status."""
        began = time.perf_counter()
        try:
            async with self.session.request(
                method, self.base + path, allow_redirects=False, **kwargs
            ) as response:
                body = await response.text()
                status = response.status
                location = response.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            self.recorder.failed(route, type(error).__name__)
            raise RequestFailed(route) from error
        took = time.perf_counter() - began
        if status not in expect:
            if status >= 500:
                self.recorder.server_errors += 1
            self.recorder.failed(route, f"HTTP {status}", took)
            raise RequestFailed(route)
        self.recorder.ok(route, took)
        return body, location


def _inputs(html: str) -> dict[str, str]:
    return dict(_INPUT.findall(html))


def pdf_bytes(label: str, size: int = 40_000) -> bytes:
    """A small PDF (libmagic: application/pdf), different for every label."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    body = f"% {label}\n".encode() * (size // (len(label) + 3))
    return (head + body)[:size]


def _path_of(location: str, base: str) -> str:
    return location[len(base) :] if location.startswith(base) else location


async def reader(user: User, scenario: Scenario, deadline: float) -> None:
    while time.monotonic() < deadline:
        if random.random() < 0.1:
            path, route = "/profiles/", "GET /profiles/"
        else:
            path, route = random.choice(scenario.profile_paths), "GET /profiles/<country>/<topic>"
        try:
            await user.call("GET", path, route)
        except RequestFailed:
            await asyncio.sleep(0.05)


async def send_feedback(
    user: User, profile_path: str, label: str, email: str, form_seconds: float, files: int = 2
) -> Submission | None:
    """Draw the form, wait, send a message with files; the accepted submission, or None."""
    form_path = f"{profile_path}/feedback"
    try:
        page, _ = await user.call("GET", form_path, "GET /profiles/<country>/<topic>/feedback")
        fields = _inputs(page)
        await asyncio.sleep(form_seconds)
        sent = [("evidence.pdf", pdf_bytes(label), "application/pdf")]
        if files > 1:
            sent.append(("notes.txt", f"Notes for {label}.\n".encode() * 50, "text/plain"))
        form = aiohttp.FormData()
        form.add_field("csrf_token", fields.get("csrf_token", ""))
        form.add_field("token", fields.get("token", ""))
        form.add_field(
            "message",
            f"Submission {label}: the stockpile figure in the second section looks out of "
            "date; the 2011 report gives a different number of submunitions destroyed.",
        )
        form.add_field("name", f"Reader {label}")
        form.add_field("email", email)
        for name, content, content_type in sent:
            form.add_field("attachments", content, filename=name, content_type=content_type)
        _, location = await user.call(
            "POST", form_path, "POST /profiles/<country>/<topic>/feedback", REDIRECT, data=form
        )
        thanks, _ = await user.call(
            "GET", _path_of(location, user.base), "GET /profiles/<country>/<topic>/feedback/thanks"
        )
    except RequestFailed:
        return None
    found = _REFERENCE.search(thanks)
    if found is None:
        user.recorder.failed(
            "GET /profiles/<country>/<topic>/feedback/thanks", "no reference on the page"
        )
        return None
    files_sent = tuple(
        SentFile(name, len(content), hashlib.sha256(content).hexdigest())
        for name, content, _ in sent
    )
    return Submission(found.group(1), email, files_sent)


async def sender(
    user: User, scenario: Scenario, number: int, deadline: float, out: list[Submission]
) -> None:
    sent = 0
    while time.monotonic() < deadline:
        sent += 1
        label = f"{scenario.run_id}-{number}-{sent}"
        accepted = await send_feedback(
            user,
            random.choice(scenario.profile_paths),
            label,
            f"reader.{label}@example.org",
            scenario.form_seconds,
            files=2 if sent % 2 else 1,
        )
        if accepted is not None:
            out.append(accepted)


async def log_in(user: User, email: str, password: str) -> None:
    page, _ = await user.call("GET", "/login", "GET /login")
    data = {"email": email, "password": password, "csrf_token": _inputs(page)["csrf_token"]}
    await user.call("POST", "/login", "POST /login", REDIRECT, data=data)


#: Editors' actions: the form's path under the item, and its fields.
ACTIONS = (
    ("note", {"note-text": "Checked against the 2011 report; follow up with the researcher."}),
    ("assign", {"assign-assignee": "me"}),
    ("status", {"status-status": "triaged"}),
)


async def editor(user: User, scenario: Scenario, login: tuple[str, str], deadline: float) -> None:
    try:
        await log_in(user, *login)
    except (RequestFailed, KeyError):
        return
    while time.monotonic() < deadline:
        await asyncio.sleep(random.uniform(0, scenario.editor_pause))
        try:
            inbox, _ = await user.call("GET", "/desk/inbox", "GET /desk/inbox")
            references = _ITEM_LINK.findall(inbox)
            if not references:
                continue
            reference = random.choice(references)
            item, _ = await user.call(
                "GET", f"/desk/feedback/{reference}", "GET /desk/feedback/<ref>"
            )
            await asyncio.sleep(random.uniform(0, scenario.editor_pause))
            action, fields = random.choice(ACTIONS)
            data = {**fields, "csrf_token": _inputs(item).get("csrf_token", "")}
            await user.call(
                "POST",
                f"/desk/feedback/{reference}/{action}",
                f"POST /desk/feedback/<ref>/{action}",
                REDIRECT,
                data=data,
            )
        except RequestFailed:
            continue


async def run_scenario(scenario: Scenario) -> LoadReport:
    """Every virtual user at once for ``scenario.seconds``; the figures and accepted items."""
    recorder = Recorder()
    submissions: list[Submission] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    users: list[User] = []

    def new_user() -> User:
        users.append(User(scenario.base_url, connector, recorder, scenario.timeout))
        return users[-1]

    began = time.monotonic()
    deadline = began + scenario.seconds
    logins = list(scenario.editors)
    tasks = [reader(new_user(), scenario, deadline) for _ in range(scenario.readers)]
    tasks += [
        sender(new_user(), scenario, n, deadline, submissions) for n in range(scenario.senders)
    ]
    tasks += [editor(new_user(), scenario, login, deadline) for login in logins]
    try:
        await asyncio.gather(*tasks)
    finally:
        for user in users:
            await user.close()
        await connector.close()
    elapsed = time.monotonic() - began
    counts = {"readers": scenario.readers, "senders": scenario.senders, "editors": len(logins)}
    return recorder.report(elapsed, submissions, counts)


def run(scenario: Scenario) -> LoadReport:
    return asyncio.run(run_scenario(scenario))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--profile", action="append", required=True, help="a profile's path")
    parser.add_argument("--editor", action="append", default=[], help="EMAIL:PASSWORD of an editor")
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--form-seconds", type=float, default=3.5)
    args = parser.parse_args(argv)
    scenario = Scenario(
        base_url=args.base_url,
        profile_paths=args.profile,
        editors=[tuple(e.split(":", 1)) for e in args.editor],  # type: ignore[misc]
        readers=args.readers,
        senders=args.senders,
        seconds=args.seconds,
        form_seconds=args.form_seconds,
    )
    print(run(scenario).summary())


if __name__ == "__main__":
    main()
