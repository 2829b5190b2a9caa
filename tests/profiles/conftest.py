"""Fixtures for the profile import and export tests: the Mali page's text and edited copies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def mali_text(mali_profile_path: Path) -> str:
    return mali_profile_path.read_text(encoding="utf-8")


@pytest.fixture
def edited_mali(mali_text: str, tmp_path: Path) -> Callable[..., Path]:
    """Write a copy of the Mali page with the first occurrence of each old text replaced."""

    def write(*replacements: tuple[str, str], name: str = "mali-edited.txt") -> Path:
        text = mali_text
        for old, new in replacements:
            assert old in text, f"{old!r} is not in the Mali page"
            text = text.replace(old, new, 1)
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
