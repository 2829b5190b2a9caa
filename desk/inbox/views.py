"""Staff home."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from desk.core.permissions import staff_only
from desk.inbox import bp
from desk.inbox.queries import visible_profiles

staff_only(bp)


@bp.get("/")
def home() -> str:
    return render_template("inbox/home.html", profiles=visible_profiles(current_user))
