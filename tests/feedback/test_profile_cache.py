"""The feedback form reads its profile from the per-process profile cache, and never goes stale
for longer than DESK_PAGE_CACHE_SECONDS (changes made in the same process: not at all)."""

from __future__ import annotations

import sqlalchemy as sa

from desk.accounts.models import Role
from desk.admin.operations import set_auto_assign, set_profile_published
from desk.extensions import db
from desk.feedback.models import EventKind, Feedback
from desk.profiles.models import AutoAssign, Profile, Section
from tests.feedback.test_form import FORM, SECTIONS, USE, hidden_fields, items, send


def statements_during(action) -> list[str]:
    """The SQL the app sent while ``action()`` ran."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.append(" ".join(statement.split()).lower())

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_a_submission_after_the_form_was_drawn_reads_no_profile(app, client, create_profile):
    app.config.update(DESK_FORM_MIN_SECONDS=0, DESK_PAGE_CACHE_SECONDS=60)
    mali = create_profile("ML", sections=SECTIONS)
    hidden = hidden_fields(client.get(FORM).get_data(as_text=True))

    responses = []
    sql = statements_during(
        lambda: responses.append(send(client, hidden=hidden, section=USE, message="Wrong year."))
    )

    assert responses[0].status_code == 303
    reads = [s for s in sql if s.startswith("select")]
    assert not [s for s in reads if " from profile" in s or " from section" in s], reads
    (item,) = items()
    use = db.session.scalar(sa.select(Section).where(Section.anchor == USE))
    assert (item.profile_id, item.section_id, item.country_id) == (
        mali.id,
        use.id,
        mali.country_id,
    )
    assert [event.kind for event in item.events] == [EventKind.RECEIVED, EventKind.ROUTED]
    # The cached copies never joined a request's session: they stay detached, shared and read.
    cached = app.extensions["desk_profile_cache"]._profiles
    (entry,) = cached.values()
    for instance in (entry.profile, entry.profile.country, *entry.profile.sections):
        assert sa.inspect(instance).detached


def test_unpublishing_in_this_process_closes_the_form_at_once(app, client, create_profile):
    app.config.update(DESK_FORM_MIN_SECONDS=0, DESK_PAGE_CACHE_SECONDS=60)
    mali = create_profile("ML", sections=SECTIONS)
    admin = create_staff_admin()
    hidden = hidden_fields(client.get(FORM).get_data(as_text=True))

    set_profile_published(mali, False, admin)
    db.session.commit()

    assert client.get(FORM).status_code == 404
    assert send(client, hidden=hidden).status_code == 404
    assert items() == []


def test_a_change_by_another_worker_shows_once_the_cache_seconds_pass(app, client, create_profile):
    app.config.update(DESK_FORM_MIN_SECONDS=0, DESK_PAGE_CACHE_SECONDS=60)
    mali = create_profile("ML", sections=SECTIONS)
    assert "Cluster Munition Ban Policy" in client.get(FORM).get_data(as_text=True)
    # Another worker renames the topic: this process's generation does not move.
    db.session.execute(sa.update(Profile).where(Profile.id == mali.id).values(topic="Ban Policy"))
    db.session.commit()

    assert "Cluster Munition Ban Policy" in client.get(FORM).get_data(as_text=True)
    app.config["DESK_PAGE_CACHE_SECONDS"] = 0
    page = client.get(FORM).get_data(as_text=True)
    assert "Cluster Munition Ban Policy" not in page and "Mali: Ban Policy" in page


def test_auto_assign_changed_in_this_process_routes_the_next_item(
    app, client, create_profile, create_staff
):
    app.config.update(DESK_FORM_MIN_SECONDS=0, DESK_PAGE_CACHE_SECONDS=60)
    mali = create_profile("ML", sections=SECTIONS)
    lead = create_staff(Role.EDITOR, countries=("ML",), leads=("ML",))
    admin = create_staff_admin()
    assert send(client, message="First.").status_code == 303
    assert items()[0].assignee_id == lead.id

    set_auto_assign(mali.country, AutoAssign.NONE, admin)
    db.session.commit()
    assert send(client, message="Second.").status_code == 303

    second = db.session.scalar(sa.select(Feedback).where(Feedback.message == "Second."))
    assert second.assignee_id is None
    routed = next(event for event in second.events if event.kind == EventKind.ROUTED)
    assert routed.data["assignment"] == "auto-assign is off for this country"


def create_staff_admin():
    from desk.accounts.operations import create_user

    user = create_user("admin@desk.test", name="Admin", role=Role.ADMIN, password="x" * 12)
    db.session.commit()
    return user
