"""Desk: the editorial workflow and feedback desk of a research publisher."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, has_request_context, request
from werkzeug.middleware.proxy_fix import ProxyFix

from desk.config import flask_settings, load_settings, unknown_settings

__version__ = "0.1.0"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings, extensions, blueprints, CLI commands, error pages."""
    instance_path = Path(
        (config or {}).get("DESK_INSTANCE_PATH")
        or os.environ.get("DESK_INSTANCE_PATH")
        or PROJECT_ROOT / "instance"
    ).resolve()
    instance_path.mkdir(parents=True, exist_ok=True)
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder="static",
    )
    settings = load_settings(instance_path, config)
    app.config.update(settings)
    app.config.update(flask_settings(settings, instance_path))
    from desk.core import logging as desk_logging

    desk_logging.init_app(app)  # first: its request hooks must run before any other
    for name in unknown_settings(settings):
        app.logger.warning("%s is not a setting and is ignored (a typo?)", name)

    from desk import models  # noqa: F401  (the whole schema, for Alembic and relationships)
    from desk.core.uploads import DeskRequest

    app.request_class = DeskRequest
    _init_extensions(app)

    from desk.core import security, storage, templating

    security.init_app(app)
    storage.init_app(app)
    templating.init_app(app)

    from desk import accounts, feedback, inbox, notify, profiles, reviews
    from desk.admin import bp as admin_bp
    from desk.feedback import api as feedback_api
    from desk.reports import bp as reports_bp

    app.register_blueprint(profiles.bp)
    app.register_blueprint(feedback.bp)
    app.register_blueprint(feedback_api.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(inbox.bp)
    app.register_blueprint(reviews.bp)
    app.register_blueprint(notify.bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(admin_bp)
    from desk import health

    app.register_blueprint(health.bp)

    from desk import cli, jobs, tasks  # noqa: F401  (tasks: every job registered)

    jobs.init_app(app)
    cli.register(app)
    _trust_proxies(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind a proxy, take the client's address, scheme and host from its X-Forwarded-* headers.

    Only as many proxies as configured are believed (0, the default, believes none): a header
    a client sets itself must never change the address the rate limits count. Wrapped last, so
    every other layer sees the corrected request.
    """
    trusted = {
        part: app.config[f"DESK_PROXY_FIX_X_{part.upper()}"]
        for part in ("for", "proto", "host", "port", "prefix")
    }
    if any(trusted.values()):
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=trusted["for"],
            x_proto=trusted["proto"],
            x_host=trusted["host"],
            x_port=trusted["port"],
            x_prefix=trusted["prefix"],
        )


def _init_extensions(app: Flask) -> None:
    from desk.core import migrations
    from desk.core.locale import select_locale
    from desk.extensions import babel, csrf, db, limiter, login_manager, mail

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _tune_sqlite(db.engine)
    migrations.init_app(app)  # Flask-Migrate and Alembic load only when migrations run
    mail.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = "Please log in to see that page."
    login_manager.session_protection = "strong"

    from desk.accounts.models import User

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        # "<id>.<session version>" (User.get_id): a session from before the version moved
        # (deactivation, a new password) finds nobody, and so does any other shape.
        number, dot, version = user_id.partition(".")
        if not (dot and number.isdigit() and version.isdigit()):
            return None
        user = db.session.get(User, int(number))
        if user is None or not user.is_active or user.session_version != int(version):
            return None
        return user


def _tune_sqlite(engine: sa.Engine) -> None:
    """Foreign keys on, WAL, a busy timeout, and transactions that pysqlite leaves to us.

    pysqlite's own transaction handling breaks SAVEPOINTs (which the tests and nested operations
    use), so BEGIN is emitted by SQLAlchemy instead, as its documentation recommends.
    """

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        # A transaction that reads and then writes cannot wait for another writer in WAL mode:
        # SQLite fails it at once. So anything that may write takes the write lock up front
        # (and waits for it, up to busy_timeout); only safe-method requests read unlocked.
        if has_request_context() and request.method in ("GET", "HEAD", "OPTIONS"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
