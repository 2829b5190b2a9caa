"""Opening review tasks from feedback or standalone, one open task per section, the lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from desk.accounts.models import Role
from desk.core.audit import AuditEvent
from desk.core.time import desk_today
from desk.extensions import db
from desk.feedback.models import EventKind, FeedbackEvent, FeedbackStatus
from desk.notify.models import OutboxMessage
from desk.reviews import operations, queries
from desk.reviews.models import ReviewTask, TaskState
from tests.reviews.conftest import task_from_location


def events_of(item, kind):
    return list(
        db.session.scalars(
            sa.select(FeedbackEvent)
            .where(FeedbackEvent.feedback_id == item.id, FeedbackEvent.kind == kind)
            .order_by(FeedbackEvent.id)
        )
    )


def test_new_task_form_is_filled_in_from_the_feedback(
    desk, profile, stockpiling, create_feedback, editor
):
    item = create_feedback(profile, stockpiling)
    desk.login(editor)

    html = desk.get(f"/desk/tasks/new?feedback={item.reference.lower()}").get_data(as_text=True)

    assert item.reference in html
    assert f'<option selected value="section:{stockpiling.id}">' in html
    assert f"Review “{stockpiling.heading}” ({item.reference})" in html
    assert f'<option selected value="{editor.id}">' in html


def test_opening_a_task_from_feedback_puts_it_in_review(
    desk, profile, stockpiling, create_feedback, editor, create_staff
):
    first = create_feedback(profile, stockpiling)
    second = create_feedback(profile, stockpiling, message="Another point.", email="b@example.org")
    colleague = create_staff(Role.EDITOR, countries=("ML",))
    desk.login(editor)
    due = desk_today() + timedelta(days=7)

    response = desk.post(
        f"/desk/tasks/new?feedback={first.reference}&feedback={second.reference}",
        {
            "target": f"section:{stockpiling.id}",
            "title": "Check the stockpile",
            "description": "Two readers write about it.",
            "assignee": colleague.id,
            "reviewer": "",
            "due_on": due.isoformat(),
        },
    )

    task = task_from_location(response)
    assert (task.section_id, task.state, task.assignee_id, task.due_on) == (
        stockpiling.id,
        TaskState.OPEN,
        colleague.id,
        due,
    )
    assert task.created_by_id == editor.id
    assert [item.reference for item in task.feedback] == [first.reference, second.reference]
    for item in (first, second):
        db.session.refresh(item)
        assert item.status == FeedbackStatus.IN_REVIEW
        assert item.first_response_at is not None
        [linked] = events_of(item, EventKind.LINKED_TO_TASK)
        assert (linked.actor_id, linked.data["task"]) == (editor.id, task.id)
        [changed] = events_of(item, EventKind.STATUS_CHANGED)
        assert (changed.data["from"], changed.data["to"]) == ("new", "in_review")
    told = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "task.assigned")
    ).all()
    assert [m.recipient for m in told] == [colleague.email]
    assert "Check the stockpile" in told[0].subject
    audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "task.opened"))
    assert audit.object_id == str(task.id) and audit.actor_id == editor.id


def test_a_second_task_on_a_section_links_its_feedback_to_the_open_one(
    desk, profile, stockpiling, create_feedback, editor, open_task
):
    held = open_task(stockpiling)
    item = create_feedback(profile, stockpiling)
    desk.login(editor)

    page = desk.get(f"/desk/tasks/new?feedback={item.reference}").get_data(as_text=True)
    assert "already has an open task" in page

    response = desk.post(
        f"/desk/tasks/new?feedback={item.reference}",
        {"target": f"section:{stockpiling.id}", "title": "Duplicate attempt", "assignee": ""},
    )

    assert task_from_location(response).id == held.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReviewTask)) == 1
    assert [i.reference for i in held.feedback] == [item.reference]
    db.session.refresh(item)
    assert item.status == FeedbackStatus.IN_REVIEW


def test_the_unique_index_settles_a_race_by_linking_to_the_winner(
    app, profile, stockpiling, create_feedback, editor, open_task, monkeypatch
):
    winner = open_task(stockpiling)
    item = create_feedback(profile, stockpiling)
    looked = []
    real_lookup = queries.open_task_for_section

    def lookup_that_misses_once(section_id):
        # The first look happens "before" the winner committed: it finds nothing.
        looked.append(section_id)
        return None if len(looked) == 1 else real_lookup(section_id)

    monkeypatch.setattr(queries, "open_task_for_section", lookup_that_misses_once)

    result = operations.open_review_task(
        profile, stockpiling, actor=editor, title="Raced", feedback=[item]
    )
    db.session.commit()

    assert not result.created
    assert result.task.id == winner.id
    assert len(looked) == 2
    assert [i.id for i in winner.feedback] == [item.id]
    open_count = sa.select(sa.func.count()).where(ReviewTask.state.in_(["open", "in_progress"]))
    assert db.session.scalar(open_count) == 1


def test_feedback_of_another_country_cannot_be_linked(
    desk, create_profile, create_feedback, editor, manager, profile
):
    other = create_profile("NE", sections=[("Overview", "Niger text.")])
    item = create_feedback(other, other.sections[0])
    desk.login(editor)
    assert desk.get(f"/desk/tasks/new?feedback={item.reference}").status_code == 404
    assert desk.get("/desk/tasks/new?feedback=ML-2099-99999").status_code == 404

    with pytest.raises(operations.ReviewError, match="another country"):
        operations.open_review_task(profile, None, actor=manager, title="x", feedback=[item])


def test_a_standalone_task_on_the_whole_profile_then_one_section(
    desk, profile, stockpiling, editor, open_task
):
    desk.login(editor)
    response = desk.post(
        f"/desk/tasks/new?profile={profile.id}",
        {"target": f"profile:{profile.id}", "title": "Annual review", "assignee": editor.id},
    )
    task = task_from_location(response)
    assert task.section_id is None
    page = desk.get(f"/desk/tasks/{task.id}").get_data(as_text=True)
    assert "Revise this section" in page

    contact = profile.sections[-1]
    held = open_task(stockpiling)
    response = desk.post(f"/desk/tasks/{task.id}/section", {"section": stockpiling.id})
    db.session.refresh(task)
    assert task.section_id is None, "a section held by another task is not taken"
    follow = desk.get(response.headers["Location"]).get_data(as_text=True)
    assert f"/desk/tasks/{held.id}" in follow

    desk.post(f"/desk/tasks/{task.id}/section", {"section": contact.id})
    db.session.refresh(task)
    assert task.section_id == contact.id


def test_cancelling_a_task_sends_its_feedback_back_to_triage(
    desk, profile, stockpiling, create_feedback, editor, open_task, draft_revision
):
    item = create_feedback(profile, stockpiling)
    task = open_task(stockpiling, item)
    revision = draft_revision(task, editor, "New text.", submit=False)
    desk.login(editor)

    desk.post(f"/desk/tasks/{task.id}/cancel", {"reason": "Handled elsewhere."})

    db.session.refresh(task)
    db.session.refresh(item)
    db.session.refresh(revision)
    assert task.state == TaskState.CANCELLED
    assert revision.state == "superseded"
    assert item.status == FeedbackStatus.TRIAGED
    assert events_of(item, EventKind.STATUS_CHANGED)[-1].data["to"] == "triaged"
    audit = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "task.cancelled"))
    assert audit.data["reason"] == "Handled elsewhere."
    assert queries.open_task_for_section(stockpiling.id) is None


def test_editing_a_task_tells_the_new_assignee(desk, stockpiling, editor, create_staff, open_task):
    task = open_task(stockpiling)
    colleague = create_staff(Role.EDITOR, countries=("ML",))
    desk.login(editor)

    desk.post(
        f"/desk/tasks/{task.id}/edit",
        {"title": "Renamed", "description": "", "assignee": colleague.id, "reviewer": ""},
    )

    db.session.refresh(task)
    assert (task.title, task.assignee_id) == ("Renamed", colleague.id)
    recipients = db.session.scalars(
        sa.select(OutboxMessage.recipient).where(OutboxMessage.kind == "task.assigned")
    ).all()
    assert recipients == [colleague.email]


def test_task_lists_show_mine_my_countries_and_overdue(
    desk, profile, stockpiling, editor, create_staff, open_task, create_profile
):
    colleague = create_staff(Role.EDITOR, countries=("ML",))
    mine = open_task(stockpiling)
    theirs = open_task(profile.sections[0], assignee=colleague)
    theirs.due_on = desk_today() - timedelta(days=1)
    niger = create_profile("NE", sections=[("Overview", "Niger text.")])
    hidden = open_task(niger.sections[0], assignee=create_staff(Role.EDITOR, countries=("NE",)))
    db.session.commit()
    desk.login(editor)

    def titles(query):
        html = desk.get(f"/desk/tasks{query}").get_data(as_text=True)
        return {t.title for t in (mine, theirs, hidden) if f'/desk/tasks/{t.id}"' in html}

    assert titles("") == {mine.title}
    assert titles("?view=countries") == {mine.title, theirs.title}
    assert titles("?view=overdue") == {theirs.title}
    assert titles(f"?view=countries&assignee={colleague.id}") == {theirs.title}
    assert titles("?view=countries&q=contact") == set()
    assert titles("?view=countries&state=cancelled") == set()
