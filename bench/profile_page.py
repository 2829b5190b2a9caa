"""Benchmark: the public profile page against a bare endpoint that returns the same bytes.

What runs (issue "Benchmark harness"):

1. A scratch SQLite database in a temporary folder (or ``--database-url``, e.g. a scratch
   PostgreSQL database) is migrated with the project's migrations and given one published
   profile shaped like a Monitor country profile: Mali, "Cluster Munition Ban Policy", six
   sections (a summary with a three-field summary box, then two long text sections), about
   5.5 KB of Markdown and eight footnotes. The text is invented for the benchmark and says
   nothing true or false about Mali.
2. gunicorn serves ``bench.profile_page_app:build_app()`` with 2 sync workers on a free
   loopback port. That module adds ``/_bench/bare`` to the same Flask app, returning the page's
   bytes as captured at start-up, so both endpoints share the server, the workers and the run.
3. Three endpoints are loaded in turn, A/B/C/A/B/C… for ``--rounds`` rounds after a warm-up:
   the page, the bare endpoint, and the page with ``If-None-Match`` set to its ETag (anything
   but a 304 counts as an error). Requests/s, p50/p95 latency and the server's CPU time per
   request are printed for each, then the ratios page/bare (target ≥ 0.5) and 304/bare
   (target ≥ 1.0) with PASS or MISS. The exit status is 0 either way; 1 only if the set-up
   fails (the server does not start, the page is not a 200, the 304 path is broken).

Client choice: the machine this runs on has 2 cores, shared by the 2 workers and the clients.
The load comes from 2 client processes with 2 threads each, so 4 requests are in flight: each
worker finds the next connection already waiting in the backlog when it finishes one and never
idles on the client, while the client's own work (a TCP connect, ``http.client`` parsing) is
split over 2 processes rather than serialised behind one GIL. The client is kept that small
because every CPU cycle it takes is one the server does not get: on this machine 1×2, 1×4,
2×1, 2×2 and 4×1 clients gave the same rates within noise, while 4×2 or 8×1 only raised the
latency (requests queue in the backlog). Connections are not kept alive (gunicorn's sync
workers close them anyway), so every request pays a loopback TCP connect, as a reader's first
request does. The server CPU per request, read from ``/proc``, leaves the client out and is
the steadiest figure when other work shares the machine; the load average is printed too.

Run from the project root (about ``--seconds`` plus 10 s; 60 s of measured load by default):

    .venv/bin/python -m bench.profile_page
    .venv/bin/python -m bench.profile_page --seconds 30 --rounds 3
    .venv/bin/python -m bench.profile_page --database-url postgresql+psycopg://u:p@host/scratch
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import flask_migrate
import sqlalchemy as sa

from bench._harness import (
    Endpoint,
    GunicornServer,
    LoadResult,
    ServerError,
    fetch,
    run_load,
    run_rounds,
)
from bench.profile_page_app import BARE_PATH, PROFILE_PATH_VARIABLE
from desk import create_app
from desk.core.text import slugify
from desk.core.time import utcnow
from desk.extensions import db
from desk.profiles.models import (
    Profile,
    RevisionState,
    Section,
    SectionKind,
    SectionRevision,
    UpdateType,
)
from desk.profiles.operations import ensure_country
from desk.profiles.rendering import footnote_labels

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_TARGET = "bench.profile_page_app:build_app()"
TOPIC = "Cluster Munition Ban Policy"
PAGE_TARGET = 0.5
NOT_MODIFIED_TARGET = 1.0

# --------------------------------------------------------------------------------------------
# The profile: invented text in the shape of a Monitor country profile.

SUMMARY = """\
Mali has taken part in the work of the Convention on Cluster Munitions since the Oslo process \
and has said more than once that it regards the weapon as incompatible with the protection of \
civilians in the Sahel.[^1] It has never been known to use, produce or export cluster \
munitions, and officials have stated that the armed forces hold no stockpile, although no \
formal declaration to that effect has yet been submitted.[^2]

In the reporting period the government attended the convention's annual meeting, took part in \
a regional workshop on universalization, and voted in favour of the annual resolution \
promoting the convention at the United Nations General Assembly.

[^1]: Statement of the delegation of Mali, regional conference on cluster munitions, \
session on humanitarian concerns, 14 May 2019. Notes taken by the Monitor.
[^2]: Email to the Monitor from a ministry official responsible for disarmament questions, \
2 March 2023.
"""

COMMITMENT = """\
**State Party**: ratification instrument deposited, national implementation measures in \
preparation.
"""

STATUS = """\
Signed the convention at the opening ceremony and ratified it two years later; a draft \
implementation law has been *under review by the ministry of justice* since 2021.[^1]

