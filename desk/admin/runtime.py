"""Settings an admin changes while Desk runs: SLA targets and upload limits.

A changed value is a ``Setting`` row; it overrides the configured ``DESK_*`` value (defaults,
instance/config.py, environment) in ``app.config``, which is where every reader already looks.
So nothing that reads a limit needs to know about this module: each process copies the rows
into its config, at once in the process that saved them, and in every other worker at its first
request after :data:`CHECK_SECONDS` (one small query per process per interval, not per request).
Email intake calls :func:`refresh_runtime_settings` itself, since it runs outside any request.
Removing a row restores the configured value.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from desk.accounts.models import Setting
from desk.extensions import db

log = logging.getLogger(__name__)

#: How often a process looks for values changed by another process.
CHECK_SECONDS = 2.0
MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class RuntimeSetting:
    name: str
    label: str
    #: "days", "files" or "bytes"; bytes are shown and entered in megabytes.
    unit: str
    minimum: int
    maximum: int
    help: str

    def to_display(self, value: int) -> float | int:
        return round(value / MEGABYTE, 3) if self.unit == "bytes" else value

    def from_display(self, value: float) -> int:
        return round(value * MEGABYTE) if self.unit == "bytes" else int(value)

    def describe(self, value: int) -> str:
        if self.unit == "bytes":
            shown = self.to_display(value)
            return f"{shown:g} MB"
        return f"{value} {self.unit}"


RUNTIME_SETTINGS: tuple[RuntimeSetting, ...] = (
    RuntimeSetting(
        "DESK_SLA_FIRST_RESPONSE_DAYS",
        "Target for the first response",
        "days",
        1,
        365,
        "Reports count the share of items answered within this many days.",
    ),
    RuntimeSetting(
        "DESK_SLA_RESOLUTION_DAYS",
        "Target for resolution",
        "days",
        1,
        3650,
        "Reports count the share of items closed within this many days.",
    ),
    RuntimeSetting(
        "DESK_UPLOAD_MAX_FILES",
        "Files per submission",
        "files",
        0,
        100,
        "0 takes no files at all.",
    ),
    RuntimeSetting(
        "DESK_UPLOAD_MAX_FILE_BYTES",
        "Largest file",
        "bytes",
        1024,
        1024 * MEGABYTE,
        "In megabytes (MB = 1,048,576 bytes); at most the submission limit.",
    ),
    RuntimeSetting(
        "DESK_UPLOAD_MAX_SUBMISSION_BYTES",
        "Largest submission (all files together)",
        "bytes",
        1024,
        1024 * MEGABYTE,
        "In megabytes; at least the file limit.",
    ),
)
BY_NAME = {setting.name: setting for setting in RUNTIME_SETTINGS}


@dataclass
class _ProcessState:
    """What this process applied: the configured values it replaced, and when it last looked."""

    configured: dict[str, Any] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)
    checked_at: float = float("-inf")
    lock: Lock = field(default_factory=Lock)


def _state(app: Flask) -> _ProcessState:
    return app.extensions.setdefault("desk_runtime_settings", _ProcessState())


def stored_values() -> dict[str, int]:
    """The values admins set, by name (rows for names no longer offered are ignored)."""
    rows = db.session.execute(sa.select(Setting.name, Setting.value))
    return {
        name: int(value["value"])
        for name, value in rows
        if name in BY_NAME and isinstance(value, dict) and "value" in value
    }


def configured_value(name: str) -> Any:
    """The value from defaults, instance/config.py and the environment, ignoring any override."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = _state(app)
    return state.configured.get(name, app.config[name])


def apply_values(app: Flask, values: dict[str, int]) -> None:
    """Make ``values`` this process's config; names no longer overridden get their own back."""
    state = _state(app)
    with state.lock:
        for name in state.applied - values.keys():
            app.config[name] = state.configured.pop(name)
        for name, value in values.items():
            state.configured.setdefault(name, app.config[name])
            app.config[name] = value
        state.applied = set(values)
        # The hard cap on a request body follows the submission limit (see desk/config.py).
        submission = int(app.config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"])
        app.config["MAX_CONTENT_LENGTH"] = 2 * submission + MEGABYTE
        state.checked_at = time.monotonic()


def refresh_runtime_settings(force: bool = False) -> None:
    """Copy the stored values into this process's config, if it is time to look again."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = _state(app)
    if not force and time.monotonic() - state.checked_at < CHECK_SECONDS:
        return
    try:
        values = stored_values()
    except sa.exc.SQLAlchemyError:
        # Pages that need no database (cached profiles) must not fail for this; keep the
        # values in force and look again after the interval.
        log.warning(
            "run-time settings: could not read them; keeping the current ones", exc_info=True
        )
        db.session.rollback()
        state.checked_at = time.monotonic()
        return
    if values or state.applied:
        apply_values(app, values)
    else:
        state.checked_at = time.monotonic()
