"""Write emails to the outbox, in the caller's transaction; a job delivers them after commit."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session

from desk.core.db import Session as DeskSession
from desk.extensions import db
from desk.notify.models import OutboxMessage

log = logging.getLogger(__name__)


def make_message_id() -> str:
    domain = current_app.config["DESK_MAIL_FROM"].rpartition("@")[2] or "desk.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


def queue_email(
    kind: str,
    recipient: str,
    *,
    template: str,
    dedupe_key: str,
    language: str = "en",
    headers: dict[str, Any] | None = None,
    message_id: str | None = None,
    **context: Any,
) -> OutboxMessage | None:
    """Render ``emails/<template>.txt`` and ``.html`` in the reader's language and queue them.

    The subject is the first line of the text template. Returns None when a message with the
    same dedupe key already exists: nobody is written to twice about the same thing.
    """
    existing = db.session.scalar(
        sa.select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
    )
    if existing is not None:
        return None
    # Emails are drawn as if requested from the public site, so links in them use its address.
    site_url = current_app.config["DESK_SITE_URL"]
    with current_app.test_request_context(base_url=site_url), force_locale(language):
        text = render_template(f"emails/{template}.txt", **context)
        html = render_template(f"emails/{template}.html", **context)
    subject, _, body = text.partition("\n")
    message = OutboxMessage(
        kind=kind,
        recipient=recipient,
        subject=subject.strip(),
        text=body.lstrip("\n"),
        html=html,
        headers=headers or {},
        message_id=message_id or make_message_id(),
        dedupe_key=dedupe_key,
    )
    db.session.add(message)
    db.session.flush()
    db.session.info[_WRITTEN] = True
    return message


_WRITTEN = "desk.outbox_written"


def _deliver_after_commit(session: Session) -> None:
    """Once mail is committed, ask a worker to send it (the periodic job catches a lost ask)."""
    if not session.info.pop(_WRITTEN, False):
        return
    from desk.notify.tasks import deliver_outbox

    try:
        deliver_outbox()
    except Exception:  # the queue being down must never undo or fail a committed change
        log.warning(
            "outbox: could not queue delivery; the periodic job will send it", exc_info=True
        )


def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_WRITTEN, None)


sa.event.listen(DeskSession, "after_commit", _deliver_after_commit)
sa.event.listen(DeskSession, "after_rollback", _forget_after_rollback)
