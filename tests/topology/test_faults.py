"""Faults made to real processes while Desk works: each test fails if data is lost or doubled.

* PostgreSQL is restarted while readers send feedback: a request either succeeds or fails
  with a clean 5xx page, never hangs or drops the connection; every accepted reference is
  stored with its files; no item lacks a file; after the nightly clean-up no file lacks an
  item; and the site takes submissions again once the database is back.
* Redis is stopped while readers send feedback: every submission is still accepted, and once
  Redis is back each acknowledgement arrives, exactly once.
* A ``desk worker`` is killed (SIGKILL) in the middle of delivering a batch of emails: after a
  new worker starts, every message reaches the SMTP server, and none twice.

These servers are the tests' own (see conftest.py): the machine's PostgreSQL and Redis are
never stopped.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

import pytest

from bench.load import Recorder, Submission, send_feedback
from desk.extensions import db
from desk.feedback.tasks import clean_up_intake
from desk.notify.delivery import LEASE
from desk.notify.outbox import add_messages, new_message
from tests.topology.checks import (
    claimed_but_unsent,
    half_written_items,
    lost_submissions,
    orphan_files,
    outbox_states,
    stored_files,
)
from tests.topology.client import user_factory, wait_for_acknowledgements
from tests.topology.conftest import Running
from tests.topology.seed import app_for
from tests.topology.services import (
    PrivatePostgres,
    PrivateRedis,
    TopologyError,
    process_owning_connection,
    wait_until,
)

pytestmark = pytest.mark.topology

#: The private topology's DESK_FORM_MIN_SECONDS is 1: a sender waits a little longer.
FORM_SECONDS = 1.3
CLEAN_FAILURE = re.compile(r": HTTP 5\d\d$")


@dataclass
class Attempt:
    began: float
    ended: float
    accepted: Submission | None


@dataclass
class Stream:
    """Submissions sent by several readers at once, each timed."""

    recorder: Recorder = field(default_factory=Recorder)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def accepted(self) -> list[Submission]:
        return [a.accepted for a in self.attempts if a.accepted is not None]

    def unclean_failures(self) -> dict[str, int]:
        """Failures other than a server's error page: timeouts, dropped connections, 4xx."""
        return {k: n for k, n in self.recorder.failures.items() if not CLEAN_FAILURE.search(k)}


async def _send_until(
    running: Running, stream: Stream, senders: int, seconds: float, tag: str
) -> None:
    profile = running.seeded.profile_paths[0]
    deadline = time.monotonic() + seconds
    async with user_factory(running.topology.base_url, stream.recorder) as new_user:

        async def sender(number: int) -> None:
            user, sent = new_user(), 0
            while time.monotonic() < deadline:
                sent += 1
                label = f"{tag}-{number}-{sent}"
                began = time.monotonic()
                accepted = await send_feedback(
                    user,
                    profile,
                    label,
                    f"reader.{label}@example.org",
                    FORM_SECONDS,
                    files=1 + sent % 2,
                )
                stream.attempts.append(Attempt(began, time.monotonic(), accepted))
                if accepted is None:
                    await asyncio.sleep(0.3)

        await asyncio.gather(*(sender(n) for n in range(senders)))


def send_for(running: Running, seconds: float, tag: str, senders: int = 4) -> Stream:
    stream = Stream()
    asyncio.run(_send_until(running, stream, senders, seconds, tag))
    return stream


# --------------------------------------------------------------------------------------------
# PostgreSQL restarted


async def _stream_through_restart(
    running: Running, postgres: PrivatePostgres, stream: Stream
) -> tuple[float, float]:
    """Six readers send for 30 s; PostgreSQL goes down at 8 s for 4 s (plus its start-up)."""
    window: list[float] = []

    async def restart() -> None:
        await asyncio.sleep(8)
        window.append(time.monotonic())
        await asyncio.to_thread(postgres.stop, "fast")
        await asyncio.sleep(4)
        await asyncio.to_thread(postgres.start)
        window.append(time.monotonic())

    await asyncio.gather(restart(), _send_until(running, stream, 6, 30, "pg"))
    return window[0], window[1]


