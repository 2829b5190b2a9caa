"""Fixtures that run Desk as it runs at scale: separate processes talking over loopback.

``shared_topology`` (per module) uses the machine's PostgreSQL server (a scratch database,
dropped afterwards) and Redis (databases 9 and 10, flushed before and after, under a lock file
so two runs on the machine never share them). ``private_topology`` (per test) brings its own
PostgreSQL cluster and redis-server, which the fault tests stop and start; the machine's
servers are never touched.

Both run gunicorn with 2 workers and 2 ``desk worker`` consumers, configured only through
``DESK_*`` environment variables, after ``desk db upgrade``. The tests are marked ``topology``
and, like the ``postgres`` ones, deselected unless DESK_DATABASE_URL names PostgreSQL.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from tests.conftest import on_postgresql
from tests.topology.seed import Seeded, seed
from tests.topology.services import (
    MailSink,
    PrivatePostgres,
    PrivateRedis,
    Topology,
    TopologyConfig,
    create_database,
    drop_database,
)

SHARED_QUEUE_DATABASE = 9
SHARED_LIMITS_DATABASE = 10
SHARED_LOCK = Path("/tmp/desk-topology-shared-redis.lock")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Topology tests need PostgreSQL: deselected (not skipped) on SQLite, as CI's step 1 runs."""
    if on_postgresql():
        return
    deselected = [item for item in items if "topology" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if "topology" not in item.keywords]


@dataclass
class Running:
    """A started topology with what a test needs to drive and inspect it."""

    topology: Topology
    sink: MailSink
    seeded: Seeded

    @property
    def database_url(self) -> str:
        return self.topology.config.database_url


def _server_url() -> str:
    """The machine's PostgreSQL server, as DESK_DATABASE_URL names it (libpq form)."""
    url = sa.make_url(os.environ["DESK_DATABASE_URL"]).set(drivername="postgresql")
    return url.set(database="postgres").render_as_string(hide_password=False)


def _redis_base() -> str:
    configured = os.environ.get("DESK_REDIS_URL") or "redis://127.0.0.1:6379/0"
    return configured.rsplit("/", 1)[0]


def _start(config: TopologyConfig, sink: MailSink) -> Iterator[Running]:
    topology = Topology(config)
    topology.migrate()
    seeded = seed(topology.settings)
    try:
        topology.start()
        yield Running(topology, sink, seeded)
    finally:
        topology.stop()


@pytest.fixture(scope="module")
def module_sink() -> Iterator[MailSink]:
    sink = MailSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="module")
def shared_topology(
    tmp_path_factory: pytest.TempPathFactory, module_sink: MailSink
) -> Iterator[Running]:
    """The topology on the machine's PostgreSQL and Redis."""
    server = _server_url()
    name = f"desk_topology_{secrets.token_hex(4)}"
    queue = f"{_redis_base()}/{SHARED_QUEUE_DATABASE}"
    limits = f"{_redis_base()}/{SHARED_LIMITS_DATABASE}"
    with SHARED_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for url in (queue, limits):
            redis.Redis.from_url(url).flushdb()
        create_database(server, name)
        try:
            config = TopologyConfig(
                database_url=sa.make_url(server)
                .set(drivername="postgresql+psycopg", database=name)
                .render_as_string(hide_password=False),
                queue_url=queue,
                limits_url=limits,
                root=tmp_path_factory.mktemp("topology"),
                mail_port=module_sink.port,
            )
            yield from _start(config, module_sink)
        finally:
            drop_database(server, name)
            for url in (queue, limits):
                redis.Redis.from_url(url).flushdb()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        create_database(server.server_url, "desk")
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sink() -> Iterator[MailSink]:
    mail = MailSink()
    mail.start()
    try:
        yield mail
    finally:
        mail.stop()


@pytest.fixture
def private_topology(
    tmp_path: Path, private_postgres: PrivatePostgres, private_redis: PrivateRedis, sink: MailSink
) -> Iterator[Running]:
    """The topology on a PostgreSQL and a Redis of this test's own, which it may stop."""
    config = TopologyConfig(
        database_url=private_postgres.database_url("desk"),
        queue_url=private_redis.url(0),
        limits_url=private_redis.url(1),
        root=tmp_path / "topology",
        mail_port=sink.port,
        # A shorter "too fast" bar lets the fault tests send more in their window; the orphan
        # sweep's grace is 0 so that a test can run the clean-up job at once.
        settings={"DESK_FORM_MIN_SECONDS": "1", "DESK_ORPHAN_FILE_GRACE_HOURS": "0"},
    )
    yield from _start(config, sink)
