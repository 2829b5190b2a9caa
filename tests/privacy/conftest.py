"""The privacy suites share the hostile-input suites' profile, intake factory and staff."""

from tests.security.conftest import admin, create_feedback, editor, mali, unlimited

__all__ = ["admin", "create_feedback", "editor", "mali", "unlimited"]
