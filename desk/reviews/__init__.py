"""Review tasks on profile sections, section revisions, approval and the Last Updated stamp."""

from flask import Blueprint

bp = Blueprint("reviews", __name__, url_prefix="/desk")

from desk.reviews import views  # noqa: E402, F401  (routes attach to bp)
