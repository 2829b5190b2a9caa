"""The quarantine: items intake held as suspect, out of the inbox until a person releases them.

Who sees which item is the inbox's rule (:func:`desk.inbox.queries.visible_feedback`): managers
and admins see every held item, an editor those of their countries. Releasing is one click: the
item joins the inbox and the reader gets the acknowledgement intake held back
(:func:`desk.inbox.operations.release_feedback`: the ``released`` event, the queued email and
the audit row).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.wrappers import Response

from desk.accounts.models import User
from desk.core.time import desk_zone
from desk.extensions import db
from desk.feedback.models import Feedback
from desk.inbox import bp
from desk.inbox.operations import release_feedback
from desk.inbox.queries import get_visible_feedback_by_id_or_404, visible_feedback
from desk.profiles.models import Profile

PAGE_SIZE = 50

#: The spam signs intake records, as staff read them.
SIGN_WORDS = {
    "honeypot": "filled in the hidden field that only robots see",
    "token_missing": "sent without the form's token",
    "token_invalid": "the form's token was forged or altered",
    "too_fast": "sent within seconds of the form being drawn",
    "token_replayed": "sent with a form token that was already used",
    "link_only": "nothing but links",
    "many_links": "many links",
    "repeated_text": "the same words or lines over and over",
}


def describe_signs(signs: list[str]) -> list[str]:
    return [SIGN_WORDS.get(sign, sign.replace("_", " ")) for sign in signs]


def quarantined_items(user: User, before: Feedback | None = None) -> list[Feedback]:
    """One page of held items the user may see, newest first, older than ``before`` if given."""
    statement = (
        sa.select(Feedback)
        .where(Feedback.is_quarantined, visible_feedback(user))
        .options(
            joinedload(Feedback.country),
            joinedload(Feedback.profile).joinedload(Profile.country),
            joinedload(Feedback.section),
            selectinload(Feedback.attachments),
        )
        .order_by(Feedback.received_at.desc(), Feedback.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before is not None:
        statement = statement.where(
            sa.or_(
                Feedback.received_at < before.received_at,
                sa.and_(Feedback.received_at == before.received_at, Feedback.id < before.id),
            )
        )
    return list(db.session.scalars(statement))


@bp.get("/quarantine")
def quarantine() -> str:
    before_id = request.args.get("before", type=int)
    before = get_visible_feedback_by_id_or_404(before_id, current_user) if before_id else None
    items = quarantined_items(current_user, before)
    older = items[PAGE_SIZE - 1].id if len(items) > PAGE_SIZE else None
    return render_template(
        "inbox/quarantine.html",
        items=items[:PAGE_SIZE],
        older=older,
        before=before_id,
        zone=desk_zone(),
        describe_signs=describe_signs,
    )


@bp.post("/quarantine/<int:feedback_id>/release")
def release_quarantined(feedback_id: int) -> Response:
    before = request.args.get("before", type=int)
    back = url_for("inbox.quarantine", before=before)
    feedback = get_visible_feedback_by_id_or_404(feedback_id, current_user, for_update=True)
    if not release_feedback(feedback, current_user):
        flash(f"{feedback.reference} is already in the inbox.", "info")
        return redirect(back)
    db.session.commit()
    message = f"{feedback.reference} is released to the inbox."
    if feedback.submitter_email:
        message += f" {feedback.submitter_email} will get the acknowledgement."
    flash(message, "success")
    return redirect(back)
