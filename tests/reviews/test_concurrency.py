"""Two approvals of conflicting revisions racing in two connections: exactly one wins.

PostgreSQL only (SQLite has one writer at a time, so the race cannot happen there). The data is
committed for real in a scratch database, because each approval runs in its own thread, app
context, session and connection, as two web workers would.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from desk import create_app
from desk.accounts.models import Role, User
from desk.accounts.operations import create_user
from desk.extensions import db
from desk.profiles.models import (
    Profile,
    ProfileUpdate,
    RevisionState,
    Section,
    SectionRevision,
    UpdateType,
)
from desk.profiles.operations import ensure_country
from desk.reviews import operations
from tests.conftest import base_settings

pytestmark = pytest.mark.postgres

#: How long the first approval holds its lock before committing.
HOLD_SECONDS = 1.0


def _setup() -> dict[str, int]:
    """A section, two editors' submitted drafts from its one base, two managers; committed."""
    profile = Profile(country=ensure_country("ML"), topic="Race", topic_slug="race", language="en")
    db.session.add(profile)
    section = Section(position=1, anchor="stockpiling", heading="Stockpiling", level=2)
    profile.sections.append(section)
    base = SectionRevision(
        section=section,
        number=1,
        heading="Stockpiling",
        body="No stockpile.",
        state=RevisionState.APPROVED,
    )
    db.session.add(base)
    db.session.flush()
    section.current_revision = base
    people = {
        name: create_user(f"{name}@race.test", name=name, role=role, password="race password")
        for name, role in [
            ("first_author", Role.MANAGER),
            ("second_author", Role.MANAGER),
            ("first_approver", Role.MANAGER),
            ("second_approver", Role.MANAGER),
        ]
    }
    drafts = []
    for author, text in [("first_author", "No stockpile at all."), ("second_author", "None.")]:
        draft = operations.start_section_draft(section, people[author])
        operations.save_draft(
            draft,
            people[author],
            heading=draft.heading,
            body=text,
            change_note=f"By {author}.",
            update_type=UpdateType.MAJOR,
        )
        operations.submit_revision(draft, people[author])
        drafts.append(draft)
    db.session.commit()
    return {
        "section": section.id,
        "first": drafts[0].id,
        "second": drafts[1].id,
        "first_approver": people["first_approver"].id,
        "second_approver": people["second_approver"].id,
    }


def test_two_racing_approvals_of_conflicting_revisions_exactly_one_wins(
    scratch_database_url: str, tmp_path: Path
) -> None:
    app = create_app(base_settings(scratch_database_url, tmp_path / "instance"))
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        flask_migrate.upgrade()
        ids = _setup()

    both_loaded = threading.Barrier(2)
    first_holds_lock = threading.Event()
    outcome: dict[str, str] = {}
    waited: dict[str, float] = {}

    def approve(name: str, revision_id: int, approver_id: int, holds: bool) -> None:
        with app.app_context():
            try:
                revision = db.session.get(SectionRevision, revision_id)
                approver = db.session.get(User, approver_id)
                # Both see the section at its base before either approves: a check made on
                # this stale read alone would let both through.
                assert revision.section.current_revision_id == revision.base_revision_id
                both_loaded.wait(timeout=10)
                if not holds:
                    first_holds_lock.wait(timeout=10)
                started = time.monotonic()
                try:
                    operations.approve_revision(revision, approver)
                except operations.RevisionConflict:
                    db.session.rollback()
                    outcome[name] = "conflict"
                else:
                    if holds:
                        first_holds_lock.set()
                        time.sleep(HOLD_SECONDS)
                    db.session.commit()
                    outcome[name] = "approved"
                waited[name] = time.monotonic() - started
            except Exception as error:  # reported by the main thread
                outcome[name] = f"error: {error!r}"
                first_holds_lock.set()
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=approve, args=("first", ids["first"], ids["first_approver"], True)),
        threading.Thread(
            target=approve, args=("second", ids["second"], ids["second_approver"], False)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert outcome == {"first": "approved", "second": "conflict"}
    assert waited["second"] >= HOLD_SECONDS * 0.8, "the second approval waited for the lock"
    with app.app_context():
        section = db.session.get(Section, ids["section"])
        assert section.current_revision_id == ids["first"]
        states = {
            r.id: r.state
            for r in db.session.scalars(
                sa.select(SectionRevision).where(SectionRevision.section_id == section.id)
            )
        }
        assert states[ids["first"]] == RevisionState.APPROVED
        assert states[ids["second"]] == RevisionState.SUBMITTED
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProfileUpdate)) == 1
        db.session.remove()
        db.engine.dispose()
