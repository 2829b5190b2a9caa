"""``desk create-user``."""

from __future__ import annotations

import secrets

import click
from flask import Flask

from desk.accounts.models import Role
from desk.accounts.operations import AccountError, create_user
from desk.extensions import db
from desk.profiles.models import Country
from desk.profiles.operations import UnknownCountry, ensure_country


def register(app: Flask) -> None:
    app.cli.add_command(create_user_command)


@click.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.EDITOR.value)
@click.option("--name", default="", help="Display name (default: the email).")
@click.option("--country", "countries", multiple=True, help="ISO code of a country to work on.")
@click.option("--lead", "leads", multiple=True, help="ISO code of a country to lead.")
@click.option("--password", default=None, help="Password (default: a random one, printed).")
def create_user_command(
    email: str,
    role: str,
    name: str,
    countries: tuple[str, ...],
    leads: tuple[str, ...],
    password: str | None,
) -> None:
    """Create a staff account with its countries."""

    def lookup(codes: tuple[str, ...]) -> list[Country]:
        try:
            return [ensure_country(code) for code in codes]
        except UnknownCountry as error:
            raise click.BadParameter(str(error), param_hint="--country") from error

    password = password or secrets.token_urlsafe(12)
    try:
        user = create_user(
            email,
            name=name,
            role=Role(role),
            password=password,
            countries=lookup(countries),
            lead_countries=lookup(leads),
        )
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"Created {user.role} {user.email} with password: {password}")
