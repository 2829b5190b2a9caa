"""Review tasks: feedback turned into work on one section of a profile."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from desk.core.db import str_enum
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import Feedback
from desk.profiles.models import Profile, Section

if TYPE_CHECKING:
    from desk.accounts.models import User


class TaskState(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    CANCELLED = "cancelled"


#: States in which a task still holds its section (one such task per section).
OPEN_TASK_STATES = (
    TaskState.OPEN,
    TaskState.IN_PROGRESS,
    TaskState.SUBMITTED,
    TaskState.CHANGES_REQUESTED,
)

review_task_feedback = sa.Table(
    "review_task_feedback",
    db.metadata,
    sa.Column("task_id", sa.ForeignKey("review_task.id"), primary_key=True),
    sa.Column("feedback_id", sa.ForeignKey("feedback.id"), primary_key=True, index=True),
)

_OPEN_STATES_SQL = "state IN ('open', 'in_progress', 'submitted', 'changes_requested')"


class ReviewTask(db.Model):
    __tablename__ = "review_task"
    __table_args__ = (
        sa.Index(
            "uq_review_task_open_section",
            "section_id",
            unique=True,
            sqlite_where=sa.text(_OPEN_STATES_SQL),
            postgresql_where=sa.text(_OPEN_STATES_SQL),
        ),
        sa.Index(None, "assignee_id", "state"),
        sa.Index(None, "profile_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(sa.ForeignKey("profile.id"))
    #: NULL for a task on the whole profile (e.g. a general review).
    section_id: Mapped[int | None] = mapped_column(sa.ForeignKey("section.id"))
    title: Mapped[str] = mapped_column(sa.String(300))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    state: Mapped[TaskState] = mapped_column(str_enum(TaskState), default=TaskState.OPEN)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    #: Who should approve; any approver may when NULL.
    reviewer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    due_on: Mapped[date | None]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]

    profile: Mapped[Profile] = relationship()
    section: Mapped[Section | None] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    feedback: Mapped[list[Feedback]] = relationship(
        secondary=review_task_feedback, order_by=Feedback.id
    )

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_TASK_STATES
