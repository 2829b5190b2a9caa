"""Benchmark: one approval notifying 10,000 immediate subscribers through a local SMTP sink.

What runs:

1. A scratch SQLite database in a temporary folder (or ``--database-url``, e.g. a scratch
   PostgreSQL database) is migrated with the project's migrations and given one published
   profile with ``--subscribers`` confirmed immediate subscribers (10,000 by default), half of
   them reading French.
2. An SMTP sink (aiosmtpd) runs in a process of its own on a free loopback port, so that
   receiving never competes with sending for this process's interpreter lock. It counts what
   arrives and notes when the last message did.
3. **Fan-out through the jobs.** A Huey consumer runs in this process (a thread, as in
   ``desk demo``; the queue is SQLite in the scratch folder), then one transaction does what an
   approval does for mail: a ProfileUpdate, ``queue_profile_update_notices`` (10,000 outbox
   rows), commit. The commit asks for a delivery run; the job sends batch after batch
   (``DESK_OUTBOX_BATCH_SIZE`` per SMTP connection) until the outbox is empty. Printed: how
   long the transaction took, and the time from its commit to the last message arriving.
4. **Rates, A/B/C, A/B/C.** ``--rate-messages`` of those messages (3,000 by default) are
   sent again, in turn, three ways:

   A. a bare ``smtplib`` loop over one connection: for each message, build it with the standard
      library (``EmailMessage``: the same subject, sender, recipient, Message-ID, headers, text
      and HTML parts) and ``send_message`` it; printed for information;
   B. a bare ``smtplib`` loop sending the same messages, already built (the very bytes Desk
      sends, made before the clock starts), over one connection: the transport alone. This
      is the target's baseline, the strict reading of "the same messages over one
      connection";
   C. ``deliver_due()`` batches after those rows are made due again: the outbox's own path
      (claim a batch, build each message, send it, commit each outcome on its own so that a
      killed worker neither loses nor repeats one).

   Each run sends every message once, and the sink's count is checked after each. Messages
   per second are pooled over ``--rounds`` rounds; the ratio C/B (target ≥ 0.5) is printed
   with PASS or MISS, and C/A for information.

The exit status is 0 either way; 1 only if the set-up fails (a message does not arrive, the
sink does not start). About a minute with the defaults on an idle two-core machine:

    .venv/bin/python -m bench.fanout
    .venv/bin/python -m bench.fanout --subscribers 2000 --rounds 1
    .venv/bin/python -m bench.fanout --database-url postgresql+psycopg://postgres@127.0.0.1/empty
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import smtplib
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import flask_migrate
import sqlalchemy as sa

from bench._harness import free_port
from desk import create_app
from desk.core.time import utcnow
from desk.extensions import db, huey, mail
from desk.jobs import start_consumer_thread
from desk.notify.delivery import as_mail_message, deliver_due
from desk.notify.models import Frequency, OutboxMessage, OutboxState, Subscription
from desk.notify.operations import queue_profile_update_notices
from desk.notify.queries import delivery_counts, profile_update_prefix
from desk.profiles.models import Profile, ProfileUpdate, RevisionState, Section, SectionRevision
from desk.profiles.operations import ensure_country

RATIO_TARGET = 0.5
LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------------------------
# The sink: a process of its own, counting what arrives.


class _Counter:
    def __init__(self, count: Any, last: Any) -> None:
        self.count = count
        self.last = last

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.count.get_lock():
            self.count.value += 1
        self.last.value = time.time()
        return "250 OK"


def _run_sink(port: int, count: Any, last: Any, ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(_Counter(count, last), hostname=LOOPBACK, port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class Sink:
    """An aiosmtpd server in a child process; ``count`` and ``last_arrival`` read across."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self.port = free_port()
        self._count = context.Value("q", 0)
        self._last = context.Value("d", 0.0)
        self._ready = context.Event()
        self._stop = context.Event()
        self._process = context.Process(
            target=_run_sink,
            args=(self.port, self._count, self._last, self._ready, self._stop),
            daemon=True,
        )

    def __enter__(self) -> Sink:
        self._process.start()
        if not self._ready.wait(15):
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()

    @property
    def count(self) -> int:
        return int(self._count.value)

    @property
    def last_arrival(self) -> float:
        return float(self._last.value)

    def wait_for(self, total: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count >= total:
                return True
            time.sleep(0.01)
        return self.count >= total


# --------------------------------------------------------------------------------------------
# Set-up


def build_app(database_url: str | None, folder: Path, sink_port: int) -> Any:
    settings = {
        "DESK_ENV": "testing",
        "DESK_SECRET_KEY": "fanout-bench-" + "0123456789abcdef" * 2,
        "DESK_INSTANCE_PATH": str(folder / "instance"),
        "DESK_DATABASE_URL": database_url or f"sqlite:///{folder / 'fanout.sqlite3'}",
        "DESK_SITE_URL": "https://desk.example.org",
        "DESK_MAIL_BACKEND": "smtp",
        "DESK_MAIL_SERVER": LOOPBACK,
        "DESK_MAIL_PORT": sink_port,
        "DESK_MAIL_FROM": "desk@desk.example.org",
        "DESK_REDIS_URL": "",
    }
    app = create_app(settings)
    with app.app_context():
        flask_migrate.upgrade()
        mail.init_app(app)
    return app


def seed(subscribers: int) -> int:
    """One published profile with a section, and its confirmed immediate subscribers."""
    profile = Profile(
        country=ensure_country("ML"),
        topic="Cluster Munition Ban Policy",
        topic_slug="cluster-munition-ban-policy",
        language="en",
        last_updated_on=date(2024, 3, 5),
    )
    section = Section(position=1, anchor="stockpiling", heading="Stockpiling", level=2)
    profile.sections.append(section)
    db.session.add(profile)
    revision = SectionRevision(
        section=section,
        number=1,
        heading="Stockpiling",
        body="Mali is not known to possess a stockpile.",
        state=RevisionState.APPROVED,
    )
    db.session.add(revision)
    db.session.flush()
    section.current_revision = revision
    now = utcnow()
    db.session.execute(
        sa.insert(Subscription),
        [
            {
                "email": f"reader{n:05}@example.org",
                "profile_id": profile.id,
                "frequency": Frequency.IMMEDIATE,
                "language": "fr" if n % 2 else "en",
                "confirmed_at": now,
                "created_at": now,
                "ended_reason": "",
            }
            for n in range(subscribers)
        ],
    )
    db.session.commit()
    return profile.id


def approve(profile_id: int) -> tuple[int, int]:
    """What an approval does for mail: the stamp and its notices, in one transaction."""
    profile = db.session.get(Profile, profile_id)
    assert profile is not None
    revision = profile.sections[0].current_revision
    assert revision is not None
    new = SectionRevision(
        section=profile.sections[0],
        number=revision.number + 1,
        heading=revision.heading,
        body=revision.body + " The ministry confirmed it in 2026.",
        base_revision=revision,
        change_note="Added the ministry's 2026 confirmation.",
        state=RevisionState.APPROVED,
    )
    update = ProfileUpdate(
        profile=profile,
        stamped_on=date(2026, 11, 29),
        change_note=new.change_note,
        revisions=[new],
    )
    db.session.add_all([new, update])
    profile.sections[0].current_revision = new
    profile.last_updated_on = update.stamped_on
    db.session.flush()
    queued = queue_profile_update_notices(update)
    return update.id, queued


def make_due_again(ids: list[int]) -> None:
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(state=OutboxState.PENDING, attempts=0, next_attempt_at=utcnow(), sent_at=None)
    )
    db.session.commit()


