"""Fixtures for review tasks: a footnoted profile, feedback on it, staff, and form posts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient

from desk.accounts import models as account_models
from desk.accounts.models import Role, User
from desk.extensions import db
from desk.feedback.models import Channel, Feedback
from desk.feedback.operations import Submission, receive_feedback
from desk.profiles.models import Profile, Section, SectionKind, SectionRevision, UpdateType
from desk.reviews import operations
from desk.reviews.models import ReviewTask
from tests.conftest import csrf_token_from

#: A small profile in the Monitor's shape: a summary field, footnotes in two sections.
SECTIONS = [
    (
        "Commitment to the Convention",
        "Mali signed on 3 December 2008.[^1] It ratified on 30 June 2010.[^2]\n\n"
        "[^1]: Note on the signature.\n[^2]: Note on the ratification.",
    ),
    ("Convention status", "State Party", SectionKind.FIELD),
    (
        "Use, production, transfer, and stockpiling",
        "Mali has no cluster munitions.[^7] It never used them.[^8]\n\n"
        "[^7]: Statement of Mali, 2010.\n[^8]: Email from a researcher, 2010.",
    ),
    ("Contact", "Write to the ministry.[^c]\n\n[^c]: Ministry of Foreign Affairs."),
]


@pytest.fixture(autouse=True)
def quick_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Staff accounts here hash with argon2's cheapest settings: these tests make many users
    and logins, and the strength of a hash is not what they check."""
    monkeypatch.setattr(
        account_models, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def profile(create_profile) -> Profile:
    return create_profile("ML", sections=SECTIONS)


@pytest.fixture
def stockpiling(profile: Profile) -> Section:
    return next(s for s in profile.sections if s.heading.startswith("Use, production"))


@pytest.fixture
def create_feedback(app) -> Callable[..., Feedback]:
    """An item received on the web form, on a profile (and section), committed."""

    def make(
        profile: Profile,
        section: Section | None = None,
        *,
        message: str = "Please check the stockpile figures.",
        email: str = "reader@example.org",
        wants_notice: bool = True,
        language: str = "en",
    ) -> Feedback:
        result = receive_feedback(
            Submission(
                channel=Channel.WEB,
                profile=profile,
                section=section,
                message=message,
                submitter_email=email,
                wants_resolution_notice=wants_notice,
                language=language,
            )
        )
        db.session.commit()
        return result.feedback

    return make


@pytest.fixture
def editor(create_staff) -> User:
    return create_staff(Role.EDITOR, email="editor@desk.test", countries=("ML",))


@pytest.fixture
def manager(create_staff) -> User:
    return create_staff(Role.MANAGER, email="manager@desk.test")


class Desk:
    """A logged-in browser stand-in: GET pages, POST forms with the session's CSRF token."""

    def __init__(self, client: FlaskClient, auth: Any) -> None:
        self.client = client
        self.auth = auth
        self.user: User | None = None

    def login(self, user: User) -> None:
        if self.user is not None:
            self.auth.logout()
        response = self.auth.login(user.email)
        assert response.status_code == 302, response.get_data(as_text=True)
        self.user = user

    def token(self) -> str:
        return csrf_token_from(self.client.get("/desk/tasks").get_data(as_text=True))

    def get(self, url: str, **kwargs: Any):
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any):
        return self.client.post(url, data={"csrf_token": self.token(), **(data or {})}, **kwargs)


@pytest.fixture
def desk(client: FlaskClient, auth: Any) -> Desk:
    return Desk(client, auth)


def task_from_location(response) -> ReviewTask:
    """The task a redirect to /desk/tasks/<id> names."""
    assert response.status_code == 302, response.get_data(as_text=True)
    task_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    return db.session.get(ReviewTask, task_id)


@pytest.fixture
def draft_revision() -> Callable[..., SectionRevision]:
    """A revision of a task's section, drafted and (unless told) submitted via the operations."""

    def make(
        task: ReviewTask,
        author: User,
        body: str,
        *,
        update_type: UpdateType = UpdateType.MAJOR,
        change_note: str = "Updated the stockpile facts.",
        submit: bool = True,
    ) -> SectionRevision:
        revision = operations.start_revision(task, author)
        operations.save_draft(
            revision,
            author,
            heading=revision.heading,
            body=body,
            change_note=change_note,
            update_type=update_type,
        )
        if submit:
            operations.submit_revision(revision, author)
        db.session.commit()
        return revision

    return make


@pytest.fixture
def open_task(editor) -> Callable[..., ReviewTask]:
    """A task on a section via the operation, assigned to the editor unless told."""

    def make(section: Section, *items: Feedback, assignee: User | None = None) -> ReviewTask:
        result = operations.open_review_task(
            section.profile,
            section,
            actor=assignee or editor,
            title=f"Review {section.heading}",
            assignee=assignee or editor,
            feedback=items,
        )
        db.session.commit()
        return result.task

    return make
