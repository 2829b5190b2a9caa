"""Write emails to the outbox, in the caller's transaction; a job delivers them after commit."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template, request, url_for
from flask_babel import force_locale
from sqlalchemy.orm import Session

from desk.core.db import Session as DeskSession
from desk.extensions import db
from desk.notify.models import OutboxMessage

log = logging.getLogger(__name__)


def make_message_id() -> str:
    domain = current_app.config["DESK_MAIL_FROM"].rpartition("@")[2] or "desk.invalid"
    return f"<{uuid.uuid4().hex}@{domain}>"


#: Marks a request context made by :func:`site_context`.
_SITE_CONTEXT = "desk.site_context"


@contextmanager
def site_context() -> Iterator[None]:
    """A request context on DESK_SITE_URL, so ``url_for(..., _external=True)`` links to the site.

    Emails are drawn as if requested from the public site, whatever request or job writes them.
    Inside one already, nothing new is pushed: a fan-out to many readers pays for it once.
    """
    if has_request_context() and request.environ.get(_SITE_CONTEXT):
        yield
        return
    site_url = current_app.config["DESK_SITE_URL"]
    with current_app.test_request_context(
        base_url=site_url, environ_overrides={_SITE_CONTEXT: True}
    ):
        yield


def site_url_for(endpoint: str, **values: Any) -> str:
    """An absolute URL on the public site (for emails and their headers)."""
    with site_context():
        return url_for(endpoint, _external=True, **values)


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
    message = build_message(
        kind,
        recipient,
        template=template,
        dedupe_key=dedupe_key,
        language=language,
        headers=headers,
        message_id=message_id,
        **context,
    )
    db.session.add(message)
    db.session.flush()
    deliver_after_commit()
    return message


def build_message(
    kind: str,
    recipient: str,
    *,
    template: str,
    dedupe_key: str,
    language: str = "en",
    headers: dict[str, Any] | None = None,
    message_id: str | None = None,
    **context: Any,
) -> OutboxMessage:
    """An unsaved outbox row with the rendered email (for callers that check dedupe keys in bulk).

    Add it with :func:`add_messages`, which also asks for delivery after the commit.
    """
    subject, text, html = render_email(template, language, **context)
    return new_message(
        kind,
        recipient,
        subject=subject,
        text=text,
        html=html,
        dedupe_key=dedupe_key,
        headers=headers,
        message_id=message_id,
    )


def render_email(template: str, language: str, **context: Any) -> tuple[str, str, str]:
    """Subject, text and HTML of ``emails/<template>`` in ``language``, as the site draws them."""
    with site_context(), force_locale(language):
        text = render_template(f"emails/{template}.txt", **context)
        html = render_template(f"emails/{template}.html", **context)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n"), html


def new_message(
    kind: str,
    recipient: str,
    *,
    subject: str,
    text: str,
    html: str,
    dedupe_key: str,
    headers: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> OutboxMessage:
    """An unsaved outbox row from an email already drawn."""
    return OutboxMessage(
        kind=kind,
        recipient=recipient,
        subject=subject,
        text=text,
        html=html,
        headers=headers or {},
        message_id=message_id or make_message_id(),
        dedupe_key=dedupe_key,
    )


def add_messages(messages: list[OutboxMessage]) -> None:
    """Write built messages in one flush; their dedupe keys must be new (or the flush fails)."""
    if not messages:
        return
    db.session.add_all(messages)
    db.session.flush()
    deliver_after_commit()


def deliver_after_commit() -> None:
    """Ask for a delivery run once this transaction commits (mail was written or made due)."""
    db.session.info[_WRITTEN] = True


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
