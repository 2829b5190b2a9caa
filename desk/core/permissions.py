"""Who may see what: every staff route goes through these."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from desk.extensions import login_manager


def staff_only(blueprint: Blueprint) -> None:
    """Every route of the blueprint needs a logged-in, active staff account."""

    @blueprint.before_request
    def require_login():  # type: ignore[no-untyped-def]
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None
