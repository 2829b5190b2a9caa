"""Benchmark: feedback submissions with a 100 KB attachment, the real form against a bare endpoint.

What runs (issue "Reader feedback intake"):

1. A scratch SQLite database in a temporary folder (or ``--database-url``) is migrated with the
   project's migrations and given one published profile (Mali, "Cluster Munition Ban Policy",
   two sections). Files go to a folder in the same scratch directory, or to
   ``--storage-url`` (e.g. ``s3://bucket/prefix?endpoint_url=…``).
2. gunicorn serves ``bench.intake:build_app()`` with 2 sync workers on a free loopback port:
   Desk itself, plus ``/_bench/bare``, a bare endpoint in the same app and workers that takes
   the same multipart body and, with plain code, stores the file through the same storage and
   inserts one Feedback row and one Attachment row equivalent to the form's (profile, country,
   message, reference, file name, size, SHA-256, storage key). It skips everything else the
   form does: form validation, the type sniffing, the repeat and replay look-ups, the
   reference counter, routing, the timeline events and the spam checks.
3. Clients POST submissions to the form, ``/profiles/mali/cluster-munition-ban-policy/feedback``,
   and to the bare endpoint, in turn A/B/A/B… for ``--rounds`` rounds after a warm-up. Every
   submission is a new one: its own message (so none is taken for a double submit) and a
   fresh signed form token (minted by the client with the bench's secret key, as if the form
   had just been drawn), plus the same 100 KB PDF. Only a 303 counts as success. Submissions/s
   per round, pooled figures and the ratio form/bare (target ≥ 0.5) with PASS or MISS are
   printed, then a check that every successful form submission made exactly one item with its
   file and none was quarantined.

The bench measures intake, not CSRF or abuse control: the served app runs with
``WTF_CSRF_ENABLED = False``, ``DESK_FORM_MIN_SECONDS=0`` and a rate limit far above what the
clients can send, and says so in its output. The timing token and the honeypot are still
read and checked on every submission.

Clients: 2 processes × 2 threads, a new connection per request, as in bench/profile_page.py
(whose notes on the client size apply here too); each request uploads about 101 KB.

Run from the project root (about ``--seconds`` plus 10 s):

    .venv/bin/python -m bench.intake
    .venv/bin/python -m bench.intake --seconds 20 --rounds 2
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import logging
import multiprocessing
import os
import queue
import secrets
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask_migrate
import sqlalchemy as sa
from flask import Flask, Response, request

from bench._harness import LOOPBACK, GunicornServer, LoadResult, ServerError
from desk import create_app
from desk.core.storage import get_storage
from desk.core.text import slugify
from desk.extensions import csrf, db
from desk.feedback.models import Attachment, Channel, Feedback
from desk.feedback.spam import make_form_token
from desk.profiles.models import Profile, RevisionState, Section, SectionRevision
from desk.profiles.operations import ensure_country

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_TARGET = "bench.intake:build_app()"
BARE_PATH = "/_bench/bare"
#: Environment variable naming the profile the bare endpoint files its rows under.
PROFILE_ID_VARIABLE = "BENCH_PROFILE_ID"
#: Long enough for the production settings check; the clients sign form tokens with it too.
SECRET_KEY = "bench-intake-" + "0123456789abcdef" * 2
TOPIC = "Cluster Munition Ban Policy"
TARGET = 0.5
ATTACHMENT_BYTES = 100 * 1024
ATTACHMENT_NAME = "evidence.pdf"
#: Abuse controls turned down so that the bench measures intake (printed with the results).
BENCH_SETTINGS: dict[str, Any] = {
    "DESK_FORM_MIN_SECONDS": 0,
    "DESK_FEEDBACK_RATE_LIMIT": "1000000 per minute",
}
BARE_REFERENCE_PREFIX = "BN-"

# --------------------------------------------------------------------------------------------
# The served app: Desk plus the bare endpoint


def build_app() -> Flask:
    """Desk from the DESK_* environment with CSRF off, plus :data:`BARE_PATH`."""
    instance_path = os.environ.get("DESK_INSTANCE_PATH")
    app = create_app({"DESK_INSTANCE_PATH": instance_path} if instance_path else None)
    app.config["WTF_CSRF_ENABLED"] = False
    profile_id = int(os.environ[PROFILE_ID_VARIABLE])
    with app.app_context():
        profile = db.session.get(Profile, profile_id)
        if profile is None:
            raise RuntimeError(f"{PROFILE_ID_VARIABLE}={profile_id} names no profile.")
        country_id = profile.country_id
        thanks = f"/profiles/{profile.country.slug}/{profile.topic_slug}/feedback/thanks"
        db.session.remove()
        # Start serving with an empty pool, as a freshly booted worker would.
        db.engine.dispose()

    @csrf.exempt
    def bench_bare() -> Response:
        upload = request.files["attachments"]
        message = request.form["message"]
        stored = get_storage().save(upload.stream)
        feedback = Feedback(
            reference=BARE_REFERENCE_PREFIX + secrets.token_hex(6),
            profile_id=profile_id,
            country_id=country_id,
            channel=Channel.WEB,
            message=message,
            content_hash=hashlib.sha256(message.encode()).hexdigest(),
            submitter_ip=request.remote_addr or "",
        )
        feedback.attachments.append(
            Attachment(
                original_filename=upload.filename or "",
                content_type="application/pdf",
                size=stored.size,
                sha256=stored.sha256,
                storage_key=stored.key,
            )
        )
        db.session.add(feedback)
        db.session.commit()
        return Response(status=303, headers={"Location": thanks})

    app.add_url_rule(BARE_PATH, view_func=bench_bare, methods=["POST"])
    return app


# --------------------------------------------------------------------------------------------
# Set-up


def seed_profile() -> tuple[int, str]:
    """A published profile with two approved sections; its id and its form's path."""
    country = ensure_country("ML")
    profile = Profile(country=country, topic=TOPIC, topic_slug=slugify(TOPIC), language="en")
    db.session.add(profile)
    for position, heading in enumerate(["Summary", "Policy"], start=1):
        section = Section(position=position, anchor=slugify(heading), heading=heading, level=2)
        profile.sections.append(section)
        revision = SectionRevision(
            section=section,
            number=1,
            heading=heading,
            body=f"{heading} text for the benchmark.",
            state=RevisionState.APPROVED,
        )
        db.session.add(revision)
        db.session.flush()
        section.current_revision = revision
    db.session.commit()
    return profile.id, f"/profiles/{country.slug}/{profile.topic_slug}/feedback"


