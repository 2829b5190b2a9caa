"""Export to the Markdown profile format, and export → import round trips."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from desk.core.audit import AuditEvent
from desk.extensions import db
from desk.profiles.exporting import export_problems, export_profile, find_profile_to_export
from desk.profiles.importing import (
    ParsedProfile,
    ParsedSection,
    parse_markdown,
    read_profile_file,
)
from desk.profiles.models import ProfileUpdate, SectionKind, SectionRevision
from desk.profiles.operations import import_profile
from desk.profiles.queries import profile_sections


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def shape(profile) -> list[tuple]:
    return [
        (s.position, s.anchor, s.heading, s.level, s.kind, s.body)
        for s in profile_sections(profile)
    ]


def test_export_writes_front_matter_then_each_section(create_profile):
    profile = create_profile(
        "ML",
        sections=[
            ("Commitment", "Text.[^1]\n\n[^1]: A note."),
            ("Status", "State Party", SectionKind.FIELD),
            ("Details", "More.", SectionKind.TEXT, 3),
        ],
        last_updated_on=date(2011, 8, 16),
    )
    assert export_profile(profile) == (
        "---\n"
        "country: ML\n"
        "topic: Cluster Munition Ban Policy\n"
        "language: en\n"
        "last_updated: 2011-08-16\n"
        "---\n"
        "\n"
        "## Commitment {#commitment}\n"
        "\n"
        "Text.[^1]\n"
        "\n"
        "[^1]: A note.\n"
        "\n"
        "### Status {#status .field}\n"
        "\n"
        "State Party\n"
        "\n"
        "### Details {#details}\n"
        "\n"
        "More.\n"
    )


def test_export_leaves_out_unset_dates_and_writes_reviewed(create_profile):
    profile = create_profile("SN", sections=[("Empty", "")])
    assert "last_updated" not in export_profile(profile)
    profile.reviewed_on = date(2012, 1, 5)
    text = export_profile(profile)
    assert "reviewed: 2012-01-05\n" in text
    assert text.endswith("## Empty {#empty}\n")


def test_export_then_import_into_the_same_database_changes_nothing(app, mali_profile_path):
    result = import_profile(read_profile_file(mali_profile_path), source="mali.txt")
    profile = result.profile
    db.session.commit()
    before = (count(SectionRevision), count(ProfileUpdate), count(AuditEvent))
    version, sections = profile.content_version, shape(profile)

    again = import_profile(parse_markdown(export_profile(profile)), source="mali.md")
    db.session.commit()
    assert not again.changed
    assert again.warnings == []
    assert (count(SectionRevision), count(ProfileUpdate), count(AuditEvent)) == before
    db.session.refresh(profile)
    assert profile.content_version == version
    assert shape(profile) == sections


def test_export_then_import_as_a_new_profile_reproduces_it(app, mali_profile_path):
    original = import_profile(read_profile_file(mali_profile_path), source="mali.txt").profile
    copy = import_profile(
        parse_markdown(export_profile(original), country="SN"), source="mali.md"
    ).profile
    assert copy.id != original.id
    assert copy.country.code == "SN"
    assert (copy.topic, copy.topic_slug, copy.language) == (
        original.topic,
        original.topic_slug,
        original.language,
    )
    assert copy.last_updated_on == original.last_updated_on == date(2011, 8, 16)
    assert shape(copy) == shape(original)


def test_profile_of_a_country_outside_the_iso_list_exports_its_name(app):
    parsed = ParsedProfile(
        "XF", "Topic", country_name="Freedonia", sections=[ParsedSection("A", "Text.", "a")]
    )
    profile = import_profile(parsed, source="demo.md").profile
    assert export_profile(profile).startswith("---\ncountry: XF\ncountry_name: Freedonia\n")
    assert parse_markdown(export_profile(profile)) == parsed


def test_bodies_differing_only_in_line_ends_and_trailing_spaces_round_trip(create_profile):
    profile = create_profile("ML", sections=[("Notes", "First line.  \r\nSecond line.\r\n\r\n")])
    version = profile.content_version
    result = import_profile(parse_markdown(export_profile(profile)), source="notes.md")
    assert (result.changed, result.revisions_created) == (False, 0)
    assert profile.content_version == version


def test_find_profile_to_export_takes_code_or_slug_and_topic_slug_or_text(create_profile):
    profile = create_profile("CI", "Mine Ban Policy")
    assert find_profile_to_export("ci", "mine-ban-policy") is profile
    assert find_profile_to_export("cote-d-ivoire", "Mine Ban Policy") is profile
    assert find_profile_to_export("Côte d'Ivoire", "mine ban policy") is profile
    assert find_profile_to_export("CI", "Mine Ban Policy", language="fr") is None
    assert find_profile_to_export("ML", "Mine Ban Policy") is None
    assert find_profile_to_export("XX", "Mine Ban Policy") is None


def test_export_problems_name_what_would_not_read_back(create_profile):
    profile = create_profile(
        "ML",
        sections=[
            ("Fine", "#### Deep heading\n\n```\n## in code\n```"),
            ("Split", "Text.\n\n## Looks like a section"),
            ("Deep", "Text.", SectionKind.TEXT, 4),
        ],
    )
    assert export_problems(profile) == [
        "section 'Split' has a body line read back as a heading: '## Looks like a section'",
        "section 'Deep' has heading level 4; only levels 2 and 3 are read back",
    ]
