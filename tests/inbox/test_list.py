"""The inbox list: views, filters, counts, bulk actions, saved views; and the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from desk.accounts.models import SavedView
from desk.core.audit import AuditEvent
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import Channel, FeedbackStatus, Resolution
from desk.inbox import queries
from desk.inbox.queries import InboxQuery, View, view_counts
from desk.profiles.models import AutoAssign
from desk.profiles.operations import ensure_country
from tests.inbox.conftest import PDF, log_in, post_form


@pytest.fixture
def desk(staff, create_feedback):
    """A small desk: Mali items in several states, a French one, an unrouted and a held one."""
    ensure_country("ML").auto_assign = AutoAssign.NONE
    db.session.commit()
    now = utcnow()
    items = {
        "fresh": create_feedback("ML", message="Fresh news", received_at=now),
        "week": create_feedback(
            "ML",
            message="A week old, with a file",
            received_at=now - timedelta(days=5),
            files=(("proof.pdf", PDF),),
        ),
        "old": create_feedback(
            "ML",
            message="Old by email",
            received_at=now - timedelta(days=40),
            channel=Channel.EMAIL,
        ),
        "france": create_feedback("FR", message="About France"),
        "lost": create_feedback(None, message="No country"),
        "held": create_feedback("ML", message="Cheap pills", spam_signs=("honeypot",)),
    }
    items["week"].assignee = staff.editor
    db.session.commit()
    return items


def listed(client, query: str = "") -> str:
    response = client.get(f"/desk/inbox?{query}", follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def refs(html: str, desk: dict) -> set[str]:
    return {name for name, item in desk.items() if item.reference in html}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"fresh", "week", "old"}),
        ("view=mine", {"week"}),
        ("view=unassigned", {"fresh", "old"}),
        ("view=quarantine", {"held"}),
        ("view=all", {"fresh", "week", "old"}),
        ("has_attachments=1", {"week"}),
        ("channel=email", {"old"}),
        ("age=0-2", {"fresh"}),
        ("age=3-7", {"week"}),
        ("age=31%2B", {"old"}),
        ("assignee=me", {"week"}),
        ("assignee=none", {"fresh", "old"}),
        ("q=file", {"week"}),
        ("view=unrouted", {"fresh", "week", "old"}),
    ],
)
def test_an_editors_views_and_filters(client, staff, desk, query, expected):
    log_in(client, staff.editor)
    assert refs(listed(client, query), desk) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"fresh", "week", "old", "france", "lost"}),
        ("view=unrouted", {"lost"}),
        ("view=quarantine", {"held"}),
        ("country=FR", {"france"}),
        ("view=all&status=closed", set()),
        ("view=all&sort=oldest", {"fresh", "week", "old", "france", "lost"}),
    ],
)
def test_a_managers_views_and_filters(client, staff, desk, query, expected):
    log_in(client, staff.manager)
    assert refs(listed(client, query), desk) == expected


def test_received_date_range_and_profile_filters(client, staff, desk):
    log_in(client, staff.editor)
    week = desk["week"].received_at.date()
    html = listed(client, f"received_from={week}&received_to={week}")
    assert refs(html, desk) == {"week"}
    profile = desk["fresh"].profile
    html = listed(client, f"profile={profile.id}&section={desk['fresh'].section_id}")
    assert refs(html, desk) == {"fresh", "week", "old"}


def test_a_filter_naming_another_countrys_profile_is_dropped(client, staff, desk):
    log_in(client, staff.editor)
    html = listed(client, f"profile={desk['france'].profile_id}")
    assert refs(html, desk) == {"fresh", "week", "old"}
    assert "Not a valid choice" in html


def test_counts_per_view(staff, desk, monkeypatch):
    counts = view_counts(staff.editor)
    assert counts == {View.COUNTRIES: 3, View.MINE: 1, View.UNASSIGNED: 2, View.QUARANTINE: 1}
    monkeypatch.setattr(queries, "COUNT_CAP", 1)
    assert view_counts(staff.editor)[View.COUNTRIES] == 2


def test_a_capped_count_shows_a_plus(client, staff, desk, monkeypatch):
    monkeypatch.setattr(queries, "COUNT_CAP", 2)
    log_in(client, staff.editor)
    assert "2+" in listed(client)


def test_bulk_assign_to_me_and_spam(client, staff, desk):
    log_in(client, staff.editor)
    ids = [desk["fresh"].id, desk["old"].id]
    response = post_form(
        client,
        "/desk/inbox/bulk",
        {"ids": ids, "action": "assign", "assignee": "me", "next": "/desk/inbox?view=mine"},
    )
    assert response.headers["Location"] == "/desk/inbox?view=mine"
    assert "2 items assigned." in listed(client, "view=mine")
    db.session.expire_all()
    assert desk["fresh"].assignee == staff.editor and desk["old"].assignee == staff.editor
    post_form(client, "/desk/inbox/bulk", {"ids": ids, "action": "spam"})
    db.session.expire_all()
    assert {desk["fresh"].resolution, desk["old"].resolution} == {Resolution.SPAM}


def test_bulk_refusals_are_listed_and_the_rest_is_done(client, staff, desk):
    desk["fresh"].assignee = staff.lead
    db.session.commit()
    log_in(client, staff.editor)
    post_form(
        client,
        "/desk/inbox/bulk",
        {"ids": [desk["fresh"].id, desk["old"].id], "action": "assign", "assignee": "me"},
    )
    html = listed(client)
    assert "1 item assigned." in html
    assert "Only a lead editor or a manager" in html
    db.session.expire_all()
    assert desk["fresh"].assignee == staff.lead
    assert desk["old"].assignee == staff.editor


def test_bulk_status_close_and_duplicates(client, staff, desk):
    log_in(client, staff.editor)
    post_form(
        client,
        "/desk/inbox/bulk",
        {"ids": [desk["fresh"].id, desk["week"].id], "action": "status", "status": "in_review"},
    )
    db.session.expire_all()
    assert desk["fresh"].status == desk["week"].status == FeedbackStatus.IN_REVIEW
    post_form(
        client,
        "/desk/inbox/bulk",
        {
            "ids": [desk["fresh"].id, desk["week"].id, desk["old"].id],
            "action": "duplicate",
            "original": desk["old"].reference,
        },
    )
    db.session.expire_all()
    assert desk["fresh"].duplicate_of == desk["old"] and desk["week"].duplicate_of == desk["old"]
    assert desk["old"].status == FeedbackStatus.NEW
    post_form(client, "/desk/inbox/bulk", {"ids": [desk["old"].id], "action": "close"})
    assert "Write the reason for taking no action first." in listed(client)
    post_form(
        client,
        "/desk/inbox/bulk",
        {"ids": [desk["old"].id], "action": "close", "reason": "Answered by phone."},
    )
    db.session.expire_all()
    assert desk["old"].resolution_note == "Answered by phone."


def test_bulk_on_an_item_the_user_cannot_see_is_a_404(client, staff, desk):
    log_in(client, staff.editor)
    response = post_form(
        client,
        "/desk/inbox/bulk",
        {"ids": [desk["fresh"].id, desk["france"].id], "action": "spam"},
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert desk["fresh"].status == FeedbackStatus.NEW


def test_release_from_the_quarantine_view(client, staff, desk):
    log_in(client, staff.editor)
    assert 'value="release"' in listed(client, "view=quarantine")
    post_form(client, "/desk/inbox/bulk", {"ids": [desk["held"].id], "action": "release"})
    db.session.expire_all()
    assert not desk["held"].is_quarantined


def test_saved_views_belong_to_their_user(client, staff, desk):
    log_in(client, staff.editor)
    response = post_form(
        client,
        "/desk/inbox/views",
        {"name": "Files", "query": "view=countries&has_attachments=1&status=open&after=junk"},
    )
    assert response.headers["Location"] == "/desk/inbox?view=countries&has_attachments=1"
    saved = db.session.scalar(sa.select(SavedView))
    assert saved.query == {"view": "countries", "has_attachments": "1"}
    html = listed(client)
    assert "Files</a>" in html and "has_attachments=1" in html
    post_form(client, "/desk/inbox/views", {"name": "Files", "query": "view=mine"})
    assert db.session.scalar(sa.select(SavedView.query)) == {"view": "mine"}

    log_in(client, staff.lead)
    assert "Files</a>" not in listed(client)
    assert post_form(client, f"/desk/inbox/views/{saved.id}/delete").status_code == 404
    log_in(client, staff.editor)
    post_form(client, f"/desk/inbox/views/{saved.id}/delete")
    assert db.session.scalar(sa.select(SavedView)) is None
    actions = db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.object_type == "saved_view")
    ).all()
    assert actions == ["saved_view.saved", "saved_view.saved", "saved_view.deleted"]


def test_inbox_query_round_trips_through_its_query_string():
    query = InboxQuery(view=View.MINE, q="côte", has_attachments=True, sort="oldest")
    assert query.to_args() == {
        "view": "mine",
        "q": "côte",
        "has_attachments": "1",
        "sort": "oldest",
    }
    assert InboxQuery(view=View.ALL).to_args() == {"view": "all"}


def test_the_audit_log_filters(client, staff, desk):
    log_in(client, staff.lead)
    post_form(client, f"/desk/feedback/{desk['fresh'].reference}/note", {"note-text": "Hm."})
    post_form(client, f"/desk/feedback/{desk['old'].reference}/spam")
    log_in(client, staff.admin)
    everything = client.get("/desk/audit").get_data(as_text=True)
    assert "feedback.noted" in everything and "feedback.marked_spam" in everything
    by_lead = client.get(f"/desk/audit?actor={staff.lead.id}").get_data(as_text=True)
    assert "feedback.noted" in by_lead and "user.created" not in by_lead
    spam = client.get("/desk/audit?action=feedback.marked").get_data(as_text=True)
    assert "feedback.marked_spam" in spam and "feedback.noted" not in spam
    one = client.get(f"/desk/audit?object={desk['fresh'].reference}").get_data(as_text=True)
    assert "feedback.noted" in one and "feedback.marked_spam" not in one
    today = utcnow().date()
    assert "feedback.noted" in client.get(f"/desk/audit?date_from={today}").get_data(as_text=True)
    past = client.get(f"/desk/audit?date_to={today - timedelta(days=1)}").get_data(as_text=True)
    assert "No audit rows match." in past
    bad = client.get("/desk/audit?object=%22%3B").get_data(as_text=True)
    assert "Write a reference" in bad
