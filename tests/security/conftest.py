"""Fixtures for the hostile-input suites: a published profile, its items, staff who log in.

Feedback is made through the real intake (tests/inbox's factory) and staff sessions start
without paying for argon2 each time; the hostile part of each test is what it sends.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

import pytest
from flask import Flask
from flask.testing import FlaskClient

from desk.accounts.models import Role, User
from desk.accounts.operations import create_user
from desk.extensions import db
from desk.feedback.models import Channel, Feedback
from desk.feedback.operations import IncomingFile, Submission, receive_feedback
from desk.profiles.models import Profile
from desk.profiles.operations import ensure_country
from tests.inbox.conftest import PDF, log_in, png_bytes, post_form

__all__ = ["PDF", "log_in", "png_bytes", "post_form"]

FORM = "/profiles/mali/cluster-munition-ban-policy/feedback"
PROFILE = "/profiles/mali/cluster-munition-ban-policy"


@pytest.fixture
def unlimited(app: Flask) -> Flask:
    """Rate limits out of the way: the suites send hundreds of requests from one address."""
    app.config["DESK_FEEDBACK_RATE_LIMIT"] = "100000 per hour"
    app.config["DESK_SUBSCRIBE_RATE_LIMIT"] = "100000 per hour"
    app.config["DESK_LOGIN_RATE_LIMIT"] = "100000 per hour"
    app.config["DESK_FORM_MIN_SECONDS"] = 0
    return app


@pytest.fixture
def mali(unlimited: Flask, create_profile) -> Profile:
    """Mali's published profile, with a section to send feedback on."""
    return create_profile(
        "ML", sections=[("Commitment", "Mali signed."), ("Stockpiling", "None kept.")]
    )


@pytest.fixture
def create_feedback(mali: Profile) -> Callable[..., Feedback]:
    """Feedback on Mali's profile received through the real intake, committed."""

    def make(
        *,
        message: str = "The stockpile figure is out of date.",
        submitter_email: str = "reader@example.org",
        submitter_name: str = "",
        submitter_organisation: str = "",
        subject: str = "",
        files: tuple[tuple[str, bytes], ...] = (),
        channel: Channel = Channel.WEB,
        submitter_ip: str = "",
    ) -> Feedback:
        result = receive_feedback(
            Submission(
                channel=channel,
                profile=mali,
                section=mali.sections[0],
                message=message,
                submitter_email=submitter_email,
                submitter_name=submitter_name,
                submitter_organisation=submitter_organisation,
                subject=subject,
                files=[IncomingFile(name, BytesIO(data)) for name, data in files],
                submitter_ip=submitter_ip,
            )
        )
        db.session.commit()
        return result.feedback

    return make


@pytest.fixture
def editor(app: Flask) -> User:
    """An editor of Mali's items."""
    user = create_user(
        "editor-ml@desk.test",
        name="Mali Editor",
        role=Role.EDITOR,
        countries=[ensure_country("ML")],
    )
    db.session.commit()
    return user


@pytest.fixture
def admin(app: Flask) -> User:
    user = create_user("admin@desk.test", name="Admin", role=Role.ADMIN)
    db.session.commit()
    return user


@pytest.fixture
def as_staff(client: FlaskClient) -> Callable[[User], FlaskClient]:
    """Log the test client in as a member of staff."""

    def login(user: User) -> FlaskClient:
        log_in(client, user)
        return client

    return login
