"""Staff pages for review tasks, drafting, approval, history and a profile's stamps.

Every page loads its object, checks the user's countries (another country's task, revision or
profile is a 404, as if it did not exist), then calls one operation and commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from desk.accounts.models import User
from desk.core.permissions import staff_only
from desk.core.time import desk_today, desk_zone, format_day, utcnow
from desk.extensions import db
from desk.notify.queries import delivery_counts, profile_update_prefix
from desk.profiles.models import (
    Profile,
    RevisionState,
    Section,
    SectionKind,
    SectionRevision,
    UpdateType,
)
from desk.profiles.queries import profile_sections, what_changed
from desk.profiles.rendering import footnote_labels, render_profile
from desk.reviews import bp, operations, queries
from desk.reviews.diff import diff_words
from desk.reviews.forms import (
    ActionForm,
    CancelTaskForm,
    LastUpdatedForm,
    RequestChangesForm,
    RevisionForm,
    SectionChoiceForm,
    TaskEditForm,
    TaskForm,
)
from desk.reviews.models import ReviewTask, TaskState

staff_only(bp)

T = TypeVar("T")


@bp.context_processor
def review_context() -> dict[str, Any]:
    return {"zone": desk_zone(), "TaskState": TaskState, "RevisionState": RevisionState}


# --------------------------------------------------------------------------- loading


def _load_task(task_id: int) -> ReviewTask:
    task = db.get_or_404(ReviewTask, task_id)
    if not queries.can_see_country(current_user, task.profile.country_id):
        abort(404)
    return task


def _load_revision(revision_id: int) -> SectionRevision:
    revision = db.get_or_404(SectionRevision, revision_id)
    if not queries.can_see_country(current_user, revision.section.profile.country_id):
        abort(404)
    return revision


def _load_section(section_id: int) -> Section:
    section = db.get_or_404(Section, section_id)
    if not queries.can_see_country(current_user, section.profile.country_id):
        abort(404)
    return section


def _load_profile(profile_id: int) -> Profile:
    profile = db.get_or_404(Profile, profile_id)
    if not queries.can_see_country(current_user, profile.country_id):
        abort(404)
    return profile


def _attempt(action: Callable[[], T]) -> tuple[bool, T | None]:
    """Run an operation: a refusal is a 403, a change that cannot be made a flashed error."""
    try:
        return True, action()
    except operations.NotAllowed:
        db.session.rollback()
        abort(403)
    except operations.ReviewError as error:
        db.session.rollback()
        flash(str(error), "error")
        return False, None


def _user_choices(users: list[User], empty: str) -> list[tuple[Any, str]]:
    return [("", empty)] + [(user.id, f"{user.name} ({user.role})") for user in users]


# --------------------------------------------------------------------------- task lists


@bp.get("/tasks")
def tasks() -> str:
    """The task lists: mine, my countries, overdue, and revisions awaiting my approval."""
    view = request.args.get("view", "mine")
    if view == "approval":
        return render_template(
            "reviews/tasks.html",
            view=view,
            revisions=queries.awaiting_approval(current_user),
            filters=None,
        )
    filters = queries.TaskFilters(
        view=queries.TaskView(view) if view in set(queries.TaskView) else queries.TaskView.MINE,
        state=request.args.get("state", ""),
        country_id=request.args.get("country", type=int),
        assignee_id=request.args.get("assignee", type=int),
        text=request.args.get("q", "").strip()[:200],
        before=request.args.get("before", type=int),
    )
    today = desk_today()
    rows = queries.task_list(current_user, filters, today)
    more = len(rows) > queries.PAGE_SIZE
    rows = rows[: queries.PAGE_SIZE]
    next_args = None
    if more:
        next_args = {**request.args.to_dict(), "before": rows[-1].id}
    profiles = queries.visible_profiles(current_user)
    countries = sorted({p.country for p in profiles}, key=lambda c: c.name)
    return render_template(
        "reviews/tasks.html",
        view=str(filters.view),
        filters=filters,
        rows=rows,
        next_args=next_args,
        today=today,
        countries=countries,
        staff=_list_staff(countries),
        states=list(TaskState),
    )


def _list_staff(countries: list[Any]) -> list[User]:
    people: dict[int, User] = {}
    for country in countries:
        for user in queries.assignable_staff(country.id):
            people[user.id] = user
    return sorted(people.values(), key=lambda u: (u.name, u.id))


# --------------------------------------------------------------------------- opening a task


@dataclass
class _Candidates:
    profiles: list[Profile]
    default_target: str
    default_title: str
    problem: str = ""


def _candidates(items: list[Any]) -> _Candidates:
    """Which profiles and sections a new task may be on, from the feedback or query string."""
    section_id = request.args.get("section", type=int)
    profile_id = request.args.get("profile", type=int)
    if items:
        profile_ids = {item.profile_id for item in items if item.profile_id}
        country_ids = {item.country_id for item in items if item.country_id}
        if len(profile_ids) > 1 or len(country_ids) > 1:
            return _Candidates([], "", "", "These items are about different profiles.")
        if profile_ids:
            profiles = [_load_profile(profile_ids.pop())]
        else:
            profiles = [
                p
                for p in queries.visible_profiles(current_user)
                if not country_ids or p.country_id in country_ids
            ]
        sections = {item.section_id for item in items}
        target = ""
        heading = ""
        if len(sections) == 1 and None not in sections:
            section = db.session.get(Section, sections.pop())
            target, heading = f"section:{section.id}", section.heading
        elif len(profiles) == 1:
            target = f"profile:{profiles[0].id}"
        references = ", ".join(item.reference for item in items[:3])
        if len(items) > 3:
            references += f" and {len(items) - 3} more"
        about = f"“{heading}”" if heading else "the profile"
        return _Candidates(profiles, target, f"Review {about} ({references})")
    if section_id is not None:
        section = _load_section(section_id)
        return _Candidates(
            [section.profile], f"section:{section.id}", f"Review “{section.heading}”"
        )
    if profile_id is not None:
        profile = _load_profile(profile_id)
        return _Candidates([profile], f"profile:{profile.id}", "")
    return _Candidates(queries.visible_profiles(current_user), "", "")


def _target_choices(profiles: list[Profile]) -> dict[str, list[tuple[str, str]]]:
    choices: dict[str, list[tuple[str, str]]] = {}
    for profile in profiles:
        label = f"{profile.country.name}: {profile.topic} ({profile.language})"
        options = [(f"profile:{profile.id}", "The whole profile")]
        options += [(f"section:{s.id}", s.heading) for s in profile.sections]
        choices[label] = options
    return choices


def _parse_target(value: str, profiles: list[Profile]) -> tuple[Profile | None, Section | None]:
    """The profile and section a "profile:<id>" or "section:<id>" choice names, if offered."""
    kind, _, raw_id = (value or "").partition(":")
    for profile in profiles:
        if kind == "profile" and str(profile.id) == raw_id:
            return profile, None
        for section in profile.sections:
            if kind == "section" and str(section.id) == raw_id:
                return profile, section
    return None, None


@bp.route("/tasks/new", methods=["GET", "POST"])
def new_task() -> Response | str:
    """Open a review task from feedback items (``?feedback=REF&feedback=…``) or standalone.

    ``?section=ID`` or ``?profile=ID`` preselect what it is on. A section that already has an
    open task gets the feedback linked to that task instead.
    """
    references = request.args.getlist("feedback")
    items = queries.feedback_by_references(references)
    if len(items) != len({ref.strip().upper() for ref in references if ref.strip()}):
        abort(404)
    for item in items:
        if not queries.can_see_country(current_user, item.country_id):
            abort(404)
    candidates = _candidates(items)
    country_ids = sorted({p.country_id for p in candidates.profiles})
    assignable = {u.id: u for c in country_ids for u in queries.assignable_staff(c)}
    approvers = {u.id: u for c in country_ids for u in queries.approvers_of(c)}

    form = TaskForm()
    form.target.choices = _target_choices(candidates.profiles)
    form.assignee.choices = _user_choices(list(assignable.values()), "Nobody yet")
    form.reviewer.choices = _user_choices(list(approvers.values()), "Any approver")
    if request.method == "GET":
        form.target.data = candidates.default_target
        form.title.data = candidates.default_title
        form.assignee.data = current_user.id if current_user.id in assignable else None

    if not candidates.problem and form.validate_on_submit():
        profile, section = _parse_target(form.target.data, candidates.profiles)
        if profile is None:
            abort(400)
        assignee = assignable.get(form.assignee.data) if form.assignee.data else None
        reviewer = approvers.get(form.reviewer.data) if form.reviewer.data else None
        if assignee is not None and not queries.can_see_country(assignee, profile.country_id):
            form.assignee.errors.append(f"{assignee.name} does not work on this country.")
        elif reviewer is not None and not queries.is_approver(reviewer, profile.country_id):
            form.reviewer.errors.append(f"{reviewer.name} cannot approve for this country.")
        else:
            done, result = _attempt(
                lambda: operations.open_review_task(
                    profile,
                    section,
                    actor=current_user,
                    title=form.title.data or "",
                    description=form.description.data or "",
                    assignee=assignee,
                    reviewer=reviewer,
                    due_on=form.due_on.data,
                    feedback=items,
                )
            )
            if done and result is not None:
                db.session.commit()
                if result.created:
                    flash("Review task opened.", "success")
                elif result.linked:
                    flash(
                        f"“{section.heading if section else profile.topic}” already has an open "
                        f"task; {len(result.linked)} feedback item(s) were linked to it.",
                        "success",
                    )
                else:
                    flash("That section already has an open task: here it is.", "success")
                return redirect(url_for("reviews.task", task_id=result.task.id))

    _, chosen = _parse_target(form.target.data, candidates.profiles)
    held = queries.open_task_for_section(chosen.id) if chosen else None
    return render_template(
        "reviews/new_task.html",
        form=form,
        items=items,
        problem=candidates.problem,
        held=held,
    )


# --------------------------------------------------------------------------- a task


@bp.get("/tasks/<int:task_id>")
def task(task_id: int) -> str:
    task = _load_task(task_id)
    revisions = queries.task_revisions(task)
    pending = next((r for r in revisions if r.state in queries.PENDING_REVISION_STATES), None)
    section_form = None
    if task.section is None and task.is_open:
        section_form = SectionChoiceForm()
        section_form.section.choices = [(s.id, s.heading) for s in task.profile.sections]
    return render_template(
        "reviews/task.html",
        task=task,
        revisions=revisions,
        pending=pending,
        activity=_activity_for(task, revisions),
        section_form=section_form,
        action_form=ActionForm(),
        cancel_form=CancelTaskForm(),
        can_manage=queries.can_manage_task(current_user, task),
        can_revise=task.state in queries.ASSIGNEE_STATES
        and task.section is not None
        and task.assignee_id in (None, current_user.id),
        today=desk_today(),
    )


def _activity_for(task: ReviewTask, revisions: list[SectionRevision]) -> list[dict[str, Any]]:
    """The task's history from the audit trail: its own rows and its revisions'."""
    rows = queries.activity("review_task", task.id)
    for revision in revisions:
        rows += queries.activity("section_revision", revision.id)
    rows.sort(key=lambda row: (row.at, row.id))
    return _described(rows, {str(r.id): r.number for r in revisions})


def _described(rows: list[Any], numbers: dict[str, int]) -> list[dict[str, Any]]:
    """Audit rows with their actor and, for a revision's row, the revision's number."""
    people = queries.users_by_id({row.actor_id for row in rows if row.actor_id})
    return [
        {
            "event": row,
            "actor": people.get(row.actor_id),
            "revision": numbers.get(row.object_id)
            if row.object_type == "section_revision"
            else None,
        }
        for row in rows
    ]


@bp.route("/tasks/<int:task_id>/edit", methods=["GET", "POST"])
def edit_task(task_id: int) -> Response | str:
    task = _load_task(task_id)
    if not queries.can_manage_task(current_user, task):
        abort(403)
    country_id = task.profile.country_id
    assignable = {u.id: u for u in queries.assignable_staff(country_id)}
    approvers = {u.id: u for u in queries.approvers_of(country_id)}
    form = TaskEditForm(obj=None if request.method == "POST" else task)
    form.assignee.choices = _user_choices(list(assignable.values()), "Nobody yet")
    form.reviewer.choices = _user_choices(list(approvers.values()), "Any approver")
    if request.method == "GET":
        form.assignee.data = task.assignee_id
        form.reviewer.data = task.reviewer_id
    if form.validate_on_submit():
        done, changed = _attempt(
            lambda: operations.update_task(
                task,
                current_user,
                title=form.title.data or "",
                description=form.description.data or "",
                assignee=assignable.get(form.assignee.data) if form.assignee.data else None,
                reviewer=approvers.get(form.reviewer.data) if form.reviewer.data else None,
                due_on=form.due_on.data,
            )
        )
        if done:
            db.session.commit()
            flash("Task updated." if changed else "Nothing changed.", "success")
            return redirect(url_for("reviews.task", task_id=task.id))
    return render_template("reviews/edit_task.html", task=task, form=form)


@bp.post("/tasks/<int:task_id>/cancel")
def cancel_task(task_id: int) -> Response:
    task = _load_task(task_id)
    if not queries.can_manage_task(current_user, task):
        abort(403)
    form = CancelTaskForm()
    if form.validate_on_submit():
        done, _ = _attempt(lambda: operations.cancel_task(task, current_user, form.reason.data))
        if done:
            db.session.commit()
            flash("Task cancelled; its feedback is back in triage.", "success")
    return redirect(url_for("reviews.task", task_id=task.id))


@bp.post("/tasks/<int:task_id>/section")
def choose_section(task_id: int) -> Response:
    task = _load_task(task_id)
    if not queries.can_manage_task(current_user, task):
        abort(403)
    form = SectionChoiceForm()
    form.section.choices = [(s.id, s.heading) for s in task.profile.sections]
    if not form.validate_on_submit():
        abort(400)
    section = db.session.get(Section, form.section.data)
    done, holder = _attempt(lambda: operations.choose_task_section(task, section, current_user))
    if not done or holder is None:
        return redirect(url_for("reviews.task", task_id=task.id))
    db.session.commit()
    if holder.id != task.id:
        flash(
            Markup(
                '“{}” already has an open task: <a href="{}">{}</a>. Link this task\'s feedback'
                " to it, or pick another section."
            ).format(section.heading, url_for("reviews.task", task_id=holder.id), holder.title),
            "error",
        )
    return redirect(url_for("reviews.task", task_id=task.id))


@bp.post("/tasks/<int:task_id>/revise")
def start_revision(task_id: int) -> Response:
    """Begin or resume the task's draft, then edit it."""
    task = _load_task(task_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    done, revision = _attempt(lambda: operations.start_revision(task, current_user))
    if not done or revision is None:
        return redirect(url_for("reviews.task", task_id=task.id))
    db.session.commit()
    return redirect(url_for("reviews.edit_revision", revision_id=revision.id))


# --------------------------------------------------------------------------- drafting


def _draft_warnings(revision: SectionRevision) -> list[str]:
    referenced, defined = footnote_labels(revision.body)
    warnings = [
        f"Footnote [^{label}] is referenced but has no “[^{label}]: …” text."
        for label in referenced
        if label not in defined
    ]
    warnings += [
        f"Footnote [^{label}] has a text but is never referenced."
        for label in defined
        if label not in referenced
    ]
    return warnings


def _is_stale(revision: SectionRevision) -> bool:
    return revision.base_revision_id != revision.section.current_revision_id


@bp.route("/revisions/<int:revision_id>/edit", methods=["GET", "POST"])
def edit_revision(revision_id: int) -> Response | str:
    """The draft editor: Save, Save and preview, or Submit for approval (saving first)."""
    revision = _load_revision(revision_id)
    if revision.state != RevisionState.DRAFT or revision.author_id != current_user.id:
        return redirect(url_for("reviews.revision", revision_id=revision.id))
    form = RevisionForm(obj=None if request.method == "POST" else revision)
    if request.method == "GET":
        form.update_type.data = revision.update_type.value
    if form.validate_on_submit():
        operations.save_draft(
            revision,
            current_user,
            heading=form.heading.data or "",
            body=form.body.data or "",
            change_note=form.change_note.data or "",
            update_type=UpdateType(form.update_type.data),
        )
        db.session.commit()
        if form.preview.data:
            return redirect(url_for("reviews.preview", revision_id=revision.id))
        if form.submit.data:
            problems = operations.submission_problems(revision)
            if not problems:
                operations.submit_revision(revision, current_user)
                db.session.commit()
                flash("Submitted for approval. The approvers have been told.", "success")
                return redirect(_after_revision(revision))
            for problem in problems:
                flash(problem, "error")
            if revision.update_type == UpdateType.MAJOR and not revision.change_note:
                form.change_note.errors = ["A major revision needs a change note."]
        else:
            flash("Draft saved.", "success")
            return redirect(url_for("reviews.edit_revision", revision_id=revision.id))
    current = revision.section.current_revision
    return render_template(
        "reviews/edit_revision.html",
        revision=revision,
        form=form,
        task=queries.task_of(revision),
        current=current,
        diff=diff_words(current.body if current else "", revision.body),
        stale=_is_stale(revision),
        warnings=_draft_warnings(revision),
        change_request=queries.change_request_answered_by(revision),
        action_form=ActionForm(),
    )


def _after_revision(revision: SectionRevision) -> str:
    if revision.task_id:
        return url_for("reviews.task", task_id=revision.task_id)
    return url_for("reviews.revision", revision_id=revision.id)


@bp.post("/revisions/<int:revision_id>/autosave")
def autosave(revision_id: int) -> tuple[Response, int] | Response:
    """Save the draft while its author types (the editor's script calls this)."""
    revision = _load_revision(revision_id)
    if revision.author_id != current_user.id:
        abort(403)
    if revision.state != RevisionState.DRAFT:
        return jsonify(saved=False, message="This revision is no longer a draft."), 409
    form = RevisionForm()
    if not form.validate():
        return jsonify(saved=False, message=" ".join(_form_errors(form))), 400
    operations.save_draft(
        revision,
        current_user,
        heading=form.heading.data or "",
        body=form.body.data or "",
        change_note=form.change_note.data or "",
        update_type=UpdateType(form.update_type.data),
    )
    db.session.commit()
    now = utcnow()
    return jsonify(
        saved=True,
        saved_at=now.isoformat(),
        message=f"Draft saved at {now.astimezone(desk_zone()):%H:%M}.",
    )


def _form_errors(form: RevisionForm) -> list[str]:
    return [f"{form[name].label.text}: {' '.join(errors)}" for name, errors in form.errors.items()]


@dataclass
class _DraftSection:
    """A section as the draft would make it, for the preview."""

    anchor: str
    heading: str
    level: int
    kind: SectionKind
    body: str


class _PreviewProfile:
    """The profile as the page would show it once the draft is approved today."""

    def __init__(self, profile: Profile, revision: SectionRevision) -> None:
        self._profile = profile
        self.last_updated_on = (
            desk_today() if revision.update_type == UpdateType.MAJOR else profile.last_updated_on
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._profile, name)


@bp.get("/revisions/<int:revision_id>/preview")
def preview(revision_id: int) -> str:
    """The whole public page with this revision in its section: footnotes numbered across it."""
    revision = _load_revision(revision_id)
    section = revision.section
    profile = section.profile
    shown = [
        _DraftSection(s.anchor, revision.heading, s.level, s.kind, revision.body)
        if s.id == section.id
        else s
        for s in profile_sections(profile)
    ]
    return render_template(
        "reviews/preview.html",
        profile=_PreviewProfile(profile, revision),
        page=render_profile(shown),
        updates=what_changed(profile),
        revision=revision,
        can_edit=revision.state == RevisionState.DRAFT and revision.author_id == current_user.id,
    )


# --------------------------------------------------------------------------- a revision


@bp.get("/revisions/<int:revision_id>")
def revision(revision_id: int) -> str:
    """A revision with its diff against the published text, its feedback and the decision."""
    revision = _load_revision(revision_id)
    section = revision.section
    current = section.current_revision
    task = queries.task_of(revision)
    compared_with = current
    if revision.state in (RevisionState.APPROVED, RevisionState.SUPERSEDED) or (
        current is not None and current.id == revision.id
    ):
        compared_with = revision.base_revision
    return render_template(
        "reviews/revision.html",
        revision=revision,
        section=section,
        task=task,
        current=current,
        compared_with=compared_with,
        heading_diff=diff_words(compared_with.heading if compared_with else "", revision.heading),
        diff=diff_words(compared_with.body if compared_with else "", revision.body),
        stale=revision.state in queries.PENDING_REVISION_STATES and _is_stale(revision),
        may_decide=revision.state == RevisionState.SUBMITTED
        and queries.may_approve(current_user, revision),
        own=revision.author_id == current_user.id,
        four_eyes=queries.four_eyes(),
        action_form=ActionForm(),
        changes_form=RequestChangesForm(),
        activity=_activity_for_revision(revision),
        notices=_notices(revision.profile_update_id) if revision.profile_update_id else None,
    )


def _notices(profile_update_id: int) -> dict[str, int]:
    """How the subscriber emails of one stamp fared: notified, pending, failed."""
    return delivery_counts(profile_update_prefix(profile_update_id))


def _activity_for_revision(revision: SectionRevision) -> list[dict[str, Any]]:
    return _described(queries.activity("section_revision", revision.id), {})


@bp.post("/revisions/<int:revision_id>/approve")
def approve(revision_id: int) -> Response:
    revision = _load_revision(revision_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        approval = operations.approve_revision(revision, current_user)
    except operations.RevisionConflict as conflict:
        db.session.rollback()
        flash(str(conflict), "error")
        return redirect(url_for("reviews.conflict", revision_id=revision.id))
    except operations.NotAllowed:
        db.session.rollback()
        abort(403)
    except operations.ReviewError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("reviews.revision", revision_id=revision.id))
    db.session.commit()
    if approval.update is not None:
        flash(
            f"Approved and published. Last Updated is now {format_day(approval.update.stamped_on)}"
            f"; {approval.notices} email(s) queued, {len(approval.closed_feedback)} feedback"
            " item(s) closed.",
            "success",
        )
    else:
        flash("Approved and published as a minor revision (Last Updated unchanged).", "success")
    return redirect(url_for("reviews.revision", revision_id=revision.id))


@bp.post("/revisions/<int:revision_id>/request-changes")
def request_changes(revision_id: int) -> Response | str:
    revision = _load_revision(revision_id)
    form = RequestChangesForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
        return redirect(url_for("reviews.revision", revision_id=revision.id))
    done, _ = _attempt(
        lambda: operations.request_changes(revision, current_user, form.comment.data or "")
    )
    if done:
        db.session.commit()
        flash("Sent back to the author with your comment.", "success")
    return redirect(url_for("reviews.revision", revision_id=revision.id))


@bp.get("/revisions/<int:revision_id>/conflict")
def conflict(revision_id: int) -> Response | str:
    """Both changes since the common base: what was published meanwhile, and this draft's."""
    revision = _load_revision(revision_id)
    current = revision.section.current_revision
    if revision.state not in queries.PENDING_REVISION_STATES or not _is_stale(revision):
        return redirect(url_for("reviews.revision", revision_id=revision.id))
    base = revision.base_revision
    base_body = base.body if base else ""
    base_heading = base.heading if base else ""
    return render_template(
        "reviews/conflict.html",
        revision=revision,
        base=base,
        current=current,
        theirs=diff_words(base_body, current.body if current else ""),
        theirs_heading=diff_words(base_heading, current.heading if current else ""),
        ours=diff_words(base_body, revision.body),
        ours_heading=diff_words(base_heading, revision.heading),
        own=revision.author_id == current_user.id,
        may_decide=revision.state == RevisionState.SUBMITTED
        and queries.may_approve(current_user, revision),
        action_form=ActionForm(),
        changes_form=RequestChangesForm(
            comment="The section was changed by another revision since this one was drafted."
            " Please rebase it on the published text and check both changes."
        ),
    )


@bp.post("/revisions/<int:revision_id>/rebase")
def rebase(revision_id: int) -> Response:
    revision = _load_revision(revision_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    done, result = _attempt(lambda: operations.rebase_revision(revision, current_user))
    if not done or result is None:
        return redirect(url_for("reviews.revision", revision_id=revision.id))
    db.session.commit()
    if result.conflicts:
        flash(
            Markup(render_template("reviews/_merge_conflicts.html", conflicts=result.conflicts)),
            "error",
        )
    else:
        flash(
            "Rebased: the new draft has the published text with your changes merged in."
            " Check it, then submit it again.",
            "success",
        )
    return redirect(url_for("reviews.edit_revision", revision_id=result.revision.id))


@bp.post("/revisions/<int:revision_id>/withdraw")
def withdraw(revision_id: int) -> Response:
    revision = _load_revision(revision_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    done, _ = _attempt(lambda: operations.withdraw_revision(revision, current_user))
    if done:
        db.session.commit()
        flash("Withdrawn: the revision is a draft again.", "success")
        return redirect(url_for("reviews.edit_revision", revision_id=revision.id))
    return redirect(url_for("reviews.revision", revision_id=revision.id))


@bp.post("/revisions/<int:revision_id>/discard")
def discard(revision_id: int) -> Response:
    revision = _load_revision(revision_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    done, _ = _attempt(lambda: operations.discard_draft(revision, current_user))
    if done:
        db.session.commit()
        flash("Draft discarded (it stays in the history).", "success")
    return redirect(_after_revision(revision))


@bp.post("/revisions/<int:revision_id>/restore")
def restore(revision_id: int) -> Response:
    """Start a draft with the text of an earlier published revision."""
    old = _load_revision(revision_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    done, revision = _attempt(lambda: operations.restore_revision(old, current_user))
    if not done or revision is None:
        return redirect(url_for("reviews.section_history", section_id=old.section_id))
    db.session.commit()
    held = queries.open_task_for_section(old.section_id)
    message = f"A draft with the text of revision {old.number}: check it and submit it."
    if held is not None:
        message += f" Note: the open task “{held.title}” is also revising this section."
    flash(message, "success")
    return redirect(url_for("reviews.edit_revision", revision_id=revision.id))


# --------------------------------------------------------------------------- history


@bp.get("/sections/<int:section_id>/history")
def section_history(section_id: int) -> str:
    section = _load_section(section_id)
    revisions = queries.section_revisions(section)
    return render_template(
        "reviews/section_history.html",
        section=section,
        revisions=revisions,
        action_form=ActionForm(),
    )


@bp.post("/sections/<int:section_id>/draft")
def start_section_draft(section_id: int) -> Response:
    """Draft a correction of a section without a task (it still needs approval)."""
    section = _load_section(section_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    done, revision = _attempt(lambda: operations.start_section_draft(section, current_user))
    if not done or revision is None:
        return redirect(url_for("reviews.section_history", section_id=section.id))
    db.session.commit()
    held = queries.open_task_for_section(section.id)
    if held is not None:
        flash(f"Note: the open task “{held.title}” is also revising this section.", "success")
    return redirect(url_for("reviews.edit_revision", revision_id=revision.id))


@bp.get("/sections/<int:section_id>/compare")
def compare(section_id: int) -> str:
    """The diff between any two revisions of a section (``?a=ID&b=ID``)."""
    section = _load_section(section_id)
    old = db.get_or_404(SectionRevision, request.args.get("a", type=int) or 0)
    new = db.get_or_404(SectionRevision, request.args.get("b", type=int) or 0)
    if old.section_id != section.id or new.section_id != section.id:
        abort(404)
    if old.number > new.number:
        old, new = new, old
    return render_template(
        "reviews/compare.html",
        section=section,
        old=old,
        new=new,
        heading_diff=diff_words(old.heading, new.heading),
        diff=diff_words(old.body, new.body),
    )


@bp.get("/profiles/<int:profile_id>/history")
def profile_history(profile_id: int) -> str:
    profile = _load_profile(profile_id)
    return render_template(
        "reviews/profile_history.html",
        profile=profile,
        revisions=queries.profile_revisions(profile),
        stamps=queries.profile_stamps(profile),
    )


# --------------------------------------------------------------------------- a profile


@bp.get("/profiles/<int:profile_id>")
def profile(profile_id: int) -> str:
    return _profile_page(_load_profile(profile_id))


def _profile_page(profile: Profile, form: LastUpdatedForm | None = None) -> str:
    if form is None:
        form = LastUpdatedForm(last_updated_on=desk_today())
    stamps = queries.profile_stamps(profile)[:10]
    return render_template(
        "reviews/profile.html",
        profile=profile,
        sections=profile_sections(profile),
        open_tasks=queries.open_tasks_by_section(profile),
        tasks=queries.profile_tasks(profile),
        stamps=stamps,
        notices={stamp.id: _notices(stamp.id) for stamp in stamps},
        can_manage=queries.can_manage_profiles(current_user),
        last_updated_form=form,
        action_form=ActionForm(),
        today=desk_today(),
    )


@bp.post("/profiles/<int:profile_id>/last-updated")
def set_last_updated(profile_id: int) -> Response | str:
    """A manager sets Last Updated by hand, with a reason (audited)."""
    profile = _load_profile(profile_id)
    if not queries.can_manage_profiles(current_user):
        abort(403)
    form = LastUpdatedForm()
    if form.validate_on_submit():
        done, update = _attempt(
            lambda: operations.set_last_updated(
                profile, form.last_updated_on.data, form.reason.data or "", current_user
            )
        )
        if done and update is not None:
            db.session.commit()
            flash(f"Last Updated is now {format_day(update.stamped_on)}.", "success")
            return redirect(url_for("reviews.profile", profile_id=profile.id))
    return _profile_page(profile, form)


@bp.post("/profiles/<int:profile_id>/reviewed")
def mark_reviewed(profile_id: int) -> Response:
    """A manager records that the profile was read and is still current."""
    profile = _load_profile(profile_id)
    if not queries.can_manage_profiles(current_user):
        abort(403)
    if not ActionForm().validate_on_submit():
        abort(400)
    operations.mark_reviewed(profile, current_user)
    db.session.commit()
    flash(f"Marked as reviewed and still current on {format_day(profile.reviewed_on)}.", "success")
    return redirect(url_for("reviews.profile", profile_id=profile.id))