[^1]: Interview with a legal adviser to the ministry of foreign affairs, Bamako, \
9 November 2022.
"""

MEETINGS = """\
- Eleventh Meeting of States Parties, Geneva, September 2023
- Intersessional meetings, Geneva, May 2023
- Regional workshop on universalization, Lomé, February 2023
"""

POLICY = """\
Mali has been a State Party since the convention entered into force for it. It has not enacted \
specific legislation to enforce the convention's prohibitions at the national level. In its \
most recent statement on the matter, the government said that the penal code already punishes \
the acquisition and possession of weapons of war without authorization, and that a dedicated \
law would add penal sanctions for each of the acts the convention forbids.[^1] A draft was \
circulated among ministries in 2021 and is said to be *awaiting review*; the Monitor has not \
seen the text.

Mali submitted its initial transparency report under Article 7 in 2012 and has not provided an \
updated report since. The initial report declared no stockpile, no cluster munitions retained \
for training, and no production facilities.[^2] Civil society organizations in Bamako have \
urged the government to bring its reporting up to date, noting that the report form now asks \
for information that was not requested when Mali first reported.

### Participation

Mali has attended most Meetings of States Parties and Review Conferences, most recently the \
Eleventh Meeting of States Parties in Geneva in September 2023, where its delegation spoke in \
the general exchange of views. It has also attended the convention's intersessional meetings \
and regional workshops, including a universalization workshop hosted in Lomé, Togo, in \
February 2023.

At the meeting in 2023, the delegation:

1. welcomed the completion of stockpile destruction by several States Parties in the region;
2. called for more international cooperation and assistance for clearance and victim \
assistance in West Africa;
3. expressed concern at reports of new use of cluster munitions elsewhere in the world, and \
urged all states to join the convention.

Mali has voted in favour of every annual UN General Assembly resolution promoting the \
convention since the first was introduced, most recently in December 2023.[^3] It has also \
voted for resolutions that express concern at the use of cluster munitions in specific \
conflicts.

### Interpretive issues