@dataclass(frozen=True)
class Plain:
    """An outbox message's content, read before any clock starts."""

    id: int
    recipient: str
    subject: str
    text: str
    html: str
    headers: dict[str, Any]
    message_id: str


def plain_messages(limit: int) -> list[Plain]:
    rows = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id).limit(limit))
    return [
        Plain(r.id, r.recipient, r.subject, r.text, r.html, dict(r.headers), r.message_id)
        for r in rows
    ]


def prebuilt(messages: list[Plain]) -> list[tuple[str, str, bytes]]:
    """The messages as the bytes Desk sends them."""
    built = []
    for plain in messages:
        message = as_mail_message(plain)
        built.append((message.sender, plain.recipient, message.as_bytes()))
    return built


# --------------------------------------------------------------------------------------------
# The runs


@dataclass
class Rate:
    messages: int = 0
    seconds: float = 0.0

    def add(self, messages: int, seconds: float) -> None:
        self.messages += messages
        self.seconds += seconds

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def bare_loop(port: int, sender: str, messages: list[Plain]) -> float:
    """Build each message with the standard library and send it, over one smtplib connection."""
    began = time.perf_counter()
    with smtplib.SMTP(LOOPBACK, port, timeout=30) as connection:
        for plain in messages:
            message = EmailMessage()
            message["Subject"] = plain.subject
            message["From"] = sender
            message["To"] = plain.recipient
            message["Message-ID"] = plain.message_id
            for name, value in plain.headers.items():
                message[name] = value
            message.set_content(plain.text)
            message.add_alternative(plain.html, subtype="html")
            connection.send_message(message)
    return time.perf_counter() - began


def transport_loop(port: int, messages: list[tuple[str, str, bytes]]) -> float:
    """Send bytes built beforehand over one smtplib connection: the transport alone."""
    began = time.perf_counter()
    with smtplib.SMTP(LOOPBACK, port, timeout=30) as connection:
        for sender, recipient, raw in messages:
            connection.sendmail(sender, [recipient], raw)
    return time.perf_counter() - began