def prepare_database(settings: dict[str, Any]) -> tuple[int, str]:
    app = create_app(settings)
    with app.app_context():
        flask_migrate.upgrade()
        exists = db.session.scalar(sa.select(sa.func.count()).select_from(Feedback))
        if exists:
            raise SystemExit("The database already holds feedback: give the bench an empty one.")
        seeded = seed_profile()
        db.session.remove()
        db.engine.dispose()
    return seeded


def attachment_bytes() -> bytes:
    """A 100 KB PDF: a PDF header (libmagic: application/pdf), then numbered padding lines."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    lines = b"".join(b"%% padding %010d\n" % n for n in range(ATTACHMENT_BYTES // 20))
    return (head + lines)[:ATTACHMENT_BYTES]


# --------------------------------------------------------------------------------------------
# Submissions and load


class Submissions:
    """Builds multipart bodies: a new message and form token each time, the same file."""

    def __init__(self, secret_key: str) -> None:
        self.token_app = Flask("bench-intake-client")
        self.token_app.config["SECRET_KEY"] = secret_key
        self.file = attachment_bytes()

    def body(self, ident: str) -> tuple[str, bytes]:
        with self.token_app.app_context():
            token = make_form_token()
        boundary = f"bench-{secrets.token_hex(12)}"
        fields = {
            "message": (
                f"Submission {ident}: the second paragraph of the policy section gives the "
                "wrong year for the ratification; the instrument was deposited a year later, "
                "according to the depositary notification attached."
            ),
            "section": "policy",
            "name": "",
            "email": "",
            "organisation": "",
            "website": "",
            "token": token,
        }
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
            for name, value in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
            f'filename="{ATTACHMENT_NAME}"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
        )
        body = b"".join(parts) + self.file + f"\r\n--{boundary}--\r\n".encode()
        return f"multipart/form-data; boundary={boundary}", body


@dataclass(frozen=True)
class Target:
    label: str
    path: str


@dataclass
class _Part:
    ok: int
    errors: int
    latencies: array[float]
    error_kinds: Counter[str]
    ended_at: float


def post(port: int, path: str, content_type: str, body: bytes, timeout: float) -> int:
    """One POST on a fresh connection to 127.0.0.1; the status."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request(
            "POST", path, body=body, headers={"Content-Type": content_type, "Connection": "close"}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _client_thread(
    port: int,
    target: Target,
    submissions: Submissions,
    ident: str,
    start_at: float,
    stop_at: float,
    timeout: float,
    out: list[_Part],
) -> None:
    latencies: array[float] = array("d")
    kinds: Counter[str] = Counter()
    ok = errors = sent = 0
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    while time.time() < stop_at:
        sent += 1
        content_type, body = submissions.body(f"{target.label}-{ident}-{sent}")
        began = time.perf_counter()
        try:
            status = post(port, target.path, content_type, body, timeout)
        except (OSError, http.client.HTTPException) as exc:
            errors += 1
            kinds[type(exc).__name__] += 1
            time.sleep(0.001)
            continue
        if status == 303:
            ok += 1
            latencies.append(time.perf_counter() - began)
        else:
            errors += 1
            kinds[f"HTTP {status}"] += 1
    out.append(_Part(ok, errors, latencies, kinds, time.time()))


