"""Settings: defaults here, then ``instance/config.py``, then ``DESK_*`` environment variables.

Every setting has one name, the ``DESK_*`` name, used in ``instance/config.py``, in the
environment and in ``app.config`` alike. Flask's and the extensions' own keys are derived from
them in :func:`apply_settings`, so nobody has to learn two vocabularies.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

#: The settings a deployment may change, with their defaults and a one-line meaning.
#: The README's settings table is generated from this mapping (``desk settings``).
SETTINGS: dict[str, tuple[Any, str]] = {
    "DESK_ENV": ("development", "development, testing or production (production: secure cookies)"),
    "DESK_INSTANCE_PATH": (None, "folder for runtime state (database, files, secret key)"),
    "DESK_SECRET_KEY": (None, "signs sessions and tokens; generated into instance/ if unset"),
    "DESK_DATABASE_URL": (None, "SQLAlchemy URL; default sqlite file instance/desk.sqlite3"),
    "DESK_TIMEZONE": ("UTC", "the desk's time zone: Last Updated dates are stamped in it"),
    "DESK_SITE_NAME": ("Desk", "name shown in the public header and emails"),
    "DESK_SITE_URL": ("http://127.0.0.1:5000", "public base URL used in emails"),
    "DESK_SITE_LOGO_URL": ("", "logo image URL for the public header (empty: none)"),
    "DESK_SITE_HOME_URL": ("/profiles/", "where the site name and logo link to"),
    "DESK_SITE_NAV": (
        [["Country profiles", "/profiles/"]],
        "header links as a JSON list of [label, url] pairs",
    ),
    "DESK_SITE_FOOTER": ("", "footer text under every public page"),
    "DESK_PAGE_CACHE_SECONDS": (
        2,
        "how long a worker serves a cached public page before checking the database again",
    ),
    "DESK_LOGIN_RATE_LIMIT": ("5 per minute", "failed logins allowed per address"),
    "DESK_RATELIMIT_STORAGE_URL": ("memory://", "Flask-Limiter storage (redis://… at scale)"),
    "DESK_STORAGE_URL": (
        "",
        "file storage: empty = instance/files, a folder, or s3://bucket/prefix",
    ),
    "DESK_UPLOAD_MAX_FILES": (10, "files per feedback submission"),
    "DESK_UPLOAD_MAX_FILE_BYTES": (20 * 1024 * 1024, "largest accepted file, in bytes"),
    "DESK_UPLOAD_MAX_SUBMISSION_BYTES": (50 * 1024 * 1024, "largest submission, in bytes"),
    "DESK_UPLOAD_EXTENSIONS": (
        [
            "pdf",
            "png",
            "jpg",
            "jpeg",
            "gif",
            "webp",
            "tif",
            "tiff",
            "txt",
            "csv",
            "rtf",
            "doc",
            "docx",
            "xls",
            "xlsx",
            "ppt",
            "pptx",
            "odt",
            "ods",
            "zip",
        ],
        "accepted file extensions (the sniffed content must agree)",
    ),
    "DESK_DUPLICATE_WINDOW_MINUTES": (10, "a repeat submission within this window is one item"),
    "DESK_SPAM_THRESHOLD": (1.0, "spam score at which an item is quarantined"),
    "DESK_FORM_MIN_SECONDS": (3, "a form sent sooner after it was drawn is suspect"),
    "DESK_FEEDBACK_RATE_LIMIT": (
        "10 per hour;30 per day",
        "feedback submissions allowed per address and per email",
    ),
    "DESK_CORS_ORIGINS": ([], "origins allowed to post to the intake API, a JSON list"),
    "DESK_INTAKE_ADDRESS": ("feedback@localhost", "the address readers send attachments to"),
    "DESK_IMAP_HOST": ("", "IMAP server the poller reads (empty: no polling)"),
    "DESK_IMAP_PORT": (993, "IMAP port"),
    "DESK_IMAP_USE_SSL": (True, "IMAP over TLS"),
    "DESK_IMAP_USER": ("", "IMAP login"),
    "DESK_IMAP_PASSWORD": ("", "IMAP password"),
    "DESK_IMAP_FOLDER": ("INBOX", "folder whose unseen messages become feedback"),
    "DESK_REDIS_URL": ("", "Redis for the job queue (empty: a SQLite queue in instance/)"),
    "DESK_OUTBOX_BATCH_SIZE": (100, "emails sent per SMTP connection"),
    "DESK_OUTBOX_MAX_ATTEMPTS": (8, "delivery attempts before a message is marked dead"),
    "DESK_OUTBOX_RETRY_SECONDS": (60, "first retry delay; doubles with each attempt"),
    "DESK_MAIL_BACKEND": (
        "",
        "smtp, file (instance/mail/*.eml) or console; default: smtp in production, file otherwise",
    ),
    "DESK_MAIL_TIMEOUT_SECONDS": (30, "SMTP connect and read timeout"),
    "DESK_MAIL_USE_SSL": (False, "SMTP over TLS from the start (port 465)"),
    "DESK_MAIL_CA_FILE": ("", "extra CA certificate file to trust for the SMTP server"),
    "DESK_FOUR_EYES": (True, "a revision is approved by someone other than its author"),
    "DESK_REVIEW_REMINDER_DAYS": (2, "remind approvers of revisions waiting longer than this"),
    "DESK_SUBSCRIPTION_CONFIRM_HOURS": (72, "how long a subscription confirmation link works"),
    "DESK_SUBSCRIBE_RATE_LIMIT": ("10 per hour;30 per day", "subscription requests per address"),
    "DESK_SLA_FIRST_RESPONSE_DAYS": (3, "target for time to first response, in days"),
    "DESK_SLA_RESOLUTION_DAYS": (30, "target for time to resolution, in days"),
    "DESK_MAIL_SERVER": ("localhost", "SMTP host for outgoing mail"),
    "DESK_MAIL_PORT": (25, "SMTP port"),
    "DESK_MAIL_USE_TLS": (False, "STARTTLS on the SMTP connection"),
    "DESK_MAIL_USERNAME": ("", "SMTP user (empty: no login)"),
    "DESK_MAIL_PASSWORD": ("", "SMTP password"),
    "DESK_MAIL_FROM": ("desk@localhost", "From address of every email"),
}


def _parse(raw: str, default: Any) -> Any:
    """Turn an environment string into the type of the setting's default."""
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, list | dict):
        return json.loads(raw)
    return raw


