"""Email: the outbox and its delivery, subscriptions, digests and the staff's notifications."""

from flask import Blueprint

bp = Blueprint("notify", __name__)

from desk.notify import views  # noqa: E402, F401  (routes attach to bp)
