"""Logs: one line per record, as readable text or as JSON, each tagged with its request id.

``DESK_LOG_FORMAT=json`` writes every record as one JSON object per line (what a log shipper
wants); ``text`` (the default, for the demo and a terminal) writes the same fields as words.
Each request adds one access line (logger ``desk.access``) with its method, path, status and
duration; the request id comes from a safe ``X-Request-Id`` header of the proxy, or is made
here, and is echoed in the response, so a reader's complaint, the proxy's log and Desk's log
lines can be tied together. Jobs tag their lines with the job's name and task id instead.

Personal data stays out: no addresses, names, IPs or message text. The access line gives the
route's path with secret parts (tokens in unsubscribe and confirmation links) replaced and
never the query string; the SQL statement parameters are hidden by the engine (desk/config.py);
and any email address that a message or a traceback still carries is masked on the way out.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Request, g, has_request_context, request
from flask.logging import default_handler
from werkzeug.wrappers import Response

#: An incoming request id is used only if it is short and made of these characters (a UUID,
#: nginx's ``$request_id``, a load balancer's trace id): it ends up in logs and audit rows.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,35}")
#: URL parts named like this are secrets (signed links in emails): logged as "redacted".
SECRET_ARGUMENT = re.compile(r"token|secret|signature|key|email", re.IGNORECASE)
#: In a path no route matched: segments that look like tokens or addresses.
SECRET_SEGMENT = re.compile(r"[A-Za-z0-9_.~=-]{24,}|.*@.*")
EMAIL_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
#: The extra fields a record may carry, in the order a JSON line lists them.
EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "job", "task_id")
ACCESS_LOGGER = "desk.access"
#: Libraries that log what passes through them (SQL rows, mail envelopes, request bodies) at
#: INFO or DEBUG: they speak only from WARNING up, whatever DESK_LOG_LEVEL says.
QUIET_LOGGERS = (
    "sqlalchemy",
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "mail.log",
    "alembic.runtime.plugins",
)

#: The job a worker thread is running, for the lines it logs: (task name, task id).
current_job: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "desk_current_job", default=None
)


def is_safe_request_id(value: str) -> bool:
    return SAFE_REQUEST_ID.fullmatch(value) is not None


def request_id() -> str:
    """This request's id: the proxy's if it sent a safe one, else a new UUID; made once."""
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if is_safe_request_id(incoming) else str(uuid.uuid4())
    return str(g.request_id)


def loggable_path(req: Request) -> str:
    """The path with the secret parts of its route replaced; never the query string."""
    rule, arguments = req.url_rule, req.view_args
    if rule is None or arguments is None:
        segments = req.path[:300].split("/")
        return "/".join(
            "redacted" if SECRET_SEGMENT.fullmatch(segment) else segment for segment in segments
        )
    if not any(SECRET_ARGUMENT.search(name) for name in arguments):
        return req.path
    shown = {
        name: "redacted" if SECRET_ARGUMENT.search(name) else value
        for name, value in arguments.items()
    }
    try:
        return rule.build(shown, append_unknown=False)[1]  # type: ignore[index]
    except Exception:  # a converter refusing "redacted": the route's pattern will do
        return rule.rule


def mask_personal_data(text: str) -> str:
    return EMAIL_ADDRESS.sub("[email]", text)


class ContextFilter(logging.Filter):
    """Adds the request id (or the job) to every record, so formatters can rely on it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = request_id()
        elif (job := current_job.get()) is not None:
            record.request_id = None
            record.job, record.task_id = job
        else:
            record.request_id = None
        return True


class WerkzeugAccessFilter(logging.Filter):
    """Drops the development server's own access lines: they carry the client's address and
    the query string, and Desk's access line says the same without them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "werkzeug" and " - - [" in str(record.msg))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_personal_data(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
        }
        for field in EXTRA_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = mask_personal_data(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message``, the extras as ``name=value`` after it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(tag)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.tag = getattr(record, "request_id", None) or getattr(record, "job", None) or "-"
        extras = " ".join(
            f"{field}={getattr(record, field)}"
            for field in EXTRA_FIELDS
            if field != "job" and hasattr(record, field)
        )
        line = super().format(record)
        return mask_personal_data(f"{line} {extras}" if extras else line)


class DeskLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler Desk installs on the root logger (found again and replaced by its type)."""


def configure_logging(log_format: str, level: str) -> None:
    """One handler on the root logger, writing to stderr in the chosen format.

    Calling it again (every ``create_app``) replaces Desk's handler and leaves any other one
    (a test's log capture, a host application's) in place.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, DeskLogHandler)]:
        root.removeHandler(handler)
    handler = DeskLogHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(WerkzeugAccessFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Flask's own handler on the app's logger would write every app record a second time.
    logging.getLogger("desk").removeHandler(default_handler)


def init_app(app: Flask) -> None:
    """Configure logging from the settings and log one access line per request.

    Called before the extensions are bound, so its request hooks run first: the clock starts
    and the id is assigned even for a request that a rate limit or CSRF check then refuses.
    """
    configure_logging(app.config["DESK_LOG_FORMAT"], app.config["DESK_LOG_LEVEL"])
    access = logging.getLogger(ACCESS_LOGGER)

    def log_exception(exc_info: Any) -> None:
        """Flask's own line names the raw path, which may hold a token; this one does not."""
        app.logger.error(
            "Exception on %s [%s]", loggable_path(request), request.method, exc_info=exc_info
        )

    app.log_exception = log_exception  # type: ignore[method-assign]

    @app.before_request
    def start_request() -> None:
        g.request_started = time.perf_counter()
        request_id()

    @app.after_request
    def log_access(response: Response) -> Response:
        started = g.get("request_started")
        duration = round((time.perf_counter() - started) * 1000, 1) if started else None
        response.headers.setdefault("X-Request-Id", request_id())
        path = loggable_path(request)
        access.info(
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "method": request.method,
                "path": path,
                "status": response.status_code,
                "duration_ms": duration,
            },
        )
        return response