def _client_process(
    port: int,
    target: Target,
    submissions: Submissions,
    ident: str,
    threads: int,
    start_at: float,
    stop_at: float,
    timeout: float,
    results: Any,
) -> None:
    parts: list[_Part] = []
    workers = [
        threading.Thread(
            target=_client_thread,
            args=(port, target, submissions, f"{ident}.{n}", start_at, stop_at, timeout, parts),
            daemon=True,
        )
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, stop_at - time.time()) + timeout + 1)
    results.put(parts)


def run_posts(
    port: int,
    target: Target,
    submissions: Submissions,
    *,
    seconds: float,
    processes: int,
    threads: int,
    round_name: str,
    timeout: float = 10.0,
) -> LoadResult:
    """POST new submissions to ``target`` from ``processes × threads`` clients for ``seconds``.

    The same shape as bench._harness.run_load (forked client processes, an agreed start and
    stop, a fresh connection per request), with a new body for every request.
    """
    start_at = time.time() + 0.2
    stop_at = start_at + seconds
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    clients = [
        context.Process(
            target=_client_process,
            args=(
                port,
                target,
                submissions,
                f"{round_name}.{n}",
                threads,
                start_at,
                stop_at,
                timeout,
                results,
            ),
            daemon=True,
        )
        for n in range(processes)
    ]
    for client in clients:
        client.start()
    deadline = stop_at + timeout + 5
    parts: list[_Part] = []
    try:
        for _ in clients:
            parts.extend(results.get(timeout=max(0.1, deadline - time.time())))
    except queue.Empty:
        raise ServerError(f"clients of {target.label} did not report in time") from None
    finally:
        for client in clients:
            client.join(max(0.1, deadline - time.time()))
            if client.is_alive():
                client.terminate()
                client.join(1)
        results.close()
    result = LoadResult(target.label, clients=processes * threads)
    for part in parts:
        result.ok += part.ok
        result.errors += part.errors
        result.latencies.extend(part.latencies)
        result.error_kinds.update(part.error_kinds)
    result.elapsed = max((part.ended_at for part in parts), default=start_at) - start_at
    return result


def run_rounds(
    server: GunicornServer,
    targets: list[Target],
    submissions: Submissions,
    *,
    rounds: int,
    seconds: float,
    processes: int,
    threads: int,
) -> dict[str, list[LoadResult]]:
    """Each target for ``seconds`` in turn, ``rounds`` times, with the server's CPU time."""
    runs: dict[str, list[LoadResult]] = {target.label: [] for target in targets}
    for number in range(1, rounds + 1):
        for target in targets:
            cpu_before = server.cpu_seconds()
            result = run_posts(
                server.port,
                target,
                submissions,
                seconds=seconds,
                processes=processes,
                threads=threads,
                round_name=f"r{number}",
            )
            cpu_after = server.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                result.server_cpu = max(0.0, cpu_after - cpu_before)
            runs[target.label].append(result)
    return runs


# --------------------------------------------------------------------------------------------
# Checks and report


class SetupError(RuntimeError):
    """The endpoints do not behave as the benchmark needs."""


@dataclass(frozen=True)
class Stored:
    form_items: int
    bare_items: int
    quarantined: int
    files: int
    bad_files: int


