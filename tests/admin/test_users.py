"""Accounts: invitations, password resets by email, deactivation, roles, and their audit rows."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from desk.accounts.models import Role, User
from desk.admin import tokens
from desk.admin.operations import NO_PASSWORD, AccountState, account_state
from desk.extensions import db
from desk.notify.models import OutboxMessage
from tests.admin.conftest import (
    audit_rows,
    link_in,
    log_in,
    outbox,
    post,
    real_login,
)

NEW_PASSWORD = "a new and rather long passphrase"


def user_by_email(email: str) -> User:
    return db.session.scalars(sa.select(User).where(User.email == email)).one()


def invite(client, email: str = "awa@desk.test", role: str = "editor"):
    return post(client, "/desk/admin/users", {"name": "Awa Keita", "email": email, "role": role})


def choose_password(client, path: str, password: str = NEW_PASSWORD):
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return post(client, path, {"password": password, "confirm": password})


# --------------------------------------------------------------------------- invitations


def test_an_invited_editor_sets_a_password_from_the_email_and_logs_in(app, client, cast):
    log_in(client, cast.admin)
    response = invite(client)
    assert response.status_code == 302
    awa = user_by_email("awa@desk.test")
    assert (awa.name, awa.role, awa.is_active, awa.password_hash) == (
        "Awa Keita",
        Role.EDITOR,
        False,
        "",
    )
    [email] = outbox("account.invitation", "awa@desk.test")
    assert email.subject == "Your account on the Desk staff desk"
    path = link_in(email)
    assert "Cast" not in email.text and "Admin made an account for you" in email.text

    browser = app.test_client()  # the invitee's own browser
    page = browser.get(path).get_data(as_text=True)
    assert "Welcome, Awa Keita" in page
    response = choose_password(browser, path)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"

    db.session.refresh(awa)
    assert awa.is_active and awa.check_password(NEW_PASSWORD)
    response = real_login(browser, "awa@desk.test", NEW_PASSWORD)
    assert urlsplit(response.headers["Location"]).path == "/desk/"
    assert browser.get("/desk/inbox").status_code == 200

    [invited] = audit_rows("user.invited")
    assert invited.actor_id == cast.admin.id
    assert invited.data["after"] == {
        "email": "awa@desk.test",
        "name": "Awa Keita",
        "role": "editor",
        "state": "invited",
    }
    [accepted] = audit_rows("user.invitation_accepted")
    assert accepted.actor_id == awa.id
    assert accepted.data["before"] == {"state": "invited"}
    assert accepted.data["after"] == {"state": "active", "password": "changed"}


def test_an_invited_account_cannot_log_in_before_choosing_a_password(app, client, cast):
    log_in(client, cast.admin)
    invite(client)
    browser = app.test_client()
    response = real_login(browser, "awa@desk.test", "")
    assert response.status_code == 200
    assert browser.get("/desk/").status_code == 302


def test_links_sent_before_session_versions_still_work(client, cast):
    """An account at session version 1 (all of them before versions existed) has the same
    link fingerprint as before, so invitations in flight at the upgrade keep working."""
    log_in(client, cast.admin)
    invite(client)
    awa = user_by_email("awa@desk.test")
    assert awa.session_version == 1
    state = f"{awa.id}:{awa.password_hash}:0"
    assert tokens.fingerprint(awa) == hashlib.sha256(state.encode()).hexdigest()[:24]
    assert choose_password(client, link_in(outbox("account.invitation")[0])).status_code == 302


def test_an_invitation_link_works_once(client, cast):
    log_in(client, cast.admin)
    invite(client)
    path = link_in(outbox("account.invitation")[0])
    assert choose_password(client, path).status_code == 302
    again = client.get(path)
    assert again.status_code == 410
    assert "This link has already been used" in again.get_data(as_text=True)
    refused = post(
        client, path, {"password": "another long password", "confirm": "another long password"}
    )
    assert refused.status_code == 410
    assert user_by_email("awa@desk.test").check_password(NEW_PASSWORD)


def test_an_invitation_can_be_sent_again_and_withdrawn(client, cast):
    log_in(client, cast.admin)
    invite(client)
    awa = user_by_email("awa@desk.test")
    post(client, f"/desk/admin/users/{awa.id}/invitation")
    first, second = outbox("account.invitation", "awa@desk.test")
    assert len(audit_rows("user.invitation_resent")) == 1
    # The invitation sent again replaces the first one.
    replaced = client.get(link_in(first))
    assert replaced.status_code == 410
    assert "a newer invitation sent" in replaced.get_data(as_text=True)
    assert client.get(link_in(second)).status_code == 200

    post(client, f"/desk/admin/users/{awa.id}/deactivate")
    db.session.refresh(awa)
    assert account_state(awa) == AccountState.DEACTIVATED
    assert awa.password_hash == NO_PASSWORD
    for message in (first, second):
        response = client.get(link_in(message))
        assert response.status_code == 410
    # Reactivating an account that never chose a password invites it again.
    post(client, f"/desk/admin/users/{awa.id}/reactivate")
    db.session.refresh(awa)
    assert account_state(awa) == AccountState.INVITED
    third = outbox("account.invitation", "awa@desk.test")[-1]
    assert choose_password(client, link_in(third)).status_code == 302


def test_an_invitation_for_an_address_in_use_is_refused(client, cast):
    log_in(client, cast.admin)
    response = invite(client, email="Editor@desk.test")
    assert response.status_code == 302
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "There is already an account for editor@desk.test." in follow
    assert outbox("account.invitation") == []
    assert audit_rows("user.invited") == []


def test_a_password_too_short_or_mistyped_is_refused_and_the_link_still_works(client, cast):
    log_in(client, cast.admin)
    invite(client)
    path = link_in(outbox("account.invitation")[0])
    short = post(client, path, {"password": "short", "confirm": "short"})
    assert short.status_code == 200
    assert "Use at least 12 characters" in short.get_data(as_text=True)
    differ = post(client, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"})
    assert "The two passwords differ." in differ.get_data(as_text=True)
    as_email = post(client, path, {"password": "awa@desk.test", "confirm": "awa@desk.test"})
    assert "other than your email address" in as_email.get_data(as_text=True)
    assert not user_by_email("awa@desk.test").is_active
    assert choose_password(client, path).status_code == 302


# --------------------------------------------------------------------------- password resets


def test_forgot_password_sends_a_link_that_sets_a_new_password(client, create_staff):
    create_staff(Role.EDITOR, email="mariam@desk.test")
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/desk/password/forgot"' in page
    response = post(client, "/desk/password/forgot", {"email": " Mariam@Desk.test "})
    assert urlsplit(response.headers["Location"]).path == "/login"
    said = client.get("/login").get_data(as_text=True)
    assert "If mariam@desk.test belongs to an active account" in said
    [email] = outbox("account.password_reset", "mariam@desk.test")
    path = link_in(email)
    assert "Choose a new password" in client.get(path).get_data(as_text=True)
    assert choose_password(client, path).status_code == 302
    assert real_login(client, "mariam@desk.test", NEW_PASSWORD).status_code == 302
    [sent] = audit_rows("user.password_reset_sent")
    assert sent.actor_id is None and sent.data["asked_by"] == "owner"
    [reset] = audit_rows("user.password_reset")
    assert reset.data["after"]["password"] == "changed"


@pytest.mark.parametrize("email", ["nobody@desk.test", "gone@desk.test", "new@desk.test"])
def test_forgot_password_says_the_same_and_sends_nothing_for_other_addresses(
    app, cast, create_staff, email
):
    gone = create_staff(Role.EDITOR, email="gone@desk.test")
    gone.is_active = False
    admin = app.test_client()
    log_in(admin, cast.admin)
    invite(admin, email="new@desk.test")
    db.session.execute(sa.delete(OutboxMessage))
    db.session.commit()
    client = app.test_client()
    response = post(client, "/desk/password/forgot", {"email": email})
    assert urlsplit(response.headers["Location"]).path == "/login"
    said = client.get("/login").get_data(as_text=True)
    assert f"If {email} belongs to an active account" in said
    assert outbox("account.password_reset") == []


def test_an_admin_sends_a_reset_link(client, cast, create_staff):
    mariam = create_staff(Role.EDITOR, email="mariam@desk.test")
    log_in(client, cast.admin)
    post(client, f"/desk/admin/users/{mariam.id}/password-reset")
    [email] = outbox("account.password_reset", "mariam@desk.test")
    assert "Admin asked for a link" in email.text
    [sent] = audit_rows("user.password_reset_sent")
    assert sent.actor_id == cast.admin.id


def _reset_link(client, create_staff) -> tuple[User, str]:
    mariam = create_staff(Role.EDITOR, email="mariam@desk.test")
    post(client, "/desk/password/forgot", {"email": "mariam@desk.test"})
    return mariam, link_in(outbox("account.password_reset")[0])


def test_a_used_reset_link_says_so_and_changes_nothing(client, create_staff):
    mariam, path = _reset_link(client, create_staff)
    choose_password(client, path)
    response = post(
        client, path, {"password": "third long password", "confirm": "third long password"}
    )
    assert response.status_code == 410
    html = response.get_data(as_text=True)
    assert "This link has already been used" in html
    assert 'href="/desk/password/forgot"' in html
    db.session.refresh(mariam)
    assert mariam.check_password(NEW_PASSWORD)


def test_an_expired_reset_link_says_so(client, create_staff, monkeypatch):
    mariam, path = _reset_link(client, create_staff)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + tokens.RESET_HOURS * 3600 + 5)
    response = client.get(path)
    assert response.status_code == 410
    assert "This link has expired" in response.get_data(as_text=True)
    refused = post(client, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert refused.status_code == 410
    db.session.refresh(mariam)
    assert not mariam.check_password(NEW_PASSWORD)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-3],
        lambda token: token[:10] + ("A" if token[10] != "A" else "B") + token[11:],
        lambda token: "x" + token,
    ],
    ids=["truncated", "altered", "prefixed"],
)
def test_a_tampered_reset_link_does_not_work(client, create_staff, tamper):
    mariam, path = _reset_link(client, create_staff)
    prefix, token = path.rsplit("/", 1)
    broken = f"{prefix}/{tamper(token)}"
    response = client.get(broken)
    assert response.status_code == 404
    assert "This link does not work" in response.get_data(as_text=True)
    post(client, broken, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    db.session.refresh(mariam)
    assert not mariam.check_password(NEW_PASSWORD)


def test_an_invitation_link_cannot_reset_a_password_nor_the_other_way_round(client, cast):
    log_in(client, cast.admin)
    invite(client)
    invitation = link_in(outbox("account.invitation")[0])
    token = invitation.rsplit("/", 1)[1]
    assert client.get(f"/desk/password/reset/{token}").status_code == 404


def test_a_reset_link_stops_working_when_the_account_is_deactivated(client, cast, create_staff):
    mariam, path = _reset_link(client, create_staff)
    log_in(client, cast.admin)
    post(client, f"/desk/admin/users/{mariam.id}/deactivate")
    response = client.get(path)
    assert response.status_code == 410


# --------------------------------------------------------------------------- deactivation


def test_deactivation_ends_the_session_and_the_login(app, cast, create_staff):
    mariam = create_staff(Role.EDITOR, email="mariam@desk.test", countries=("ML",))
    theirs, ours = app.test_client(), app.test_client()
    assert real_login(theirs, "mariam@desk.test").status_code == 302
    assert theirs.get("/desk/inbox").status_code == 200

    log_in(ours, cast.admin)
    response = post(ours, f"/desk/admin/users/{mariam.id}/deactivate")
    assert response.status_code == 302

    ended = theirs.get("/desk/inbox")
    assert ended.status_code == 302
    assert urlsplit(ended.headers["Location"]).path == "/login"
    refused = real_login(theirs, "mariam@desk.test")
    assert refused.status_code == 200
    assert "do not match an active account" in refused.get_data(as_text=True)
    [row] = audit_rows("user.deactivated")
    assert (row.actor_id, row.data["before"], row.data["after"]) == (
        cast.admin.id,
        {"state": "active"},
        {"state": "deactivated"},
    )

    post(ours, f"/desk/admin/users/{mariam.id}/reactivate")
    # The session opened before the deactivation does not come back with the account.
    assert theirs.get("/desk/inbox").status_code == 302
    again = app.test_client()
    assert real_login(again, "mariam@desk.test").status_code == 302
    assert again.get("/desk/inbox").status_code == 200
    assert audit_rows("user.reactivated")[0].data["after"] == {"state": "active"}


def test_a_new_password_ends_the_sessions_opened_with_the_old_one(app, create_staff):
    create_staff(Role.EDITOR, email="mariam@desk.test", countries=("ML",))
    stolen, own = app.test_client(), app.test_client()
    assert real_login(stolen, "mariam@desk.test").status_code == 302
    assert stolen.get("/desk/inbox").status_code == 200

    post(own, "/desk/password/forgot", {"email": "mariam@desk.test"})
    choose_password(own, link_in(outbox("account.password_reset")[0]))

    assert urlsplit(stolen.get("/desk/inbox").headers["Location"]).path == "/login"
    assert real_login(own, "mariam@desk.test", NEW_PASSWORD).status_code == 302
    assert own.get("/desk/inbox").status_code == 200


def test_a_session_that_names_a_bare_user_id_finds_nobody(client, create_staff):
    """Sessions from before session versions (or forged shapes) are not logged in."""
    mariam = create_staff(Role.EDITOR, email="mariam@desk.test", countries=("ML",))
    for user_id in (str(mariam.id), f"{mariam.id}.", f"{mariam.id}.x", f".{mariam.id}"):
        with client.session_transaction() as browser_session:
            browser_session["_user_id"] = user_id
            browser_session["_fresh"] = True
        assert client.get("/desk/inbox").status_code == 302, user_id
    log_in(client, mariam)
    assert client.get("/desk/inbox").status_code == 200


def test_an_admin_cannot_deactivate_or_demote_themselves(client, cast):
    log_in(client, cast.admin)
    response = post(client, f"/desk/admin/users/{cast.admin.id}/deactivate")
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You cannot deactivate your own account" in follow
    post(client, f"/desk/admin/users/{cast.admin.id}/role", {"role": "editor"})
    db.session.refresh(cast.admin)
    assert cast.admin.is_active and cast.admin.role == Role.ADMIN
    assert audit_rows("user.deactivated") == audit_rows("user.role_changed") == []


# --------------------------------------------------------------------------- roles


def test_an_admin_changes_a_role_and_it_takes_effect(client, app, cast):
    log_in(client, cast.admin)
    response = post(client, f"/desk/admin/users/{cast.editor.id}/role", {"role": "manager"})
    assert response.status_code == 302
    db.session.refresh(cast.editor)
    assert cast.editor.role == Role.MANAGER
    [row] = audit_rows("user.role_changed")
    assert row.data == {"before": {"role": "editor"}, "after": {"role": "manager"}}
    theirs = app.test_client()
    log_in(theirs, cast.editor)
    assert theirs.get("/desk/admin/users").status_code == 200
    assert (
        post(theirs, f"/desk/admin/users/{cast.admin.id}/role", {"role": "editor"}).status_code
        == 403
    )


def test_an_unknown_role_is_refused(client, cast):
    log_in(client, cast.admin)
    post(client, f"/desk/admin/users/{cast.editor.id}/role", {"role": "owner"})
    db.session.refresh(cast.editor)
    assert cast.editor.role == Role.EDITOR


def test_the_user_list_shows_role_countries_state_and_last_login(client, cast, create_staff):
    create_staff(Role.EDITOR, email="mariam@desk.test", countries=("ML",), leads=("NE",))
    real_login(client, "mariam@desk.test")
    log_in(client, cast.admin)
    invite(client, email="awa@desk.test")
    html = client.get("/desk/admin/users").get_data(as_text=True)
    row = html[html.index("mariam@desk.test") :].split("</tr>")[0]
    assert "Mali" in row and "Niger</a> (lead)" in row and "active" in row
    assert "<time" in row
    awa = html[html.index("awa@desk.test") :].split("</tr>")[0]
    assert "invited" in awa and "never" in awa