Mali has not stated its views on several important matters of interpretation, such as the \
prohibition on assistance with prohibited acts during joint military operations with states \
not party, the prohibition on transit of cluster munitions across or foreign stockpiling on \
the territory of States Parties, and the prohibition on investment in the production of \
cluster munitions. See the [convention's text](https://www.example.org/ccm-text) for the \
relevant articles.

[^1]: Statement of Mali, Eleventh Meeting of States Parties, general exchange of views, \
Geneva, 11 September 2023.
[^2]: Article 7 initial report, form B (stockpiles) and form E (production facilities), \
submitted 30 July 2012.
[^3]: The General Assembly adopted resolution 78/XX by a recorded vote of 144 in favour, \
none against and 38 abstentions on 4 December 2023.
"""

USE = """\
Mali has stated that it has **never used, produced or transferred** cluster munitions. There \
have been no confirmed reports of cluster munition use on its territory during the armed \
conflict in the north of the country, although unexploded submunitions of unknown origin were \
reported by a clearance operator near the border in 2014 and examined by an international \
team, which could not attribute them.[^1]

Mali is not known to possess a stockpile of cluster munitions. The air force operates \
aircraft that could in principle deliver air-dropped cluster bombs, and the army inherited \
artillery systems of a type for which cargo rounds were manufactured elsewhere, but no such \
munitions have ever been documented in Mali's arsenal. In 2022 the ministry of defence \
confirmed that an inventory of ammunition depots had found *no submunitions of any kind*.[^2]

Mali has not reported retaining any cluster munitions or submunitions for research or \
training purposes, as the convention would permit, and has said it does not intend to do so.

[^1]: Clearance operator, "Technical survey findings, northern region", internal report \
shared with the Monitor, October 2014.
[^2]: Ministry of defence, letter to the Monitor, 17 June 2022.
"""

#: (heading, kind, body) in reading order; fields follow the text section whose box they fill.
SECTIONS: list[tuple[str, SectionKind, str]] = [
    ("Summary", SectionKind.TEXT, SUMMARY),
    ("Commitment to the Convention on Cluster Munitions", SectionKind.FIELD, COMMITMENT),
    ("Convention status", SectionKind.FIELD, STATUS),
    ("Participation in Convention meetings", SectionKind.FIELD, MEETINGS),
    ("Policy", SectionKind.TEXT, POLICY),
    ("Use, production, transfer, and stockpiling", SectionKind.TEXT, USE),
]


@dataclass(frozen=True)
class PageFacts:
    path: str
    sections: int
    footnotes: int
    markdown_bytes: int


def seed_profile() -> PageFacts:
    """Add the profile with approved, current revisions and commit (inside an app context)."""
    country = ensure_country("ML")
    topic_slug = slugify(TOPIC)
    exists = db.session.scalar(
        sa.select(Profile.id).where(Profile.country == country, Profile.topic_slug == topic_slug)
    )
    if exists is not None:
        raise SystemExit(
            f"The database already has a {country.name} {TOPIC} profile: "
            "give the benchmark an empty scratch database."
        )
    profile = Profile(
        country=country,
        topic=TOPIC,
        topic_slug=topic_slug,
        language="en",
        last_updated_on=date(2024, 8, 16),
        reviewed_on=date(2024, 11, 2),
        is_published=True,
    )
    db.session.add(profile)
    for position, (heading, kind, body) in enumerate(SECTIONS, start=1):
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
            change_note="Benchmark data.",
            update_type=UpdateType.MAJOR,
            state=RevisionState.APPROVED,
            decided_at=utcnow(),
        )
        db.session.add(revision)
        db.session.flush()
        section.current_revision = revision
    db.session.commit()
    return PageFacts(
        path=f"/profiles/{country.slug}/{topic_slug}",
        sections=len(SECTIONS),
        footnotes=sum(len(footnote_labels(body)[1]) for _, _, body in SECTIONS),
        markdown_bytes=sum(len(body.encode()) for _, _, body in SECTIONS),
    )


def prepare_database(settings: dict[str, Any]) -> PageFacts:
    app = create_app(settings)
    with app.app_context():
        flask_migrate.upgrade()
        facts = seed_profile()
        db.session.remove()
        db.engine.dispose()
    return facts


# --------------------------------------------------------------------------------------------
# Measuring


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_page",
        description="Profile page vs a bare endpoint with the same bytes, under gunicorn.",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="measured load time in all, split over rounds × 3 endpoints (default 60; the "
        "whole run takes about 10 s more)",
    )
    parser.add_argument("--rounds", type=int, default=4, help="A/B/C rounds (default 4)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up seconds per endpoint (default 1)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (2)")
    parser.add_argument("--threads", type=int, default=2, help="threads per client process (2)")
    parser.add_argument(
        "--database-url",
        help="a scratch database to use instead of a temporary SQLite file (it is migrated, "
        "given the benchmark profile, and left as it is afterwards)",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    if min(args.rounds, args.workers, args.processes, args.threads) < 1:
        parser.error("--rounds, --workers, --processes and --threads must be at least 1")
    return args


class SetupError(RuntimeError):
    """The endpoints do not behave as the benchmark needs."""


def check_endpoints(port: int, page_path: str) -> tuple[str, int, str]:
    """The page's ETag, size and content type, after checking the bare and 304 paths."""
    page = fetch(port, page_path)
    if page.status != 200:
        raise SetupError(f"GET {page_path} answered {page.status}")
    etag = page.headers.get("ETag")
    if not etag:
        raise SetupError(f"GET {page_path} has no ETag header")
    bare = fetch(port, BARE_PATH)
    if bare.status != 200:
        raise SetupError(f"GET {BARE_PATH} answered {bare.status}")
    if bare.body != page.body:
        raise SetupError(f"GET {BARE_PATH} does not return the page's bytes")
    if bare.headers.get("Content-Type") != page.headers.get("Content-Type"):
        raise SetupError(f"GET {BARE_PATH} does not return the page's content type")
    conditional = fetch(port, page_path, {"If-None-Match": etag})
    if conditional.status != 304:
        raise SetupError(f"GET {page_path} with If-None-Match answered {conditional.status}")
    return etag, len(page.body), page.headers.get("Content-Type", "")


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def verdict(ratio: float, target: float, *results: LoadResult) -> str:
    if any(result.errors for result in results):
        return "MISS (errors)"
    return "PASS" if ratio >= target else "MISS"


def _ratio(numerator: LoadResult, denominator: LoadResult) -> float:
    return numerator.rps / denominator.rps if denominator.rps else 0.0


def report(runs: dict[str, list[LoadResult]], labels: list[str]) -> None:
    """Per-round rates, pooled figures per endpoint, the two ratios and their verdicts."""
    page_label, bare_label, nm_label = labels
    pooled = {label: LoadResult.pooled(runs[label]) for label in labels}
    rounds = len(runs[bare_label])
    bare_runs = runs[bare_label]
    ratios = {
        "page/bare": [_ratio(p, b) for p, b in zip(runs[page_label], bare_runs, strict=True)],
        "304/bare": [_ratio(n, b) for n, b in zip(runs[nm_label], bare_runs, strict=True)],
    }
    print()
    print(f"  {'round':<10}" + "".join(f"{n:>9}" for n in range(1, rounds + 1)))
    for label in labels:
        print(f"  {label + ' req/s':<10}" + "".join(f"{r.rps:>9.1f}" for r in runs[label]))
    for name, values in ratios.items():
        print(f"  {name:<10}" + "".join(f"{v:>9.2f}" for v in values))
    print()
    print(
        f"  {'endpoint':<10}{'requests':>9}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'server CPU ms/req':>19}"
    )
    for label in labels:
        result = pooled[label]
        cpu = result.server_cpu_per_request
        print(
            f"  {label:<10}{result.ok:>9}{result.errors:>8}{result.rps:>9.1f}"
            f"{fmt_ms(result.percentile(50)):>9}{fmt_ms(result.percentile(95)):>9}"
            f"{'n/a' if cpu is None else f'{cpu * 1000:.2f}':>19}"
        )
        if result.errors:
            kinds = ", ".join(f"{kind} ×{n}" for kind, n in result.error_kinds.most_common())
            print(f"  {'':<10}errors: {kinds}")
    page, bare, not_modified = (pooled[label] for label in labels)
    print()
    for name, (result, target) in {
        "page/bare": (page, PAGE_TARGET),
        "304/bare": (not_modified, NOT_MODIFIED_TARGET),
    }.items():
        ratio = _ratio(result, bare)
        spread = f"rounds {min(ratios[name]):.2f}–{max(ratios[name]):.2f}"
        print(
            f"ratio {name:<10}{ratio:5.2f}  ({spread})   target ≥ {target:.2f}   "
            f"{verdict(ratio, target, result, bare)}"
        )
    cpu = {label: pooled[label].server_cpu_per_request for label in labels}
    if all(cpu.values()):
        print(
            f"server CPU per request, bare/page {cpu[bare_label] / cpu[page_label]:.2f}, "
            f"bare/304 {cpu[bare_label] / cpu[nm_label]:.2f} (informational: no client share)"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="desk-bench-") as scratch:
        database_url = args.database_url or f"sqlite:///{Path(scratch) / 'bench.sqlite3'}"
        settings = {
            "DESK_ENV": "production",
            "DESK_SECRET_KEY": "bench",
            "DESK_DATABASE_URL": database_url,
            "DESK_INSTANCE_PATH": str(Path(scratch) / "instance"),
        }
        facts = prepare_database(settings)
        backend = sa.make_url(database_url).get_backend_name()
        slot = args.seconds / (args.rounds * 3)
        load_before = os.getloadavg()[0]
        print("Desk benchmark: profile page vs bare endpoint with the same bytes")
        print(
            f"server   gunicorn, {args.workers} sync workers, 127.0.0.1; database {backend}"
            f"{'' if args.database_url else ' (temporary file)'}; {os.cpu_count()} CPUs"
        )
        print(
            f"load     {args.processes} client processes × {args.threads} threads, a new "
            "connection per request"
        )
        print(
            f"plan     warm-up {args.warmup:g} s per endpoint, then {args.rounds} rounds of "
            f"page/bare/304 × {slot:.1f} s",
            flush=True,
        )
        env = {
            **_inherited_environment(),
            **settings,
            PROFILE_PATH_VARIABLE: facts.path,
        }
        load = {"processes": args.processes, "threads": args.threads}
        try:
            with GunicornServer(
                APP_TARGET,
                workers=args.workers,
                chdir=PROJECT_ROOT,
                env=env,
                ready_path=facts.path,
            ) as server:
                etag, size, content_type = check_endpoints(server.port, facts.path)
                print(
                    f"page     {facts.path}: {size:,} bytes ({content_type}), ETag {etag}\n"
                    f"         {facts.sections} sections, {facts.footnotes} footnotes, "
                    f"{facts.markdown_bytes:,} bytes of Markdown",
                    flush=True,
                )
                endpoints = [
                    Endpoint("page", facts.path, expect=(200,)),
                    Endpoint("bare", BARE_PATH, expect=(200,)),
                    Endpoint("304", facts.path, (("If-None-Match", etag),), expect=(304,)),
                ]
                if args.warmup:
                    for endpoint in endpoints:
                        run_load(server.port, endpoint, seconds=args.warmup, **load)
                runs = run_rounds(server, endpoints, rounds=args.rounds, seconds=slot, **load)
                server_log = server.log_text().strip()
        except (ServerError, SetupError) as exc:
            print(f"SET-UP FAILED: {exc}", file=sys.stderr)
            return 1
    report(runs, [endpoint.label for endpoint in endpoints])
    load_after = os.getloadavg()[0]
    busy = max(load_before, load_after) > (os.cpu_count() or 1)
    print(
        f"machine load average {load_before:.1f} before, {load_after:.1f} after"
        + ("; other work was competing for the CPUs, so rates are noisy" if busy else "")
    )
    if server_log:
        print("\ngunicorn said:\n" + server_log[-2000:])
    print(f"total run time {time.monotonic() - started:.0f} s")
    return 0


def _inherited_environment() -> dict[str, str]:
    """This process's environment minus DESK_* settings, which the benchmark sets itself."""
    return {name: value for name, value in os.environ.items() if not name.startswith("DESK_")}


if __name__ == "__main__":
    sys.exit(main())
