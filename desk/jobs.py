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
from huey.consumer import Consumer
from huey.storage import RedisStorage, SqliteStorage

from desk.extensions import huey

log = logging.getLogger(__name__)
_app: Flask | None = None


def init_app(app: Flask) -> None:
    """Point the queue at this app's storage and remember the app for the jobs' context."""
    global _app
    redis_url = app.config["DESK_REDIS_URL"]
    if redis_url:
        huey.storage = RedisStorage(name="desk", url=redis_url)
    else:
        queue_file = Path(app.instance_path) / "jobs.sqlite3"
        huey.storage = SqliteStorage(name="desk", filename=str(queue_file))
    _app = app
    app.extensions["desk_huey"] = huey
    app.cli.add_command(worker_command)


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
def worker_command(workers: int) -> None:
    """Run a job consumer (any number of these, on any number of machines, with Redis)."""
    click.echo(f"Desk worker: {workers} threads on {type(huey.storage).__name__}")
    import desk.tasks  # noqa: F401  (register every job)

    Consumer(huey, workers=workers, worker_type="thread").run()
