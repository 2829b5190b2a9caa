"""The staff desk: home, the inbox, one item and the triage actions on it.

Views load (only what the user may see), check the form, call one operation from
:mod:`desk.inbox.operations`, commit, flash and redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from desk.accounts.models import Role, SavedView, User
from desk.core.audit import record_audit
from desk.core.permissions import staff_only
from desk.core.time import desk_zone, utcnow
from desk.extensions import db
from desk.feedback.models import Feedback, FeedbackStatus
from desk.inbox import bp
from desk.inbox.forms import (
    OPEN_STATUS_CHOICES,
    AssignForm,
    BulkForm,
    CloseForm,
    DuplicateForm,
    InboxFilterForm,
    NextForm,
    NoteForm,
    ReopenForm,
    ReplyForm,
    RouteForm,
    SavedViewForm,
    StatusForm,
)
from desk.inbox.operations import (
    TRANSITIONS,
    TriageError,
    add_note,
    apply_to_each,
    assign_feedback,
    change_status,
    close_feedback,
    mark_duplicate,
    mark_spam,
    may_reassign,
    may_take,
    release_feedback,
    reopen_feedback,
    reply_subject,
    reply_to_submitter,
    route_feedback,
)
from desk.inbox.queries import (
    VIEW_LABELS,
    Cursor,
    InboxQuery,
    View,
    assignable_users,
    colleagues,
    count_label,
    duplicates_of,
    earlier_from_submitter,
    find_visible_feedback,
    get_visible_feedback_or_404,
    inbox_page,
    profile_sections,
    saved_views,
    timeline,
    users_by_id,
    view_counts,
    views_for,
    visible_countries,
    visible_feedback,
    visible_profiles,
)
from desk.inbox.search import search_terms
from desk.inbox.timeline import describe, user_ids_named
from desk.profiles.models import Country
from desk.profiles.rendering import render_profile

staff_only(bp)

#: Content types shown in the browser (as an image, or in its PDF viewer); others download.
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})


@bp.app_template_global()
def has_endpoint(name: str) -> bool:
    """Whether a route exists (links to features still being built are left out, not dead)."""
    return name in current_app.view_functions


@bp.app_template_filter("inbox_time")
def inbox_time(value: datetime | None, now: datetime | None = None) -> str:
    """A mail client's time: 14:05 today, 28 Nov this year, 28 Nov 2025 before."""
    if value is None:
        return ""
    zone = desk_zone()
    local, today = value.astimezone(zone), (now or utcnow()).astimezone(zone)
    if local.date() == today.date():
        return f"{local:%H:%M}"
    if local.year == today.year:
        return f"{local.day} {local:%b}"
    return f"{local.day} {local:%b %Y}"


bp.add_app_template_filter(count_label, "capped")


