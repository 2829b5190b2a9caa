"""Administration under /desk/admin, and the pages its emails link to (choose a password).

Admins change things; managers see every administration page but get no forms, and any POST
from them is refused. The account pages (forgot password, reset, accept an invitation) are the
only ones open to anyone: they are listed in :data:`PUBLIC_ENDPOINTS`, and every other route of
the blueprint is closed by default.
"""

from __future__ import annotations

from flask import Blueprint, abort, request
from flask_login import current_user
from werkzeug.wrappers import Response

from desk.accounts.models import Role
from desk.admin.runtime import refresh_runtime_settings
from desk.extensions import login_manager

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/desk",
    static_folder="static",
    static_url_path="/admin/static",
)

PUBLIC_ENDPOINTS = frozenset(
    {"admin.forgot_password", "admin.reset_password", "admin.accept_invitation", "admin.static"}
)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@bp.before_request
def require_admin() -> Response | None:
    """Admins may do anything here, managers only look; everyone else is turned away."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_user.role not in (Role.ADMIN, Role.MANAGER):
        abort(403)
    if request.method not in READ_METHODS and current_user.role != Role.ADMIN:
        abort(403)
    return None


@bp.before_app_request
def pick_up_runtime_settings() -> None:
    """Every request of the app sees the run-time settings admins saved (checked every 2 s)."""
    if request.blueprint == "health":  # must answer, with a 503, while the database is down
        return
    refresh_runtime_settings()


from desk.admin import passwords, views  # noqa: E402, F401  (routes attach to bp)
