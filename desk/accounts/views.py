"""Log in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from desk.accounts import bp
from desk.accounts.forms import LoginForm
from desk.accounts.models import dummy_password_check
from desk.accounts.operations import find_user_by_email, normalise_email, record_login
from desk.extensions import db, limiter

LOGIN_FAILED = "That email and password do not match an active account."


def _login_limit() -> str:
    return current_app.config["DESK_LOGIN_RATE_LIMIT"]


def _failed(response: Response) -> bool:
    """Only failed attempts count against the limit (a failure re-renders the form)."""
    return response.status_code == 200


def _submitted_email() -> str:
    return normalise_email(request.form.get("email", ""))[:254] or "-"


def safe_next(target: str | None) -> str | None:
    """A local path to return to after login, or None for anything that could leave the site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or not target.isprintable():
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed, key_func=_submitted_email)
def login() -> Response | str:
    form = LoginForm(next=request.args.get("next", ""))
    if current_user.is_authenticated:
        return redirect(safe_next(form.next.data) or url_for("inbox.home"))
    if form.validate_on_submit():
        user = find_user_by_email(form.email.data or "")
        if user is None:
            dummy_password_check()
        elif user.is_active and user.check_password(form.password.data or ""):
            login_user(user, remember=form.remember.data)
            record_login(user)
            db.session.commit()
            return redirect(safe_next(form.next.data) or url_for("inbox.home"))
        flash(LOGIN_FAILED, "error")
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    flash("You are logged out.", "success")
    return redirect(url_for("accounts.login"))
