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
from urllib.parse import urlsplit

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
        "how long a worker serves a cached public page (and the profile its feedback form is "
        "sent against) before checking the database again",
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
    "DESK_PERSONAL_DATA_RETENTION_DAYS": (
        730,
        "days after an item is closed before its sender's name, address and IP are removed "
        "(0: keep)",
    ),
    "DESK_ARCHIVE_MAX_UNCOMPRESSED_BYTES": (
        200 * 1024 * 1024,
        "largest size a ZIP (or office document) may expand to, in bytes",
    ),
    "DESK_ARCHIVE_MAX_RATIO": (100, "most a ZIP entry over 1 MB may expand, as a multiple"),
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
    "DESK_PROXY_FIX_X_FOR": (0, "proxies in front of Desk trusted for X-Forwarded-For (0: none)"),
    "DESK_PROXY_FIX_X_PROTO": (0, "proxies trusted for X-Forwarded-Proto (http or https)"),
    "DESK_PROXY_FIX_X_HOST": (0, "proxies trusted for X-Forwarded-Host"),
    "DESK_PROXY_FIX_X_PORT": (0, "proxies trusted for X-Forwarded-Port"),
    "DESK_PROXY_FIX_X_PREFIX": (0, "proxies trusted for X-Forwarded-Prefix (Desk under a path)"),
    "DESK_LOG_FORMAT": ("text", "text (one readable line per record) or json (one JSON object)"),
    "DESK_LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING or ERROR"),
    "DESK_ORPHAN_FILE_GRACE_HOURS": (
        24,
        "a stored file no attachment names is deleted once it is this old",
    ),
    "DESK_QUARANTINE_RETENTION_DAYS": (
        90,
        "items left in quarantine this long are deleted with their files (0: kept)",
    ),
}


class SettingsError(RuntimeError):
    """A setting is missing or wrong; the message names it and says what is expected.

    ``desk`` commands print it as one line and exit with status 2 instead of a traceback.
    """


#: Names a DESK_* environment variable may have without being a setting (the test harness's).
NOT_SETTINGS_PREFIXES = ("DESK_TEST_",)
ENVIRONMENTS = ("development", "testing", "production")
#: Secret keys copied from an example are as good as none.
PLACEHOLDER_SECRETS = frozenset(
    {"a long random string", "change-me", "changeme", "secret", "dev", "development"}
)
MIN_SECRET_KEY_CHARS = 32
#: Whole-number settings that must be at least 1 (the others may be 0).
POSITIVE_SETTINGS = frozenset(
    {
        "DESK_UPLOAD_MAX_FILES",
        "DESK_UPLOAD_MAX_FILE_BYTES",
        "DESK_UPLOAD_MAX_SUBMISSION_BYTES",
        "DESK_OUTBOX_BATCH_SIZE",
        "DESK_OUTBOX_MAX_ATTEMPTS",
        "DESK_MAIL_TIMEOUT_SECONDS",
        "DESK_IMAP_PORT",
        "DESK_MAIL_PORT",
        "DESK_SUBSCRIPTION_CONFIRM_HOURS",
    }
)
PORT_SETTINGS = frozenset({"DESK_IMAP_PORT", "DESK_MAIL_PORT"})
RATE_LIMIT_SETTINGS = (
    "DESK_LOGIN_RATE_LIMIT",
    "DESK_FEEDBACK_RATE_LIMIT",
    "DESK_SUBSCRIBE_RATE_LIMIT",
)
#: Seconds to wait for PostgreSQL to accept a connection before the request fails.
DATABASE_CONNECT_TIMEOUT = 10
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _parse(name: str, raw: str, default: Any) -> Any:
    """Turn an environment string into the type of the setting's default."""
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise SettingsError(f"{name} must be true or false, not {_shown(name, raw)}")
        return word in TRUE_WORDS
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, list | dict):
            return json.loads(raw)
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(type(default), "JSON")
        raise SettingsError(f"{name} must be {kind}, not {_shown(name, raw)}") from None
    return raw


