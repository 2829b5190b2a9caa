"""The intake API: feedback sent from a form on the publisher's own website.

``POST /api/v1/feedback`` checks the fields and files with the web form's own class (so the two
channels cannot drift apart), reads the same spam signs, counts against the same rate limits and
hands the submission to the one intake operation. ``GET /api/v1/form-token`` gives the signed
token such a form carries, so the timing check works here too. The API has no session, so it is
exempt from CSRF; browsers may call it from the origins listed in DESK_CORS_ORIGINS only. Every
answer is JSON, errors included: ``{"errors": {"<field>": ["<message>", …]}}``, with problems
that belong to no one field under ``"request"``. Words a reader may see are the web form's,
in the reader's language; those only the integrating developer sees are in English.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_babel import gettext
from werkzeug.exceptions import HTTPException
from wtforms import BooleanField
from wtforms.validators import ValidationError

from desk.core.locale import LANGUAGES, reader_language, use_language
from desk.core.storage import StorageError
from desk.core.text import strip_nul
from desk.extensions import csrf, db
from desk.feedback.forms import MAX_NAME_CHARS, FeedbackForm, files_too_large_message
from desk.feedback.limits import limit_by_address, limit_by_email
from desk.feedback.models import Channel
from desk.feedback.operations import MAX_MESSAGE_CHARS, Submission, receive_feedback
from desk.feedback.spam import make_form_token, read_form_token
from desk.profiles.models import Profile, Section
from desk.profiles.page_cache import published_profile

bp = Blueprint("feedback_api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

#: How long a browser may reuse a preflight answer, in seconds.
PREFLIGHT_MAX_AGE = 600
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")

Errors = dict[str, list[str]]


class StrictBooleanField(BooleanField):
    """A boolean as API clients send one: true/false, 1/0, yes/no, on/off, any case."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = bool(valuelist) and str(valuelist[0]).strip().lower() in TRUE_WORDS

    def pre_validate(self, form: Any) -> None:
        if self.raw_data and str(self.raw_data[0]).strip().lower() not in TRUE_WORDS + FALSE_WORDS:
            raise ValidationError("Send true or false.")


class ApiFeedbackForm(FeedbackForm):
    """The web form's fields and checks, without its CSRF token (the API has no session)."""

    class Meta:
        csrf = False

    notify = StrictBooleanField()


