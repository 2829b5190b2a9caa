"""The audit log for admins: every staff write, newest first, filtered by who, what and when."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import abort, render_template, request
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from desk.accounts.models import Role, User
from desk.extensions import db
from desk.feedback.models import Feedback
from desk.inbox import bp
from desk.inbox.forms import AuditFilterForm
from desk.inbox.queries import AuditQuery, Cursor, audit_page, users_by_id

REFERENCE = re.compile(r"^[A-Za-z]{2}-\d{4}-\d{5,}$")
OBJECT = re.compile(r"^([a-z_]+)(?::(\S+))?$")


def _object_filter(text: str) -> tuple[str, str] | None:
    """ "ML-2026-00042", "feedback:12" or "user": the object type and id to filter on."""
    text = text.strip()
    if not text:
        return "", ""
    if REFERENCE.match(text):
        found = db.session.scalar(sa.select(Feedback.id).where(Feedback.reference == text.upper()))
        return ("feedback", str(found)) if found is not None else ("feedback", "-")
    match = OBJECT.match(text.lower())
    if match is None:
        return None
    return match.group(1), match.group(2) or ""


@bp.get("/audit")
def audit_log() -> str:
    if current_user.role != Role.ADMIN:
        abort(403)
    form = AuditFilterForm(formdata=request.args)
    staff = list(db.session.scalars(sa.select(User).order_by(User.name, User.id)))
    form.actor.choices = [SelectChoice("", "Anyone"), SelectChoice("system", "Desk (no person)")]
    form.actor.choices += [SelectChoice(str(u.id), f"{u.name} <{u.email}>") for u in staff]
    form.validate()
    query = AuditQuery()
    if not form.actor.errors and form.actor.data and form.actor.data.isdigit():
        query.actor = int(form.actor.data)
    query.system_only = form.actor.data == "system"
    if not form.action.errors:
        query.action = (form.action.data or "").strip()
    target = _object_filter(form.object.data or "") if not form.object.errors else None
    if target is None and form.object.data:
        form.object.errors = [*form.object.errors, "Write a reference, “type” or “type:id”."]
    elif target is not None:
        query.object_type, query.object_id = target
    query.date_from = None if form.date_from.errors else form.date_from.data
    query.date_to = None if form.date_to.errors else form.date_to.data
    after = Cursor.decode(request.args.get("after"))
    before = None if after else Cursor.decode(request.args.get("before"))
    page = audit_page(query, after=after, before=before)
    args = {k: v for k, v in request.args.items() if k not in {"after", "before"} and v}
    return render_template(
        "inbox/audit.html",
        form=form,
        page=page,
        args=args,
        actors=users_by_id({e.actor_id for e in page.items if e.actor_id}),
    )
