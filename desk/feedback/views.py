"""The reader's feedback form on a profile, and the thank-you page that gives the reference.

The profile page itself only links here (it is cached and the same for everyone); the form and
the thank-you page are per reader and never cached by shared caches.
"""

from __future__ import annotations

import functools
from urllib.parse import quote

from babel import support
from flask import (
    Response,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_decimal, get_locale, gettext
from flask_wtf.csrf import CSRFError
from itsdangerous import BadData, URLSafeTimedSerializer
from wtforms.i18n import messages_path

from desk.core.locale import LANGUAGES, reader_language, use_language
from desk.core.storage import StorageError
from desk.extensions import db
from desk.feedback import bp
from desk.feedback.forms import (
    FeedbackForm,
    file_too_large_message,
    files_too_large_message,
    too_many_files_message,
)
from desk.feedback.limits import limit_by_address, limit_by_email
from desk.feedback.models import Channel
from desk.feedback.operations import MAX_MESSAGE_CHARS, Submission, receive_feedback
from desk.feedback.spam import make_form_token, read_form_token
from desk.profiles.models import Profile, Section
from desk.profiles.page_cache import published_profile

#: How long the thank-you page can show the reference (a reload, the back button).
THANKS_MAX_AGE = 60 * 60
#: Where the browser keeps a draft of the message (desk.js); per profile.
DRAFT_KEY = "desk-feedback-draft:{slug}"


@bp.route("/profiles/<country_slug>/<topic_slug>/feedback", methods=["GET", "POST"])
@limit_by_address
@limit_by_email
def form(country_slug: str, topic_slug: str) -> Response:
    """Draw the form; take a submission, then send the reader to the thank-you page."""
    profile, sections = _load(country_slug, topic_slug)
    _reuse_wtforms_translations()
    form = FeedbackForm(sections, section=_preselected_section(sections))
    if not form.is_submitted():
        return _render_form(profile, form)
    if not form.validate():
        return _render_form(profile, form, status=413 if form.is_too_large else 422)
    submission = _submission(form, profile, sections)
    _end_reading()
    try:
        reference = receive_feedback(submission).feedback.reference
        db.session.commit()
    except StorageError:
        db.session.rollback()
        current_app.logger.exception("feedback form: the files could not be stored")
        problem = gettext(
            "Your files could not be stored just now, so nothing was sent. Please try again in "
            "a few minutes."
        )
        return _render_form(profile, form, status=503, problem=problem)
    # Repeats and quarantined items get the very same page: nothing tells a sender which.
    token = _thanks_serializer().dumps([reference, profile.id])
    thanks_url = url_for(
        "feedback.thanks",
        country_slug=country_slug,
        topic_slug=topic_slug,
        ref=token,
        lang=_asked_language(),
    )
    return redirect(thanks_url, code=303)


@bp.get("/profiles/<country_slug>/<topic_slug>/feedback/thanks")
def thanks(country_slug: str, topic_slug: str) -> Response:
    """The reference of what this reader just sent, for an hour; nothing else about the item."""
    profile, _ = _load(country_slug, topic_slug)
    reference = _read_thanks_token(request.args.get("ref"), profile)
    page = render_template(
        "feedback/thanks.html",
        profile=profile,
        profile_url=_profile_url(profile),
        reference=reference,
        draft_key=DRAFT_KEY.format(slug=profile.slug),
    )
    response = make_response(page, 200 if reference else 410)
    response.cache_control.no_store = True
    response.cache_control.private = True
    return response


@bp.errorhandler(CSRFError)
def form_expired(error: CSRFError) -> Response | tuple[str, int]:
    """An expired or missing CSRF token: show the form again with what the reader typed."""
    args = request.view_args or {}
    profile = None
    if request.endpoint == "feedback.form":
        profile = _find(args["country_slug"], args["topic_slug"])
    if profile is None:
        return render_template("errors/error.html", error=error), 400
    form = FeedbackForm(profile.sections)
    problem = gettext(
        "This form had expired, so nothing was sent. Your message is below: please check it "
        "and send it again."
    )
    return _render_form(profile, form, status=400, problem=problem)


def _end_reading() -> None:
    """End the transaction that read the profile, if this request had to read it.

    The files are written next, and on SQLite a submitting request's transaction holds the
    database's write lock from its first query: ended here, the lock is held only while the
    item's rows are written, not while its files go to disk. Mostly there is nothing to end:
    the profile came from this process's profile cache without a query.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()


@functools.cache
def _wtforms_translations(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


def _reuse_wtforms_translations() -> None:
    """Give Flask-WTF this process's copy of WTForms' own messages in the page's language.

    Flask-WTF reads WTForms' catalogue from disk once per request (and every form asks for it,
    to label its hidden token); the catalogue does not change while Desk runs, so it is loaded
    once per language and process. Flask-WTF keeps its per-request copy on the request.
    """
    request.wtforms_translations = _wtforms_translations(str(get_locale()))


def _load(country_slug: str, topic_slug: str) -> tuple[Profile, list[Section]]:
    """The profile the URL names (404 if none) and its sections: read-only, shared copies."""
    profile = _find(country_slug, topic_slug)
    if profile is None:
        abort(404)
    return profile, list(profile.sections)


def _find(country_slug: str, topic_slug: str) -> Profile | None:
    """The profile the URL names, with the page set to speak the reader's language."""
    profile = published_profile(country_slug, topic_slug, _asked_language())
    if profile is not None:
        use_language(reader_language(profile.language))
    return profile


