"""The signed links of subscriber emails: confirm, manage, unsubscribe.

Each purpose has its own salt, so a link made for one can never be used for another. A
confirmation link expires (DESK_SUBSCRIPTION_CONFIRM_HOURS); a manage or unsubscribe link does
not, because it sits in every email a subscriber keeps and must keep working as long as the
emails it came in do (RFC 8058 asks the same of one-click links). Links carry ids (a
confirmation link also the address and what was asked), never anything secret, and are signed
with the app's secret key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from desk.notify.models import Frequency

CONFIRM = "desk.subscription.confirm"
MANAGE = "desk.subscription.manage"
UNSUBSCRIBE = "desk.subscription.unsubscribe"

#: How long a confirmation link works when DESK_SUBSCRIPTION_CONFIRM_HOURS is not set.
DEFAULT_CONFIRM_HOURS = 72


class LinkExpired(Exception):
    """A genuine link, too old to use; ``payload`` is what it carried (to offer a way on)."""

    def __init__(self, message: str, payload: Any = None) -> None:
        super().__init__(message)
        self.payload = payload


class LinkInvalid(Exception):
    """A link that was altered, truncated or made for something else."""


def confirm_hours() -> int:
    return int(current_app.config.get("DESK_SUBSCRIPTION_CONFIRM_HOURS", DEFAULT_CONFIRM_HOURS))


def _serializer(salt: str) -> URLSafeTimedSerializer:
    """One serializer per purpose and key, kept: a fan-out signs two links per reader."""
    cache: dict[tuple[str, str], URLSafeTimedSerializer] = current_app.extensions.setdefault(
        "desk_link_serializers", {}
    )
    key = (current_app.config["SECRET_KEY"], salt)
    if key not in cache:
        cache[key] = URLSafeTimedSerializer(key[0], salt=salt)
    return cache[key]


def _load(salt: str, token: str, max_age: int | None = None) -> Any:
    serializer = _serializer(salt)
    try:
        return serializer.loads(token, max_age=max_age)
    except SignatureExpired as error:
        try:
            payload = serializer.load_payload(error.payload) if error.payload else None
        except BadData:
            payload = None
        raise LinkExpired(str(error), payload) from error
    except BadData as error:
        raise LinkInvalid(str(error)) from error


@dataclass(frozen=True)
class ConfirmRequest:
    """What a confirmation link asks for: these profiles, at this frequency, in this language."""

    email: str
    profile_ids: tuple[int, ...]
    frequency: Frequency
    language: str


def make_confirm_token(request: ConfirmRequest) -> str:
    payload = {
        "e": request.email,
        "p": list(request.profile_ids),
        "f": request.frequency.value,
        "l": request.language,
    }
    return _serializer(CONFIRM).dumps(payload)


def read_confirm_token(token: str) -> ConfirmRequest:
    """The request a confirmation link carries; LinkExpired or LinkInvalid if it cannot be used."""
    payload = _load(CONFIRM, token, max_age=confirm_hours() * 3600)
    try:
        return ConfirmRequest(
            email=str(payload["e"]),
            profile_ids=tuple(int(i) for i in payload["p"]),
            frequency=Frequency(payload["f"]),
            language=str(payload["l"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise LinkInvalid("malformed confirmation link") from error


def make_manage_token(subscription_id: int, language: str) -> str:
    """A link to manage every subscription of the address of this one.

    It names a subscription rather than the address, so the address is not readable in the
    link (in logs, browser histories); subscriptions are never deleted, so the link keeps working.
    """
    return _serializer(MANAGE).dumps({"s": subscription_id, "l": language})


def read_manage_token(token: str) -> tuple[int, str]:
    """The subscription whose address a manage link is for, and the language to speak."""
    payload = _load(MANAGE, token)
    try:
        return int(payload["s"]), str(payload["l"])
    except (KeyError, TypeError, ValueError) as error:
        raise LinkInvalid("malformed manage link") from error


def make_unsubscribe_token(subscription_ids: list[int]) -> str:
    return _serializer(UNSUBSCRIBE).dumps(sorted(subscription_ids))


def read_unsubscribe_token(token: str) -> list[int]:
    """The subscriptions an unsubscribe link ends (a digest's link ends all it covered)."""
    payload = _load(UNSUBSCRIBE, token)
    try:
        ids = [int(i) for i in payload]
    except (TypeError, ValueError) as error:
        raise LinkInvalid("malformed unsubscribe link") from error
    if not ids:
        raise LinkInvalid("empty unsubscribe link")
    return ids
