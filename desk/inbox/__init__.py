"""The staff desk under /desk: home now, the feedback inbox as it arrives."""

from flask import Blueprint

bp = Blueprint("inbox", __name__, url_prefix="/desk")

from desk.inbox import views  # noqa: E402, F401  (routes attach to bp)
