"""``import_profile``: what an import writes, and that a repeated import writes nothing."""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa

from desk.core.audit import AuditEvent
from desk.extensions import db
from desk.profiles.importing import ParsedProfile, ParsedSection, read_profile_file
from desk.profiles.models import (
    ProfileUpdate,
    RevisionState,
    Section,
    SectionKind,
    SectionRevision,
    UpdateType,
)
from desk.profiles.operations import UnknownCountry, import_profile
from desk.profiles.queries import profile_sections
from desk.profiles.rendering import footnote_labels, render_profile, split_footnotes

MALI_SOURCE = "mali-cluster-munition-ban-policy-2011.txt"


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def footprint(profile) -> dict[str, object]:
    """Everything an import may write, to compare before and after."""
    db.session.refresh(profile)
    return {
        "revisions": count(SectionRevision),
        "updates": count(ProfileUpdate),
        "audits": count(AuditEvent, AuditEvent.action == "profile.imported"),
        "content_version": profile.content_version,
        "content_changed_at": profile.content_changed_at,
        "sections": [
            (s.position, s.anchor, s.heading, s.level, s.kind, s.current_revision_id)
            for s in profile_sections(profile)
        ],
    }


@pytest.fixture
def import_mali(app, mali_profile_path):
    def run(path=mali_profile_path, **options):
        return import_profile(read_profile_file(path, **options), source=path.name)

    return run


def test_mali_import_creates_the_profile_with_five_sections(import_mali):
    result = import_mali()
    profile = result.profile
    assert result.created
    assert result.revisions_created == 5
    assert result.warnings == []
    assert (profile.country.code, profile.country.name) == ("ML", "Mali")
    assert profile.slug == "mali/cluster-munition-ban-policy"
    assert profile.language == "en"
    assert profile.last_updated_on == date(2011, 8, 16)
    assert [(s.position, s.heading, s.level, s.kind) for s in profile_sections(profile)] == [
        (1, "Commitment to the Convention on Cluster Munitions", 2, SectionKind.TEXT),
        (2, "Convention on Cluster Munitions status", 3, SectionKind.FIELD),
        (3, "Participation in Convention on Cluster Munitions meetings", 3, SectionKind.FIELD),
        (4, "Key developments", 3, SectionKind.FIELD),
        (5, "Use, production, transfer, and stockpiling", 2, SectionKind.TEXT),
    ]


def test_imported_sections_show_approved_first_revisions_by_the_system(import_mali):
    profile = import_mali().profile
    for section in profile_sections(profile):
        revision = section.current_revision
        assert revision.number == 1
        assert revision.state == RevisionState.APPROVED
        assert revision.author_id is None
        assert revision.base_revision_id is None
        assert revision.decided_at is not None
        assert revision.change_note == f"Imported from {MALI_SOURCE}"
        assert revision.heading == section.heading


def test_mali_footnote_definitions_are_stored_with_the_sections_that_cite_them(import_mali):
    sections = profile_sections(import_mali().profile)
    defined = [footnote_labels(s.body)[1] for s in sections]
    assert defined == [["1", "2", "3", "4", "5", "6"], [], [], [], ["7", "8"]]


def test_first_import_stamps_the_date_with_every_revision(import_mali):
    profile = import_mali().profile
    (update,) = profile.updates
    assert update.stamped_on == date(2011, 8, 16)
    assert update.change_note == f"Imported from {MALI_SOURCE}"
    assert not update.is_manual
    assert len(update.revisions) == 5
    assert {r.update_type for r in update.revisions} == {UpdateType.MAJOR}


def test_rendering_the_imported_mali_profile_numbers_footnotes_one_to_eight(import_mali):
    page = render_profile(profile_sections(import_mali().profile))
    assert [note.number for note in page.footnotes] == list(range(1, 9))
    reading_order = "".join(str(field.html) for field in page.sections[0].fields) + "".join(
        str(section.html) for section in page.sections
    )
    assert [int(n) for n in _note_links(reading_order)] == list(range(1, 9))
    assert page.footnotes[6].html.startswith("Statement of Mali, First Meeting of States Parties")
    assert page.footnotes[7].html.startswith("Email from Amadou Maiga")


def _note_links(html: str) -> list[str]:
    return re.findall(r'<a href="#fn-(\d+)"', html)


def test_importing_the_same_file_twice_changes_nothing(import_mali):
    profile = import_mali().profile
    db.session.commit()
    before = footprint(profile)
    result = import_mali()
    db.session.commit()
    assert not result.created
    assert not result.changed
    assert result.revisions_created == 0
    assert result.warnings == []
    assert footprint(profile) == before


def test_audit_row_records_an_import_that_changed_something(import_mali):
    profile = import_mali().profile
    (event,) = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "profile.imported")
    )
    assert (event.actor_id, event.object_type, event.object_id) == (
        None,
        "profile",
        str(profile.id),
    )
    assert event.data == {
        "source": MALI_SOURCE,
        "created": True,
        "sections": 5,
        "sections_created": 5,
        "revisions_created": 5,
        "stamped_on": "2011-08-16",
    }


