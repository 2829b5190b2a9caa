"""Drafting a section: the draft, autosave, the whole-page preview, submitting, deciding."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from desk.accounts.models import Role
from desk.extensions import db
from desk.notify.models import OutboxMessage
from desk.profiles.models import RevisionState, SectionRevision, UpdateType
from desk.reviews import operations
from desk.reviews.models import TaskState

NEW_SENTENCE = "In 2026 it confirmed it has none.[^9]"
NEW_NOTE = "[^9]: Statement of Mali, 2026."


def edited_body(section) -> str:
    """The section's text with a sentence and its footnote added after the existing ones."""
    text, notes = section.body.split("\n\n[^7]:")
    return f"{text} {NEW_SENTENCE}\n\n[^7]:{notes}\n{NEW_NOTE}"


def outbox(kind: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
    )


def test_a_draft_starts_from_the_published_text_and_is_resumed(
    desk, stockpiling, editor, open_task
):
    task = open_task(stockpiling)
    desk.login(editor)

    first = desk.post(f"/desk/tasks/{task.id}/revise")
    again = desk.post(f"/desk/tasks/{task.id}/revise")

    assert first.headers["Location"] == again.headers["Location"]
    revision = db.session.scalars(
        sa.select(SectionRevision).where(SectionRevision.task_id == task.id)
    ).one()
    assert revision.state == RevisionState.DRAFT
    assert revision.base_revision_id == stockpiling.current_revision_id
    assert (revision.heading, revision.body) == (stockpiling.heading, stockpiling.body)
    assert revision.number == 2
    assert revision.author_id == editor.id
    db.session.refresh(task)
    assert task.state == TaskState.IN_PROGRESS
    page = desk.get(first.headers["Location"]).get_data(as_text=True)
    assert f'data-autosave-url="/desk/revisions/{revision.id}/autosave"' in page


def test_only_the_assignee_revises(desk, stockpiling, open_task, create_staff):
    task = open_task(stockpiling)
    colleague = create_staff(Role.EDITOR, countries=("ML",))
    desk.login(colleague)
    assert desk.post(f"/desk/tasks/{task.id}/revise").status_code == 403


def test_autosave_keeps_the_text_while_the_author_types(
    desk, stockpiling, editor, open_task, manager
):
    task = open_task(stockpiling)
    revision = operations.start_revision(task, editor)
    db.session.commit()
    desk.login(editor)
    form = {
        "heading": "Stockpiles",
        "body": "Typed so far",
        "update_type": "minor",
        "change_note": "",
    }

    response = desk.post(f"/desk/revisions/{revision.id}/autosave", form)

    assert response.status_code == 200
    assert response.json["saved"] is True
    assert response.json["message"].startswith("Draft saved at ")
    db.session.refresh(revision)
    assert (revision.heading, revision.body, revision.update_type) == (
        "Stockpiles",
        "Typed so far",
        UpdateType.MINOR,
    )
    assert desk.client.post(f"/desk/revisions/{revision.id}/autosave", data=form).status_code == 400

    desk.login(manager)
    assert desk.post(f"/desk/revisions/{revision.id}/autosave", form).status_code == 403


def test_preview_is_the_whole_public_page_with_footnotes_numbered_across_it(
    desk, profile, stockpiling, editor, open_task
):
    task = open_task(stockpiling)
    revision = operations.start_revision(task, editor)
    db.session.commit()
    desk.login(editor)
    form = {
        "heading": stockpiling.heading,
        "body": edited_body(stockpiling),
        "update_type": "major",
        "change_note": "",
        "preview": "Save and preview",
    }

    response = desk.post(f"/desk/revisions/{revision.id}/edit", form)
    assert response.headers["Location"].endswith(f"/desk/revisions/{revision.id}/preview")
    html = desk.get(response.headers["Location"]).get_data(as_text=True)

    assert "not published" in html
    assert "In 2026 it confirmed it has none." in html
    references = re.findall(r'class="fn-ref"><a href="#fn-(\d+)"', html)
    assert references == ["1", "2", "3", "4", "5", "6"]
    notes = re.findall(r'<li id="fn-(\d+)">(.*?)(?: <a|</li>)', html)
    assert [(n, text) for n, text in notes] == [
        ("1", "Note on the signature."),
        ("2", "Note on the ratification."),
        ("3", "Statement of Mali, 2010."),
        ("4", "Email from a researcher, 2010."),
        ("5", "Statement of Mali, 2026."),
        ("6", "Ministry of Foreign Affairs."),
    ]
    # Nothing was published: the public page still has five notes.
    public = desk.get("/profiles/mali/cluster-munition-ban-policy").get_data(as_text=True)
    assert "Statement of Mali, 2026." not in public


