"""Profiles and sections: create, rename, publish and unpublish; add, rename and reorder."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from desk.extensions import db
from desk.profiles.models import (
    Profile,
    ProfileUpdate,
    RevisionState,
    Section,
    SectionKind,
    UpdateType,
)
from desk.reviews.operations import (
    RevisionConflict,
    approve_revision,
    rebase_revision,
    save_draft,
    start_section_draft,
    submit_revision,
)
from tests.admin.conftest import audit_rows, log_in, post

PUBLIC = "/profiles/mali/cluster-munition-ban-policy"
SECTIONS = [("Overview", "Mali signed in 2008."), ("Stockpiling", "None known."), ("Use", "None.")]


@pytest.fixture
def mali(create_profile):
    return create_profile("ML", sections=SECTIONS)


def order(profile: Profile) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Section.heading)
            .where(Section.profile_id == profile.id)
            .order_by(Section.position)
        )
    )


def public_html(client) -> str:
    response = client.get(PUBLIC)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_new_profile_stays_off_the_site_until_published(client, cast):
    log_in(client, cast.admin)
    response = post(
        client,
        "/desk/admin/profiles",
        {"country": "NE", "topic": "  Mine   Ban Policy ", "language": "fr"},
    )
    profile = db.session.scalars(
        sa.select(Profile).where(Profile.topic_slug == "mine-ban-policy")
    ).one()
    assert response.headers["Location"].endswith(f"/desk/admin/profiles/{profile.id}")
    assert (profile.country.code, profile.topic, profile.language, profile.is_published) == (
        "NE",
        "Mine Ban Policy",
        "fr",
        False,
    )
    path = "/profiles/niger/mine-ban-policy?lang=fr"
    assert client.get(path).status_code == 404

    post(client, f"/desk/admin/profiles/{profile.id}/publish")
    assert client.get(path).status_code == 200
    post(client, f"/desk/admin/profiles/{profile.id}/unpublish")
    assert client.get(path).status_code == 404

    [created] = audit_rows("profile.created")
    assert created.data["after"] == {
        "country": "NE",
        "topic": "Mine Ban Policy",
        "language": "fr",
        "published": False,
    }
    assert [r.data["after"] for r in audit_rows("profile.published")] == [{"published": True}]
    assert [r.data["after"] for r in audit_rows("profile.unpublished")] == [{"published": False}]


def test_a_second_profile_with_the_same_topic_and_language_is_refused(client, cast, mali):
    log_in(client, cast.admin)
    data = {"country": "ML", "topic": "Cluster Munition Ban Policy", "language": "en"}
    response = post(client, "/desk/admin/profiles", data)
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Mali already has a profile" in follow
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Profile)) == 1
    bad = post(client, "/desk/admin/profiles", {**data, "language": "English!"})
    assert "A language tag such as en or fr." in client.get(bad.headers["Location"]).get_data(
        as_text=True
    )


def test_unpublishing_takes_a_live_profile_off_the_site(client, cast, mali):
    assert client.get(PUBLIC).status_code == 200
    log_in(client, cast.admin)
    post(client, f"/desk/admin/profiles/{mali.id}/unpublish")
    assert client.get(PUBLIC).status_code == 404
    assert "Cluster Munition Ban Policy" not in client.get("/profiles/").get_data(as_text=True)


def test_renaming_a_topic_keeps_the_address(client, cast, mali):
    log_in(client, cast.admin)
    post(client, f"/desk/admin/profiles/{mali.id}/topic", {"topic": "Cluster Munitions"})
    html = public_html(client)
    assert "Cluster Munitions" in html
    db.session.refresh(mali)
    assert (mali.topic, mali.topic_slug) == ("Cluster Munitions", "cluster-munition-ban-policy")
    [row] = audit_rows("profile.renamed")
    assert row.data == {
        "before": {"topic": "Cluster Munition Ban Policy"},
        "after": {"topic": "Cluster Munitions"},
    }


def test_an_added_section_goes_last_with_a_unique_anchor_and_no_text(client, cast, mali):
    log_in(client, cast.admin)
    post(
        client,
        f"/desk/admin/profiles/{mali.id}/sections",
        {"heading": "Overview", "type": "section"},
    )
    post(client, f"/desk/admin/profiles/{mali.id}/sections", {"heading": "Status", "type": "field"})
    db.session.refresh(mali)
    added, field = sorted(mali.sections, key=lambda s: s.position)[-2:]
    assert (added.heading, added.anchor, added.position, added.level) == (
        "Overview",
        "overview-2",
        4,
        2,
    )
    assert added.current_revision is None
    assert (field.kind, field.level, field.position) == (SectionKind.FIELD, 3, 5)
    assert len(mali.sections) == 5
    assert 'id="overview-2"' in public_html(client)
    [first, _] = audit_rows("section.created")
    assert first.data["after"]["anchor"] == "overview-2" and first.data["before"] is None


def test_reordering_moves_a_section_up_and_down(client, cast, mali):
    log_in(client, cast.admin)
    overview, stockpiling, use = sorted(mali.sections, key=lambda s: s.position)
    post(client, f"/desk/admin/sections/{use.id}/up")
    assert order(mali) == ["Overview", "Use", "Stockpiling"]
    post(client, f"/desk/admin/sections/{overview.id}/down")
    assert order(mali) == ["Use", "Overview", "Stockpiling"]
    post(client, f"/desk/admin/sections/{stockpiling.id}/down")  # already last: nothing
    assert order(mali) == ["Use", "Overview", "Stockpiling"]
    html = public_html(client)
    assert html.index('id="use"') < html.index('id="overview"') < html.index('id="stockpiling"')
    moves = audit_rows("section.moved")
    assert len(moves) == 2
    assert moves[0].data["before"] == {"order": ["overview", "stockpiling", "use"]}
    assert moves[0].data["after"] == {"order": ["overview", "use", "stockpiling"]}


def test_renaming_a_heading_publishes_it_as_a_minor_revision_with_the_same_text(client, cast, mali):
    log_in(client, cast.admin)
    section = sorted(mali.sections, key=lambda s: s.position)[0]
    old = section.current_revision
    post(
        client,
        f"/desk/admin/sections/{section.id}/heading",
        {"heading": "Summary", "body": "Text slipped in."},
    )
    db.session.refresh(section)
    new = section.current_revision
    assert (section.heading, section.anchor) == ("Summary", "overview")
    assert new.id != old.id
    assert (new.heading, new.body, new.update_type, new.state, new.base_revision_id) == (
        "Summary",
        "Mali signed in 2008.",
        UpdateType.MINOR,
        RevisionState.APPROVED,
        old.id,
    )
    assert old.state == RevisionState.APPROVED and old.body == "Mali signed in 2008."
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProfileUpdate)) == 0
    html = public_html(client)
    assert "Summary" in html and "Text slipped in." not in html
    [row] = audit_rows("section.renamed")
    assert row.data["before"] == {"heading": "Overview"}
    assert row.data["after"] == {"heading": "Summary"}
    assert row.data["revision"] == new.id


def test_a_draft_begun_before_a_rename_must_be_rebased_and_keeps_both_changes(
    client, cast, mali, create_staff
):
    from desk.accounts.models import Role

    author = create_staff(Role.EDITOR, email="author@desk.test", countries=("ML",))
    section = sorted(mali.sections, key=lambda s: s.position)[1]
    draft = start_section_draft(section, author)
    save_draft(
        draft,
        author,
        heading=draft.heading,
        body="Mali destroyed its stockpile in 2019.",
        change_note="",
        update_type=UpdateType.MINOR,
    )
    submit_revision(draft, author)
    db.session.commit()

    log_in(client, cast.admin)
    post(client, f"/desk/admin/sections/{section.id}/heading", {"heading": "Stockpile destruction"})
    with pytest.raises(RevisionConflict):
        approve_revision(draft, cast.manager)
    db.session.rollback()
    rebased = rebase_revision(db.session.get(type(draft), draft.id), author).revision
    assert rebased.heading == "Stockpile destruction"
    assert rebased.body == "Mali destroyed its stockpile in 2019."


def test_unknown_objects_are_not_found(client, cast):
    log_in(client, cast.admin)
    assert client.get("/desk/admin/profiles/999").status_code == 404
    assert post(client, "/desk/admin/sections/999/up").status_code == 404
    assert post(client, "/desk/admin/profiles/999/publish").status_code == 404
