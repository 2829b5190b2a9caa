"""The administration's forms, and the public ones its emails lead to (choose a password).

CSRFProtect checks the token of every POST before a view runs; the forms are still
FlaskForms so each page can draw ``form.hidden_tag()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask_wtf import FlaskForm
from wtforms import DecimalField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Regexp,
    ValidationError,
)

from desk.accounts.models import Role
from desk.admin.runtime import RUNTIME_SETTINGS
from desk.core.text import strip_nul
from desk.profiles.models import AutoAssign

#: Shorter passwords are refused when a password is chosen from a link.
MIN_PASSWORD_LENGTH = 12

ROLE_CHOICES = [
    SelectChoice(Role.EDITOR.value, "Editor: works on the countries given"),
    SelectChoice(Role.MANAGER.value, "Manager: approves, sees every country and the reports"),
    SelectChoice(Role.ADMIN.value, "Admin: everything, including this administration"),
]
AUTO_ASSIGN_LABELS = {
    AutoAssign.NONE: "Nobody: new items wait in “Unassigned”",
    AutoAssign.LEAD: "The lead editor",
    AutoAssign.LEAST_LOADED: "The editor with the fewest open items",
}
#: (value, kind, level, label) of the kinds of section an admin may add.
SECTION_TYPES = [
    ("section", "text", 2, "Section (heading with text)"),
    ("subsection", "text", 3, "Subsection (smaller heading with text)"),
    ("field", "field", 3, "Summary-box field (label and short value)"),
]


class InviteForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.EDITOR.value)


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ActionForm(FlaskForm):
    """A button that needs nothing but the CSRF token (deactivate, resend, move…)."""


class EditorForm(FlaskForm):
    """Add an editor to a country; the view fills the choices with editors not yet on it."""

    user = SelectField("Editor", choices=[], validators=[DataRequired()])


class LeadForm(FlaskForm):
    """The country's lead editor; "" for none. The view fills the choices."""

    user = SelectField("Lead editor", choices=[])


class AutoAssignForm(FlaskForm):
    mode = SelectField(
        "New items go to",
        choices=[SelectChoice(mode.value, label) for mode, label in AUTO_ASSIGN_LABELS.items()],
    )


class OpenCountryForm(FlaskForm):
    """Opens any country's page, in the desk yet or not (a GET: no CSRF, it changes nothing)."""

    class Meta:
        csrf = False

    code = SelectField("Country", choices=[])


class ProfileForm(FlaskForm):
    country = SelectField("Country", choices=[], validators=[DataRequired()])
    topic = StringField("Topic", validators=[DataRequired(), Length(max=200)])
    language = StringField(
        "Language",
        default="en",
        validators=[
            DataRequired(),
            Length(max=8),
            Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,4})?$", message="A language tag such as en or fr."),
        ],
    )


class TopicForm(FlaskForm):
    topic = StringField("Topic", validators=[DataRequired(), Length(max=200)])


class SectionForm(FlaskForm):
    heading = StringField("Heading", validators=[DataRequired(), Length(max=300)])
    type = SelectField(
        "Type",
        choices=[SelectChoice(value, label) for value, _, _, label in SECTION_TYPES],
        default="section",
    )


class HeadingForm(FlaskForm):
    heading = StringField("Heading", validators=[DataRequired(), Length(max=300)])


class SettingsForm(FlaskForm):
    """One number per run-time setting; bytes are entered in megabytes, the rest whole."""

    def validate(self, extra_validators: Mapping[str, Sequence[Any]] | None = None) -> bool:
        valid = super().validate(extra_validators)
        for spec in RUNTIME_SETTINGS:
            field = self[spec.name]
            if spec.unit != "bytes" and field.data is not None and field.data % 1:
                field.errors = [*field.errors, f"{spec.label}: give a whole number."]
                valid = False
        return valid


for _setting in RUNTIME_SETTINGS:
    setattr(
        SettingsForm,
        _setting.name,
        DecimalField(
            _setting.label,
            places=None,
            validators=[InputRequired(), NumberRange(min=0)],
            description=_setting.help,
        ),
    )


class PasswordForm(FlaskForm):
    """Choose a password, from an invitation or a reset link."""

    password = PasswordField(
        "New password",
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=500,
                message=f"Use at least {MIN_PASSWORD_LENGTH} characters (and at most 500).",
            ),
        ],
        description=f"At least {MIN_PASSWORD_LENGTH} characters; a few unrelated words work well.",
    )
    confirm = PasswordField(
        "The same password again",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )

    def __init__(self, *args: object, email: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._email = email.lower()

    def validate_password(self, field: PasswordField) -> None:
        if self._email and (field.data or "").strip().lower() == self._email:
            raise ValidationError("Choose something other than your email address.")


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", filters=[strip_nul], validators=[DataRequired(), Length(max=254)])
