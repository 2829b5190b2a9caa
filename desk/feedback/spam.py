"""Signs of abuse in a submission. Suspects are quarantined, never silently dropped."""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
WORD = re.compile(r"\w+", re.UNICODE)

#: How much each sign weighs; an item at or over DESK_SPAM_THRESHOLD is quarantined.
WEIGHTS = {
    "honeypot": 1.0,
    "token_missing": 1.0,
    "token_invalid": 1.0,
    "too_fast": 1.0,
    "token_replayed": 1.0,
    "link_only": 1.0,
    "many_links": 0.6,
    "repeated_text": 1.0,
}


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="desk.feedback-form")


def make_form_token(now: float | None = None) -> str:
    """A signed token with the time the form was drawn and a one-time nonce."""
    return _serializer().dumps({"t": int(now or time.time()), "n": secrets.token_hex(8)})


def read_form_token(token: str | None, now: float | None = None) -> tuple[str, list[str]]:
    """The token's nonce and the signs it shows (missing, tampered, sent too fast)."""
    if not token:
        return "", ["token_missing"]
    try:
        data = _serializer().loads(token)
        drawn_at, nonce = int(data["t"]), str(data["n"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return "", ["token_invalid"]
    elapsed = (now or time.time()) - drawn_at
    if elapsed < current_app.config["DESK_FORM_MIN_SECONDS"]:
        return nonce, ["too_fast"]
    return nonce, []


def content_signs(message: str) -> list[str]:
    """Signs in the text itself: nothing but links, many links, one phrase over and over."""
    signs: list[str] = []
    links = URL.findall(message)
    words = WORD.findall(URL.sub(" ", message))
    if links and len(words) < 3:
        signs.append("link_only")
    elif len(links) > 5:
        signs.append("many_links")
    all_words = [w.casefold() for w in WORD.findall(message)]
    if len(all_words) >= 20:
        _, top = Counter(all_words).most_common(1)[0]
        if top / len(all_words) > 0.5:
            signs.append("repeated_text")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) >= 6 and Counter(lines).most_common(1)[0][1] / len(lines) > 0.5:
        signs.append("repeated_text")
    return list(dict.fromkeys(signs))


def score(signs: list[str]) -> float:
    return round(sum(WEIGHTS.get(sign, 0.5) for sign in set(signs)), 2)
