"""Attachments for staff: downloaded as files, or previewed when they are images or PDFs.

Only staff who may see the item get its files (another country's item is a 404). A file is never
served as a page of this site: it always carries ``X-Content-Type-Options: nosniff`` and
``Content-Security-Policy: sandbox``, is sent with the type intake sniffed, and the preview
route serves images, and PDFs as pictures of their pages drawn on the server
(desk.inbox.previews). A file the scanner has not cleared is not served.
"""

from __future__ import annotations

from typing import BinaryIO

from flask import abort, render_template, send_file
from flask_login import current_user
from werkzeug.wrappers import Response

from desk.core.storage import StorageError, get_storage
from desk.feedback.models import Attachment, ScanStatus
from desk.inbox import bp
from desk.inbox.previews import PreviewError, pdf_outline, pdf_page_png
from desk.inbox.queries import get_visible_feedback_or_404, merged_attachment_or_404
from desk.inbox.views import PREVIEW_TYPES

PDF = "application/pdf"

SERVABLE = frozenset({ScanStatus.CLEAN, ScanStatus.SKIPPED})


def _open(attachment: Attachment) -> BinaryIO:
    if attachment.scan_status not in SERVABLE:
        abort(409, description="This file has not been cleared by the virus scanner.")
    try:
        return get_storage().open(attachment.storage_key)
    except (OSError, StorageError):
        abort(404)


def _locked_down(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _send(attachment: Attachment, *, inline: bool) -> Response:
    response = send_file(
        _open(attachment),
        mimetype=attachment.content_type or "application/octet-stream",
        as_attachment=not inline,
        download_name=attachment.original_filename,
        max_age=0,
        etag=False,
        conditional=False,
    )
    return _locked_down(response)


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
    if attachment.content_type != PDF:
        return _send(attachment, inline=True)
    with _open(attachment) as stream:
        try:
            outline, problem = pdf_outline(stream), None
        except PreviewError as error:
            outline, problem = None, str(error)
    page = render_template(
        "inbox/pdf_preview.html",
        feedback=feedback,
        attachment=attachment,
        outline=outline,
        problem=problem,
    )
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/feedback/<reference>/files/<int:attachment_id>/pages/<int:number>.png")
def pdf_page(reference: str, attachment_id: int, number: int) -> Response:
    """One page of a PDF attachment as a PNG drawn on the server."""
    feedback = get_visible_feedback_or_404(reference, current_user)
    attachment = merged_attachment_or_404(feedback, attachment_id)
    if attachment.content_type != PDF:
        abort(404)
    with _open(attachment) as stream:
        try:
            png = pdf_page_png(stream, number)
        except PreviewError:
            abort(404)
    return _locked_down(Response(png, mimetype="image/png"))
