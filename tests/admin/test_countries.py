"""Country assignments: editors, the lead editor, and who gets a country's new items."""

from __future__ import annotations

import sqlalchemy as sa

from desk.accounts.models import CountryAssignment, Role, User
from desk.extensions import db
from desk.feedback.routing import choose_assignee
from desk.profiles.models import AutoAssign, Country
from desk.profiles.operations import ensure_country
from tests.admin.conftest import audit_rows, log_in, post


def assignments(code: str) -> dict[str, bool]:
    """Editor email → is lead, for the country."""
    rows = db.session.execute(
        sa.select(CountryAssignment.is_lead, CountryAssignment.user_id)
        .join(Country, Country.id == CountryAssignment.country_id)
        .where(Country.code == code)
    )
    return {db.session.get(User, user_id).email: is_lead for is_lead, user_id in rows}


def test_an_admin_gives_a_new_country_its_editors_and_lead(client, cast, create_staff):
    second = create_staff(Role.EDITOR, email="second@desk.test")
    log_in(client, cast.admin)
    page = client.get("/desk/admin/countries/NE").get_data(as_text=True)
    assert "Niger" in page and "Nobody works on Niger yet" in page
    assert db.session.scalar(sa.select(Country).where(Country.code == "NE")) is None

    post(client, "/desk/admin/countries/NE/editors", {"user": str(cast.editor.id)})
    post(client, "/desk/admin/countries/NE/editors", {"user": str(second.id)})
    assert assignments("NE") == {"editor@desk.test": False, "second@desk.test": False}

    post(client, "/desk/admin/countries/NE/lead", {"user": str(second.id)})
    assert assignments("NE") == {"editor@desk.test": False, "second@desk.test": True}
    post(client, "/desk/admin/countries/NE/lead", {"user": str(cast.editor.id)})
    assert assignments("NE") == {"editor@desk.test": True, "second@desk.test": False}

    niger = ensure_country("NE")
    assert choose_assignee(niger)[0].id == cast.editor.id
    post(client, "/desk/admin/countries/NE/lead", {"user": ""})
    assert assignments("NE") == {"editor@desk.test": False, "second@desk.test": False}
    assert choose_assignee(niger) == (None, "Niger has no lead editor")

    added = audit_rows("country.editor_added")
    assert [row.object_id for row in added] == ["NE", "NE"]
    assert added[1].data["before"] == {"editors": ["editor@desk.test"], "lead": []}
    assert added[1].data["after"] == {
        "editors": ["editor@desk.test", "second@desk.test"],
        "lead": [],
    }
    leads = audit_rows("country.lead_changed")
    assert [row.data["after"]["lead"] for row in leads] == [
        ["second@desk.test"],
        ["editor@desk.test"],
        [],
    ]
    assert all(row.actor_id == cast.admin.id for row in added + leads)

    listing = client.get("/desk/admin/countries").get_data(as_text=True)
    assert "Niger" in listing and "Mali" in listing


def test_removing_an_editor_takes_the_country_away(client, cast):
    log_in(client, cast.admin)
    response = post(client, f"/desk/admin/countries/ML/editors/{cast.editor.id}/remove")
    assert response.status_code == 302
    assert assignments("ML") == {}
    [row] = audit_rows("country.editor_removed")
    assert row.data["before"]["editors"] == ["editor@desk.test"]
    assert row.data["after"]["editors"] == []


def test_auto_assign_mode_decides_who_gets_new_items(client, cast, create_staff):
    second = create_staff(Role.EDITOR, email="second@desk.test", leads=("ML",))
    mali = ensure_country("ML")
    assert choose_assignee(mali)[0].id == second.id  # the default: the lead editor
    log_in(client, cast.admin)

    post(client, "/desk/admin/countries/ML/auto-assign", {"mode": "none"})
    db.session.refresh(mali)
    assert mali.auto_assign == AutoAssign.NONE
    assert choose_assignee(mali) == (None, "auto-assign is off for this country")

    post(client, "/desk/admin/countries/ML/auto-assign", {"mode": "least_loaded"})
    db.session.refresh(mali)
    assert choose_assignee(mali)[0].id == cast.editor.id  # no open items, lowest id

    rows = audit_rows("country.auto_assign_changed")
    assert [(r.data["before"], r.data["after"]) for r in rows] == [
        ({"auto_assign": "lead"}, {"auto_assign": "none"}),
        ({"auto_assign": "none"}, {"auto_assign": "least_loaded"}),
    ]
    page = client.get("/desk/admin/countries/ML").get_data(as_text=True)
    assert '<option selected value="least_loaded">' in page


def test_only_editors_not_yet_on_the_country_can_be_added(client, cast):
    log_in(client, cast.admin)
    page = client.get("/desk/admin/countries/ML").get_data(as_text=True)
    assert "manager@desk.test" not in page.split('id="user"')[1].split("</select>")[0]
    for user in (cast.manager, cast.editor):
        post(client, "/desk/admin/countries/ML/editors", {"user": str(user.id)})
    assert assignments("ML") == {"editor@desk.test": False}
    assert audit_rows("country.editor_added") == []


def test_a_lead_must_be_one_of_the_countrys_editors(client, cast, create_staff):
    outsider = create_staff(Role.EDITOR, email="outsider@desk.test")
    log_in(client, cast.admin)
    post(client, "/desk/admin/countries/ML/lead", {"user": str(outsider.id)})
    assert assignments("ML") == {"editor@desk.test": False}


def test_a_code_that_is_no_country_is_not_found(client, cast):
    log_in(client, cast.admin)
    assert client.get("/desk/admin/countries/XX").status_code == 404
    assert post(client, "/desk/admin/countries/XX/auto-assign", {"mode": "none"}).status_code == 404
    lower = client.get("/desk/admin/countries/ml")
    assert lower.status_code == 302 and lower.headers["Location"].endswith(
        "/desk/admin/countries/ML"
    )
    opened = client.get("/desk/admin/countries?code=NE")
    assert opened.headers["Location"].endswith("/desk/admin/countries/NE")
