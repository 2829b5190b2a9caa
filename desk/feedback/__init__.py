"""Reader feedback: the form, the intake API, email-in, attachments, routing and quarantine."""

from flask import Blueprint

bp = Blueprint("feedback", __name__)
