"""Text helpers shared by every feature: slugs and accent folding."""

from __future__ import annotations

import re
import unicodedata


def fold(text: str) -> str:
    """Lower-case text without accents: "Côte d'Ivoire" → "cote d'ivoire"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def slugify(text: str, max_length: int = 80) -> str:
    """A URL segment: folded, ASCII letters and digits joined by single hyphens."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")
    return slug[:max_length].rstrip("-") or "section"


def strip_nul(text: str | None) -> str:
    """Text without NUL bytes (databases refuse them; nobody types them)."""
    return (text or "").replace("\x00", "")