def _asked_language() -> str | None:
    """``?lang=``: picks the profile's language version, as on the profile page itself."""
    return request.args.get("lang") or None


def _url(endpoint: str, profile: Profile, **args: str | None) -> str:
    """A URL about this profile that keeps the ``?lang=`` the reader came with."""
    args.setdefault("lang", _asked_language())
    return url_for(
        endpoint, country_slug=profile.country.slug, topic_slug=profile.topic_slug, **args
    )


def _profile_url(profile: Profile) -> str:
    language = profile.language if profile.language != "en" else None
    return url_for(
        "profiles.detail",
        country_slug=profile.country.slug,
        topic_slug=profile.topic_slug,
        lang=language,
    )


def _preselected_section(sections: list[Section]) -> str:
    anchor = request.args.get("section", "")
    return anchor if any(section.anchor == anchor for section in sections) else ""


def _render_form(
    profile: Profile, form: FeedbackForm, *, status: int = 200, problem: str | None = None
) -> Response:
    """The form page; a re-drawn form keeps its first token, so a quick fix is not "too fast"."""
    _, signs = read_form_token(form.token.data)
    if {"token_missing", "token_invalid"} & set(signs):
        form.token.data = make_form_token()
    config = current_app.config
    limits = {
        "files": config["DESK_UPLOAD_MAX_FILES"],
        "file_bytes": config["DESK_UPLOAD_MAX_FILE_BYTES"],
        "total_bytes": config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"],
        "extensions": config["DESK_UPLOAD_EXTENSIONS"],
        "message_chars": format_decimal(MAX_MESSAGE_CHARS),
    }
    browser_messages = {
        "too_many": too_many_files_message(limits["files"]),
        "too_large": file_too_large_message("{name}", limits["file_bytes"]),
        "total": files_too_large_message(limits["total_bytes"]),
    }
    page = render_template(
        "feedback/form.html",
        profile=profile,
        profile_url=_profile_url(profile),
        form=form,
        action=_url("feedback.form", profile),
        language_links={
            code: _url("feedback.form", profile, lang=code, section=form.section.data or None)
            for code in LANGUAGES
        },
        problem=problem,
        files_dropped=form.is_submitted() and bool(form.chosen_files()),
        limits=limits,
        browser_messages=browser_messages,
        intake=_intake_address(profile),
        draft_key=DRAFT_KEY.format(slug=profile.slug),
    )
    response = make_response(page, status)
    # The page holds this reader's tokens: no shared cache may keep it.
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response


def _submission(form: FeedbackForm, profile: Profile, sections: list[Section]) -> Submission:
    nonce, signs = read_form_token(form.token.data)
    if form.website.data:
        signs.append("honeypot")
    by_anchor = {section.anchor: section for section in sections}
    return Submission(
        channel=Channel.WEB,
        message=form.message.data,
        profile=profile,
        section=by_anchor.get(form.section.data or ""),
        submitter_name=form.name.data or "",
        submitter_email=form.email.data or "",
        submitter_organisation=form.organisation.data or "",
        wants_resolution_notice=bool(form.notify.data),
        language=str(get_locale()),
        files=form.incoming_files(),
        submitter_ip=request.remote_addr or "",
        form_nonce=nonce,
        spam_signs=signs,
    )


def _intake_address(profile: Profile) -> dict[str, str]:
    """The email-in address with the country's plus-tag, so a mail reaches the same editors."""
    address = current_app.config["DESK_INTAKE_ADDRESS"]
    local, at, domain = address.rpartition("@")
    if at and "+" not in local:
        address = f"{local}+{profile.country.code.lower()}@{domain}"
    subject = gettext("Feedback on %(profile)s", profile=f"{profile.country.name}: {profile.topic}")
    return {"address": address, "mailto": f"mailto:{address}?subject={quote(subject)}"}


def _thanks_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="desk.feedback-thanks")


def _read_thanks_token(value: str | None, profile: Profile) -> str | None:
    """The reference a thank-you link carries, if it is genuine, recent and for this profile."""
    if not value:
        return None
    try:
        reference, profile_id = _thanks_serializer().loads(value, max_age=THANKS_MAX_AGE)
    except (BadData, TypeError, ValueError):
        return None
    if profile_id != profile.id or not isinstance(reference, str):
        return None
    return reference
