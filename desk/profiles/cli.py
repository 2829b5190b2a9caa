"""``desk import-profile`` and ``desk export-profile``."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach the profile commands."""
