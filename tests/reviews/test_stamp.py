"""Approval and the Last Updated stamp: major, minor, by hand, and "reviewed, still current"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import render_template

from desk.accounts.models import Role
from desk.core.audit import AuditEvent
from desk.core.time import desk_today
from desk.extensions import db
from desk.feedback.models import EventKind, FeedbackEvent, FeedbackStatus, Resolution
from desk.notify.models import Frequency, OutboxMessage, OutboxState, Subscription
from desk.profiles.models import ProfileUpdate, RevisionState, UpdateType
from desk.profiles.queries import what_changed
from desk.reviews import operations
from desk.reviews.models import TaskState

#: Late evening in UTC, already the next day in Paris: the stamp must carry the Paris date.
APPROVED_AT = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
PARIS_DAY = date(2026, 11, 30)
PUBLIC_PAGE = "/profiles/mali/cluster-munition-ban-policy"


@pytest.fixture
def in_paris_late_at_night(app, monkeypatch):
    app.config["DESK_TIMEZONE"] = "Europe/Paris"
    monkeypatch.setattr(operations, "utcnow", lambda: APPROVED_AT)


@pytest.fixture
def subscriber(profile):
    subscription = Subscription(
        email="subscriber@example.org",
        profile=profile,
        frequency=Frequency.IMMEDIATE,
        language="en",
        confirmed_at=APPROVED_AT - timedelta(days=30),
    )
    db.session.add(subscription)
    db.session.commit()
    return subscription


def outbox_rows():
    return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def count(model, *conditions):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*conditions))


def test_approving_a_major_revision_stamps_the_profile_in_one_go(
    desk,
    profile,
    stockpiling,
    create_feedback,
    editor,
    manager,
    open_task,
    draft_revision,
    subscriber,
    in_paris_late_at_night,
):
    asked = create_feedback(profile, stockpiling, email="asked@example.org", language="fr")
    silent = create_feedback(profile, stockpiling, email="quiet@example.org", wants_notice=False)
    task = open_task(stockpiling, asked, silent)
    previous = stockpiling.current_revision
    version = profile.content_version
    revision = draft_revision(
        task, editor, "Mali has no cluster munitions.", change_note="Checked with the ministry."
    )
    rows_before = {m.id for m in outbox_rows()}
    desk.login(manager)

    page = desk.get(f"/desk/revisions/{revision.id}").get_data(as_text=True)
    assert "<del>" in page and asked.reference in page
    response = desk.post(f"/desk/revisions/{revision.id}/approve")
    assert response.status_code == 302

    db.session.expire_all()
    assert revision.state == RevisionState.APPROVED
    assert (revision.decided_by_id, revision.decided_at) == (manager.id, APPROVED_AT)
    assert previous.state == RevisionState.APPROVED, "the old text stays in the history"
    assert stockpiling.current_revision_id == revision.id
    assert profile.last_updated_on == PARIS_DAY
    assert profile.content_version == version + 1
    assert (task.state, task.decided_at) == (TaskState.APPROVED, APPROVED_AT)
    [update] = db.session.scalars(
        sa.select(ProfileUpdate).where(ProfileUpdate.created_by_id.is_not(None))
    ).all()
    assert (update.stamped_on, update.change_note, update.created_by_id) == (
        PARIS_DAY,
        "Checked with the ministry.",
        manager.id,
    )
    assert update.revisions == [revision]
    for item in (asked, silent):
        assert (item.status, item.resolution, item.resolved_at) == (
            FeedbackStatus.CLOSED,
            Resolution.UPDATED,
            APPROVED_AT,
        )
        closing = db.session.scalars(
            sa.select(FeedbackEvent)
            .where(
                FeedbackEvent.feedback_id == item.id,
                FeedbackEvent.kind == EventKind.STATUS_CHANGED,
            )
            .order_by(FeedbackEvent.id.desc())
        ).first()
        assert closing.data["to"] == "closed" and closing.data["resolution"] == "updated"
    new_rows = [m for m in outbox_rows() if m.id not in rows_before]
    by_kind = {m.kind: m for m in new_rows}
    assert sorted(by_kind) == ["feedback.resolved", "profile.updated", "revision.approved"]
    assert by_kind["profile.updated"].recipient == subscriber.email
    assert by_kind["feedback.resolved"].recipient == "asked@example.org"
    assert asked.reference in by_kind["feedback.resolved"].subject
    assert by_kind["revision.approved"].recipient == editor.email
    audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "revision.approved"))
    assert audit.data["stamped_on"] == "2026-11-30"
    assert sorted(audit.data["feedback_closed"]) == sorted([asked.reference, silent.reference])

    public = desk.get(PUBLIC_PAGE).get_data(as_text=True)
    assert 'Last Updated: <time datetime="2026-11-30">30 November 2026</time>' in public
    assert "Mali has no cluster munitions." in public
    assert "Statement of Mali, 2010." not in public


def test_the_feedback_resolved_email_speaks_the_readers_language(
    profile,
    stockpiling,
    create_feedback,
    editor,
    manager,
    open_task,
    draft_revision,
    in_paris_late_at_night,
):
    asked = create_feedback(profile, stockpiling, email="lecteur@example.org", language="fr")
    revision = draft_revision(open_task(stockpiling, asked), editor, "New text.")
    operations.approve_revision(revision, manager)
    db.session.commit()

    [email] = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "feedback.resolved")
    ).all()
    assert email.subject == f"Votre commentaire a conduit à une mise à jour [{asked.reference}]"
    assert "Merci pour votre commentaire sur Mali" in email.text
    assert "publiée le 30 novembre 2026" in email.text
    assert 'lang="fr"' in email.html


def test_a_minor_revision_changes_the_text_only(
    desk,
    profile,
    stockpiling,
    create_feedback,
    editor,
    manager,
    open_task,
    draft_revision,
    subscriber,
):
    profile.last_updated_on = date(2011, 8, 16)
    db.session.commit()
    item = create_feedback(profile, stockpiling)
    task = open_task(stockpiling, item)
    revision = draft_revision(
        task, editor, "Mali has no cluster munitions.", update_type=UpdateType.MINOR, change_note=""
    )
    before = {m.id for m in outbox_rows()}
    desk.login(manager)

    desk.post(f"/desk/revisions/{revision.id}/approve")

    db.session.expire_all()
    assert revision.state == RevisionState.APPROVED
    assert stockpiling.body == "Mali has no cluster munitions."
    assert profile.last_updated_on == date(2011, 8, 16)
    assert count(ProfileUpdate) == 0
    assert revision.profile_update_id is None
    assert [m.kind for m in outbox_rows() if m.id not in before] == []
    assert (item.status, item.resolution) == (FeedbackStatus.CLOSED, Resolution.UPDATED)
    assert "16 August 2011" in desk.get(PUBLIC_PAGE).get_data(as_text=True)


def test_feedback_still_held_by_another_open_task_stays_in_review(
    profile, stockpiling, create_feedback, editor, manager, open_task, draft_revision
):
    item = create_feedback(profile, stockpiling)
    other = open_task(profile.sections[0], item)
    revision = draft_revision(open_task(stockpiling, item), editor, "New text.")
    operations.approve_revision(revision, manager)
    db.session.commit()
    db.session.refresh(item)
    assert item.status == FeedbackStatus.IN_REVIEW
    assert other.is_open


def test_a_manager_sets_last_updated_by_hand_with_a_reason_audited(
    desk, profile, editor, manager, subscriber
):
    desk.login(manager)
    day = desk_today() - timedelta(days=3)

    refused = desk.post(
        f"/desk/profiles/{profile.id}/last-updated",
        {"last_updated_on": day.isoformat(), "reason": ""},
    )
    assert "Give the reason for the new date." in refused.get_data(as_text=True)
    db.session.refresh(profile)
    assert profile.last_updated_on is None

    desk.post(
        f"/desk/profiles/{profile.id}/last-updated",
        {"last_updated_on": day.isoformat(), "reason": "The 2026 check was published late."},
    )

    db.session.refresh(profile)
    assert profile.last_updated_on == day
    [update] = db.session.scalars(sa.select(ProfileUpdate)).all()
    assert update.is_manual and update.change_note == "The 2026 check was published late."
    audit = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "profile.last_updated_set")
    )
    assert (audit.actor_id, audit.data["after"], audit.data["reason"]) == (
        manager.id,
        day.isoformat(),
        "The 2026 check was published late.",
    )
    assert count(OutboxMessage, OutboxMessage.kind == "profile.updated") == 0

    with pytest.raises(operations.ReviewError, match="future"):
        operations.set_last_updated(profile, desk_today() + timedelta(days=1), "x", manager)
    desk.login(editor)
    forbidden = desk.post(
        f"/desk/profiles/{profile.id}/last-updated",
        {"last_updated_on": day.isoformat(), "reason": "Editors may not."},
    )
    assert forbidden.status_code == 403


def test_reviewed_still_current_records_the_day_only(desk, profile, manager, editor):
    profile.last_updated_on = date(2011, 8, 16)
    db.session.commit()
    version = profile.content_version
    desk.login(editor)
    assert desk.post(f"/desk/profiles/{profile.id}/reviewed").status_code == 403

    desk.login(manager)
    desk.post(f"/desk/profiles/{profile.id}/reviewed")

    db.session.refresh(profile)
    assert profile.reviewed_on == desk_today()
    assert profile.last_updated_on == date(2011, 8, 16)
    assert profile.content_version == version
    assert count(AuditEvent, AuditEvent.action == "profile.reviewed") == 1


def test_what_changed_lists_the_approved_stamps_dates_and_notes_only(
    app, profile, stockpiling, editor, manager, open_task, draft_revision
):
    operations.set_last_updated(profile, date(2020, 1, 2), "Internal reason.", manager)
    revision = draft_revision(open_task(stockpiling), editor, "Text.", change_note="Public note.")
    operations.approve_revision(revision, manager)
    db.session.commit()

    with app.test_request_context():
        html = render_template("profiles/_what_changed.html", updates=profile.updates)
        empty = render_template("profiles/_what_changed.html", updates=[])

    assert "What changed" in html
    assert "Public note." in html
    assert "Internal reason." not in html
    assert desk_today().isoformat() in html
    assert editor.name not in html and manager.name not in html
    assert empty.strip() == ""
    assert [u.change_note for u in what_changed(profile)] == ["Public note."]


def test_the_staff_profile_page_lists_sections_tasks_and_the_managers_controls(
    desk, profile, stockpiling, editor, manager, open_task, create_staff
):
    task = open_task(stockpiling)
    desk.login(manager)
    html = desk.get(f"/desk/profiles/{profile.id}").get_data(as_text=True)
    assert f"/desk/tasks/{task.id}" in html
    assert f"/desk/sections/{stockpiling.id}/history" in html
    assert "Set Last Updated by hand" in html and "Mark reviewed today" in html

    desk.login(create_staff(Role.EDITOR, countries=("ML",)))
    html = desk.get(f"/desk/profiles/{profile.id}").get_data(as_text=True)
    assert "Set Last Updated by hand" not in html


def test_the_public_page_shows_what_changed_after_an_approval(
    client, profile, stockpiling, editor, manager, open_task, draft_revision
):
    path = f"/profiles/{profile.country.slug}/{profile.topic_slug}"
    before = client.get(path).get_data(as_text=True)
    assert "What changed" not in before

    operations.set_last_updated(profile, date(2020, 1, 2), "Internal reason.", manager)
    revision = draft_revision(open_task(stockpiling), editor, "Text.", change_note="Public note.")
    operations.approve_revision(revision, manager)
    db.session.commit()

    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'class="what-changed"' in html
    assert "Public note." in html
    assert "Internal reason." not in html
    assert f'<time datetime="{desk_today().isoformat()}">' in html
    subscribe = f'href="/profiles/{profile.country.slug}/{profile.topic_slug}/subscribe"'
    assert subscribe in html
    assert "Email me when this profile is updated" in html


def test_the_revision_and_profile_pages_say_how_the_subscriber_notices_fared(
    desk, profile, stockpiling, editor, manager, open_task, draft_revision
):
    for number in range(3):
        db.session.add(
            Subscription(
                email=f"reader{number}@example.org",
                profile=profile,
                frequency=Frequency.IMMEDIATE,
                language="en",
                confirmed_at=APPROVED_AT,
            )
        )
    revision = draft_revision(open_task(stockpiling), editor, "New text.", change_note="Checked.")
    operations.approve_revision(revision, manager)
    db.session.commit()
    first, second, _third = (m for m in outbox_rows() if m.kind == "profile.updated")
    first.state, second.state = OutboxState.SENT, OutboxState.DEAD
    db.session.commit()
    desk.login(manager)

    approval = desk.get(f"/desk/revisions/{revision.id}").get_data(as_text=True)
    staff_profile = desk.get(f"/desk/profiles/{profile.id}").get_data(as_text=True)

    for html in (approval, staff_profile):
        assert "1 notified, 1 pending, 1 failed" in html