def load_settings(instance_path: Path, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults, then ``instance/config.py``, then the environment, then explicit overrides."""
    values: dict[str, Any] = {name: default for name, (default, _) in SETTINGS.items()}
    instance_file = instance_path / "config.py"
    if instance_file.exists():
        namespace: dict[str, Any] = {}
        exec(compile(instance_file.read_text(), str(instance_file), "exec"), namespace)
        values.update({k: v for k, v in namespace.items() if k.startswith("DESK_")})
    for name, raw in os.environ.items():
        if name.startswith("DESK_"):
            values[name] = _parse(raw, SETTINGS.get(name, ("",))[0])
    values.update(overrides or {})
    if not values["DESK_MAIL_BACKEND"]:
        values["DESK_MAIL_BACKEND"] = "smtp" if values["DESK_ENV"] == "production" else "file"
    return values


def secret_key(values: dict[str, Any], instance_path: Path) -> str:
    """The configured secret key; outside production one is generated once into instance/."""
    if values.get("DESK_SECRET_KEY"):
        return str(values["DESK_SECRET_KEY"])
    if values["DESK_ENV"] == "production":
        raise RuntimeError("DESK_SECRET_KEY must be set when DESK_ENV=production.")
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def flask_settings(values: dict[str, Any], instance_path: Path) -> dict[str, Any]:
    """Flask's and the extensions' keys, derived from the DESK_* settings."""
    database_url = values["DESK_DATABASE_URL"] or f"sqlite:///{instance_path / 'desk.sqlite3'}"
    production = values["DESK_ENV"] == "production"
    return {
        "SECRET_KEY": secret_key(values, instance_path),
        "TESTING": values["DESK_ENV"] == "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A pre-ping guards pooled connections to a server that may restart; a file needs none.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": not database_url.startswith("sqlite")},
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "RATELIMIT_STORAGE_URI": values["DESK_RATELIMIT_STORAGE_URL"],
        # The hard cap on a request; below it oversize files are measured, not refused, so the
        # reader's message survives (desk/core/uploads.py).
        "MAX_CONTENT_LENGTH": 2 * values["DESK_UPLOAD_MAX_SUBMISSION_BYTES"] + 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 4 * 1024 * 1024,
        "RATELIMIT_HEADERS_ENABLED": True,
        "MAIL_SERVER": values["DESK_MAIL_SERVER"],
        "MAIL_PORT": values["DESK_MAIL_PORT"],
        "MAIL_USE_TLS": values["DESK_MAIL_USE_TLS"],
        "MAIL_USE_SSL": values["DESK_MAIL_USE_SSL"],
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_USERNAME": values["DESK_MAIL_USERNAME"] or None,
        "MAIL_PASSWORD": values["DESK_MAIL_PASSWORD"] or None,
        "MAIL_DEFAULT_SENDER": values["DESK_MAIL_FROM"],
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": values["DESK_TIMEZONE"],
    }
