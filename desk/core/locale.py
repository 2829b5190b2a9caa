"""Which language a page speaks: reader pages in English or French, staff pages in English."""

from __future__ import annotations

from flask import g, request

LANGUAGES = ("en", "fr")


def select_locale() -> str:
    """The page's own language if it set one (a French profile), else the browser's choice."""
    forced = g.get("page_language")
    if forced in LANGUAGES:
        return forced
    if request.path.startswith("/desk") or request.path.startswith("/login"):
        return "en"
    return request.accept_languages.best_match(LANGUAGES) or "en"