def error_response(status: int, errors: Errors) -> tuple[Response, int]:
    return jsonify(errors=errors), status


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[Response, int] | HTTPException:
    """JSON instead of the site's error pages; 413 and 429 in words a client can show."""
    if error.code is None or error.code < 400:
        return error
    if error.code == 413:
        text = files_too_large_message(current_app.config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"])
    elif error.code == 429:
        text = gettext(
            "This form has been sent many times from your connection in a short while, so we "
            "cannot take this one. Nothing from this attempt was kept."
        )
    else:
        text = error.description or error.name
    return error_response(error.code, {"request": [text]})


def _allowed_origin() -> str | None:
    """The request's Origin when DESK_CORS_ORIGINS lists it exactly, else None."""
    origin = request.headers.get("Origin", "")
    allowed = {entry.rstrip("/") for entry in current_app.config["DESK_CORS_ORIGINS"]}
    return origin if origin in allowed else None


@bp.before_request
def answer_preflight() -> Response | None:
    """A CORS preflight from a listed origin; any other OPTIONS gets Flask's plain answer."""
    if request.method != "OPTIONS" or _allowed_origin() is None:
        return None
    response = current_app.response_class(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST, GET"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


@bp.after_request
def add_cors_headers(response: Response) -> Response:
    response.vary.add("Origin")
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response


@bp.get("/form-token")
def form_token() -> Response:
    response = jsonify(token=make_form_token())
    response.cache_control.no_store = True
    return response


@bp.post("/feedback")
@limit_by_address
@limit_by_email
def submit_feedback() -> tuple[Response, int]:
    """Take one reader's feedback; quarantined and repeated items get the same 201 answer."""
    language = _text("language")
    if language and language not in LANGUAGES:
        return error_response(422, {"language": [f"Send one of: {', '.join(LANGUAGES)}."]})
    if language:
        use_language(language)
    where, problem = _profile_slugs()
    if where is None:
        return error_response(422, {"profile": [problem]})
    profile = published_profile(*where, language or None)
    if profile is None:
        problem = f"No published profile “{'/'.join(where)}”."
        return error_response(404, {"profile": [problem]})
    if not language:
        language = reader_language(profile.language)
        use_language(language)

    if request.form.getlist("attachments"):
        # A part without a file name is text, not a file: dropping it silently would lose it.
        problem = "Send each attachment as a file part, with a file name."
        return error_response(422, {"attachments": [problem]})
    sections = list(profile.sections)
    form = ApiFeedbackForm(sections)
    if not form.validate():
        return error_response(413 if form.is_too_large else 422, form.errors)
    try:
        result = receive_feedback(_submission(form, profile, sections, language))
        db.session.commit()
    except StorageError:
        db.session.rollback()
        current_app.logger.exception("intake API: the files could not be stored")
        text = gettext(
            "Your files could not be stored just now, so nothing was sent. Please try again in "
            "a few minutes."
        )
        return error_response(503, {"request": [text]})
    return jsonify(reference=result.feedback.reference, status="received"), 201


def _text(name: str) -> str:
    return strip_nul(request.form.get(name)).strip()


def _profile_slugs() -> tuple[tuple[str, str] | None, str]:
    """(country slug, topic slug) from ``profile`` or from ``country`` and ``topic``, or why not."""
    combined, country, topic = _text("profile"), _text("country"), _text("topic")
    if combined and (country or topic):
        return None, "Send either profile or country and topic, not both."
    if combined:
        country, _, topic = combined.strip("/").partition("/")
    if not (country and topic) or "/" in topic:
        return None, "Name the profile: profile=<country>/<topic>, or country and topic (slugs)."
    return (country, topic), ""


def _submission(
    form: ApiFeedbackForm, profile: Profile, sections: list[Section], language: str
) -> Submission:
    nonce, signs = read_form_token(form.token.data)
    if form.website.data:
        signs.append("honeypot")
    by_anchor = {section.anchor: section for section in sections}
    return Submission(
        channel=Channel.API,
        message=form.message.data,
        profile=profile,
        section=by_anchor.get(form.section.data or ""),
        submitter_name=form.name.data or "",
        submitter_email=form.email.data or "",
        submitter_organisation=form.organisation.data or "",
        wants_resolution_notice=bool(form.notify.data),
        language=language,
        files=form.incoming_files(),
        submitter_ip=request.remote_addr or "",
        form_nonce=nonce,
        spam_signs=signs,
    )


def _any_case_pattern(words: tuple[str, ...], *, fold: bool = True) -> str:
    """An ECMA-262 pattern for one of ``words`` (in any case), with spaces around, as read here.

    Form fields are strings, so a JSON Schema boolean or enum would misdescribe what the API
    takes; the pattern says it exactly (ECMA patterns have no case-insensitive flag).
    """

    def letters(word: str) -> str:
        if not fold:
            return word
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)

    return "^\\s*(?:" + "|".join(letters(word) for word in words) + ")\\s*$"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g}"


