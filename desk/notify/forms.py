"""Forms of the subscription pages, the staff outbox filter and the notification preference."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, InputRequired, Length, Optional, ValidationError

from desk.accounts.models import NotificationMode
from desk.core.text import strip_nul
from desk.notify.models import Frequency, OutboxState

FREQUENCY_CHOICES = [
    SelectChoice(Frequency.IMMEDIATE.value, _l("As soon as it is updated")),
    SelectChoice(Frequency.DAILY.value, _l("At most once a day, in a daily summary")),
    SelectChoice(Frequency.WEEKLY.value, _l("At most once a week, in a weekly summary")),
]
#: The same, short enough for a drop-down on a phone.
FREQUENCY_SHORT_CHOICES = [
    SelectChoice(Frequency.IMMEDIATE.value, _l("At once")),
    SelectChoice(Frequency.DAILY.value, _l("Daily summary")),
    SelectChoice(Frequency.WEEKLY.value, _l("Weekly summary")),
]
#: Each language in its own name: a reader looks for the one they read.
LANGUAGE_CHOICES = [SelectChoice("en", "English"), SelectChoice("fr", "Français")]


def clean(value: Any) -> Any:
    return strip_nul(value).strip() if isinstance(value, str) else value


class SubscribeForm(FlaskForm):
    """What a reader gives to subscribe: an address, how often, and in which language."""

    email = EmailField(
        _l("Your email address"),
        filters=[clean],
        validators=[
            InputRequired(message=_l("Please give the email address to send the updates to.")),
            Length(max=254, message=_l("Please keep this under %(max)d characters.")),
            Email(message=_l("This does not look like an email address. Please check it.")),
        ],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )
    frequency = RadioField(
        _l("How often"), choices=FREQUENCY_CHOICES, default=Frequency.IMMEDIATE.value
    )
    language = RadioField(_l("Language of the emails"), choices=LANGUAGE_CHOICES, default="en")
    #: The honeypot: hidden from people, filled in by robots that fill in every field.
    website = StringField(
        _l("Leave this field empty"), render_kw={"autocomplete": "off", "tabindex": "-1"}
    )


class CountriesForm(SubscribeForm):
    """Several profiles at once, with one confirmation."""

    profiles = SelectMultipleField(_l("Profiles"), coerce=int, choices=[])

    def validate_profiles(self, field: Any) -> None:
        if not field.data:
            raise ValidationError(_l("Please choose at least one profile."))


class ConfirmForm(FlaskForm):
    """The confirmation button (a POST, so that link checkers cannot confirm)."""


class ChangeSubscriptionForm(FlaskForm):
    frequency = SelectField(_l("How often"), choices=FREQUENCY_SHORT_CHOICES)
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)


class EndForm(FlaskForm):
    """An "unsubscribe" button on the manage page."""


class ManageLinkForm(FlaskForm):
    email = SubscribeForm.email
    website = SubscribeForm.website


class NotificationModeForm(FlaskForm):
    mode = RadioField(
        "How do you want to hear about your work?",
        choices=[
            SelectChoice(
                NotificationMode.IMMEDIATE.value,
                "One email for each assignment, review request and decision, as it happens",
            ),
            SelectChoice(
                NotificationMode.DAILY_DIGEST.value,
                "One email a day listing them all (nothing on a day without any)",
            ),
        ],
    )


class RetryForm(FlaskForm):
    """An admin's Retry button on a dead message."""


class OutboxFilterForm(FlaskForm):
    """The outbox list's filters: a GET form (nothing changes, so no CSRF token)."""

    class Meta:
        csrf = False

    state = SelectField(
        "State",
        choices=[SelectChoice("", "Any state")]
        + [SelectChoice(state.value, state.value) for state in OutboxState],
        default="",
        validators=[Optional()],
    )
    kind = SelectField(
        "Kind", choices=[SelectChoice("", "Any kind")], default="", validators=[Optional()]
    )
    recipient = EmailField("Recipient", filters=[clean], validators=[Optional()])
    day = DateField("Written on", validators=[Optional()])

    def __init__(self, *args: Any, kinds: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = [SelectChoice("", "Any kind")] + [
            SelectChoice(kind, kind) for kind in kinds or []
        ]
