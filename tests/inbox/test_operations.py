"""Triage operations: who may do what, the timeline, the audit trail, first response, email."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from desk.accounts.models import NotificationMode, Role
from desk.accounts.operations import create_user
from desk.core.audit import AuditEvent
from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.email_in import process_email
from desk.feedback.models import EventKind, FeedbackStatus, Resolution
from desk.inbox.operations import (
    TriageError,
    add_note,
    assign_feedback,
    change_status,
    close_feedback,
    mark_duplicate,
    mark_spam,
    record_event,
    release_feedback,
    reopen_feedback,
    reply_to_submitter,
    route_feedback,
)
from desk.inbox.queries import duplicates_of
from desk.notify.models import OutboxMessage
from desk.profiles.models import AutoAssign
from desk.profiles.operations import ensure_country
from tests.inbox.conftest import PDF


@pytest.fixture
def unassigned(staff, create_feedback):
    """Mali items wait unassigned (auto-assign off)."""
    ensure_country("ML").auto_assign = AutoAssign.NONE
    db.session.commit()

    def make(**kwargs):
        return create_feedback("ML", **kwargs)

    return make


def outbox(kind: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
    )


def audits(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


# --------------------------------------------------------------------------- first response


def test_first_response_is_the_first_event_by_a_person(staff, unassigned):
    item = unassigned()
    assert item.first_response_at is None
    record_event(item, EventKind.ROUTED, staff.manager, {"country": "ML"})
    record_event(item, EventKind.NOTE, None, {"text": "a job"})
    assert item.first_response_at is None
    earlier = utcnow() - timedelta(minutes=5)
    record_event(item, EventKind.NOTE, staff.editor, {"text": "first"}, at=earlier)
    record_event(item, EventKind.NOTE, staff.lead, {"text": "second"})
    assert item.first_response_at == earlier


def test_routing_an_unrouted_item_by_hand_is_not_a_response(staff, create_feedback):
    item = create_feedback(None)
    assert route_feedback(item, ensure_country("ML"), staff.manager)
    db.session.commit()
    assert item.country.code == "ML"
    assert item.assignee == staff.lead
    assert item.first_response_at is None
    routed = [e for e in item.events if e.kind == EventKind.ROUTED][-1]
    assert routed.actor_id == staff.manager.id
    assert [a.data["after"] for a in audits("feedback.routed")] == [
        {"assignee_id": staff.lead.id, "country_id": item.country_id}
    ]
    assert [m.recipient for m in outbox("feedback.assigned")] == [staff.lead.email]


def test_only_managers_route(staff, create_feedback):
    item = create_feedback(None)
    with pytest.raises(TriageError):
        route_feedback(item, ensure_country("ML"), staff.lead)


# --------------------------------------------------------------------------- assignment


def test_an_editor_takes_an_unassigned_item_and_nobody_is_emailed(staff, unassigned):
    item = unassigned()
    assert assign_feedback(item, staff.editor, staff.editor)
    db.session.commit()
    assert item.assignee == staff.editor
    assert item.first_response_at is not None
    assert outbox("feedback.assigned") == []
    [audit] = audits("feedback.assigned")
    assert audit.actor_id == staff.editor.id
    assert audit.data["before"] == {"assignee_id": None}
    assert audit.data["after"] == {"assignee_id": staff.editor.id}


def test_an_editor_cannot_take_an_item_someone_holds_or_give_it_away(staff, unassigned):
    item = unassigned()
    assign_feedback(item, staff.lead, staff.lead)
    with pytest.raises(TriageError, match="lead editor or a manager"):
        assign_feedback(item, staff.editor, staff.editor)
    other = unassigned()
    with pytest.raises(TriageError):
        assign_feedback(other, staff.lead, staff.editor)


def test_an_editor_gives_back_their_own_item(staff, unassigned):
    item = unassigned()
    assign_feedback(item, staff.editor, staff.editor)
    assert assign_feedback(item, None, staff.editor)
    assert item.assignee is None


def test_the_lead_reassigns_and_the_new_assignee_is_emailed(staff, unassigned):
    item = unassigned()
    assert assign_feedback(item, staff.editor, staff.lead)
    db.session.commit()
    [message] = outbox("feedback.assigned")
    assert message.recipient == staff.editor.email
    assert item.reference in message.subject
    assigned = [e for e in item.events if e.kind == EventKind.ASSIGNED][-1]
    assert assigned.data == {"to": staff.editor.id, "from": None}
    assert assigned.actor_id == staff.lead.id


def test_an_editor_on_the_daily_digest_is_not_emailed_at_once(staff, unassigned):
    staff.editor.notification_mode = NotificationMode.DAILY_DIGEST
    item = unassigned()
    assign_feedback(item, staff.editor, staff.manager)
    db.session.commit()
    assert outbox("feedback.assigned") == []
    assert item.assignee == staff.editor


def test_nobody_outside_the_country_may_hold_it(staff, unassigned):
    item = unassigned()
    with pytest.raises(TriageError, match="does not work on"):
        assign_feedback(item, staff.other, staff.manager)


def test_a_closed_item_is_not_assigned(staff, unassigned):
    item = unassigned()
    close_feedback(item, "Nothing to change.", staff.editor)
    with pytest.raises(TriageError, match="closed"):
        assign_feedback(item, staff.editor, staff.manager)


# --------------------------------------------------------------------------- status


def test_status_follows_the_state_machine(staff, unassigned):
    item = unassigned()
    assert change_status(item, FeedbackStatus.TRIAGED, staff.editor)
    assert not change_status(item, FeedbackStatus.TRIAGED, staff.editor)
    with pytest.raises(TriageError, match="cannot go from triaged to new"):
        change_status(item, FeedbackStatus.NEW, staff.editor)
    assert change_status(item, FeedbackStatus.IN_REVIEW, staff.editor)
    db.session.commit()
    changes = [e.data for e in item.events if e.kind == EventKind.STATUS_CHANGED]
    assert changes == [{"from": "new", "to": "triaged"}, {"from": "triaged", "to": "in_review"}]
    assert [a.data["after"] for a in audits("feedback.status_changed")] == [
        {"status": "triaged"},
        {"status": "in_review"},
    ]


def test_no_action_needs_a_reason(staff, unassigned):
    item = unassigned()
    with pytest.raises(TriageError, match="reason"):
        close_feedback(item, "   ", staff.editor)
    close_feedback(item, "The figure is right.", staff.editor)
    assert (item.status, item.resolution) == (FeedbackStatus.CLOSED, Resolution.NO_ACTION)
    assert item.resolution_note == "The figure is right."
    assert item.resolved_at is not None


def test_a_reader_who_asked_hears_of_a_no_action_close_without_the_internal_reason(
    staff, unassigned
):
    asked = unassigned(submitter_email="awa@example.org")
    asked.wants_resolution_notice, asked.language = True, "fr"
    quiet = unassigned(submitter_email="quiet@example.org")
    quiet.wants_resolution_notice = False
    close_feedback(asked, "Answered by phone; the figure is right.", staff.editor)
    close_feedback(quiet, "The figure is right.", staff.editor)
    db.session.commit()

    [message] = outbox("feedback.closed")
    assert message.recipient == "awa@example.org"
    assert message.subject == f"Votre commentaire a été examiné [{asked.reference}]"
    assert "sans modifier le profil" in message.text and "sans modifier le profil" in message.html
    assert "phone" not in message.text + message.html

    reopen_feedback(asked, staff.editor)
    close_feedback(asked, "Still right.", staff.editor)
    db.session.commit()
    assert len(outbox("feedback.closed")) == 2, "each closing is told"


def test_the_assignment_email_links_to_the_item(staff, unassigned):
    item = unassigned()
    assign_feedback(item, staff.editor, staff.lead)
    db.session.commit()
    [message] = outbox("feedback.assigned")
    assert f"/desk/feedback/{item.reference}" in message.text
    assert f'/desk/feedback/{item.reference}"' in message.html


def test_a_reply_in_french_carries_french_words(staff, create_feedback):
    item = create_feedback(None, submitter_email="awa@example.org")
    item.language = "fr"
    reply = reply_to_submitter(item, "", "Nous vérifions le chiffre.", staff.manager)
    assert reply.message.subject == f"Re: votre commentaire [{item.reference}]"
    assert "Vous avez écrit :" in reply.message.text
    assert f"Votre référence est {item.reference}." in reply.message.text


def test_reopen_takes_a_closed_item_back_as_triaged(staff, unassigned):
    item = unassigned()
    close_feedback(item, "The figure is right.", staff.editor)
    assert reopen_feedback(item, staff.lead, "The reader sent a source.")
    assert (item.status, item.resolution, item.resolved_at) == (FeedbackStatus.TRIAGED, None, None)
    db.session.commit()
    reopened = [e for e in item.events if e.kind == EventKind.REOPENED][-1]
    assert reopened.data["previous_resolution"] == "no_action"
    assert reopened.data["reason"] == "The reader sent a source."
    assert not reopen_feedback(item, staff.lead)


# --------------------------------------------------------------------------- spam and quarantine


def test_spam_from_the_quarantine_closes_it_and_reopen_undoes_it(staff, create_feedback):
    held = create_feedback("ML", message="Cheap pills", spam_signs=("honeypot",))
    assert held.is_quarantined
    assert mark_spam(held, staff.editor)
    assert not held.is_quarantined
    assert (held.status, held.resolution) == (FeedbackStatus.CLOSED, Resolution.SPAM)
    assert not mark_spam(held, staff.editor)
    assert outbox("feedback.acknowledgement") == []
    assert reopen_feedback(held, staff.editor)
    assert held.status == FeedbackStatus.TRIAGED
    db.session.commit()
    assert audits("feedback.marked_spam")[0].data["was_quarantined"] is True
    assert [m.recipient for m in outbox("feedback.acknowledgement")] == ["reader@example.org"]


def test_release_lets_the_item_in_and_writes_the_acknowledgement(staff, create_feedback):
    held = create_feedback("ML", message="Maybe spam", spam_signs=("honeypot",))
    assert release_feedback(held, staff.editor)
    db.session.commit()
    assert not held.is_quarantined
    assert held.first_response_at is not None
    assert [m.recipient for m in outbox("feedback.acknowledgement")] == ["reader@example.org"]
    assert not release_feedback(held, staff.editor)


def test_a_held_item_is_released_before_triage(staff, create_feedback):
    held = create_feedback("ML", message="Maybe spam", spam_signs=("honeypot",))
    with pytest.raises(TriageError, match="quarantine"):
        change_status(held, FeedbackStatus.TRIAGED, staff.editor)


# --------------------------------------------------------------------------- duplicates


def test_a_duplicate_is_closed_and_merged_into_the_original(staff, unassigned):
    original = unassigned(message="The stockpile figure is wrong.")
    copy = unassigned(message="Stockpile wrong (sent again).", files=(("proof.pdf", PDF),))
    assert mark_duplicate(copy, original, staff.editor) == original
    db.session.commit()
    assert (copy.status, copy.resolution) == (FeedbackStatus.CLOSED, Resolution.DUPLICATE)
    assert copy.duplicate_of == original
    assert duplicates_of(original) == [copy]
    assert [e.data for e in copy.events if e.kind == EventKind.MERGED] == [
        {"into": original.reference}
    ]
    assert [e.data for e in original.events if e.kind == EventKind.MERGED] == [
        {"from": copy.reference, "files": ["proof.pdf"], "also": []}
    ]
    assert audits("feedback.merged")[0].data["into"] == original.reference


def test_a_duplicate_of_a_duplicate_goes_to_the_original(staff, unassigned):
    original, first, second = unassigned(), unassigned(), unassigned()
    mark_duplicate(first, original, staff.editor)
    assert mark_duplicate(second, first, staff.editor) == original
    assert second.duplicate_of == original


def test_duplicates_follow_their_item_when_it_is_merged(staff, unassigned):
    original, middle, follower = unassigned(), unassigned(), unassigned()
    mark_duplicate(follower, middle, staff.editor)
    mark_duplicate(middle, original, staff.editor)
    db.session.commit()
    assert follower.duplicate_of == original
    assert set(duplicates_of(original)) == {middle, follower}
    merged = [e.data for e in original.events if e.kind == EventKind.MERGED]
    assert merged[-1]["also"] == [follower.reference]


def test_an_item_is_not_a_duplicate_of_itself(staff, unassigned):
    item = unassigned()
    with pytest.raises(TriageError, match="itself"):
        mark_duplicate(item, item, staff.editor)


def test_reopening_a_duplicate_unmerges_it(staff, unassigned):
    original, copy = unassigned(), unassigned()
    mark_duplicate(copy, original, staff.editor)
    reopen_feedback(copy, staff.editor)
    db.session.commit()
    assert copy.duplicate_of is None
    assert duplicates_of(original) == []
    assert original.events[-1].data == {"unmerged": copy.reference}


# --------------------------------------------------------------------------- notes and replies


def test_a_note_is_on_the_timeline_and_in_the_audit(staff, unassigned):
    item = unassigned()
    event = add_note(item, "  Called the ministry.  ", staff.editor)
    db.session.commit()
    assert event.data == {"text": "Called the ministry."}
    assert audits("feedback.noted")[0].data["event_id"] == event.id
    with pytest.raises(TriageError):
        add_note(item, "", staff.editor)


def test_a_reply_is_queued_threaded_and_answerable(app, staff, unassigned):
    app.config.update(DESK_MAIL_FROM="desk@desk.example", DESK_INTAKE_ADDRESS="in@desk.example")
    item = unassigned(submitter_email="amadou@example.org")
    reply = reply_to_submitter(item, "", "We are checking the figure.", staff.editor)
    db.session.commit()
    message = reply.message
    assert message.recipient == "amadou@example.org"
    assert message.kind == "feedback.reply"
    assert f"[{item.reference}]" in message.subject
    assert "We are checking the figure." in message.text
    assert item.message[:20] in message.text
    assert message.message_id.startswith("<reply.")
    assert message.message_id.endswith(f".{item.reference}@desk.example>")
    assert message.headers["In-Reply-To"] == f"<ack.{item.reference}@desk.example>"
    assert message.headers["Reply-To"] == "in@desk.example"
    assert reply.event.data["message_id"] == message.message_id
    assert reply.event.data["outbox_id"] == message.id

    answer = (
        "From: Amadou <amadou@example.org>\r\n"
        "To: in@desk.example\r\n"
        f"Subject: Re: {message.subject}\r\n"
        "Message-ID: <answer.1@example.org>\r\n"
        f"In-Reply-To: {message.message_id}\r\n"
        "\r\nHere is the ministry's letter.\r\n"
    ).encode()
    outcome = process_email(answer)
    db.session.commit()
    assert outcome.reference == item.reference
    received = [e for e in item.events if e.kind == EventKind.REPLY_RECEIVED]
    assert received[-1].data["text"].startswith("Here is the ministry's letter.")

    second = reply_to_submitter(item, "Re: more", "Thank you.", staff.editor)
    assert second.headers["In-Reply-To"] == "<answer.1@example.org>"
    assert second.message.subject == f"Re: more [{item.reference}]"


def test_no_reply_without_an_address(staff, unassigned):
    item = unassigned(submitter_email="")
    with pytest.raises(TriageError, match="no email address"):
        reply_to_submitter(item, "", "Hello", staff.editor)


def test_a_manager_assigning_to_a_manager_is_allowed(staff, unassigned):
    second = create_user("boss2@desk.test", name="Second Manager", role=Role.MANAGER)
    item = unassigned()
    assert assign_feedback(item, second, staff.manager)
