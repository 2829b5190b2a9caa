"""Factories: fixtures that return callables building rows with sensible defaults."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

import pytest

from desk.accounts.models import Role, User
from desk.accounts.operations import create_user
from desk.extensions import db
from desk.profiles.models import (
    Profile,
    RevisionState,
    Section,
    SectionKind,
    SectionRevision,
)
from desk.profiles.operations import ensure_country

PASSWORD = "correct horse battery staple"
_serial = count(1)


@pytest.fixture
def create_staff(app) -> Callable[..., User]:
    def make(
        role: Role | str = Role.EDITOR,
        *,
        email: str | None = None,
        countries: tuple[str, ...] = (),
        leads: tuple[str, ...] = (),
        password: str = PASSWORD,
    ) -> User:
        user = create_user(
            email or f"staff{next(_serial)}@desk.test",
            name=f"Staff {role}",
            role=Role(role),
            password=password,
            countries=[ensure_country(code) for code in countries],
            lead_countries=[ensure_country(code) for code in leads],
        )
        db.session.commit()
        return user

    return make


@pytest.fixture
def create_profile(app) -> Callable[..., Profile]:
    """A published profile with the given sections: a list of (heading, body[, kind, level])."""

    def make(
        country: str = "ML",
        topic: str = "Cluster Munition Ban Policy",
        *,
        sections: list[tuple] | None = None,
        language: str = "en",
        last_updated_on=None,
    ) -> Profile:
        from desk.core.text import slugify

        profile = Profile(
            country=ensure_country(country),
            topic=topic,
            topic_slug=slugify(topic),
            language=language,
            last_updated_on=last_updated_on,
        )
        db.session.add(profile)
        for position, spec in enumerate(sections or [("Overview", "Some text.")], start=1):
            heading, body, *rest = spec
            kind = rest[0] if rest else SectionKind.TEXT
            level = rest[1] if len(rest) > 1 else (3 if kind == SectionKind.FIELD else 2)
            section = Section(
                position=position, anchor=slugify(heading), heading=heading, level=level, kind=kind
            )
            profile.sections.append(section)
            revision = SectionRevision(
                section=section,
                number=1,
                heading=heading,
                body=body,
                state=RevisionState.APPROVED,
            )
            db.session.add(revision)
            db.session.flush()
            section.current_revision = revision
        db.session.commit()
        return profile

    return make
