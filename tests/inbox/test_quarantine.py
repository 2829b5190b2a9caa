"""The quarantine page: who sees which held items, and the one-click release."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from desk.accounts.models import Role
from desk.core.audit import AuditEvent
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import Channel, EventKind, Feedback
from desk.feedback.operations import Submission, receive_feedback
from desk.inbox import quarantine
from desk.notify.models import OutboxMessage
from tests.conftest import csrf_token_from

PAGE = "/desk/quarantine"


@pytest.fixture
def create_suspect(create_profile):
    """An item held at intake with the given signs (none: a clean item), on a country's profile."""
    profiles = {}

    def make(country="ML", *, message=None, received_at=None, signs=("honeypot",)):
        if country not in profiles:
            profiles[country] = create_profile(country)
        result = receive_feedback(
            Submission(
                channel=Channel.WEB,
                profile=profiles[country],
                message=message or f"Cheap pills for {country}, message {len(profiles)}.",
                submitter_email=f"reader-{country.lower()}@example.org",
                spam_signs=list(signs),
                received_at=received_at,
            )
        )
        db.session.commit()
        assert result.feedback.is_quarantined == bool(signs)
        return result.feedback

    return make


def released_audits():
    return sa.select(sa.func.count()).where(AuditEvent.action == "feedback.released")


def login_as(auth, create_staff, role, countries=()):
    user = create_staff(role, countries=countries)
    auth.login(user.email)
    return user


def release(client, item):
    token = csrf_token_from(client.get(PAGE).get_data(as_text=True))
    return client.post(f"{PAGE}/{item.id}/release", data={"csrf_token": token})


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_editor_sees_the_suspects_of_their_countries_only(
    client, auth, create_staff, create_suspect
):
    mali = create_suspect("ML")
    france = create_suspect("FR")
    login_as(auth, create_staff, Role.EDITOR, countries=("ML",))
    html = client.get(PAGE).get_data(as_text=True)
    assert mali.reference in html
    assert france.reference not in html
    assert "filled in the hidden field that only robots see" in html
    assert "reader-ml@example.org" in html


def test_editor_of_another_country_cannot_see_or_release(
    client, auth, create_staff, create_suspect
):
    mali = create_suspect("ML")
    login_as(auth, create_staff, Role.EDITOR, countries=("FR",))
    assert mali.reference not in client.get(PAGE).get_data(as_text=True)
    assert release(client, mali).status_code == 404
    db.session.refresh(mali)
    assert mali.is_quarantined
    assert db.session.scalar(released_audits()) == 0


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN])
def test_managers_and_admins_see_every_suspect(client, auth, create_staff, create_suspect, role):
    suspects = [create_suspect("ML"), create_suspect("FR")]
    unrouted = receive_feedback(
        Submission(channel=Channel.EMAIL, message="Win a prize now", spam_signs=["honeypot"])
    ).feedback
    db.session.commit()
    login_as(auth, create_staff, role)
    html = client.get(PAGE).get_data(as_text=True)
    for item in [*suspects, unrouted]:
        assert item.reference in html
    assert "Unrouted" in html


def test_items_not_in_quarantine_are_not_listed(client, auth, create_staff, create_suspect):
    clean = create_suspect("ML", signs=())
    login_as(auth, create_staff, Role.MANAGER)
    assert clean.reference not in client.get(PAGE).get_data(as_text=True)


def test_release_puts_the_item_in_the_inbox_and_queues_the_acknowledgement(
    client, auth, create_staff, create_suspect
):
    item = create_suspect("ML")
    editor = login_as(auth, create_staff, Role.EDITOR, countries=("ML",))
    response = release(client, item)
    assert response.status_code == 302
    assert response.headers["Location"] == PAGE
    page = client.get(PAGE).get_data(as_text=True)
    assert f"{item.reference} is released to the inbox." in page
    assert f'<th scope="row">{item.reference}</th>' not in page

    db.session.refresh(item)
    assert not item.is_quarantined
    [released] = [event for event in item.events if event.kind == EventKind.RELEASED]
    assert released.actor_id == editor.id
    assert released.data["signs"] == ["honeypot"]
    message = db.session.scalar(
        sa.select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"feedback.acknowledgement:{item.reference}"
        )
    )
    assert message is not None
    assert message.recipient == "reader-ml@example.org"
    audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "feedback.released"))
    assert audit is not None
    assert audit.actor_id == editor.id
    assert (audit.object_type, audit.object_id) == ("feedback", str(item.id))
    assert audit.data["reference"] == item.reference
    assert audit.data["after"] == {"is_quarantined": False}


def test_releasing_twice_changes_nothing_more(client, auth, create_staff, create_suspect):
    item = create_suspect("ML")
    login_as(auth, create_staff, Role.MANAGER)
    release(client, item)
    second = release(client, item)
    assert second.status_code == 302
    assert "already in the inbox" in client.get(PAGE).get_data(as_text=True)
    db.session.expire_all()
    kinds = [event.kind for event in db.session.get(Feedback, item.id).events]
    assert kinds.count(EventKind.RELEASED) == 1
    assert db.session.scalar(released_audits()) == 1


def test_release_without_a_csrf_token_is_refused(client, auth, create_staff, create_suspect):
    item = create_suspect("ML")
    login_as(auth, create_staff, Role.MANAGER)
    response = client.post(f"{PAGE}/{item.id}/release")
    assert response.status_code == 400
    db.session.refresh(item)
    assert item.is_quarantined


def test_older_items_are_on_the_next_page(client, auth, create_staff, create_suspect, monkeypatch):
    monkeypatch.setattr(quarantine, "PAGE_SIZE", 2)
    start = utcnow() - timedelta(hours=1)
    oldest, middle, newest = (
        create_suspect("ML", message=f"Suspect {n}", received_at=start + timedelta(minutes=n))
        for n in range(3)
    )
    login_as(auth, create_staff, Role.MANAGER)
    first = client.get(PAGE).get_data(as_text=True)
    assert newest.reference in first and middle.reference in first
    assert oldest.reference not in first
    assert f"{PAGE}?before={middle.id}" in first
    second = client.get(f"{PAGE}?before={middle.id}").get_data(as_text=True)
    assert oldest.reference in second
    assert newest.reference not in second and middle.reference not in second
