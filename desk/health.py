"""Health and readiness endpoints for load balancers, orchestrators and monitoring.

``GET /healthz`` (liveness and dependencies): can this process reach the database (``SELECT 1``),
the job queue (the Huey storage: the SQLite queue file or Redis) and the file storage (a
folder it can write to, or an S3 bucket that answers)? ``GET /readyz`` (readiness): is the
database reachable and migrated to the revision this code expects? Send traffic to a process
only when it is ready; restart it, or page someone, when it is not healthy.

Both answer 200 when every check passes and 503 otherwise, with a JSON body giving each check's
result and time in milliseconds. They need no login, set no cookie, are never cached, and are
left out of rate limits and CSRF. Errors are named by their type only: the detail (host names,
paths) goes to the log, not to whoever asks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from desk.core.migrations import script_heads
from desk.core.storage import get_storage
from desk.extensions import csrf, db, huey, limiter

bp = Blueprint("health", __name__)
csrf.exempt(bp)
limiter.exempt(bp)
log = logging.getLogger(__name__)
#: Where Alembic records the revision a database is at.
ALEMBIC_TABLE = "alembic_version"

#: A check returns details to show (may be empty) or raises what went wrong.
Check = Callable[[], dict[str, Any]]


@bp.get("/healthz")
def healthz() -> Response:
    return _answer({"database": check_database, "queue": check_queue, "storage": check_storage})


@bp.get("/readyz")
def readyz() -> Response:
    return _answer({"database": check_database, "migrations": check_migrations})


def check_database() -> dict[str, Any]:
    """One round trip on a connection of its own (never the request's session)."""
    with db.engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    return {}


def check_queue() -> dict[str, Any]:
    """The queue's length, read from its storage: a real round trip to Redis or the file."""
    return {"pending": huey.storage.queue_size()}


def check_storage() -> dict[str, Any]:
    get_storage().check()
    return {}


def check_migrations() -> dict[str, Any]:
    """The database's Alembic revision must be the head of the migrations this code ships."""
    with db.engine.connect() as connection:
        current = _database_revisions(connection)
    expected = _script_heads()
    if current != expected:
        raise MigrationsBehind(current, expected)
    return {"revision": current}


def _database_revisions(connection: sa.Connection) -> list[str]:
    """The revision(s) Alembic stamped, read directly: Alembic's own reader logs at every call."""
    if not sa.inspect(connection).has_table(ALEMBIC_TABLE):
        return []
    return sorted(connection.scalars(sa.text(f"SELECT version_num FROM {ALEMBIC_TABLE}")))


class MigrationsBehind(RuntimeError):
    def __init__(self, current: list[str], expected: list[str]) -> None:
        super().__init__(f"database at {current or 'no revision'}, code expects {expected}")
        self.details = {"revision": current, "expected": expected}


def _script_heads() -> list[str]:
    """The head revision(s) of the migrations folder, read once per process."""
    cached = current_app.extensions.get("desk_migration_heads")
    if cached is None:
        cached = script_heads()
        current_app.extensions["desk_migration_heads"] = cached
    return cached


def _answer(checks: dict[str, Check]) -> Response:
    results = {name: _run(name, check) for name, check in checks.items()}
    healthy = all(result["ok"] for result in results.values())
    response = jsonify({"status": "ok" if healthy else "fail", "checks": results})
    response.status_code = 200 if healthy else 503
    response.cache_control.no_store = True
    return response


def _run(name: str, check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result: dict[str, Any] = {"ok": True, **check()}
    except Exception as error:
        log.warning("health: %s check failed: %s", name, error)
        result = {"ok": False, "error": type(error).__name__, **getattr(error, "details", {})}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result
