"""Attachments for staff: downloaded as files, or previewed when they are images or PDFs.

Only staff who may see the item get its files (another country's item is a 404). A file is never
served as a page of this site: it always carries ``X-Content-Type-Options: nosniff`` and
``Content-Security-Policy: sandbox``, is sent with the type intake sniffed, and the preview
route serves images and PDFs only. A file the scanner has not cleared is not served.
"""

from __future__ import annotations

from flask import abort, send_file
from flask_login import current_user
from werkzeug.wrappers import Response

from desk.core.storage import StorageError, get_storage
from desk.feedback.models import Attachment, ScanStatus
from desk.inbox import bp
from desk.inbox.queries import get_visible_feedback_or_404, merged_attachment_or_404
from desk.inbox.views import PREVIEW_TYPES

SERVABLE = frozenset({ScanStatus.CLEAN, ScanStatus.SKIPPED})


def _send(attachment: Attachment, *, inline: bool) -> Response:
    if attachment.scan_status not in SERVABLE:
        abort(409, description="This file has not been cleared by the virus scanner.")
    try:
        stream = get_storage().open(attachment.storage_key)
    except (OSError, StorageError):
        abort(404)
    response = send_file(
        stream,
        mimetype=attachment.content_type or "application/octet-stream",
        as_attachment=not inline,
        download_name=attachment.original_filename,
        max_age=0,
        etag=False,
        conditional=False,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/feedback/<reference>/files/<int:attachment_id>")
def download(reference: str, attachment_id: int) -> Response:
    feedback = get_visible_feedback_or_404(reference, current_user)
    return _send(merged_attachment_or_404(feedback, attachment_id), inline=False)


@bp.get("/feedback/<reference>/files/<int:attachment_id>/preview")
def preview(reference: str, attachment_id: int) -> Response:
    feedback = get_visible_feedback_or_404(reference, current_user)
    attachment = merged_attachment_or_404(feedback, attachment_id)
    if attachment.content_type not in PREVIEW_TYPES:
        abort(404)
    return _send(attachment, inline=True)
