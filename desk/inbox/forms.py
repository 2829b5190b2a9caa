"""The staff desk's forms: inbox filters (GET), triage actions and bulk actions (POST).

CSRFProtect checks the token of every POST before any view runs, so the action forms do not
check it a second time; each template posts ``csrf_token()`` (and inbox.js sends it too). That
lets several forms share one page, and a keyboard shortcut post the same form a button does.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from desk.feedback.models import Channel
from desk.inbox.queries import AGE_BUCKETS

STATUS_CHOICES = [
    SelectChoice("open", "Open (new, triaged, in review)"),
    SelectChoice("new", "New"),
    SelectChoice("triaged", "Triaged"),
    SelectChoice("in_review", "In review"),
    SelectChoice("closed", "Closed"),
    SelectChoice("any", "Any status"),
]
AGE_CHOICES = [SelectChoice("", "Any age")] + [
    SelectChoice(key, f"{key} days") for key in AGE_BUCKETS
]
CHANNEL_CHOICES = [SelectChoice("", "Any channel")] + [
    SelectChoice(c.value, c.value.upper()) for c in Channel
]
SORT_CHOICES = [SelectChoice("newest", "Newest first"), SelectChoice("oldest", "Oldest first")]
#: The open statuses staff set by hand (closing has its own actions).
OPEN_STATUS_CHOICES = [
    SelectChoice("new", "New"),
    SelectChoice("triaged", "Triaged"),
    SelectChoice("in_review", "In review"),
]


class InboxFilterForm(FlaskForm):
    """The inbox's query string; every choice list is filled per user by the view."""

    class Meta:
        csrf = False

    view = HiddenField()
    q = StringField("Search", validators=[Optional(), Length(max=200)])
    # Optional(): a filter left out of the query string is no filter, not a wrong choice.
    country = SelectField("Country", choices=[], validators=[Optional()])
    profile = SelectField("Profile", choices=[], validators=[Optional()])
    section = SelectField("Section", choices=[], validators=[Optional()])
    status = SelectField("Status", choices=STATUS_CHOICES, validators=[Optional()])
    assignee = SelectField("Assignee", choices=[], validators=[Optional()])
    channel = SelectField("Channel", choices=CHANNEL_CHOICES, validators=[Optional()])
    has_attachments = BooleanField("With files")
    age = SelectField("Age", choices=AGE_CHOICES, validators=[Optional()])
    received_from = DateField("Received from", validators=[Optional()])
    received_to = DateField("Received to", validators=[Optional()])
    sort = SelectField("Sort", choices=SORT_CHOICES, validators=[Optional()])


class ActionForm(FlaskForm):
    """Base of the POST forms (the token is checked by CSRFProtect, see above)."""

    class Meta:
        csrf = False


class NextForm(ActionForm):
    """A one-button action (spam, release); ``next`` is where to go back to."""

    next = HiddenField()


class AssignForm(NextForm):
    #: "me", "" (nobody) or a user id.
    assignee = SelectField("Assign to", choices=[], validate_choice=False)


class StatusForm(NextForm):
    status = SelectField(
        "Status",
        choices=OPEN_STATUS_CHOICES,
    )


class CloseForm(NextForm):
    reason = TextAreaField(
        "Why no action",
        validators=[DataRequired("Say why no action is needed."), Length(max=20_000)],
    )


class NoteForm(NextForm):
    text = TextAreaField(
        "Note", validators=[DataRequired("Write the note first."), Length(max=20_000)]
    )


class ReplyForm(NextForm):
    subject = StringField("Subject", validators=[Optional(), Length(max=250)])
    text = TextAreaField(
        "Message to the reader",
        validators=[DataRequired("Write the reply first."), Length(max=20_000)],
    )


class DuplicateForm(NextForm):
    original = StringField(
        "Duplicate of (reference)",
        validators=[DataRequired("Give the reference of the original item."), Length(max=40)],
    )


class ReopenForm(NextForm):
    reason = StringField("Why reopen (optional)", validators=[Optional(), Length(max=2000)])


class RouteForm(NextForm):
    country = SelectField("Country", choices=[])


class BulkForm(ActionForm):
    """Actions on the items ticked in the list; the button pressed names the action."""

    next = HiddenField()
    assignee = SelectField("Assign to", choices=[], validate_choice=False)
    status = SelectField("Status", choices=OPEN_STATUS_CHOICES[1:], default="triaged")
    original = StringField("Duplicate of", validators=[Optional(), Length(max=40)])
    reason = StringField("Reason", validators=[Optional(), Length(max=2000)])


class SavedViewForm(ActionForm):
    name = StringField(
        "Save this view as",
        validators=[DataRequired("Give the view a name."), Length(max=100)],
    )
    #: The inbox query string being saved.
    query = HiddenField()


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    actor = SelectField("Who", choices=[], validators=[Optional()])
    action = StringField("Action", validators=[Optional(), Length(max=80)])
    object = StringField("Object", validators=[Optional(), Length(max=60)])
    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])
