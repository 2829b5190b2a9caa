"""The pages staff reach from their email: accept an invitation, choose a new password.

Plus "Forgot your password?" from the login page, which answers the same whether or not the
address has an account. A link that cannot be used (expired, used, altered) gets a page that
says which, and what to do next; it never changes anything.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response

from desk.accounts.models import User
from desk.accounts.operations import normalise_email
from desk.admin import bp
from desk.admin.forms import ForgotPasswordForm, PasswordForm
from desk.admin.operations import request_password_reset, set_password_from_link
from desk.admin.tokens import (
    INVITATION_HOURS,
    RESET_HOURS,
    AccountLinkError,
    LinkProblem,
    LinkPurpose,
    check_account_link,
    read_account_token,
)
from desk.extensions import db, limiter

#: What the forgot-password form always says, so it cannot tell which addresses have accounts.
RESET_SENT = (
    "If {email} belongs to an active account, a link to choose a new password is on its way. "
    "It works for {hours} hours."
)


def _forgot_limit() -> str:
    return current_app.config["DESK_LOGIN_RATE_LIMIT"]


def _submitted_email() -> str:
    return "forgot:" + (normalise_email(request.form.get("email", ""))[:254] or "-")


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_forgot_limit, methods=["POST"])
@limiter.limit(_forgot_limit, methods=["POST"], key_func=_submitted_email)
def forgot_password() -> Response | str:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = normalise_email(form.email.data or "")
        request_password_reset(email)
        db.session.commit()
        flash(RESET_SENT.format(email=email, hours=RESET_HOURS), "info")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot_password.html", form=form)


def _link_problem(purpose: LinkPurpose, problem: LinkProblem) -> tuple[str, int]:
    page = render_template(
        "accounts/link_problem.html",
        purpose=purpose.name.lower(),
        problem=problem.value,
        hours=INVITATION_HOURS if purpose == LinkPurpose.INVITATION else RESET_HOURS,
    )
    return page, 410 if problem != LinkProblem.INVALID else 404


def _choose_password(purpose: LinkPurpose, token: str) -> Response | tuple[str, int] | str:
    """Check the link, show the form, and on a valid password set it and go to the login page."""
    try:
        link = read_account_token(purpose, token)
        user = check_account_link(link, db.session.get(User, link.user_id))
    except AccountLinkError as error:
        return _link_problem(purpose, error.problem)
    form = PasswordForm(email=user.email)
    if form.validate_on_submit():
        set_password_from_link(purpose, user, form.password.data or "")
        db.session.commit()
        if current_user.is_authenticated:
            logout_user()  # someone else's session in this browser must not carry on
        flash("Your password is set. Log in with it now.", "success")
        return redirect(url_for("accounts.login"))
    return render_template(
        "accounts/set_password.html",
        form=form,
        account=user,
        invitation=purpose == LinkPurpose.INVITATION,
    )


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Response | tuple[str, int] | str:
    return _choose_password(LinkPurpose.INVITATION, token)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Response | tuple[str, int] | str:
    return _choose_password(LinkPurpose.PASSWORD_RESET, token)
