"""Flask-Migrate, loaded only where migrations are run.

Importing Flask-Migrate imports Alembic (and Mako and Pygments with it): 11 MB of memory in
every process. A web worker or a job consumer never migrates, so the app gets stand-ins that
load Flask-Migrate on first use: the ``db`` command group of the CLI, and
``app.extensions["migrate"]``, which ``flask_migrate.upgrade()`` and friends read.

Readiness (/readyz) needs the migrations' head without Alembic: :func:`script_heads` reads it
from the revision files themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from flask import Flask

#: Where the migrations live (Flask-Migrate's ``directory``).
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

_REVISION = re.compile(r"^revision\s*=\s*['\"](\w+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


def init_app(app: Flask) -> None:
    app.extensions["migrate"] = _LazyMigrateConfig(app)
    app.cli.add_command(_LazyDbGroup(app), name="db")


def load(app: Flask) -> Any:
    """Flask-Migrate set up for the app (once); its config object."""
    config = app.extensions.get("migrate")
    if isinstance(config, _LazyMigrateConfig) or config is None:
        from flask_migrate import Migrate

        from desk.extensions import db

        Migrate(app, db, directory=str(MIGRATIONS), compare_type=True)
        config = app.extensions["migrate"]
    return config


class _LazyMigrateConfig:
    """Stands in for Flask-Migrate's config until something reads it."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(load(self._app), name)


class _LazyDbGroup(click.Group):
    """``desk db …``: Flask-Migrate's own command group, loaded when it is used."""

    def __init__(self, app: Flask) -> None:
        super().__init__(name="db", help="Database migrations (Flask-Migrate and Alembic).")
        self._app = app

    def _real(self) -> click.Group:
        load(self._app)
        from flask_migrate.cli import db as db_group

        return db_group

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        # The real group parses its own options (-d, -x) and runs its own callback.
        return self._real().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._real().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._real().get_command(ctx, cmd_name)


def script_heads(directory: Path = MIGRATIONS) -> list[str]:
    """The head revision(s): those no other revision names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (directory / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision = _REVISION.search(text)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        down = _DOWN_REVISION.search(text)
        if down is not None:
            parents.update(re.findall(r"['\"](\w+)['\"]", down.group(1)))
    return sorted(revisions - parents)
