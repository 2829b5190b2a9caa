"""Staff forms for tasks, drafts, decisions and profile stamps (choices are set by the views)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from desk.core.text import strip_nul
from desk.profiles.models import UpdateType

#: Longest Markdown body a section may have (the real profiles are far shorter).
MAX_BODY_CHARS = 200_000


def clean(value: Any) -> Any:
    """Typed text without NUL bytes and with one kind of line break."""
    if not isinstance(value, str):
        return value
    return strip_nul(value).replace("\r\n", "\n")


def optional_id(value: Any) -> int | None:
    """A select's value as an id; the empty choice is None."""
    if value in (None, "", "None"):
        return None
    return int(value)


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class TaskForm(FlaskForm):
    #: "section:<id>" or "profile:<id>" (the whole profile).
    target = SelectField("Section", validators=[InputRequired()])
    title = StringField("Title", filters=[clean], validators=[DataRequired(), Length(max=300)])
    description = TextAreaField("Description", filters=[clean], validators=[Length(max=20_000)])
    assignee = SelectField("Assignee", coerce=optional_id, validate_choice=True)
    reviewer = SelectField("Reviewer", coerce=optional_id, validate_choice=True)
    due_on = DateField("Due date", validators=[Optional()])

    def validate_reviewer(self, field: Any) -> None:
        if field.data is not None and field.data == self.assignee.data:
            raise ValidationError("The reviewer cannot be the person who revises the section.")


class TaskEditForm(FlaskForm):
    title = StringField("Title", filters=[clean], validators=[DataRequired(), Length(max=300)])
    description = TextAreaField("Description", filters=[clean], validators=[Length(max=20_000)])
    assignee = SelectField("Assignee", coerce=optional_id, validate_choice=True)
    reviewer = SelectField("Reviewer", coerce=optional_id, validate_choice=True)
    due_on = DateField("Due date", validators=[Optional()])

    validate_reviewer = TaskForm.validate_reviewer


class SectionChoiceForm(FlaskForm):
    section = SelectField("Section to revise", coerce=int)


class CancelTaskForm(FlaskForm):
    reason = TextAreaField("Why (optional)", filters=[clean], validators=[Length(max=5_000)])


class RevisionForm(FlaskForm):
    #: Required only to submit, so an unfinished draft can always be saved.
    heading = StringField("Heading", filters=[clean], validators=[Length(max=300)])
    body = TextAreaField(
        "Text (Markdown)", filters=[clean], validators=[Length(max=MAX_BODY_CHARS)]
    )
    update_type = RadioField(
        "Kind of change",
        choices=[
            SelectChoice(
                UpdateType.MAJOR.value,
                "Major: what the profile says changes; Last Updated moves, subscribers are told",
            ),
            SelectChoice(UpdateType.MINOR.value, "Minor: a typo or a link; no new date, no email"),
        ],
        default=UpdateType.MAJOR.value,
    )
    change_note = TextAreaField("Change note", filters=[clean], validators=[Length(max=5_000)])
    save = SubmitField("Save draft")
    preview = SubmitField("Save and preview")
    submit = SubmitField("Submit for approval")


class RequestChangesForm(FlaskForm):
    comment = TextAreaField(
        "What should change",
        filters=[clean],
        validators=[DataRequired("Say what should change."), Length(max=10_000)],
    )


class LastUpdatedForm(FlaskForm):
    last_updated_on = DateField("New Last Updated date", validators=[InputRequired()])
    reason = TextAreaField(
        "Reason",
        filters=[clean],
        validators=[DataRequired("Give the reason for the new date."), Length(max=5_000)],
    )
