"""The ``desk`` command: Flask's CLI bound to ``create_app``, plus the project's own commands."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from desk.config import SettingsError

#: The exit status of a command that could not start because of a wrong setting.
SETTINGS_EXIT_CODE = 2


def register(app: Flask) -> None:
    """Attach every feature's commands to the app (``desk <command>``)."""
    from desk import demo, scale
    from desk.accounts import cli as accounts_cli
    from desk.feedback import cli as feedback_cli
    from desk.privacy import cli as privacy_cli
    from desk.profiles import cli as profiles_cli
    from desk.reports import cli as reports_cli

    accounts_cli.register(app)
    profiles_cli.register(app)
    demo.register(app)
    feedback_cli.register(app)
    privacy_cli.register(app)
    reports_cli.register(app)
    scale.register(app)


def _create_app() -> Flask:
    from desk import create_app

    return create_app()


def _refuse_to_start(error: SettingsError) -> None:
    click.echo(f"Desk cannot start: {error}", err=True)


class DeskGroup(FlaskGroup):
    """Flask's command group, telling a wrong setting in one line rather than a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as error:
            _refuse_to_start(error)
            ctx.exit(SETTINGS_EXIT_CODE)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """``desk --help`` with a wrong setting: say so, then list the commands that need no app."""
        try:
            ctx.ensure_object(ScriptInfo).load_app()  # loaded once; the listing reuses it
        except SettingsError as error:
            _refuse_to_start(error)
            self._load_plugin_commands()
            return sorted(click.Group.list_commands(self, ctx))
        return super().list_commands(ctx)


@click.group(cls=DeskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Desk: the editorial workflow and feedback desk (Flask CLI with the app preloaded)."""
