"""The administration tests' cast and helpers: staff who log in, forms posted like a browser."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import g, request_started, session
from flask.testing import FlaskClient
from flask_login import login_user

from desk.accounts.models import Role, User
from desk.accounts.operations import create_user
from desk.core.audit import AuditEvent
from desk.extensions import db
from desk.notify.models import OutboxMessage
from desk.profiles.operations import ensure_country
from tests.conftest import csrf_token_from
from tests.factories import PASSWORD

LINK = re.compile(r"http://desk\.test(/desk/(?:invitation|password/reset)/[^\s\"<]+)")


@pytest.fixture(autouse=True)
def fresh_g_per_request(app):
    """Each request starts with an empty ``flask.g``, as it does in production.

    Requests of a test share the test's app context, and so ``g``: without this, the user
    Flask-Login cached for one test client would be seen by the next (another browser).
    """

    def forget(_sender, **_extra):
        for name in ("_login_user", "csrf_token", "request_id"):
            g.pop(name, None)

    request_started.connect(forget, app)
    yield
    request_started.disconnect(forget, app)


@dataclass
class Cast:
    editor: User
    manager: User
    admin: User

    def user(self, role: str) -> User | None:
        return None if role == "anonymous" else getattr(self, role)


@pytest.fixture
def cast(app) -> Cast:
    """One account per role; they log in with :func:`log_in`, so no password is hashed."""

    def make(email: str, role: Role, countries: tuple[str, ...] = ()) -> User:
        user = create_user(
            email,
            name=email.partition("@")[0].title(),
            role=role,
            countries=[ensure_country(code) for code in countries],
        )
        # Active with no password: only log_in() opens a session for it.
        return user

    cast = Cast(
        editor=make("editor@desk.test", Role.EDITOR, ("ML",)),
        manager=make("manager@desk.test", Role.MANAGER),
        admin=make("admin@desk.test", Role.ADMIN),
    )
    db.session.commit()
    return cast


def log_in(client: FlaskClient, user: User) -> None:
    """A session for ``user`` as the login view makes one, without paying for argon2 each time.

    Made with the client's own address and user agent, which "strong" session protection checks.
    """
    with client.application.test_request_context(environ_base=client.environ_base):
        login_user(user)
        values = dict(session)
    with client.session_transaction() as browser_session:
        browser_session.update(values)


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/login")
    if page.status_code == 302:  # logged in: the login page sends staff to the desk
        page = client.get("/desk/")
    return csrf_token_from(page.get_data(as_text=True))


def post(client: FlaskClient, url: str, data: dict | None = None, **kwargs):
    """POST like a browser: with the session's CSRF token."""
    return client.post(url, data={"csrf_token": csrf_token(client), **(data or {})}, **kwargs)


def outbox(kind: str, recipient: str | None = None) -> list[OutboxMessage]:
    statement = sa.select(OutboxMessage).where(OutboxMessage.kind == kind)
    if recipient is not None:
        statement = statement.where(OutboxMessage.recipient == recipient)
    return list(db.session.scalars(statement.order_by(OutboxMessage.id)))


def link_in(message: OutboxMessage) -> str:
    """The path of the account link an email carries (the same in its text and HTML)."""
    found = LINK.search(message.text)
    assert found, f"no account link in: {message.text}"
    assert found.group(0) in message.html
    return found.group(1)


def audit_rows(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def real_login(client: FlaskClient, email: str, password: str = PASSWORD):
    """Log in through the real form (argon2 and all)."""
    page = client.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})
