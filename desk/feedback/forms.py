"""The reader's feedback form: its fields, their checks, and the checks on the chosen files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import current_app
from flask_babel import format_decimal, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from werkzeug.datastructures import FileStorage
from wtforms import BooleanField, EmailField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Email, Length, StopValidation, ValidationError

from desk.core.locale import format_size
from desk.core.text import strip_nul
from desk.core.uploads import spool_of
from desk.feedback.files import RejectedFile, check_file, clean_filename
from desk.feedback.operations import MAX_MESSAGE_CHARS, IncomingFile
from desk.profiles.models import Section

#: The columns' sizes for the reader's name and organisation.
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254


def clean_text(value: Any) -> Any:
    """Typed text without NUL bytes, with one kind of line break, trimmed.

    Browsers send a textarea's line breaks as CRLF; counting them as one character each keeps
    the length the reader saw.
    """
    if not isinstance(value, str):
        return value
    return strip_nul(value).replace("\r\n", "\n").strip()


def skip_when_empty(form: FlaskForm, field: Any) -> None:
    """Stop checking an optional field left empty (after NUL bytes and spaces are gone)."""
    if not field.data:
        raise StopValidation()


def message_length(form: FlaskForm, field: Any) -> None:
    length = len(field.data or "")
    if length > MAX_MESSAGE_CHARS:
        raise ValidationError(
            gettext(
                "Your feedback is %(count)s characters long; the limit is %(limit)s. Please "
                "shorten it, or attach the longer text as a file.",
                count=format_decimal(length),
                limit=format_decimal(MAX_MESSAGE_CHARS),
            )
        )


def email_for_notice(form: FeedbackForm, field: Any) -> None:
    """Ticking "tell me when this is resolved" needs an address to tell."""
    if form.notify.data and not field.data:
        raise StopValidation(
            gettext(
                "Give your email address so that we can tell you when this is resolved, "
                "or untick “Tell me when this is resolved”."
            )
        )


#: Line breaks of any kind: none belongs in a name or an address, and one in a mail header
#: would start a header of the sender's choosing.
LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def single_line(form: FlaskForm, field: Any) -> None:
    """Refuse a line break inside a one-line field (pasted addresses, header injection)."""
    if LINE_BREAKS & set(field.data or ""):
        raise StopValidation(gettext("Please keep this on one line."))


class MaxLength(Length):
    """A length check that stops the field's other checks (a megabyte is no email address)."""

    def __call__(self, form: FlaskForm, field: Any) -> None:
        try:
            super().__call__(form, field)
        except ValidationError as error:
            raise StopValidation(str(error)) from error


def _too_long(limit: int) -> MaxLength:
    return MaxLength(max=limit, message=_l("Please keep this under %(max)d characters."))


class FeedbackForm(FlaskForm):
    """One reader's feedback on one profile; every field but the message is optional."""

    message = TextAreaField(
        _l("Your feedback"),
        filters=[clean_text],
        validators=[message_length],
        render_kw={"required": True, "rows": 10},
    )
    section = SelectField(_l("Section"), choices=[], default="")
    name = StringField(
        _l("Your name"),
        filters=[clean_text],
        validators=[single_line, _too_long(MAX_NAME_CHARS)],
        render_kw={"autocomplete": "name"},
    )
    email = EmailField(
        _l("Your email address"),
        filters=[clean_text],
        validators=[
            email_for_notice,
            skip_when_empty,
            single_line,
            _too_long(MAX_EMAIL_CHARS),
            Email(
                message=_l(
                    "This does not look like an email address. Please check it, or leave the "
                    "field empty."
                )
            ),
        ],
        render_kw={"autocomplete": "email"},
    )
    organisation = StringField(
        _l("Organisation"),
        filters=[clean_text],
        validators=[single_line, _too_long(MAX_NAME_CHARS)],
        render_kw={"autocomplete": "organization"},
    )
    notify = BooleanField(_l("Tell me when this is resolved"))
    attachments = MultipleFileField(_l("Files"))
    #: The honeypot: hidden from people, filled in by bots that fill in every field.
    website = StringField(
        _l("Leave this field empty"),
        filters=[clean_text],
        render_kw={"autocomplete": "off", "tabindex": "-1"},
    )
    #: The signed time the form was drawn (desk.feedback.spam.make_form_token).
    token = HiddenField()

    def __init__(self, sections: Sequence[Section], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.section.choices = [("", gettext("The profile as a whole"))] + [
            (section.anchor, section.heading) for section in sections
        ]
        #: Set by validation when a file, or all of them together, is over the size limits.
        self.is_too_large = False

    def validate_message(self, field: Any) -> None:
        if not field.data:
            raise ValidationError(gettext("Please write your feedback."))

    def validate_attachments(self, field: Any) -> None:
        """At most DESK_UPLOAD_MAX_FILES files within the size limits, each of an accepted type.

        Sizes come first: a file over the limit was not kept whole, so its type is not read.
        """
        config = current_app.config
        files = self.chosen_files()
        if len(files) > config["DESK_UPLOAD_MAX_FILES"]:
            raise ValidationError(too_many_files_message(config["DESK_UPLOAD_MAX_FILES"]))
        per_file = config["DESK_UPLOAD_MAX_FILE_BYTES"]
        total = config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"]
        oversize = [clean_filename(file.filename) for file in files if _is_over(file, per_file)]
        if oversize:
            self.is_too_large = True
            field.errors.extend(file_too_large_message(name, per_file) for name in oversize)
            return
        if sum(_size(file) for file in files) > total:
            self.is_too_large = True
            raise ValidationError(files_too_large_message(total))
        for file in files:
            try:
                check_file(file.filename, file.stream)
            except RejectedFile as refusal:
                field.errors.append(gettext("File not accepted: %(reason)s", reason=str(refusal)))

    def chosen_files(self) -> list[FileStorage]:
        return list(self.attachments.data or [])

    def incoming_files(self) -> list[IncomingFile]:
        files = self.chosen_files()
        return [IncomingFile(filename=f.filename or "", stream=f.stream) for f in files]


def too_many_files_message(limit: int | str) -> str:
    return gettext("Too many files: you can send up to %(limit)s at once.", limit=limit)


def file_too_large_message(name: str, limit: int) -> str:
    return gettext(
        "“%(name)s” is too large: each file can be up to %(limit)s.",
        name=name,
        limit=format_size(limit),
    )


def files_too_large_message(limit: int) -> str:
    return gettext(
        "Your files are too large together: up to %(limit)s can be sent at once.",
        limit=format_size(limit),
    )


def _size(file: FileStorage) -> int:
    spool = spool_of(file)
    if spool is not None:
        return spool.size
    position = file.stream.tell()
    size = file.stream.seek(0, 2)
    file.stream.seek(position)
    return size


def _is_over(file: FileStorage, limit: int) -> bool:
    """Over the per-file limit; Desk's request class measured it while spooling (uploads.py)."""
    spool = spool_of(file)
    return spool.is_over_limit if spool is not None else _size(file) > limit
