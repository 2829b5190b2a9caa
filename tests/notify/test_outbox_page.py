"""The admin outbox page, its retry buttons, and each staff member's notification choice."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from desk.accounts.models import NotificationMode, Role
from desk.core.audit import AuditEvent
from desk.core.time import utcnow
from desk.extensions import db
from desk.notify.models import OutboxMessage, OutboxState
from desk.notify.outbox import build_message
from tests.conftest import csrf_token_from


def message(recipient: str, state: OutboxState, *, kind: str = "feedback.acknowledgement", **k):
    row = OutboxMessage(
        kind=kind,
        recipient=recipient,
        subject=f"About {recipient}",
        text="Body",
        html="",
        headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        message_id=f"<{recipient}.{kind}@desk.test>",
        dedupe_key=f"{kind}:{recipient}",
        state=state,
        attempts=8 if state == OutboxState.DEAD else 0,
        last_error="SMTPRecipientsRefused: 550 no such user" if state == OutboxState.DEAD else "",
        **k,
    )
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def outbox(app):
    rows = {
        "dead": message("dead@example.org", OutboxState.DEAD),
        "sent": message("sent@example.org", OutboxState.SENT, kind="profile.updated"),
        "pending": message("pending@example.org", OutboxState.PENDING),
        "old": message(
            "old@example.org", OutboxState.SENT, created_at=utcnow() - timedelta(days=40)
        ),
    }
    db.session.commit()
    return rows


def login_as(auth, create_staff, role):
    user = create_staff(role, countries=("ML",))
    auth.login(user.email)
    return user


STAFF_PAGES = ["/desk/outbox", "/desk/me/notifications"]


@pytest.mark.parametrize("path", [*STAFF_PAGES, "/desk/outbox/1"])
def test_staff_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    ("role", "outbox_status", "retry_status"),
    [(Role.EDITOR, 403, 403), (Role.MANAGER, 200, 403), (Role.ADMIN, 200, 303)],
)
def test_who_may_see_the_outbox_and_retry(
    client, auth, create_staff, outbox, role, outbox_status, retry_status
):
    login_as(auth, create_staff, role)
    assert client.get("/desk/outbox").status_code == outbox_status
    assert client.get(f"/desk/outbox/{outbox['dead'].id}").status_code == outbox_status
    token = csrf_token_from(client.get("/desk/me/notifications").get_data(as_text=True))
    for path in (f"/desk/outbox/{outbox['dead'].id}/retry", "/desk/outbox/retry-dead"):
        response = client.post(path, data={"csrf_token": token})
        assert response.status_code == retry_status
    db.session.refresh(outbox["dead"])
    expected = OutboxState.PENDING if role == Role.ADMIN else OutboxState.DEAD
    assert outbox["dead"].state == expected


def test_the_outbox_shows_counts_and_dead_messages_with_their_error(
    client, auth, create_staff, outbox
):
    login_as(auth, create_staff, Role.ADMIN)
    html = client.get("/desk/outbox").get_data(as_text=True)
    assert "SMTPRecipientsRefused: 550 no such user" in html
    assert 'aria-label="Retry the email to dead@example.org"' in html
    assert "Retry 1 dead email" in html
    for address in ("dead@", "sent@", "pending@", "old@"):
        assert address in html


def test_managers_see_the_outbox_without_retry_buttons(client, auth, create_staff, outbox):
    login_as(auth, create_staff, Role.MANAGER)
    html = client.get("/desk/outbox").get_data(as_text=True)
    assert "dead@example.org" in html
    assert "Retry" not in html


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("state=dead", {"dead"}),
        ("state=sent", {"sent", "old"}),
        ("kind=profile.updated", {"sent"}),
        ("recipient=Pending@Example.org", {"pending"}),
        (f"day={(utcnow() - timedelta(days=40)).date().isoformat()}", {"old"}),
        ("state=sent&kind=feedback.acknowledgement", {"old"}),
    ],
)
def test_the_outbox_filters(client, auth, create_staff, outbox, query, shown):
    login_as(auth, create_staff, Role.MANAGER)
    html = client.get(f"/desk/outbox?{query}").get_data(as_text=True)
    for name, row in outbox.items():
        assert (f">{row.recipient}<" in html) == (name in shown), name


def test_the_outbox_pages_by_keyset(client, auth, create_staff, app):
    for n in range(55):
        message(f"reader{n:02}@example.org", OutboxState.SENT)
    db.session.commit()
    login_as(auth, create_staff, Role.ADMIN)
    first = client.get("/desk/outbox").get_data(as_text=True)
    assert ">reader54@example.org<" in first and ">reader05@example.org<" in first
    assert ">reader04@example.org<" not in first
    older = first.split('href="/desk/outbox?before=')[1].split('"')[0]
    second = client.get(f"/desk/outbox?before={older}").get_data(as_text=True)
    assert ">reader04@example.org<" in second and ">reader00@example.org<" in second
    assert ">reader05@example.org<" not in second


def test_a_retry_is_audited_and_due_at_once(client, auth, create_staff, outbox):
    admin = login_as(auth, create_staff, Role.ADMIN)
    dead = outbox["dead"]
    page = client.get(f"/desk/outbox/{dead.id}").get_data(as_text=True)
    assert "Retry this email" in page
    response = client.post(
        f"/desk/outbox/{dead.id}/retry", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 303
    db.session.refresh(dead)
    assert dead.state == OutboxState.PENDING
    assert dead.attempts == 0
    assert dead.next_attempt_at <= utcnow()
    audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "outbox.retried"))
    assert audit.actor_id == admin.id
    assert audit.object_id == str(dead.id)
    assert audit.data["last_error"] == "SMTPRecipientsRefused: 550 no such user"
    # A message that is not dead is not "retried".
    again = client.post(
        f"/desk/outbox/{outbox['sent'].id}/retry", data={"csrf_token": csrf_token_from(page)}
    )
    assert again.status_code == 303
    db.session.refresh(outbox["sent"])
    assert outbox["sent"].state == OutboxState.SENT


def test_retry_all_dead_keeps_to_the_filter(client, auth, create_staff, outbox, app):
    other = message("other-dead@example.org", OutboxState.DEAD, kind="profile.updated")
    db.session.commit()
    login_as(auth, create_staff, Role.ADMIN)
    page = client.get("/desk/outbox?kind=profile.updated").get_data(as_text=True)
    response = client.post(
        "/desk/outbox/retry-dead?kind=profile.updated", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 303
    db.session.refresh(other)
    db.session.refresh(outbox["dead"])
    assert other.state == OutboxState.PENDING
    assert outbox["dead"].state == OutboxState.DEAD


def test_the_message_page_shows_headers_and_text(client, auth, create_staff, app):
    row = build_message(
        "test.kind",
        "reader@example.org",
        template="subscription_manage_link",
        dedupe_key="test:page",
        manage_url="http://desk.test/subscriptions/manage/abc",
        subscriptions=[],
    )
    db.session.add(row)
    db.session.commit()
    login_as(auth, create_staff, Role.MANAGER)
    html = client.get(f"/desk/outbox/{row.id}").get_data(as_text=True)
    assert "http://desk.test/subscriptions/manage/abc" in html
    assert row.message_id.replace("<", "&lt;").replace(">", "&gt;") in html


# --------------------------------------------------------------------------- my notifications


def test_staff_choose_immediate_or_daily_digest_and_the_choice_is_audited(
    client, auth, create_staff
):
    user = login_as(auth, create_staff, Role.EDITOR)
    page = client.get("/desk/me/notifications").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="immediate"', page)
    response = client.post(
        "/desk/me/notifications",
        data={"csrf_token": csrf_token_from(page), "mode": "daily_digest"},
    )
    assert response.status_code == 303
    db.session.refresh(user)
    assert user.notification_mode == NotificationMode.DAILY_DIGEST
    audit = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "user.notification_mode_changed")
    )
    assert audit.actor_id == user.id
    assert audit.data == {"before": "immediate", "after": "daily_digest"}
    assert "Your choice is saved." in client.get("/desk/me/notifications").get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
@pytest.mark.parametrize(
    "kind", ["account.invitation", "account.password_reset", "subscription.confirm"]
)
def test_an_email_carrying_a_personal_link_is_listed_but_its_text_is_not_shown(
    client, auth, create_staff, role, kind
):
    link = "http://desk.test/desk/admin/accept/SECRET-TOKEN"
    row = message("newcomer@example.org", OutboxState.SENT, kind=kind)
    row.text, row.html = f"Set your password: {link}", f'<a href="{link}">Set</a>'
    row.headers = {"X-Link": link}
    plain = message("reader@example.org", OutboxState.SENT)
    db.session.commit()
    login_as(auth, create_staff, role)

    page = client.get(f"/desk/outbox/{row.id}").get_data(as_text=True)
    assert "newcomer@example.org" in page and kind in page
    assert "SECRET-TOKEN" not in page
    assert "its text is not shown here" in page
    assert "Body" in client.get(f"/desk/outbox/{plain.id}").get_data(as_text=True)
