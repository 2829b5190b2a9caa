"""``desk demo``: migrate, load the fictional demo desk, and serve it."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach the demo command."""
