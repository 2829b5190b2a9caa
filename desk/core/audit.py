"""The audit trail: one row per staff write, grouped by the request that made it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import g, has_app_context
from sqlalchemy.orm import Mapped, mapped_column

from desk.core.time import utcnow
from desk.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: NULL when the system acted (a job, an import from the command line).
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"), index=True)
    #: Dotted verb, e.g. "profile.imported", "user.created".
    action: Mapped[str] = mapped_column(sa.String(80), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[str] = mapped_column(sa.String(40))
    #: What changed: {"before": …, "after": …} or other facts of the action.
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    #: Groups the rows written by one request or command.
    request_id: Mapped[str] = mapped_column(sa.String(36), index=True)

    __table_args__ = (sa.Index(None, "object_type", "object_id"),)


def current_request_id() -> str:
    """The id of the request (or command) under way; one is made on first use."""
    if not has_app_context():
        return str(uuid.uuid4())
    if "request_id" not in g:
        g.request_id = str(uuid.uuid4())
    return g.request_id


def record_audit(
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: Any,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the session (the caller's transaction commits it with the change)."""
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        data=data or {},
        request_id=current_request_id(),
    )
    db.session.add(event)
    return event
