"""Two drafts of one section from the same base: nothing is overwritten, no text is lost."""

from __future__ import annotations

from desk.accounts.models import Role
from desk.extensions import db
from desk.profiles.models import RevisionState, SectionRevision
from desk.reviews import operations
from desk.reviews.models import TaskState

FIRST_SENTENCE = "Mali has no cluster munitions."
TASK_ADDITION = " In 2026 it confirmed it has none."
CORRECTION = "It has never used them."


def revision_at(response) -> SectionRevision:
    return db.session.get(SectionRevision, int(response.headers["Location"].split("/")[-2]))


def test_the_second_approval_stops_on_the_conflict_page_and_a_rebase_keeps_both_changes(
    desk, stockpiling, editor, manager, create_staff, open_task, draft_revision
):
    base = stockpiling.current_revision
    # The task's draft adds a sentence to the first paragraph…
    task = open_task(stockpiling)
    slow = draft_revision(
        task,
        editor,
        base.body.replace(FIRST_SENTENCE, FIRST_SENTENCE + TASK_ADDITION),
        change_note="Adds the 2026 statement.",
    )
    # …while a colleague corrects another sentence in a quick draft of their own.
    colleague = create_staff(Role.EDITOR, email="colleague@desk.test", countries=("ML",))
    quick = operations.start_section_draft(stockpiling, colleague)
    operations.save_draft(
        quick,
        colleague,
        heading=quick.heading,
        body=base.body.replace("It never used them.", CORRECTION),
        change_note="Wording.",
        update_type=quick.update_type,
    )
    operations.submit_revision(quick, colleague)
    db.session.commit()
    assert slow.base_revision_id == quick.base_revision_id == base.id
    desk.login(manager)

    first = desk.post(f"/desk/revisions/{quick.id}/approve")
    assert first.headers["Location"].endswith(f"/desk/revisions/{quick.id}")
    second = desk.post(f"/desk/revisions/{slow.id}/approve")
    assert second.headers["Location"].endswith(f"/desk/revisions/{slow.id}/conflict")

    db.session.expire_all()
    assert stockpiling.current_revision_id == quick.id, "the second approval changed nothing"
    assert slow.state == RevisionState.SUBMITTED
    conflict_page = desk.get(second.headers["Location"]).get_data(as_text=True)
    assert "Published meanwhile" in conflict_page
    assert "It <ins>has </ins>never used them." in conflict_page
    assert "<ins> In 2026 it confirmed it has none.</ins>" in conflict_page
    assert "The author, Staff editor, can rebase it." in conflict_page

    desk.login(editor)
    assert "Rebase on the published text" in desk.get(second.headers["Location"]).get_data(
        as_text=True
    )
    response = desk.post(f"/desk/revisions/{slow.id}/rebase")
    rebased = revision_at(response)
    db.session.expire_all()
    assert slow.state == RevisionState.SUPERSEDED
    assert (rebased.state, rebased.base_revision_id, rebased.task_id) == (
        RevisionState.DRAFT,
        quick.id,
        task.id,
    )
    assert TASK_ADDITION.strip() in rebased.body and CORRECTION in rebased.body
    assert rebased.change_note == "Adds the 2026 statement."
    assert task.state == TaskState.IN_PROGRESS

    operations.submit_revision(rebased, editor)
    db.session.commit()
    desk.login(manager)
    approved = desk.post(f"/desk/revisions/{rebased.id}/approve")
    assert approved.headers["Location"].endswith(f"/desk/revisions/{rebased.id}")

    db.session.expire_all()
    assert stockpiling.current_revision_id == rebased.id
    assert TASK_ADDITION.strip() in stockpiling.body and CORRECTION in stockpiling.body
    history = {r.id: r.state for r in stockpiling.revisions}
    assert history == {
        base.id: RevisionState.APPROVED,
        slow.id: RevisionState.SUPERSEDED,
        quick.id: RevisionState.APPROVED,
        rebased.id: RevisionState.APPROVED,
    }
    # Every text ever written is still there, word for word.
    texts = {r.body for r in stockpiling.revisions}
    assert {base.body, slow.body, quick.body} <= texts


def test_a_rebase_over_the_same_words_keeps_the_authors_text_and_shows_the_other(
    desk, stockpiling, editor, manager, create_staff, open_task, draft_revision
):
    base = stockpiling.current_revision
    slow = draft_revision(
        open_task(stockpiling),
        editor,
        base.body.replace("no cluster munitions", "no stockpile of cluster munitions"),
    )
    colleague = create_staff(Role.EDITOR, email="colleague@desk.test", countries=("ML",))
    quick = operations.start_section_draft(stockpiling, colleague)
    operations.save_draft(
        quick,
        colleague,
        heading=quick.heading,
        body=base.body.replace("no cluster munitions", "never had cluster munitions"),
        change_note="",
        update_type=quick.update_type,
    )
    operations.submit_revision(quick, colleague)
    operations.approve_revision(quick, manager)
    db.session.commit()
    desk.login(editor)

    response = desk.post(f"/desk/revisions/{slow.id}/rebase")

    rebased = revision_at(response)
    assert "no stockpile of cluster munitions" in rebased.body
    page = desk.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 place that both you and the published text changed" in page
    assert "never had" in page
    assert db.session.get(SectionRevision, slow.id).body == slow.body


def test_the_draft_editor_warns_when_the_published_text_moved_on(
    desk, stockpiling, editor, manager, create_staff, open_task
):
    task = open_task(stockpiling)
    draft = operations.start_revision(task, editor)
    colleague = create_staff(Role.EDITOR, email="colleague@desk.test", countries=("ML",))
    quick = operations.start_section_draft(stockpiling, colleague)
    operations.save_draft(
        quick,
        colleague,
        heading=quick.heading,
        body="Other text.",
        change_note="",
        update_type=quick.update_type,
    )
    operations.submit_revision(quick, colleague)
    operations.approve_revision(quick, manager)
    db.session.commit()
    desk.login(editor)

    page = desk.get(f"/desk/revisions/{draft.id}/edit").get_data(as_text=True)

    assert "The published text changed since this draft began" in page
    assert f"/desk/revisions/{draft.id}/rebase" in page