@bp.app_template_filter("full_time")
def full_time(value: datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(desk_zone())
    return f"{local.day} {local:%B %Y, %H:%M} {local.tzname()}"


@bp.app_template_filter("age_days")
def age_days(value: datetime) -> int:
    return (utcnow() - value).days


def safe_next(target: str | None) -> str | None:
    """A path inside the desk to go back to after an action; anything else is ignored."""
    if not target or not target.startswith("/desk/") or "\\" in target:
        return None
    if target.startswith("//") or "://" in target.split("?", 1)[0]:
        return None
    # Dot segments (also percent-encoded, which browsers resolve too) could climb out of /desk/.
    segments = unquote(target.split("?", 1)[0]).split("/")
    if not target.isprintable() or any(s in {".", ".."} for s in segments):
        return None
    return target


# --------------------------------------------------------------------------- home


@bp.get("/")
def home() -> str:
    return render_template(
        "inbox/home.html",
        profiles=visible_profiles(current_user),
        views=views_for(current_user),
        labels=VIEW_LABELS,
        counts=view_counts(current_user),
    )


# --------------------------------------------------------------------------- the inbox


def _fill_filter_choices(form: InboxFilterForm, user: User) -> None:
    form.country.choices = [SelectChoice("", "Any country")] + [
        SelectChoice(c.code, f"{c.name} ({c.code})") for c in visible_countries(user)
    ]
    profiles = visible_profiles(user)
    form.profile.choices = [SelectChoice("", "Any profile")] + [
        SelectChoice(str(p.id), f"{p.country.name}: {p.topic} ({p.language})") for p in profiles
    ]
    chosen = form.profile.data if form.profile.data in {str(p.id) for p in profiles} else ""
    form.section.choices = [SelectChoice("", "Any section")] + (
        [SelectChoice(str(s.id), s.heading) for s in profile_sections(int(chosen))]
        if chosen
        else []
    )
    form.assignee.choices = [
        SelectChoice("", "Anyone"),
        SelectChoice("me", "Me"),
        SelectChoice("none", "Nobody"),
    ] + [SelectChoice(str(u.id), u.name) for u in colleagues(user) if u.id != user.id]


def inbox_query_from(args: MultiDict[str, str], user: User) -> tuple[InboxQuery, InboxFilterForm]:
    """The inbox query a query string asks for; values that are not valid choices are dropped."""
    form = InboxFilterForm(formdata=args)
    _fill_filter_choices(form, user)
    form.validate()
    views = views_for(user)
    view = args.get("view", "")
    valid = {name: field.data for name, field in form._fields.items() if not field.errors}

    def number(value: Any) -> int | None:
        return int(value) if value else None

    query = InboxQuery(
        view=View(view) if view in {str(v) for v in views} else views[0],
        q=(valid.get("q") or "").strip(),
        country=valid.get("country") or "",
        profile=number(valid.get("profile")),
        section=number(valid.get("section")),
        status=valid.get("status") or "open",
        assignee=valid.get("assignee") or "",
        channel=valid.get("channel") or "",
        has_attachments=bool(valid.get("has_attachments")),
        age=valid.get("age") or "",
        received_from=valid.get("received_from"),
        received_to=valid.get("received_to"),
        sort=valid.get("sort") or "newest",
    )
    form.view.data = str(query.view)
    return query, form


def _assign_choices(user: User, candidates: list[User]) -> list[SelectChoice]:
    return [SelectChoice("me", "Me"), SelectChoice("", "Nobody")] + [
        SelectChoice(str(u.id), u.name) for u in candidates if u.id != user.id
    ]


@bp.get("/inbox")
def inbox() -> str | Response:
    user = current_user
    query, filters = inbox_query_from(request.args, user)
    args = query.to_args()
    unused = [k for k in request.args if k not in args and k not in ("after", "before")]
    if unused and not filters.errors:
        # The filter form sends every field, empty or default: keep one short, shareable URL.
        paging = {k: request.args[k] for k in ("after", "before") if k in request.args}
        return redirect(url_for("inbox.inbox", **args, **paging))
    after = Cursor.decode(request.args.get("after"))
    before = None if after else Cursor.decode(request.args.get("before"))
    page = inbox_page(user, query, after=after, before=before)
    bulk = BulkForm(formdata=None, next=request.full_path.rstrip("?"))
    can_reassign = user.sees_all_countries or _leads_any(user)
    bulk.assignee.choices = _assign_choices(user, colleagues(user) if can_reassign else [])
    save_form = SavedViewForm(formdata=None, query=urlencode(args))
    return render_template(
        "inbox/list.html",
        query=query,
        args=args,
        filters=filters,
        page=page,
        views=views_for(user),
        labels=VIEW_LABELS,
        counts=view_counts(user),
        bulk=bulk,
        saved=saved_views(user),
        save_form=save_form,
        searched_words=search_terms(query.q),
        now=utcnow(),
    )


def _leads_any(user: User) -> bool:
    return any(assignment.is_lead for assignment in user.assignments)


def _visible_items(ids: list[int], user: User) -> list[Feedback]:
    """The ticked items, locked; any the user may not see makes the whole request a 404."""
    ids = list(dict.fromkeys(ids))
    items = list(
        db.session.scalars(
            sa.select(Feedback)
            .where(Feedback.id.in_(ids), visible_feedback(user))
            .order_by(Feedback.id)
            .with_for_update(of=Feedback)
        )
    )
    if len(items) != len(ids):
        abort(404)
    return items


def _assignee_from(value: str, user: User) -> User | None:
    """ "me", "" (nobody) or a user id; an unknown id is a 404."""
    if value == "me":
        return user
    if not value:
        return None
    if not value.isdigit():
        abort(400)
    assignee = db.session.get(User, int(value))
    if assignee is None or not assignee.is_active:
        abort(404)
    return assignee


BULK_DONE = {
    "assign": "assigned",
    "status": "changed",
    "close": "closed",
    "spam": "marked as spam",
    "release": "released",
    "duplicate": "merged",
}


@bp.post("/inbox/bulk")
def bulk_action() -> Response:
    user = current_user
    form = BulkForm()
    form.assignee.choices = _assign_choices(user, colleagues(user))
    back = safe_next(form.next.data) or url_for("inbox.inbox")
    ids = request.form.getlist("ids", type=int)
    action = request.form.get("action", "")
    if action not in BULK_DONE:
        abort(400)
    if not ids:
        flash("Tick one or more items first.", "error")
        return redirect(back)
    if not form.validate():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(back)
    items = _visible_items(ids, user)
    change: Callable[[Feedback], Any]
    if action == "assign":
        assignee = _assignee_from(form.assignee.data or "", user)

        def change(item: Feedback) -> bool:
            return assign_feedback(item, assignee, user)

    elif action == "status":
        status = FeedbackStatus(form.status.data)

        def change(item: Feedback) -> bool:
            return change_status(item, status, user)

    elif action == "close":

        def change(item: Feedback) -> bool:
            close_feedback(item, form.reason.data or "", user)
            return True

    elif action == "spam":

        def change(item: Feedback) -> bool:
            return mark_spam(item, user)

    elif action == "release":

        def change(item: Feedback) -> bool:
            return release_feedback(item, user)

    else:
        original = find_visible_feedback(form.original.data or "", user)
        if original is None:
            flash(f"No item {form.original.data or ''} that you can see.".strip(), "error")
            return redirect(back)
        items = [item for item in items if item.id != original.id]

        def change(item: Feedback) -> bool:
            mark_duplicate(item, original, user)
            return True

    outcome = apply_to_each(items, change)
    db.session.commit()
    if outcome.changed:
        count = len(outcome.changed)
        flash(f"{count} item{'s' if count != 1 else ''} {BULK_DONE[action]}.", "success")
    elif not outcome.refused:
        flash("Nothing needed changing.", "info")
    for refusal in outcome.refused:
        flash(refusal, "error")
    return redirect(back)


# --------------------------------------------------------------------------- saved views


@bp.post("/inbox/views")
def save_view() -> Response:
    user = current_user
    form = SavedViewForm()
    args = MultiDict(parse_qsl(form.query.data or ""))
    query, _ = inbox_query_from(args, user)
    if not form.validate():
        flash(" ".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for("inbox.inbox", **query.to_args()))
    name = (form.name.data or "").strip()
    saved = db.session.scalar(
        sa.select(SavedView).where(SavedView.user_id == user.id, SavedView.name == name)
    )
    before = dict(saved.query) if saved else None
    if saved is None:
        saved = SavedView(user_id=user.id, name=name, query={})
        db.session.add(saved)
    saved.query = query.to_args()
    db.session.flush()
    record_audit(
        user.id,
        "saved_view.saved",
        "saved_view",
        saved.id,
        {"name": name, "before": before, "after": saved.query},
    )
    db.session.commit()
    flash(f"Saved the view “{name}”.", "success")
    return redirect(url_for("inbox.inbox", **saved.query))


@bp.post("/inbox/views/<int:view_id>/delete")
def delete_view(view_id: int) -> Response:
    saved = db.session.get(SavedView, view_id)
    if saved is None or saved.user_id != current_user.id:
        abort(404)
    record_audit(
        current_user.id,
        "saved_view.deleted",
        "saved_view",
        saved.id,
        {"name": saved.name, "before": saved.query},
    )
    db.session.delete(saved)
    db.session.commit()
    flash(f"Deleted the view “{saved.name}”.", "success")
    return redirect(url_for("inbox.inbox"))


# --------------------------------------------------------------------------- one item


def _item_forms(feedback: Feedback, user: User) -> dict[str, Any]:
    """Fresh forms for every action the user may take on the item."""
    forms: dict[str, Any] = {}
    if may_reassign(user, feedback):
        forms["assign"] = AssignForm(formdata=None, prefix="assign")
        forms["assign"].assignee.choices = _assign_choices(user, assignable_users(feedback))
        forms["assign"].assignee.data = (
            "me" if feedback.assignee_id == user.id else str(feedback.assignee_id or "")
        )
    forms["status"] = StatusForm(formdata=None, prefix="status")
    forms["status"].status.choices = [
        choice for choice in OPEN_STATUS_CHOICES if choice.value in TRANSITIONS[feedback.status]
    ]
    forms["close"] = CloseForm(formdata=None, prefix="close")
    forms["note"] = NoteForm(formdata=None, prefix="note")
    forms["reply"] = ReplyForm(formdata=None, prefix="reply", subject=reply_subject(feedback))
    forms["duplicate"] = DuplicateForm(formdata=None, prefix="duplicate")
    forms["reopen"] = ReopenForm(formdata=None, prefix="reopen")
    forms["plain"] = NextForm(formdata=None)
    if user.sees_all_countries:
        forms["route"] = RouteForm(formdata=None, prefix="route")
        forms["route"].country.choices = _country_choices()
        forms["route"].country.data = feedback.country.code if feedback.country else None
    return forms


def _country_choices() -> list[SelectChoice]:
    countries = db.session.scalars(sa.select(Country).order_by(Country.name))
    return [SelectChoice(c.code, f"{c.name} ({c.code})") for c in countries]


def render_item(feedback: Feedback, status: int = 200, **bound: Any) -> tuple[str, int]:
    """The item page; ``bound`` replaces fresh forms with submitted ones (to show errors)."""
    user = current_user
    forms = {**_item_forms(feedback, user), **bound}
    events = timeline(feedback)
    users = users_by_id(user_ids_named(events))
    section = None
    if feedback.section is not None:
        rendered = render_profile([feedback.section])
        section = {"html": rendered.sections[0], "footnotes": rendered.footnotes}
    review_task_url = None
    if "reviews.new_task" in current_app.view_functions and feedback.country is not None:
        review_task_url = url_for("reviews.new_task", feedback=feedback.reference)
    return (
        render_template(
            "inbox/item.html",
            feedback=feedback,
            entries=[describe(event, users) for event in events],
            section=section,
            duplicates=duplicates_of(feedback),
            earlier=earlier_from_submitter(feedback, user),
            forms=forms,
            can_take=may_take(user, feedback) and not may_reassign(user, feedback),
            holds_it=feedback.assignee_id == user.id,
            show_ip=user.role == Role.ADMIN,
            review_task_url=review_task_url,
            preview_types=PREVIEW_TYPES,
            back=safe_next(request.args.get("back")) or url_for("inbox.inbox"),
        ),
        status,
    )


@bp.get("/feedback/<reference>")
def item(reference: str) -> tuple[str, int]:
    return render_item(get_visible_feedback_or_404(reference, current_user))


def _act(
    reference: str,
    form: Any,
    key: str,
    action: Callable[[Feedback], str | None],
) -> Response | tuple[str, int]:
    """Run one action on a visible item: validate, apply, commit, flash, redirect back.

    A form with errors shows the item again with what was typed; a refused change is flashed.
    """
    feedback = get_visible_feedback_or_404(reference, current_user, for_update=True)
    back = safe_next(form.next.data) or url_for("inbox.item", reference=feedback.reference)
    if not form.validate():
        return render_item(feedback, 422, **{key: form})
    try:
        message = action(feedback)
    except TriageError as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
        return redirect(back)
    db.session.commit()
    if message:
        flash(message, "success")
    return redirect(back)


@bp.post("/feedback/<reference>/assign")
def assign(reference: str) -> Response | tuple[str, int]:
    form = AssignForm(prefix="assign")

    def run(feedback: Feedback) -> str:
        assignee = _assignee_from(form.assignee.data or "", current_user)
        if not assign_feedback(feedback, assignee, current_user):
            return ""
        who = "you" if assignee is current_user else (assignee.name if assignee else "nobody")
        return f"{feedback.reference} is assigned to {who}."

    return _act(reference, form, "assign", run)


@bp.post("/feedback/<reference>/status")
def status(reference: str) -> Response | tuple[str, int]:
    form = StatusForm(prefix="status")

    def run(feedback: Feedback) -> str:
        to = FeedbackStatus(form.status.data)
        if not change_status(feedback, to, current_user):
            return ""
        return f"{feedback.reference} is now {to.replace('_', ' ')}."

    return _act(reference, form, "status", run)


@bp.post("/feedback/<reference>/close")
def close(reference: str) -> Response | tuple[str, int]:
    form = CloseForm(prefix="close")

    def run(feedback: Feedback) -> str:
        close_feedback(feedback, form.reason.data or "", current_user)
        return f"{feedback.reference} is closed: no action."

    return _act(reference, form, "close", run)


@bp.post("/feedback/<reference>/note")
def note(reference: str) -> Response | tuple[str, int]:
    form = NoteForm(prefix="note")

    def run(feedback: Feedback) -> str:
        add_note(feedback, form.text.data or "", current_user)
        return "Note added."

    return _act(reference, form, "note", run)


@bp.post("/feedback/<reference>/reply")
def reply(reference: str) -> Response | tuple[str, int]:
    form = ReplyForm(prefix="reply")

    def run(feedback: Feedback) -> str:
        reply_to_submitter(feedback, form.subject.data or "", form.text.data or "", current_user)
        return f"Reply to {feedback.submitter_email} is on its way."

    return _act(reference, form, "reply", run)


@bp.post("/feedback/<reference>/duplicate")
def duplicate(reference: str) -> Response | tuple[str, int]:
    form = DuplicateForm(prefix="duplicate")

    def run(feedback: Feedback) -> str:
        original = find_visible_feedback(form.original.data or "", current_user)
        if original is None:
            raise TriageError(f"No item {form.original.data} that you can see.")
        root = mark_duplicate(feedback, original, current_user)
        return f"{feedback.reference} is closed as a duplicate of {root.reference}."

    return _act(reference, form, "duplicate", run)


@bp.post("/feedback/<reference>/spam")
def spam(reference: str) -> Response | tuple[str, int]:
    form = NextForm()

    def run(feedback: Feedback) -> str:
        if not mark_spam(feedback, current_user):
            return ""
        return f"{feedback.reference} is closed as spam."

    return _act(reference, form, "plain", run)


@bp.post("/feedback/<reference>/release")
def release(reference: str) -> Response | tuple[str, int]:
    form = NextForm()

    def run(feedback: Feedback) -> str:
        if not release_feedback(feedback, current_user):
            return f"{feedback.reference} is already in the inbox."
        return f"{feedback.reference} is released to the inbox."

    return _act(reference, form, "plain", run)


@bp.post("/feedback/<reference>/reopen")
def reopen(reference: str) -> Response | tuple[str, int]:
    form = ReopenForm(prefix="reopen")

    def run(feedback: Feedback) -> str:
        if not reopen_feedback(feedback, current_user, form.reason.data or ""):
            return ""
        return f"{feedback.reference} is open again."

    return _act(reference, form, "reopen", run)


@bp.post("/feedback/<reference>/route")
def route(reference: str) -> Response | tuple[str, int]:
    get_visible_feedback_or_404(reference, current_user)
    if not current_user.sees_all_countries:
        abort(403)
    form = RouteForm(prefix="route")
    form.country.choices = _country_choices()

    def run(feedback: Feedback) -> str:
        country = db.session.scalar(sa.select(Country).where(Country.code == form.country.data))
        if country is None or not route_feedback(feedback, country, current_user):
            return ""
        return f"{feedback.reference} is sent to {country.name}."

    return _act(reference, form, "route", run)
