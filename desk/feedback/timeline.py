"""The first events of a new item, written in one statement once the item has its id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import EventKind, FeedbackEvent

_INSERT = FeedbackEvent.__table__.insert()


@dataclass
class NewTimeline:
    """Events of an item being received (received, routed, assigned, quarantined).

    Intake writes them with one plain INSERT after the item's flush instead of as ORM objects:
    every submission makes two to four, and the unit of work's bookkeeping for them cost more
    than the rest of the item. Nothing reads them before the item is committed; an item's
    ``events`` loads them from the database like any other item's.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: EventKind, data: dict[str, Any], at: datetime | None = None) -> None:
        self.rows.append({"kind": kind, "data": data, "at": at or utcnow(), "actor_id": None})

    def write(self, feedback_id: int) -> None:
        """Insert the events of the (flushed) item; the session's transaction, not committed."""
        if self.rows:
            rows = [{**row, "feedback_id": feedback_id} for row in self.rows]
            db.session.connection().execute(_INSERT, rows)
            self.rows.clear()