def test_changed_copy_makes_one_revision_and_one_stamp(import_mali, edited_mali):
    profile = import_mali().profile
    first = profile_sections(profile)[0].current_revision
    first_body = first.body
    before = footprint(profile)
    changed = edited_mali(
        ("[2]", "[2] One sentence added in review."),
        ("Last Updated: 16 August 2011", "Last Updated: 1 September 2011"),
    )
    result = import_mali(changed)
    assert not result.created
    assert result.revisions_created == 1
    after = footprint(profile)
    assert after["revisions"] == before["revisions"] + 1
    assert after["updates"] == before["updates"] + 1
    assert after["audits"] == before["audits"] + 1
    assert after["content_version"] == before["content_version"] + 1

    section = profile_sections(profile)[0]
    revision = section.current_revision
    assert revision.number == 2
    assert revision.base_revision_id == first.id
    assert revision.state == RevisionState.APPROVED
    assert revision.update_type == UpdateType.MAJOR
    assert "One sentence added in review." in revision.body
    db.session.refresh(first)
    assert first.body == first_body
    assert profile.last_updated_on == date(2011, 9, 1)
    latest = profile.updates[0]
    assert latest.stamped_on == date(2011, 9, 1)
    assert latest.revisions == [revision]
    assert [s.current_revision.number for s in profile_sections(profile)[1:]] == [1, 1, 1, 1]


def test_text_change_without_new_date_is_a_minor_revision_without_stamp(import_mali, edited_mali):
    profile = import_mali().profile
    result = import_mali(edited_mali(("[8]", "[8] Checked again.")))
    assert result.revisions_created == 1
    assert result.stamped_on is None
    assert len(profile.updates) == 1
    revision = profile_sections(profile)[4].current_revision
    assert (revision.number, revision.update_type) == (2, UpdateType.MINOR)
    assert revision.profile_update_id is None


def test_dangling_reference_warns_and_is_imported(import_mali, edited_mali):
    result = import_mali(edited_mali(("[8]", "[8][9]")))
    assert [w for w in result.warnings if "[9]" in w] == [
        "reference [9] in section 'Use, production, transfer, and stockpiling' has no footnote text"
    ]
    body = profile_sections(result.profile)[4].body
    assert "[^9]" in split_footnotes(body)[0]


def test_unreferenced_footnote_warns_and_is_imported(import_mali, edited_mali):
    result = import_mali(edited_mali(("[4]", "")))
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("footnote [4] is never referenced")
    assert len(profile_sections(result.profile)) == 5


def test_section_missing_from_the_file_is_kept_after_the_others_with_a_warning(
    create_profile, import_mali
):
    existing = create_profile("ML", sections=[("Overview", "Older text.")])
    result = import_mali()
    assert result.profile is existing
    assert not result.created
    assert result.warnings == ["section 'Overview' (#overview) is not in the file; it is kept"]
    sections = profile_sections(existing)
    assert [s.anchor for s in sections][-1] == "overview"
    assert [s.position for s in sections] == [1, 2, 3, 4, 5, 6]
    assert sections[-1].body == "Older text."

    before = footprint(existing)
    assert import_mali().warnings == result.warnings
    assert footprint(existing) == before


def test_changed_heading_level_or_kind_is_a_new_revision_and_order_follows_the_file(app):
    def parsed(*sections: ParsedSection) -> ParsedProfile:
        return ParsedProfile("SN", "Mine Ban Policy", sections=list(sections))

    a = ParsedSection("Alpha", "Text A.", "a")
    b = ParsedSection("Beta", "Text B.", "b")
    profile = import_profile(parsed(a, b), source="one.md").profile
    version = profile.content_version

    moved = import_profile(parsed(b, a), source="two.md")
    assert (moved.changed, moved.revisions_created) == (True, 0)
    assert [s.anchor for s in profile_sections(profile)] == ["b", "a"]
    assert profile.content_version == version + 1

    retitled = ParsedSection("Beta, renamed", "Text B.", "b", level=3, kind=SectionKind.FIELD)
    added = ParsedSection("Gamma", "Text C.", "c")
    result = import_profile(parsed(added, retitled, a), source="three.md")
    assert (result.revisions_created, result.sections_created) == (2, 1)
    assert [s.anchor for s in profile_sections(profile)] == ["c", "b", "a"]
    section = db.session.scalar(sa.select(Section).where(Section.anchor == "b"))
    assert (section.heading, section.level, section.kind) == (
        "Beta, renamed",
        3,
        SectionKind.FIELD,
    )
    assert section.current_revision.heading == "Beta, renamed"
    assert section.current_revision.number == 2


def test_unknown_country_code_is_refused(app):
    with pytest.raises(UnknownCountry):
        import_profile(ParsedProfile("XX", "Topic"), source="x.md")


def test_code_outside_the_iso_list_with_a_country_name_creates_the_country(app):
    parsed = ParsedProfile("XF", "Topic", country_name="Freedonia")
    profile = import_profile(parsed, source="x.md").profile
    assert (profile.country.code, profile.country.name, profile.slug) == (
        "XF",
        "Freedonia",
        "freedonia/topic",
    )
    assert import_profile(parsed, source="x.md").profile is profile
