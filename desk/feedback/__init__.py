"""Reader feedback: the form, the intake API, email-in, attachments, routing and quarantine."""

from flask import Blueprint

bp = Blueprint("feedback", __name__)

from desk.feedback import views  # noqa: E402, F401  (routes attach to bp)
