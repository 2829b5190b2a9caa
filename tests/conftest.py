"""Fixtures shared by every test.

The database is migrated once per run (SQLite in a temporary folder by default; the database
that ``DESK_DATABASE_URL`` names when set, as CI does for PostgreSQL). Each test then runs inside
one outer transaction that is rolled back at its end, on SQLite and PostgreSQL alike; code under
test that commits only releases a SAVEPOINT.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import flask_migrate
import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from psycopg import sql

from desk import create_app
from desk.core.db import Session
from desk.extensions import db, limiter, mail
from tests.smtp import SMTPSink

pytest_plugins = ["tests.factories"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MALI_PROFILE = SHARED_DATA / "mali-cluster-munition-ban-policy-2011.txt"


def _database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("DESK_DATABASE_URL")
    if configured:
        return configured
    return f"sqlite:///{tmp_path_factory.mktemp('database') / 'desk-test.sqlite3'}"


def on_postgresql() -> bool:
    return os.environ.get("DESK_DATABASE_URL", "").startswith("postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL-only tests are deselected (not skipped) on SQLite; CI runs them on PostgreSQL."""
    if on_postgresql():
        return
    selected = [item for item in items if "postgres" not in item.keywords]
    deselected = [item for item in items if "postgres" in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def base_settings(database_url: str, instance_path: Path) -> dict[str, object]:
    return {
        "DESK_ENV": "testing",
        "DESK_SECRET_KEY": "test-secret-key",
        "DESK_DATABASE_URL": database_url,
        "DESK_INSTANCE_PATH": str(instance_path),
        "DESK_SITE_URL": "http://desk.test",
        "DESK_TIMEZONE": "UTC",
    }


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated from empty with the project's own migrations."""
    url = _database_url(tmp_path_factory)
    app = create_app(base_settings(url, tmp_path_factory.mktemp("instance")))
    with app.app_context():
        expected = os.environ.get("DESK_TEST_EXPECT_DIALECT")
        if expected and db.engine.dialect.name != expected:
            pytest.exit(f"CI expects {expected}, tests would run on {db.engine.dialect.name}", 3)
        reset_database()
        flask_migrate.upgrade()
        db.engine.dispose()
    yield url


def reset_database() -> None:
    """Drop every table (a scratch database may hold a previous run's)."""
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("DROP SCHEMA public CASCADE"))
            connection.execute(sa.text("CREATE SCHEMA public"))
            return
        names = sa.inspect(connection).get_table_names()
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for name in names:
            connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(base_settings(database_url, tmp_path / "instance"))
    with rolled_back(app):
        limiter.reset()
        yield app


@contextmanager
def rolled_back(app: Flask) -> Iterator[None]:
    """An app context whose session runs inside one outer transaction, rolled back at the end;
    what the code under test commits only releases a SAVEPOINT."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original_session = db.session
        db.session = db._make_scoped_session(
            {"class_": Session, "bind": connection, "join_transaction_mode": "create_savepoint"}
        )
        try:
            yield
        finally:
            db.session.remove()
            db.session = original_session
            outer.rollback()
            connection.close()
            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "page has no CSRF token field"
    return match.group(1)


class AuthActions:
    """Log in and out through the real login form (CSRF token included)."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, email: str, password: str = "correct horse battery staple"):
        page = self._client.get("/login")
        token = csrf_token_from(page.get_data(as_text=True))
        return self._client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )

    def logout(self):
        page = self._client.get("/desk/")
        token = csrf_token_from(page.get_data(as_text=True))
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def mali_profile_path() -> Path:
    """The Monitor's real Mali profile; CI always has ../shared/data beside the clone."""
    assert MALI_PROFILE.exists(), f"missing {MALI_PROFILE}: the shared data folder is required"
    return MALI_PROFILE


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    """A real SMTP server (aiosmtpd) on a free loopback port."""
    sink = SMTPSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def mail_to_sink(app: Flask, smtp_sink: SMTPSink) -> SMTPSink:
    """Point the app's outgoing mail at the test SMTP server."""
    app.config.update(
        DESK_MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp_sink.port,
        DESK_MAIL_TIMEOUT_SECONDS=5,
    )
    mail.init_app(app)
    return smtp_sink


def _admin_conninfo(url: sa.URL) -> str:
    """A libpq URI for psycopg from a SQLAlchemy URL (any ``+driver`` dropped)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def scratch_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database nobody else uses: a new SQLite file, or a scratch PostgreSQL database."""
    configured = os.environ.get("DESK_DATABASE_URL", "")
    if not configured.startswith("postgresql"):
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e-db') / 'desk.sqlite3'}"
        return
    server_url = sa.make_url(configured)
    name = f"desk_e2e_{secrets.token_hex(4)}"
    with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_conninfo(server_url), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
