"""Background jobs with Huey: a SQLite queue in instance/ by default, Redis at scale.

Jobs take ids, never objects, and run inside an app context of the app that configured the
queue. ``desk worker`` runs a consumer; ``desk demo`` runs one as a thread in the web process.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask
from huey.api import Task
from huey.consumer import Consumer
from huey.storage import RedisStorage, SqliteStorage
from redis import ConnectionPool

from desk.core.logging import current_job
from desk.extensions import huey

log = logging.getLogger(__name__)
_app: Flask | None = None
#: Seconds to wait for Redis to accept a connection, and for an answer. A request that queues
#: a job must not hang on a Redis that is gone; a consumer's blocking read waits 1 s at a time.
REDIS_CONNECT_TIMEOUT = 3
REDIS_SOCKET_TIMEOUT = 10


def init_app(app: Flask) -> None:
    """Point the queue at this app's storage and remember the app for the jobs' context."""
    global _app
    redis_url = app.config["DESK_REDIS_URL"]
    if redis_url:
        pool = ConnectionPool.from_url(
            redis_url,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            socket_timeout=REDIS_SOCKET_TIMEOUT,
            health_check_interval=30,
        )
        huey.storage = RedisStorage(name="desk", connection_pool=pool)
    else:
        queue_file = Path(app.instance_path) / "jobs.sqlite3"
        huey.storage = SqliteStorage(name="desk", filename=str(queue_file))
    _app = app
    app.extensions["desk_huey"] = huey
    app.cli.add_command(worker_command)
    huey.pre_execute("desk_log_context")(_enter_job)
    huey.post_execute("desk_log_context")(_leave_job)


def _enter_job(task: Task) -> None:
    """Tag the log lines of this job with its name and task id (desk.core.logging)."""
    current_job.set((task.name, task.id))


def _leave_job(task: Task, value: Any, error: BaseException | None) -> None:
    current_job.set(None)


def with_app_context(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run a job inside the configured app's context (jobs run outside any request)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _app is None:
            raise RuntimeError("the job queue is not bound to an app (call create_app first)")
        with _app.app_context():
            return function(*args, **kwargs)

    return wrapper


def start_consumer_thread(workers: int = 1) -> Consumer:
    """A consumer inside this process, for the one-command demo."""
    consumer = Consumer(huey, workers=workers, worker_type="thread", periodic=True)
    thread = threading.Thread(target=consumer.run, name="desk-jobs", daemon=True)
    # Consumer.run installs signal handlers, which only the main thread may do.
    consumer._set_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread.start()
    return consumer


@click.command("worker")
@click.option("--workers", default=2, show_default=True, help="Worker threads in this process.")
@click.option(
    "--periodic/--no-periodic",
    default=True,
    show_default=True,
    help="Also schedule the periodic jobs (outbox drain, digests, reminders, clean-up).",
)
def worker_command(workers: int, periodic: bool) -> None:
    """Run a job consumer (any number of these, on any number of machines, with Redis).

    Every periodic job is safe to schedule from several workers at once (each is idempotent or
    takes a lock); ``--no-periodic`` on all but one or two only saves the duplicate runs.
    """
    schedule = "with" if periodic else "without"
    click.echo(
        f"Desk worker: {workers} threads on {type(huey.storage).__name__}, "
        f"{schedule} the periodic jobs"
    )
    import desk.tasks  # noqa: F401  (register every job)

    Consumer(huey, workers=workers, worker_type="thread", periodic=periodic).run()
