"""Public country profiles: listing, the profile page, import and export."""

from flask import Blueprint

from desk.profiles import page_cache

bp = Blueprint("profiles", __name__)
bp.record_once(lambda state: page_cache.init_app(state.app))

from desk.profiles import views  # noqa: E402, F401  (routes attach to bp)