def openapi_document() -> dict[str, Any]:
    """The API described in OpenAPI 3.1, with this deployment's limits and address."""
    config = current_app.config
    per_file = _megabytes(config["DESK_UPLOAD_MAX_FILE_BYTES"])
    total = _megabytes(config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"])
    extensions = ", ".join(config["DESK_UPLOAD_EXTENSIONS"])
    rate = config["DESK_FEEDBACK_RATE_LIMIT"].replace(";", ", ")

    def text(description: str, max_length: int | None = None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "description": description}
        if max_length:
            schema["maxLength"] = max_length
        return schema

    def answer(description: str, schema: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }

    errors = "Errors"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{config['DESK_SITE_NAME']} feedback intake API",
            "version": "1.0.0",
            "description": (
                "Send reader feedback on a country profile from a form on your own website. "
                "Draw the form with a token from GET /form-token and send it back with the "
                "submission. Browsers may call the API only from the configured origins."
            ),
        },
        "servers": [{"url": config["DESK_SITE_URL"].rstrip("/") + "/api/v1"}],
        "paths": {
            "/feedback": {
                "post": {
                    "operationId": "submitFeedback",
                    "summary": "Send feedback on a profile, with files",
                    "description": (
                        "Name the profile with `profile`, or with `country` and `topic`. "
                        f"At most {config['DESK_UPLOAD_MAX_FILES']} files of {per_file} MB "
                        f"each and {total} MB together; accepted types: {extensions}, and "
                        "the content must match the extension. Rate limit, per address and "
                        f"per email: {rate}. The answer is the same whatever happens to the "
                        "item afterwards, and a repeat within minutes answers with the first "
                        "item's reference."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {"$ref": "#/components/schemas/FeedbackSubmission"},
                                "encoding": {
                                    "attachments": {"contentType": "application/octet-stream"}
                                },
                            }
                        },
                    },
                    "responses": {
                        "201": answer("Received; quote the reference.", "Received"),
                        "404": answer("No published profile of that name.", errors),
                        "413": answer("A file, or all files together, are too large.", errors),
                        "422": answer(
                            "A field is missing or wrong, or a file was refused "
                            "(the message names the file and says why).",
                            errors,
                        ),
                        "429": {
                            **answer("Too many submissions; wait and send again.", errors),
                            "headers": {
                                "Retry-After": {
                                    "description": "Seconds to wait.",
                                    "schema": {"type": "integer"},
                                }
                            },
                        },
                        "503": answer("The files could not be stored; send again later.", errors),
                    },
                }
            },
            "/form-token": {
                "get": {
                    "operationId": "getFormToken",
                    "summary": "A signed token for a form about to be shown to a reader",
                    "description": (
                        "Fetch one each time the form is drawn; it may be used once, and not "
                        f"sooner than {config['DESK_FORM_MIN_SECONDS']} seconds after."
                    ),
                    "responses": {"200": answer("A fresh token.", "FormToken")},
                }
            },
        },
        "components": {
            "schemas": {
                "FeedbackSubmission": {
                    "type": "object",
                    "required": ["message"],
                    "anyOf": [{"required": ["profile"]}, {"required": ["country", "topic"]}],
                    "properties": {
                        "profile": text("<country-slug>/<topic-slug>, e.g. mali/mine-ban-policy"),
                        "country": text("Country slug (with topic, instead of profile)"),
                        "topic": text("Topic slug (with country, instead of profile)"),
                        "section": text("Anchor of the section the feedback is about"),
                        "message": {
                            **text("The feedback (not only spaces)", MAX_MESSAGE_CHARS),
                            "minLength": 1,
                            "pattern": "\\S",
                        },
                        "name": text("The reader's name", MAX_NAME_CHARS),
                        "email": {**text("For the acknowledgement and replies"), "format": "email"},
                        "organisation": text("The reader's organisation", MAX_NAME_CHARS),
                        "notify": {
                            "type": "string",
                            "pattern": _any_case_pattern(TRUE_WORDS + FALSE_WORDS),
                            "description": (
                                "Email the reader when the item is resolved: true or false "
                                "(also 1/0, yes/no, on/off, in any case)"
                            ),
                        },
                        "language": {
                            "type": "string",
                            "pattern": _any_case_pattern(("", *LANGUAGES), fold=False),
                            "description": (
                                "Language of the answers and the reader's emails (default: the "
                                "profile's, else the browser's)"
                            ),
                        },
                        "attachments": {
                            "type": "array",
                            "maxItems": config["DESK_UPLOAD_MAX_FILES"],
                            "items": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            },
                        },
                        "token": text("The token from GET /form-token"),
                        "website": text("Leave empty (hidden from people, filled by robots)"),
                    },
                },
                "Received": {
                    "type": "object",
                    "required": ["reference", "status"],
                    "properties": {
                        "reference": {"type": "string", "examples": ["ML-2026-00042"]},
                        "status": {"type": "string", "const": "received"},
                    },
                },
                "FormToken": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {"token": {"type": "string"}},
                },
                "Errors": {
                    "type": "object",
                    "required": ["errors"],
                    "properties": {
                        "errors": {
                            "type": "object",
                            "description": (
                                "Messages by field name; `request` holds those of no one field."
                            ),
                            "additionalProperties": {
                                "type": "array",
                                "items": {"type": "string"},
                            },
                        }
                    },
                },
            }
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
