"""Rate limits on public submissions: per client address and per email given."""

from __future__ import annotations

from flask import current_app, request

from desk.extensions import limiter


def _limit() -> str:
    return current_app.config["DESK_FEEDBACK_RATE_LIMIT"]


def _submitted_email() -> str:
    email = (request.form.get("email") or "").strip().lower()[:254]
    return f"email:{email}" if email else "email:-"


def _no_email() -> bool:
    return not (request.form.get("email") or "").strip()


#: Apply to a view that accepts submissions: each POST counts against both limits.
limit_by_address = limiter.limit(_limit, methods=["POST"], scope="feedback-address")
limit_by_email = limiter.limit(
    _limit,
    methods=["POST"],
    key_func=_submitted_email,
    scope="feedback-email",
    exempt_when=_no_email,
)
