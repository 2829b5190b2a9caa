"""What a topology's database holds before a test: the demo desk, Mali, and load editors.

Seeded through Desk's own operations, in this process, on the topology's database (the schema
was migrated by ``desk db upgrade``); the app built here is disposed of before any server starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from desk import create_app
from desk.accounts.models import Role
from desk.accounts.operations import create_user
from desk.demo import load_demo_data
from desk.extensions import db
from desk.profiles.importing import read_profile_file
from desk.profiles.models import Country, Profile
from desk.profiles.operations import import_profile
from tests.conftest import MALI_PROFILE

#: The editors the load test logs in as; each works on every seeded country.
LOAD_EDITORS = 10
EDITOR_PASSWORD = "topology editor password"
#: A demo account (desk/demo.py) that sees Freedonia's feedback.
DEMO_EDITOR = ("editor@desk.example", "demo-editor-pass")


@dataclass(frozen=True)
class Seeded:
    profile_paths: list[str]
    editors: list[tuple[str, str]]


@contextmanager
def desk_environment(settings: dict[str, str]) -> Iterator[None]:
    """Exactly these DESK_* variables in the environment, the caller's back afterwards."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("DESK_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(settings)
    try:
        yield
    finally:
        for name in settings:
            os.environ.pop(name, None)
        os.environ.update(saved)


def app_for(settings: dict[str, str]) -> Flask:
    """The app the topology's processes run, built in this process from the same environment."""
    with desk_environment(settings):
        return create_app()


def seed(settings: dict[str, str]) -> Seeded:
    """Fill the database ``settings`` name; return the profile pages and the editors' logins."""
    assert MALI_PROFILE.exists(), f"missing {MALI_PROFILE}: the shared data folder is required"
    app = app_for(settings)
    with app.app_context():
        load_demo_data()
        import_profile(read_profile_file(Path(MALI_PROFILE)), source=MALI_PROFILE.name)
        countries = list(db.session.scalars(sa.select(Country).order_by(Country.code)))
        editors = []
        for number in range(1, LOAD_EDITORS + 1):
            email = f"load-editor-{number}@topology.test"
            create_user(
                email,
                name=f"Load Editor {number}",
                role=Role.EDITOR,
                password=EDITOR_PASSWORD,
                countries=countries,
            )
            editors.append((email, EDITOR_PASSWORD))
        db.session.commit()
        paths = [
            f"/profiles/{profile.country.slug}/{profile.topic_slug}"
            for profile in db.session.scalars(sa.select(Profile).order_by(Profile.id))
        ]
        db.session.remove()
        db.engine.dispose()
    return Seeded(profile_paths=paths, editors=editors)
