"""Factories for the inbox tests: feedback made through the real intake, staff who log in."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from io import BytesIO

import pytest
from flask import session
from flask.testing import FlaskClient
from flask_login import login_user

from desk.accounts.models import Role, User
from desk.accounts.operations import create_user
from desk.extensions import db
from desk.feedback.models import Channel, Feedback
from desk.feedback.operations import IncomingFile, Submission, receive_feedback
from desk.profiles.models import Profile
from desk.profiles.operations import ensure_country
from tests.conftest import csrf_token_from

#: A real one-page PDF (200 × 100 points): enough for the intake's sniffing and the previews.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def png_bytes() -> bytes:
    """A real 1×1 PNG (the intake sniffs files, so a fake would be refused)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def create_feedback(create_profile) -> Callable[..., Feedback]:
    """Feedback received through ``receive_feedback`` on a country's profile (or unrouted)."""
    profiles: dict[str, Profile] = {}
    serial = iter(range(1, 10_000))

    def make(
        country: str | None = "ML",
        *,
        message: str | None = None,
        submitter_email: str = "reader@example.org",
        submitter_name: str = "",
        subject: str = "",
        files: tuple[tuple[str, bytes], ...] = (),
        received_at=None,
        spam_signs: tuple[str, ...] = (),
        channel: Channel = Channel.WEB,
    ) -> Feedback:
        profile = None
        if country is not None:
            if country not in profiles:
                profiles[country] = create_profile(
                    country, sections=[("Overview", "The overview."), ("Stockpiling", "None.")]
                )
            profile = profiles[country]
        result = receive_feedback(
            Submission(
                channel=channel,
                profile=profile,
                section=profile.sections[0] if profile else None,
                message=message or f"Feedback number {next(serial)} on {country}.",
                submitter_email=submitter_email,
                submitter_name=submitter_name,
                subject=subject,
                files=[IncomingFile(name, BytesIO(data)) for name, data in files],
                received_at=received_at,
                spam_signs=list(spam_signs),
            )
        )
        db.session.commit()
        return result.feedback

    return make


def log_in(client: FlaskClient, user: User) -> None:
    """Start a session for ``user`` as the login view does, without paying for argon2 each time.

    (tests/accounts and the browser tests go through the real login form.)
    """
    with client.application.test_request_context():
        login_user(user)
        values = dict(session)
    with client.session_transaction() as browser_session:
        browser_session.update(values)


class Staff:
    """The cast of the access tests: one account per role (the lead editor leads Mali)."""

    ROLES = ("anonymous", "editor", "other", "lead", "manager", "admin")

    def __init__(self) -> None:
        def make(email: str, role: Role, countries=(), leads=()) -> User:
            return create_user(
                email,
                name=email.partition("@")[0].replace("-", " ").title(),
                role=role,
                countries=[ensure_country(code) for code in countries],
                lead_countries=[ensure_country(code) for code in leads],
            )

        self.editor = make("editor-ml@desk.test", Role.EDITOR, countries=("ML",))
        self.other = make("editor-fr@desk.test", Role.EDITOR, countries=("FR",))
        self.lead = make("lead-ml@desk.test", Role.EDITOR, leads=("ML",))
        self.manager = make("manager@desk.test", Role.MANAGER)
        self.admin = make("admin@desk.test", Role.ADMIN)
        db.session.commit()

    def user(self, role: str) -> User | None:
        return None if role == "anonymous" else getattr(self, role)


@pytest.fixture
def staff(app) -> Staff:
    return Staff()


@pytest.fixture
def login(client: FlaskClient, staff: Staff) -> Callable[[str], User | None]:
    """Log the test client in as one of the cast ("anonymous": stay logged out)."""

    def as_role(role: str) -> User | None:
        user = staff.user(role)
        if user is not None:
            log_in(client, user)
        return user

    return as_role


def csrf_token(client: FlaskClient) -> str:
    """The session's CSRF token, as any page's form carries it (the login page for visitors)."""
    page = client.get("/login")
    if page.status_code == 302:  # logged in: the login page sends staff to the desk
        page = client.get("/desk/")
    return csrf_token_from(page.get_data(as_text=True))


def post_form(client: FlaskClient, url: str, data: dict | None = None):
    """POST like a browser: with the CSRF token of the session."""
    return client.post(url, data={"csrf_token": csrf_token(client), **(data or {})})