def test_postgresql_restarted_during_submissions(
    private_topology: Running, private_postgres: PrivatePostgres
) -> None:
    running = private_topology
    topology = running.topology
    stream = Stream()
    down, up = asyncio.run(_stream_through_restart(running, private_postgres, stream))

    print(
        f"\n=== PostgreSQL restart: {len(stream.attempts)} submissions tried, "
        f"{len(stream.accepted)} accepted; failures {dict(stream.recorder.failures)}"
    )
    assert stream.unclean_failures() == {}, topology.logs_text()
    assert any(a.began < up and a.ended > down for a in stream.attempts), "nothing hit the restart"
    assert any(a.accepted and a.began > up for a in stream.attempts), "no recovery after restart"

    items = stored_files(running.database_url)
    assert lost_submissions(stream.accepted, items, topology.storage_root) == []
    assert half_written_items(items, topology.storage_root) == []

    # Files written by submissions whose commit failed are orphans until the nightly clean-up,
    # run here by a worker with no grace period (the topology sets it to 0 hours).
    orphans_before = orphan_files(items, topology.storage_root)
    with app_for(topology.settings).app_context():
        clean_up_intake()
    wait_until(
        lambda: not orphan_files(stored_files(running.database_url), topology.storage_root),
        60,
        "the clean-up job to remove orphaned files",
    )
    print(f"orphaned files before the clean-up job: {len(orphans_before)}, after: 0")
    items_after = stored_files(running.database_url)
    assert items_after.keys() == items.keys()
    assert half_written_items(items_after, topology.storage_root) == []

    copies = wait_for_acknowledgements(
        running.sink, {s.reference: s.email for s in stream.accepted}, timeout=150
    )
    assert sorted(set(copies.values())) == [1], copies


# --------------------------------------------------------------------------------------------
# Redis down


def test_redis_down_intake_still_accepts_and_mail_catches_up(
    private_topology: Running, private_redis: PrivateRedis
) -> None:
    running = private_topology
    before = send_for(running, 4, "redis-up", senders=2)
    private_redis.stop()
    during = send_for(running, 12, "redis-down")
    private_redis.start()

    print(
        f"\n=== Redis down: {len(during.attempts)} submissions tried while down, "
        f"{len(during.accepted)} accepted; failures {dict(during.recorder.failures)}"
    )
    assert before.recorder.failures == {} and before.accepted
    assert during.recorder.failures == {}, running.topology.logs_text()
    assert during.accepted and len(during.accepted) == len(during.attempts)

    accepted = before.accepted + during.accepted
    items = stored_files(running.database_url)
    assert lost_submissions(accepted, items, running.topology.storage_root) == []

    # After Redis returns (empty: it keeps nothing on disk), the per-minute job catches up.
    copies = wait_for_acknowledgements(
        running.sink, {s.reference: s.email for s in accepted}, timeout=180
    )
    assert sorted(set(copies.values())) == [1], copies


# --------------------------------------------------------------------------------------------
# A worker killed mid-batch

MESSAGES = 400


def _queue_messages(running: Running) -> set[tuple[str, str]]:
    """Write MESSAGES emails to the outbox through Desk's own code; their (to, Message-ID)."""
    with app_for(running.topology.settings).app_context():
        messages = [
            new_message(
                "topology.test",
                f"reader{n}@example.org",
                subject=f"Message {n}",
                text=f"Message {n} of {MESSAGES}.",
                html="",
                dedupe_key=f"topology.kill:{n}",
            )
            for n in range(MESSAGES)
        ]
        add_messages(messages)
        db.session.commit()  # after the commit a delivery job is queued for the workers
        expected = {(m.recipient, m.message_id) for m in messages}
        db.session.remove()
        db.engine.dispose()
    return expected


def test_worker_killed_mid_batch_loses_and_repeats_no_email(private_topology: Running) -> None:
    running = private_topology
    topology = running.topology
    # The next MAIL FROM after 40 messages is held: its worker is inside a batch, with an SMTP
    # transaction open, when it is killed.
    hold = running.sink.hold_after(40)
    expected = _queue_messages(running)
    assert hold.held.wait(120), "no delivery reached the SMTP server"
    assert hold.peer is not None
    workers = {worker.pid: worker for worker in topology.workers}
    owner = process_owning_connection(hold.peer[1], list(workers))
    if owner is None:
        hold.release()
        raise TopologyError(f"no desk worker holds the SMTP connection from port {hold.peer[1]}")
    workers[owner].kill()
    topology.workers.remove(workers[owner])
    hold.release()
    delivered_at_kill = len(running.sink.received)
    states_at_kill = outbox_states(running.database_url)
    claimed_unsent = claimed_but_unsent(running.database_url)
    topology.start_worker()

    # The killed worker's unsent messages stay leased to it for LEASE; then any worker may
    # claim them again (the per-minute job looks every minute).
    deadline = LEASE.total_seconds() + 180
    wait_until(lambda: expected <= set(running.sink.copies()), deadline, "every message", every=2)
    time.sleep(5)
    copies = running.sink.copies()
    print(
        f"\n=== worker killed after {delivered_at_kill} of {MESSAGES} messages "
        f"(outbox then: {states_at_kill}, {claimed_unsent} claimed but unsent); "
        f"delivered {sum(copies.values())}, distinct {len(copies)}"
    )
    # The held message at least was claimed by the killed worker and never sent.
    assert claimed_unsent >= 1
    assert {key: n for key, n in copies.items() if n > 1} == {}
    assert set(copies) == expected
    assert outbox_states(running.database_url) == {"sent": MESSAGES}
