"""The item page and its forms, through HTTP as a browser without JavaScript uses them."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from desk.core.audit import AuditEvent
from desk.extensions import db
from desk.feedback.models import EventKind, FeedbackStatus, Resolution, ScanStatus
from desk.notify.models import OutboxMessage
from tests.inbox.conftest import PDF, log_in, png_bytes, post_form


@pytest.fixture
def item(staff, create_feedback):
    return create_feedback(
        "ML",
        message="The stockpile figure is out of date.\nSee the attached report.",
        submitter_name="Amadou Maiga",
        submitter_email="amadou@example.org",
        files=(("report.pdf", PDF), ("photo.png", png_bytes()), ("page.html", b"<html></html>")),
    )


def page(client, reference: str) -> str:
    response = client.get(f"/desk/feedback/{reference}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_page_shows_message_reader_section_files_and_timeline(client, staff, item):
    log_in(client, staff.editor)
    html = page(client, item.reference)
    assert "The stockpile figure is out of date.\nSee the attached report." in html
    assert "Amadou Maiga" in html and "amadou@example.org" in html
    assert "Overview" in html and "The overview." in html
    assert f"/desk/feedback/{item.reference}/files/{item.attachments[0].id}" in html
    assert f"files/{item.attachments[1].id}/preview" in html
    assert "page.html" in html and "not kept" in html
    for title in ("Received by the web form", "Routed to ML", "Assigned to Lead Ml"):
        assert title in html
    assert "Keyboard shortcuts" in html


def test_the_readers_address_ip_is_for_admins_only(client, staff, item):
    item.submitter_ip = "203.0.113.7"
    db.session.commit()
    log_in(client, staff.manager)
    assert "203.0.113.7" not in page(client, item.reference)
    log_in(client, staff.admin)
    assert "203.0.113.7" in page(client, item.reference)


def test_a_file_not_yet_scanned_is_not_served(client, staff, item):
    attachment = item.attachments[0]
    attachment.scan_status = ScanStatus.PENDING
    db.session.commit()
    log_in(client, staff.editor)
    response = client.get(f"/desk/feedback/{item.reference}/files/{attachment.id}")
    assert response.status_code == 409
    assert "waiting for the virus scan" in page(client, item.reference)


def test_only_images_and_pdfs_are_previewed(client, staff, create_feedback):
    text = create_feedback("ML", files=(("notes.txt", b"plain words\n" * 20),))
    log_in(client, staff.editor)
    attachment = text.attachments[0]
    assert attachment.content_type == "text/plain"
    preview = client.get(f"/desk/feedback/{text.reference}/files/{attachment.id}/preview")
    assert preview.status_code == 404
    download = client.get(f"/desk/feedback/{text.reference}/files/{attachment.id}")
    assert download.headers["Content-Disposition"].startswith("attachment")


def test_a_note_and_a_reply_through_the_forms(client, staff, item):
    log_in(client, staff.editor)
    response = post_form(
        client, f"/desk/feedback/{item.reference}/note", {"note-text": "Asked the lead."}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/desk/feedback/{item.reference}"
    response = post_form(
        client,
        f"/desk/feedback/{item.reference}/reply",
        {"reply-subject": "Your report", "reply-text": "Thank you, we are on it."},
    )
    assert response.status_code == 302
    html = page(client, item.reference)
    assert "Reply to amadou@example.org is on its way." in html
    assert "Asked the lead." in html
    assert "Thank you, we are on it." in html
    message = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "feedback.reply")
    )
    assert message.subject == f"Your report [{item.reference}]"


def test_an_empty_reply_keeps_what_else_was_typed_and_says_what_is_missing(client, staff, item):
    log_in(client, staff.editor)
    response = post_form(
        client,
        f"/desk/feedback/{item.reference}/reply",
        {"reply-subject": "My careful subject", "reply-text": "  "},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Write the reply first." in html
    assert 'value="My careful subject"' in html


def test_closing_without_a_reason_is_refused(client, staff, item):
    log_in(client, staff.editor)
    response = post_form(client, f"/desk/feedback/{item.reference}/close", {"close-reason": ""})
    assert response.status_code == 422
    assert "Say why no action is needed." in response.get_data(as_text=True)
    db.session.refresh(item)
    assert item.status == FeedbackStatus.NEW


def test_a_refused_change_is_explained_and_changes_nothing(client, staff, item):
    log_in(client, staff.editor)
    response = post_form(
        client, f"/desk/feedback/{item.reference}/assign", {"assign-assignee": "me"}
    )
    assert response.status_code == 302
    assert "Only a lead editor or a manager" in page(client, item.reference)
    db.session.refresh(item)
    assert item.assignee == staff.lead


def test_duplicate_then_reopen_through_the_forms(client, staff, item, create_feedback):
    copy = create_feedback("ML", message="Same as before.")
    log_in(client, staff.editor)
    post_form(
        client,
        f"/desk/feedback/{copy.reference}/duplicate",
        {"duplicate-original": item.reference.lower()},
    )
    db.session.refresh(copy)
    assert (copy.resolution, copy.duplicate_of) == (Resolution.DUPLICATE, item)
    original = page(client, item.reference)
    assert f"{copy.reference} merged into this item" in original
    assert "Merged into this item:" in original
    post_form(client, f"/desk/feedback/{copy.reference}/reopen")
    db.session.refresh(copy)
    assert copy.status == FeedbackStatus.TRIAGED


def test_a_duplicate_of_an_item_the_user_cannot_see_is_refused(
    client, staff, item, create_feedback
):
    france = create_feedback("FR", message="About France.")
    log_in(client, staff.editor)
    post_form(
        client,
        f"/desk/feedback/{item.reference}/duplicate",
        {"duplicate-original": france.reference},
    )
    assert f"No item {france.reference} that you can see." in page(client, item.reference)
    db.session.refresh(item)
    assert item.status == FeedbackStatus.NEW


def test_spam_and_status_from_the_page(client, staff, item):
    log_in(client, staff.lead)
    post_form(client, f"/desk/feedback/{item.reference}/status", {"status-status": "triaged"})
    db.session.refresh(item)
    assert item.status == FeedbackStatus.TRIAGED
    post_form(client, f"/desk/feedback/{item.reference}/spam")
    db.session.refresh(item)
    assert item.resolution == Resolution.SPAM
    html = page(client, item.reference)
    assert "Not spam: reopen" in html


def test_the_next_field_only_goes_back_into_the_desk(client, staff, item):
    log_in(client, staff.lead)
    for target, expected in [
        ("/desk/inbox?view=mine", "/desk/inbox?view=mine"),
        ("https://evil.example/desk/", f"/desk/feedback/{item.reference}"),
        ("//evil.example/desk/", f"/desk/feedback/{item.reference}"),
    ]:
        response = post_form(
            client, f"/desk/feedback/{item.reference}/note", {"note-text": "x", "note-next": target}
        )
        assert response.headers["Location"] == expected


def test_the_review_task_button_appears_only_with_its_route(app, client, staff, item, monkeypatch):
    log_in(client, staff.editor)
    if "reviews.new_task" in app.view_functions:
        html = page(client, item.reference)
        assert f"feedback={item.reference}" in html
        assert "Open review task" in html
        monkeypatch.delitem(app.view_functions, "reviews.new_task")
    assert "Open review task" not in page(client, item.reference)


def test_the_tasks_link_appears_only_with_its_route(app, client, staff, monkeypatch):
    log_in(client, staff.editor)
    endpoints = [e for e in ("reviews.task_list", "reviews.tasks") if e in app.view_functions]
    if endpoints:
        assert ">Tasks</a>" in client.get("/desk/").get_data(as_text=True)
    for endpoint in endpoints:
        monkeypatch.delitem(app.view_functions, endpoint)
    assert ">Tasks</a>" not in client.get("/desk/").get_data(as_text=True)


def test_every_write_is_audited_with_the_actor(client, staff, item):
    log_in(client, staff.lead)
    post_form(client, f"/desk/feedback/{item.reference}/note", {"note-text": "One"})
    post_form(client, f"/desk/feedback/{item.reference}/status", {"status-status": "triaged"})
    post_form(client, f"/desk/feedback/{item.reference}/close", {"close-reason": "Fine as is."})
    rows = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.object_type == "feedback").order_by(AuditEvent.id)
    ).all()
    assert [(r.action, r.actor_id) for r in rows] == [
        ("feedback.noted", staff.lead.id),
        ("feedback.status_changed", staff.lead.id),
        ("feedback.closed", staff.lead.id),
    ]
    assert rows[-1].data["before"] == {"resolution": None, "status": "triaged"}
    assert rows[-1].data["after"] == {"resolution": "no_action", "status": "closed"}
    kinds = [e.kind for e in item.events]
    assert kinds[-3:] == [EventKind.NOTE, EventKind.STATUS_CHANGED, EventKind.STATUS_CHANGED]


def test_an_unrouted_item_is_sent_to_a_country(client, staff, create_feedback):
    lost = create_feedback(None, message="Which country?")
    log_in(client, staff.manager)
    html = page(client, lost.reference)
    assert re.search(r'name="route-country"', html)
    post_form(client, f"/desk/feedback/{lost.reference}/route", {"route-country": "ML"})
    db.session.refresh(lost)
    assert lost.country.code == "ML"


def test_the_home_page_leads_to_each_profiles_staff_page_and_the_nav_to_mail(client, staff, item):
    log_in(client, staff.editor)
    home = client.get("/desk/").get_data(as_text=True)
    assert f'href="/desk/profiles/{item.profile_id}"' in home
    assert 'href="/desk/me/notifications"' in home
    assert 'href="/desk/outbox"' not in home, "the outbox is for managers and admins"

    log_in(client, staff.manager)
    assert 'href="/desk/outbox"' in client.get("/desk/").get_data(as_text=True)
