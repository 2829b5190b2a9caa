"""Public country profiles: listing, the profile page, import and export."""

from flask import Blueprint

bp = Blueprint("profiles", __name__)

from desk.profiles import views  # noqa: E402, F401  (routes attach to bp)