def test_a_major_revision_needs_a_change_note_and_the_text_is_kept_meanwhile(
    desk, stockpiling, editor, open_task
):
    task = open_task(stockpiling)
    revision = operations.start_revision(task, editor)
    db.session.commit()
    desk.login(editor)
    body = edited_body(stockpiling)

    response = desk.post(
        f"/desk/revisions/{revision.id}/edit",
        {"heading": stockpiling.heading, "body": body, "update_type": "major", "submit": "1"},
    )

    assert response.status_code == 200
    assert "A major revision needs a change note" in response.get_data(as_text=True)
    db.session.refresh(revision)
    assert revision.state == RevisionState.DRAFT
    assert revision.body == body


def test_submitting_tells_the_approvers_but_not_the_author(
    desk, stockpiling, editor, manager, create_staff, open_task
):
    lead = create_staff(Role.EDITOR, email="lead@desk.test", countries=("ML",), leads=("ML",))
    create_staff(Role.EDITOR, email="plain@desk.test", countries=("ML",))
    create_staff(Role.EDITOR, email="niger-lead@desk.test", leads=("NE",))
    task = open_task(stockpiling)
    revision = operations.start_revision(task, editor)
    db.session.commit()
    desk.login(editor)

    response = desk.post(
        f"/desk/revisions/{revision.id}/edit",
        {
            "heading": stockpiling.heading,
            "body": edited_body(stockpiling),
            "update_type": "major",
            "change_note": "Adds the 2026 statement.",
            "submit": "1",
        },
    )

    assert response.headers["Location"].endswith(f"/desk/tasks/{task.id}")
    db.session.refresh(revision)
    db.session.refresh(task)
    assert revision.state == RevisionState.SUBMITTED
    assert task.state == TaskState.SUBMITTED and task.submitted_at is not None
    assert revision.submitted_at == task.submitted_at, "review wait starts at the submission"
    assert sorted(m.recipient for m in outbox("revision.submitted")) == [lead.email, manager.email]


def test_a_named_reviewer_alone_is_asked(
    stockpiling, editor, manager, create_staff, open_task, draft_revision
):
    create_staff(Role.MANAGER, email="other-manager@desk.test")
    task = open_task(stockpiling)
    task.reviewer = manager
    draft_revision(task, editor, edited_body(stockpiling))
    assert [m.recipient for m in outbox("revision.submitted")] == [manager.email]


def test_the_author_cannot_approve_their_own_revision(
    app, desk, stockpiling, create_staff, open_task, draft_revision
):
    lead = create_staff(Role.EDITOR, email="lead@desk.test", countries=("ML",), leads=("ML",))
    task = open_task(stockpiling, assignee=lead)
    revision = draft_revision(task, lead, edited_body(stockpiling))
    desk.login(lead)

    page = desk.get(f"/desk/revisions/{revision.id}").get_data(as_text=True)
    assert "You wrote this revision" in page
    assert "Approve and publish" not in page
    assert desk.post(f"/desk/revisions/{revision.id}/approve").status_code == 403
    with pytest.raises(operations.NotAllowed):
        operations.approve_revision(revision, lead)
    db.session.rollback()
    db.session.refresh(revision)
    assert revision.state == RevisionState.SUBMITTED

    app.config["DESK_FOUR_EYES"] = False
    assert desk.post(f"/desk/revisions/{revision.id}/approve").status_code == 302
    db.session.refresh(revision)
    assert revision.state == RevisionState.APPROVED


def test_a_plain_editor_does_not_approve(
    desk, stockpiling, editor, create_staff, open_task, draft_revision
):
    revision = draft_revision(open_task(stockpiling), editor, edited_body(stockpiling))
    desk.login(create_staff(Role.EDITOR, countries=("ML",)))
    assert desk.post(f"/desk/revisions/{revision.id}/approve").status_code == 403