def stored_rows(database_url: str) -> Stored:
    """What the two endpoints left in the database."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            bare = Feedback.reference.startswith(BARE_REFERENCE_PREFIX)
            count = sa.select(sa.func.count()).select_from(Feedback)
            files = (
                sa.select(sa.func.count())
                .select_from(Attachment)
                .where(Attachment.storage_key != "")
            )
            bad = files.where(
                sa.or_(
                    Attachment.size != ATTACHMENT_BYTES,
                    Attachment.content_type != "application/pdf",
                )
            )
            return Stored(
                form_items=connection.scalar(count.where(~bare)) or 0,
                bare_items=connection.scalar(count.where(bare)) or 0,
                quarantined=connection.scalar(count.where(Feedback.is_quarantined)) or 0,
                files=connection.scalar(files) or 0,
                bad_files=connection.scalar(bad) or 0,
            )
    finally:
        engine.dispose()


def check_endpoints(
    port: int, targets: list[Target], submissions: Submissions, database_url: str
) -> None:
    """One submission to each endpoint: a 303, and one item with its file in the database."""
    for target in targets:
        content_type, body = submissions.body(f"check-{target.label}")
        status = post(port, target.path, content_type, body, timeout=10)
        if status != 303:
            raise SetupError(f"POST {target.path} answered {status}, not 303")
    stored = stored_rows(database_url)
    expected = Stored(form_items=1, bare_items=1, quarantined=0, files=2, bad_files=0)
    if stored != expected:
        raise SetupError(f"after one submission to each endpoint the database holds {stored}")


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _ratio(numerator: LoadResult, denominator: LoadResult) -> float:
    return numerator.rps / denominator.rps if denominator.rps else 0.0


def report(runs: dict[str, list[LoadResult]], form_label: str, bare_label: str) -> float:
    """Per-round rates, pooled figures and the ratio with its verdict; returns the ratio."""
    labels = [form_label, bare_label]
    pooled = {label: LoadResult.pooled(runs[label]) for label in labels}
    rounds = len(runs[bare_label])
    ratios = [_ratio(f, b) for f, b in zip(runs[form_label], runs[bare_label], strict=True)]
    print()
    print(f"  {'round':<14}" + "".join(f"{n:>9}" for n in range(1, rounds + 1)))
    for label in labels:
        print(f"  {label + ' subm/s':<14}" + "".join(f"{r.rps:>9.1f}" for r in runs[label]))
    print(f"  {'form/bare':<14}" + "".join(f"{v:>9.2f}" for v in ratios))
    print()
    print(
        f"  {'endpoint':<14}{'submitted':>10}{'errors':>8}{'subm/s':>9}{'p50 ms':>9}"
        f"{'p95 ms':>9}{'server CPU ms/subm':>20}"
    )
    for label in labels:
        result = pooled[label]
        cpu = result.server_cpu_per_request
        print(
            f"  {label:<14}{result.ok:>10}{result.errors:>8}{result.rps:>9.1f}"
            f"{fmt_ms(result.percentile(50)):>9}{fmt_ms(result.percentile(95)):>9}"
            f"{'n/a' if cpu is None else f'{cpu * 1000:.2f}':>20}"
        )
        if result.errors:
            kinds = ", ".join(f"{kind} ×{n}" for kind, n in result.error_kinds.most_common())
            print(f"  {'':<14}errors: {kinds}")
    form, bare = pooled[form_label], pooled[bare_label]
    ratio = _ratio(form, bare)
    if form.errors or bare.errors:
        verdict = "MISS (errors)"
    else:
        verdict = "PASS" if ratio >= TARGET else "MISS"
    print()
    print(
        f"ratio form/bare {ratio:5.2f}  (rounds {min(ratios):.2f}–{max(ratios):.2f})   "
        f"target ≥ {TARGET:.2f}   {verdict}"
    )
    form_cpu, bare_cpu = form.server_cpu_per_request, bare.server_cpu_per_request
    if form_cpu and bare_cpu:
        print(
            f"server CPU per submission, bare/form {bare_cpu / form_cpu:.2f} "
            "(informational: no client share)"
        )
    return ratio


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake",
        description="Feedback form submissions with a 100 KB file vs a bare endpoint, "
        "under gunicorn.",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=40.0,
        help="measured load time in all, split over rounds × 2 endpoints (default 40)",
    )
    parser.add_argument("--rounds", type=int, default=4, help="A/B rounds (default 4)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up seconds per endpoint (default 1)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (2)")
    parser.add_argument("--processes", type=int, default=2, help="client processes (2)")
    parser.add_argument("--threads", type=int, default=2, help="threads per client process (2)")
    parser.add_argument(
        "--database-url",
        help="an empty scratch database instead of a temporary SQLite file (it is migrated, "
        "given the benchmark profile, and left with the submissions afterwards)",
    )
    parser.add_argument(
        "--storage-url",
        help="DESK_STORAGE_URL for the server (default: a folder in the temporary directory)",
    )
    parser.add_argument(
        "--ratelimit-storage-url",
        help="DESK_RATELIMIT_STORAGE_URL, e.g. redis://127.0.0.1:6379/12: the rate limits' "
        "counters shared by the workers, as in a deployment of several (default: memory://, "
        "each worker counting alone)",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    if min(args.rounds, args.workers, args.processes, args.threads) < 1:
        parser.error("--rounds, --workers, --processes and --threads must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="desk-bench-intake-") as scratch:
        database_url = args.database_url or f"sqlite:///{Path(scratch) / 'bench.sqlite3'}"
        settings = {
            "DESK_ENV": "production",
            "DESK_SECRET_KEY": SECRET_KEY,
            "DESK_DATABASE_URL": database_url,
            "DESK_INSTANCE_PATH": str(Path(scratch) / "instance"),
            "DESK_STORAGE_URL": args.storage_url or str(Path(scratch) / "files"),
            "DESK_RATELIMIT_STORAGE_URL": args.ratelimit_storage_url or "memory://",
            **BENCH_SETTINGS,
        }
        profile_id, form_path = prepare_database(settings)
        backend = sa.make_url(database_url).get_backend_name()
        storage = "S3" if settings["DESK_STORAGE_URL"].startswith("s3://") else "local folder"
        slot = args.seconds / (args.rounds * 2)
        load_before = os.getloadavg()[0]
        print("Desk benchmark: feedback form submissions vs a bare endpoint writing the same")
        print(
            f"server   gunicorn, {args.workers} sync workers, 127.0.0.1; database {backend}"
            f"{'' if args.database_url else ' (temporary file)'}; storage {storage}; rate "
            f"limits {settings['DESK_RATELIMIT_STORAGE_URL']}; {os.cpu_count()} CPUs"
        )
        print(
            "config   WTF_CSRF_ENABLED=False, DESK_FORM_MIN_SECONDS=0, DESK_FEEDBACK_RATE_LIMIT="
            f"{BENCH_SETTINGS['DESK_FEEDBACK_RATE_LIMIT']!r}: the bench measures intake, not "
            "CSRF or rate limiting"
        )
        print(
            f"upload   each submission: a new message and form token, {ATTACHMENT_NAME} of "
            f"{ATTACHMENT_BYTES // 1024} KB; only 303 counts as success"
        )
        print(
            f"load     {args.processes} client processes × {args.threads} threads, a new "
            "connection per request"
        )
        print(
            f"plan     warm-up {args.warmup:g} s per endpoint, then {args.rounds} rounds of "
            f"form/bare × {slot:.1f} s",
            flush=True,
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DESK_")},
            **{name: str(value) for name, value in settings.items()},
            PROFILE_ID_VARIABLE: str(profile_id),
        }
        targets = [Target("form", form_path), Target("bare", BARE_PATH)]
        submissions = Submissions(SECRET_KEY)
        load = {"processes": args.processes, "threads": args.threads}
        try:
            with GunicornServer(
                APP_TARGET, workers=args.workers, chdir=PROJECT_ROOT, env=env, ready_path=form_path
            ) as server:
                check_endpoints(server.port, targets, submissions, database_url)
                print(f"form     POST {form_path}\nbare     POST {BARE_PATH}", flush=True)
                warm_ok = {"form": 1, "bare": 1}  # the check's submissions
                if args.warmup:
                    for target in targets:
                        warm = run_posts(
                            server.port,
                            target,
                            submissions,
                            seconds=args.warmup,
                            round_name="warm",
                            **load,
                        )
                        warm_ok[target.label] += warm.ok
                runs = run_rounds(
                    server, targets, submissions, rounds=args.rounds, seconds=slot, **load
                )
                server_log = server.log_text().strip()
        except (ServerError, SetupError) as exc:
            print(f"SET-UP FAILED: {exc}", file=sys.stderr)
            return 1
        report(runs, "form", "bare")
        stored = stored_rows(database_url)
    answered = {
        label: warm_ok[label] + sum(result.ok for result in runs[label]) for label in warm_ok
    }
    consistent = (
        stored.form_items == answered["form"]
        and stored.bare_items == answered["bare"]
        and stored.files == stored.form_items + stored.bare_items
        and not stored.quarantined
        and not stored.bad_files
    )
    print(
        f"stored   form: {stored.form_items} items for {answered['form']} answered submissions; "
        f"bare: {stored.bare_items} rows for {answered['bare']}; {stored.files} files kept, "
        f"{stored.bad_files} of the wrong size or type; {stored.quarantined} quarantined   "
        f"{'OK' if consistent else 'MISMATCH'}"
    )
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


if __name__ == "__main__":
    sys.exit(main())
