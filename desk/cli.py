"""The ``desk`` command: Flask's CLI bound to ``create_app``, plus the project's own commands."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def register(app: Flask) -> None:
    """Attach every feature's commands to the app (``desk <command>``)."""
    from desk import demo, scale
    from desk.accounts import cli as accounts_cli
    from desk.feedback import cli as feedback_cli
    from desk.profiles import cli as profiles_cli
    from desk.reports import cli as reports_cli

    accounts_cli.register(app)
    profiles_cli.register(app)
    demo.register(app)
    feedback_cli.register(app)
    reports_cli.register(app)
    scale.register(app)


def _create_app() -> Flask:
    from desk import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Desk: the editorial workflow and feedback desk (Flask CLI with the app preloaded)."""