def test_requesting_changes_sends_the_draft_back_with_a_comment(
    desk, stockpiling, editor, manager, open_task, draft_revision
):
    task = open_task(stockpiling)
    revision = draft_revision(task, editor, edited_body(stockpiling))
    desk.login(manager)

    desk.post(f"/desk/revisions/{revision.id}/request-changes", {"comment": "Cite the source."})

    db.session.refresh(revision)
    db.session.refresh(task)
    assert revision.state == RevisionState.REJECTED
    assert (revision.decided_by_id, task.state) == (manager.id, TaskState.CHANGES_REQUESTED)
    [told] = outbox("revision.changes_requested")
    assert told.recipient == editor.email and "Cite the source." in told.text

    desk.login(editor)
    assert "Cite the source." in desk.get(f"/desk/tasks/{task.id}").get_data(as_text=True)
    response = desk.post(f"/desk/tasks/{task.id}/revise")
    again = db.session.get(SectionRevision, int(response.headers["Location"].split("/")[-2]))
    assert again.id != revision.id
    assert (again.body, again.base_revision_id, again.change_note) == (
        revision.body,
        revision.base_revision_id,
        revision.change_note,
    )
    db.session.refresh(task)
    assert task.state == TaskState.IN_PROGRESS
    # The draft that answers the request shows it, with who asked.
    editor_page = desk.get(f"/desk/revisions/{again.id}/edit").get_data(as_text=True)
    request_panel = editor_page.split('id="change-request-heading"', 1)[1].split("</div>", 1)[0]
    assert "Cite the source." in request_panel
    assert manager.name in request_panel
    assert f"sent revision {revision.number} back" in request_panel


def test_each_new_draft_shows_the_latest_request_for_changes(
    desk, stockpiling, editor, manager, open_task, draft_revision
):
    task = open_task(stockpiling)
    first = draft_revision(task, editor, edited_body(stockpiling))
    desk.login(editor)
    page = desk.get(f"/desk/revisions/{first.id}/edit").get_data(as_text=True)
    assert 'id="change-request-heading"' not in page

    def send_back(revision: SectionRevision, comment: str) -> str:
        desk.login(manager)
        desk.post(f"/desk/revisions/{revision.id}/request-changes", {"comment": comment})
        desk.login(editor)
        return desk.post(f"/desk/tasks/{task.id}/revise").headers["Location"]

    second_url = send_back(first, "Cite the source.")
    assert "Cite the source." in desk.get(second_url).get_data(as_text=True)
    second = db.session.get(SectionRevision, int(second_url.split("/")[-2]))
    operations.submit_revision(second, editor)
    db.session.commit()

    third_page = desk.get(send_back(second, "Name the ministry too.")).get_data(as_text=True)
    assert "Name the ministry too." in third_page
    assert "Cite the source." not in third_page


def test_a_comment_is_required_to_request_changes(
    desk, stockpiling, editor, manager, open_task, draft_revision
):
    revision = draft_revision(open_task(stockpiling), editor, edited_body(stockpiling))
    desk.login(manager)
    desk.post(f"/desk/revisions/{revision.id}/request-changes", {"comment": "  "})
    db.session.refresh(revision)
    assert revision.state == RevisionState.SUBMITTED


def test_withdrawing_makes_the_revision_a_draft_again(
    desk, stockpiling, editor, open_task, draft_revision
):
    task = open_task(stockpiling)
    revision = draft_revision(task, editor, edited_body(stockpiling))
    desk.login(editor)
    response = desk.post(f"/desk/revisions/{revision.id}/withdraw")
    assert response.headers["Location"].endswith(f"/desk/revisions/{revision.id}/edit")
    db.session.refresh(revision)
    db.session.refresh(task)
    assert (revision.state, task.state) == (RevisionState.DRAFT, TaskState.IN_PROGRESS)


def test_history_compares_any_two_revisions_and_restores_an_old_text(
    desk, stockpiling, editor, manager, open_task, draft_revision
):
    original = stockpiling.current_revision
    revision = draft_revision(open_task(stockpiling), editor, "Replaced entirely.")
    operations.approve_revision(revision, manager)
    db.session.commit()
    desk.login(editor)

    history = desk.get(f"/desk/sections/{stockpiling.id}/history").get_data(as_text=True)
    assert f'value="{original.id}"' in history and f'value="{revision.id}"' in history
    compare = desk.get(f"/desk/sections/{stockpiling.id}/compare?a={revision.id}&b={original.id}")
    html = compare.get_data(as_text=True)
    assert "Revision 1 → revision 2" in html
    assert "<del>Mali has no cluster munitions</del><ins>Replaced entirely</ins>." in html

    response = desk.post(f"/desk/revisions/{original.id}/restore")
    restored = db.session.get(SectionRevision, int(response.headers["Location"].split("/")[-2]))
    assert (restored.state, restored.body, restored.base_revision_id) == (
        RevisionState.DRAFT,
        original.body,
        revision.id,
    )
    assert restored.task_id is None
    db.session.refresh(stockpiling)
    assert stockpiling.body == "Replaced entirely.", "a restore is only a draft until approved"

    operations.submit_revision(restored, editor)
    operations.approve_revision(restored, manager)
    db.session.commit()
    db.session.refresh(stockpiling)
    assert stockpiling.body == original.body
    assert [r.number for r in stockpiling.revisions] == [1, 2, 3]
