"""The signed links of staff account emails: accept an invitation, reset a password.

Each purpose has its own salt, so an invitation link can never reset a password nor the other
way round. A link carries the user's id and a fingerprint of the account's password state (a
digest of the password hash, whether the account is active and its session version), never the
hash itself. Setting a password changes the hash, so a link works once; deactivating an account,
setting its password another way, or sending a new invitation voids every link sent before.
Links expire after a fixed time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from desk.accounts.models import User

#: How long an invitation link works: long enough for a new colleague to find it after a weekend.
INVITATION_HOURS = 7 * 24
#: How long a password reset link works: it should be used at once.
RESET_HOURS = 2


class LinkPurpose(StrEnum):
    INVITATION = "desk.account.invitation"
    PASSWORD_RESET = "desk.account.password-reset"


class LinkProblem(StrEnum):
    #: Genuine, but older than it may be.
    EXPIRED = "expired"
    #: Genuine, but the account changed since it was sent (the link was used, or replaced).
    USED = "used"
    #: Altered, truncated, or made for something else.
    INVALID = "invalid"


class AccountLinkError(Exception):
    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class AccountLink:
    user_id: int
    fingerprint: str


def max_age_seconds(purpose: LinkPurpose) -> int:
    hours = INVITATION_HOURS if purpose == LinkPurpose.INVITATION else RESET_HOURS
    return hours * 3600


def fingerprint(user: User) -> str:
    """A digest of what a link must still find unchanged: the password hash, the active flag
    and the session version (which a new invitation moves, voiding the one sent before).

    Version 1, every account's before versions existed, adds nothing: links sent before then
    keep working.
    """
    state = f"{user.id}:{user.password_hash}:{int(bool(user.is_active))}"
    if (user.session_version or 1) > 1:
        state += f":{user.session_version}"
    return hashlib.sha256(state.encode()).hexdigest()[:24]


def _serializer(purpose: LinkPurpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=purpose.value)


def make_account_token(purpose: LinkPurpose, user: User) -> str:
    return _serializer(purpose).dumps({"u": user.id, "f": fingerprint(user)})


def read_account_token(purpose: LinkPurpose, token: str) -> AccountLink:
    """The account a link is for; AccountLinkError(EXPIRED or INVALID) if it cannot be used.

    Whether the account still matches (the USED case) is for :func:`check_account_link`.
    """
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age_seconds(purpose))
    except SignatureExpired as error:
        raise AccountLinkError(LinkProblem.EXPIRED) from error
    except BadData as error:
        raise AccountLinkError(LinkProblem.INVALID) from error
    try:
        return AccountLink(user_id=int(payload["u"]), fingerprint=str(payload["f"]))
    except (KeyError, TypeError, ValueError) as error:
        raise AccountLinkError(LinkProblem.INVALID) from error


def check_account_link(link: AccountLink, user: User | None) -> User:
    """The user, if the link still fits the account as it is now; else AccountLinkError(USED)."""
    if user is None:
        raise AccountLinkError(LinkProblem.INVALID)
    if not hmac.compare_digest(link.fingerprint, fingerprint(user)):
        raise AccountLinkError(LinkProblem.USED)
    return user
