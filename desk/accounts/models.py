"""Staff accounts and the countries each editor works on."""

from __future__ import annotations

import contextlib
import enum
import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from desk.core.db import str_enum
from desk.core.time import utcnow
from desk.extensions import db
from desk.profiles.models import Country

_hasher = PasswordHasher()


class Role(enum.StrEnum):
    EDITOR = "editor"
    MANAGER = "manager"
    ADMIN = "admin"


class NotificationMode(enum.StrEnum):
    #: Each assignment, review request and decision by email as it happens.
    IMMEDIATE = "immediate"
    #: One email a day with all of them.
    DAILY_DIGEST = "daily_digest"


class User(UserMixin, db.Model):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased; the login name.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    #: argon2id hash; empty until the user sets a password from an invitation.
    password_hash: Mapped[str] = mapped_column(sa.String(200), default="")
    role: Mapped[Role] = mapped_column(str_enum(Role), default=Role.EDITOR)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    notification_mode: Mapped[NotificationMode] = mapped_column(
        str_enum(NotificationMode),
        default=NotificationMode.IMMEDIATE,
        server_default=NotificationMode.IMMEDIATE.value,
    )
    #: Part of every session's and remember-me cookie's user id: moving it ends them all.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")

    assignments: Mapped[list[CountryAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def set_password(self, password: str) -> None:
        """A new password; every session opened with an earlier one ends."""
        self.password_hash = _hasher.hash(password)
        self.end_sessions()

    def end_sessions(self) -> None:
        """Log this account out everywhere (sessions and remember-me cookies alike), and void
        the invitation and password links sent before (desk.admin.tokens)."""
        self.session_version = (self.session_version or 1) + 1

    def get_id(self) -> str:
        """Flask-Login's id in the session: the user's id and session version, ``"42.3"``."""
        return f"{self.id}.{self.session_version or 1}"

    def check_password(self, password: str) -> bool:
        if not self.password_hash:
            return False
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    @property
    def sees_all_countries(self) -> bool:
        return self.role in (Role.MANAGER, Role.ADMIN)

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


def dummy_password_check() -> None:
    """Spend the time of a real check, so an unknown email cannot be told from a wrong password."""
    with contextlib.suppress(VerificationError):
        _hasher.verify(_dummy_hash(), "not the password")


@functools.cache
def _dummy_hash() -> str:
    """Made on first use, not at import: hashing costs half a second and argon2's 64 MB of
    memory, which every process (each CLI command, each worker) would otherwise pay at start."""
    return _hasher.hash("dummy password for timing")


class CountryAssignment(db.Model):
    """An editor's country; the lead editor of a country may also reassign and approve."""

    __tablename__ = "country_assignment"
    __table_args__ = (sa.UniqueConstraint("user_id", "country_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"), index=True)
    country_id: Mapped[int] = mapped_column(sa.ForeignKey("country.id"), index=True)
    is_lead: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship(back_populates="assignments")
    country: Mapped[Country] = relationship()


class SavedView(db.Model):
    """A named inbox filter a user keeps (e.g. "Mali, new, with files")."""

    __tablename__ = "saved_view"
    __table_args__ = (sa.UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    #: The inbox query string parameters, as a mapping.
    query: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Setting(db.Model):
    """A setting an admin may change at run time (SLA targets, upload limits); audited."""

    __tablename__ = "setting"

    #: The DESK_* name it overrides.
    name: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