def load_settings(instance_path: Path, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults, then ``instance/config.py``, then the environment, then explicit overrides.

    The result is checked (:func:`validate_settings`): a wrong setting stops the app here,
    with a message naming it, rather than as an obscure failure on the first request.
    """
    values: dict[str, Any] = {name: default for name, (default, _) in SETTINGS.items()}
    instance_file = instance_path / "config.py"
    if instance_file.exists():
        namespace: dict[str, Any] = {}
        exec(compile(instance_file.read_text(), str(instance_file), "exec"), namespace)
        values.update({k: v for k, v in namespace.items() if k.startswith("DESK_")})
    values.update(
        (name, raw)
        for name, raw in os.environ.items()
        if name.startswith("DESK_") and not name.startswith(NOT_SETTINGS_PREFIXES)
    )
    values.update(overrides or {})
    for name, (default, _) in SETTINGS.items():
        # Text where a number, flag or list is due (from the environment, or written so in
        # instance/config.py or the overrides) is read the way the environment's is.
        if isinstance(values.get(name), str) and not isinstance(default, str | None):
            values[name] = _parse(name, values[name], default)
    if not values["DESK_MAIL_BACKEND"]:
        values["DESK_MAIL_BACKEND"] = "smtp" if values["DESK_ENV"] == "production" else "file"
    validate_settings(values)
    return values


def unknown_settings(values: dict[str, Any]) -> list[str]:
    """DESK_* names that are no setting: most likely typos, which would be silently ignored."""
    return sorted(
        name
        for name in values
        if name.startswith("DESK_")
        and name not in SETTINGS
        and not name.startswith(NOT_SETTINGS_PREFIXES)
    )


def validate_settings(values: dict[str, Any]) -> None:
    """Raise :class:`SettingsError` for the first setting that cannot work.

    Types first (a number where a number is due), then the settings whose text has a grammar:
    URLs, rate limits, the time zone, the choices.
    """
    for name, (default, _) in SETTINGS.items():
        _check_type(name, values.get(name), default)
    environment = values["DESK_ENV"]
    if environment not in ENVIRONMENTS:
        raise SettingsError(
            f"DESK_ENV must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}"
        )
    if environment == "production":
        _check_production_secret(values.get("DESK_SECRET_KEY"))
    if values.get("DESK_DATABASE_URL"):
        _check_database_url(values["DESK_DATABASE_URL"])
    if values["DESK_REDIS_URL"]:
        _check_redis_url("DESK_REDIS_URL", values["DESK_REDIS_URL"])
    _check_rate_limit_storage(values["DESK_RATELIMIT_STORAGE_URL"])
    for name in RATE_LIMIT_SETTINGS:
        _check_rate_limit(name, values[name])
    _check_choice("DESK_LOG_FORMAT", values["DESK_LOG_FORMAT"], ("text", "json"))
    _check_choice("DESK_LOG_LEVEL", str(values["DESK_LOG_LEVEL"]).upper(), LOG_LEVELS)
    _check_choice("DESK_MAIL_BACKEND", values["DESK_MAIL_BACKEND"], ("smtp", "file", "console"))
    _check_timezone(values["DESK_TIMEZONE"])
    _check_site_url(values["DESK_SITE_URL"])
    if values["DESK_UPLOAD_MAX_FILE_BYTES"] > values["DESK_UPLOAD_MAX_SUBMISSION_BYTES"]:
        raise SettingsError(
            "DESK_UPLOAD_MAX_FILE_BYTES is larger than DESK_UPLOAD_MAX_SUBMISSION_BYTES: "
            "a file that size could never be sent"
        )


def _check_type(name: str, value: Any, default: Any) -> None:
    if default is None:
        if value is not None and not isinstance(value, str | os.PathLike):
            raise SettingsError(f"{name} must be text, not {type(value).__name__}")
        return
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SettingsError(f"{name} must be true or false, not {_shown(name, value)}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{name} must be a whole number, not {_shown(name, value)}")
        lowest = 1 if name in POSITIVE_SETTINGS else 0
        if value < lowest:
            raise SettingsError(f"{name} must be at least {lowest}, not {value}")
        if name in PORT_SETTINGS and value > 65535:
            raise SettingsError(f"{name} must be a port number (1 to 65535), not {value}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SettingsError(f"{name} must be a number of at least 0, not {_shown(name, value)}")
    elif isinstance(default, list):
        if not isinstance(value, list):
            raise SettingsError(f"{name} must be a JSON list, not {_shown(name, value)}")
    elif not isinstance(value, str):
        raise SettingsError(f"{name} must be text, not {type(value).__name__}")


def _check_production_secret(key: Any) -> None:
    if not key:
        raise SettingsError(
            "DESK_SECRET_KEY must be set when DESK_ENV=production (for example the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if str(key).strip().lower() in PLACEHOLDER_SECRETS or len(str(key)) < MIN_SECRET_KEY_CHARS:
        raise SettingsError(
            f"DESK_SECRET_KEY is too weak for production: use a random string of at least "
            f"{MIN_SECRET_KEY_CHARS} characters, never an example value"
        )


def _check_database_url(url: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = sa.make_url(url)
        backend = parsed.get_backend_name()
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        raise SettingsError(
            f"DESK_DATABASE_URL is not a database URL ({error}); expected e.g. "
            "postgresql+psycopg://user:password@host:5432/desk or sqlite:////path/desk.sqlite3"
        ) from None
    if backend not in {"postgresql", "sqlite"}:
        raise SettingsError(
            f"DESK_DATABASE_URL names {backend!r}; Desk runs on postgresql or sqlite"
        )
    if backend == "postgresql" and not parsed.database:
        raise SettingsError(
            f"DESK_DATABASE_URL names no database: {parsed.render_as_string()} (add /desk)"
        )


def _check_redis_url(name: str, url: str) -> None:
    from redis.connection import parse_url

    parts = urlsplit(url)
    try:
        parse_url(url)
        if parts.scheme in {"redis", "rediss"} and not parts.hostname:
            raise ValueError("no host")
        database = parts.path.strip("/")
        if parts.scheme != "unix" and database and not database.isdigit():
            raise ValueError(f"the database must be a number, not {database!r}")
    except ValueError as error:
        raise SettingsError(
            f"{name} is not a Redis URL ({error}): {_mask_url(url)}; "
            "expected e.g. redis://127.0.0.1:6379/0"
        ) from None


def _check_rate_limit_storage(url: str) -> None:
    from limits.storage import SCHEMES

    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise SettingsError(
            f"DESK_RATELIMIT_STORAGE_URL must be memory:// or a redis://… URL, not {_mask_url(url)}"
        )
    if scheme in {"redis", "rediss"}:
        _check_redis_url("DESK_RATELIMIT_STORAGE_URL", url)


def _check_rate_limit(name: str, value: str) -> None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise SettingsError(
            f"{name} is not a rate limit: {value!r}; expected e.g. '10 per hour;30 per day'"
        ) from None


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def _check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"DESK_TIMEZONE is not a time zone: {name!r}; expected e.g. UTC or Europe/Geneva"
        ) from None


def _check_site_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SettingsError(f"DESK_SITE_URL must be the site's public http(s) address, not {url!r}")


def _shown(name: str, value: Any) -> str:
    """A value fit for an error message: secrets are never echoed."""
    if any(word in name for word in ("PASSWORD", "SECRET")):
        return "the value given"
    return repr(value)


def _mask_url(url: str) -> str:
    """A URL with any password replaced, fit for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def secret_key(values: dict[str, Any], instance_path: Path) -> str:
    """The configured secret key; outside production one is generated once into instance/."""
    if values.get("DESK_SECRET_KEY"):
        return str(values["DESK_SECRET_KEY"])
    if values["DESK_ENV"] == "production":
        raise SettingsError("DESK_SECRET_KEY must be set when DESK_ENV=production.")
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _engine_options(database_url: str) -> dict[str, Any]:
    """Pool options: a pre-ping and a connect timeout for a server that may restart or vanish
    (a file needs neither); statement parameters, which are readers' words and addresses, are
    never put into an error message or a log."""
    if database_url.startswith("sqlite"):
        return {"hide_parameters": True}
    return {
        "hide_parameters": True,
        "pool_pre_ping": True,
        "connect_args": {"connect_timeout": DATABASE_CONNECT_TIMEOUT},
    }


def flask_settings(values: dict[str, Any], instance_path: Path) -> dict[str, Any]:
    """Flask's and the extensions' keys, derived from the DESK_* settings."""
    database_url = values["DESK_DATABASE_URL"] or f"sqlite:///{instance_path / 'desk.sqlite3'}"
    production = values["DESK_ENV"] == "production"
    return {
        "SECRET_KEY": secret_key(values, instance_path),
        "TESTING": values["DESK_ENV"] == "testing",
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A pre-ping guards pooled connections to a server that may restart; a file needs none.
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
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
        # A rate-limit store (Redis) that is down must not refuse readers: each process counts
        # in memory until it is back.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
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