def outbox_batches() -> tuple[int, float]:
    """deliver_due() until the outbox has nothing due; returns (sent, seconds)."""
    sent = 0
    began = time.perf_counter()
    while True:
        report = deliver_due()
        sent += len(report.sent)
        if report.failed or report.dead:
            raise RuntimeError(f"delivery failed: {report}")
        if not report.claimed:
            break
    return sent, time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="A/B/C rounds of the rate runs")
    parser.add_argument(
        "--rate-messages", type=int, default=3000, help="messages per rate run (at most all)"
    )
    parser.add_argument("--workers", type=int, default=1, help="consumer threads for step 3")
    parser.add_argument(
        "--database-url", default=None, help="an empty scratch database (default: SQLite)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("huey").setLevel(logging.ERROR)

    if args.database_url:
        require_empty(args.database_url)
    with tempfile.TemporaryDirectory(prefix="desk-fanout-") as scratch, Sink() as sink:
        folder = Path(scratch)
        app = build_app(args.database_url, folder, sink.port)
        with app.app_context():
            profile_id = seed(args.subscribers)
        print(
            f"fan-out: {args.subscribers} immediate subscribers, "
            f"{db_name(app)}, batches of {app.config['DESK_OUTBOX_BATCH_SIZE']}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
        )

        # 3. The approval, and the jobs delivering its notices.
        huey.flush()
        consumer = start_consumer_thread(workers=args.workers)
        try:
            with app.app_context():
                began = time.perf_counter()
                update_id, queued = approve(profile_id)
                db.session.commit()
                committed_at = time.time()
                stamp_seconds = time.perf_counter() - began
            if not sink.wait_for(queued, timeout=600):
                print(f"FAILED: only {sink.count} of {queued} messages arrived", file=sys.stderr)
                return 1
            to_last = sink.last_arrival - committed_at
        finally:
            # Let the last (empty) delivery run finish: a consumer thread stopped while a task
            # is in flight makes Huey log a spurious KeyError.
            deadline = time.monotonic() + 30
            while huey.pending_count() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            consumer.stop(graceful=True)
        with app.app_context():
            counts = delivery_counts(profile_update_prefix(update_id))
        print(f"  stamp transaction (ProfileUpdate + {queued} outbox rows): {stamp_seconds:6.2f} s")
        print(
            f"  commit → last message arrived:                       {to_last:6.2f} s "
            f"({queued / to_last:,.0f} messages/s through the job queue)"
        )
        print(f"  delivery_counts(): {counts}")

        # 4. The rates, A/B/C, A/B/C.
        with app.app_context():
            messages = plain_messages(args.rate_messages)
            built = prebuilt(messages)
            ids = [plain.id for plain in messages]
            sender = app.config["DESK_MAIL_FROM"]
        bare, transport, outbox = Rate(), Rate(), Rate()
        for _round in range(args.rounds):
            for rate, run in (
                (bare, lambda: bare_loop(sink.port, sender, messages)),
                (transport, lambda: transport_loop(sink.port, built)),
            ):
                before = sink.count
                rate.add(len(messages), run())
                if not sink.wait_for(before + len(messages), timeout=60):
                    print("FAILED: a bare loop's messages did not all arrive", file=sys.stderr)
                    return 1
            with app.app_context():
                make_due_again(ids)
                before = sink.count
                sent, seconds = outbox_batches()
            outbox.add(sent, seconds)
            if sent != len(messages) or not sink.wait_for(before + sent, timeout=60):
                print("FAILED: deliver_due did not send every message once", file=sys.stderr)
                return 1
        ratio = outbox.per_second / transport.per_second
        verdict = "PASS" if ratio >= RATIO_TARGET else "MISS"
        print(f"rates over {len(messages)} messages × {args.rounds} rounds, one SMTP connection:")
        print(f"  A bare smtplib loop (build + send):   {bare.per_second:8,.0f} messages/s")
        print(f"  B bare smtplib loop (prebuilt bytes): {transport.per_second:8,.0f} messages/s")
        print(f"  C deliver_due() batches:              {outbox.per_second:8,.0f} messages/s")
        print(f"  ratio C/B: {ratio:.2f} (target ≥ {RATIO_TARGET}) {verdict}")
        print(f"  ratio C/A: {outbox.per_second / bare.per_second:.2f} (for information)")
        with app.app_context():
            db.engine.dispose()
    return 0


def db_name(app: Any) -> str:
    with app.app_context():
        return db.engine.dialect.name


def require_empty(database_url: str) -> None:
    """Refuse a database that has tables already: the benchmark fills it and leaves its rows."""
    engine = sa.create_engine(database_url)
    try:
        tables = sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise SystemExit(
            f"{engine.url.render_as_string(hide_password=True)} has tables ({len(tables)}): "
            "give the benchmark an empty scratch database."
        )


if __name__ == "__main__":
    sys.exit(main())
