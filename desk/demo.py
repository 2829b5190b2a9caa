"""``desk demo``: migrate, load the fictional demo desk once, and serve it on 127.0.0.1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app
from werkzeug.serving import run_simple

from desk.accounts.models import Role
from desk.accounts.operations import create_user, find_user_by_email
from desk.core.text import slugify
from desk.extensions import db
from desk.jobs import start_consumer_thread
from desk.profiles.importing import parse_markdown
from desk.profiles.models import Country
from desk.profiles.operations import import_profile

DEMO_DATA = Path(__file__).with_name("demo_data")

#: Fictional countries under ISO 3166's user-assigned codes, so no real country is misdescribed.
DEMO_COUNTRIES = {"XF": "Freedonia", "XR": "Ruritania", "XS": "Sylvania"}


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: Role
    password: str
    countries: tuple[str, ...] = ()
    leads: tuple[str, ...] = ()


DEMO_USERS = (
    DemoUser("admin@desk.example", "Ada Admin", Role.ADMIN, "demo-admin-pass"),
    DemoUser("manager@desk.example", "Mo Manager", Role.MANAGER, "demo-manager-pass"),
    DemoUser(
        "editor@desk.example",
        "Edith Editor",
        Role.EDITOR,
        "demo-editor-pass",
        countries=("XF", "XS"),
        leads=("XF",),
    ),
    DemoUser(
        "editor2@desk.example", "Eli Editor", Role.EDITOR, "demo-editor2-pass", countries=("XR",)
    ),
)


def register(app: Flask) -> None:
    app.cli.add_command(demo_command)


def load_demo_data() -> list[str]:
    """Add the demo countries, profiles and users that are missing; return what was added."""
    added: list[str] = []
    for code, name in DEMO_COUNTRIES.items():
        if db.session.scalar(sa.select(Country).where(Country.code == code)) is None:
            db.session.add(Country(code=code, name=name, slug=slugify(name)))
    db.session.flush()
    for path in sorted(DEMO_DATA.glob("*.md")):
        result = import_profile(parse_markdown(path.read_text()), source=f"demo/{path.name}")
        if result.created:
            added.append(f"profile {result.profile.country.name}: {result.profile.topic}")
    countries = {c.code: c for c in db.session.scalars(sa.select(Country))}
    for user in DEMO_USERS:
        if find_user_by_email(user.email) is None:
            create_user(
                user.email,
                name=user.name,
                role=user.role,
                password=user.password,
                countries=[countries[code] for code in user.countries],
                lead_countries=[countries[code] for code in user.leads],
            )
            added.append(f"user {user.email}")
    return added


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the database and exit.")
def demo_command(host: str, port: int, no_serve: bool) -> None:
    """Migrate, load the demo desk (once), print the logins and serve the app."""
    import flask_migrate  # Alembic, only where migrations run (desk.core.migrations)

    flask_migrate.upgrade()
    added = load_demo_data()
    db.session.commit()
    for line in added:
        click.echo(f"added {line}")
    base = f"http://{host}:{port}"
    click.echo(f"\nDesk demo on {base}/profiles/  (staff: {base}/login)")
    click.echo(f"Database: {current_app.config['SQLALCHEMY_DATABASE_URI']}")
    for user in DEMO_USERS:
        click.echo(f"  {user.role:<8} {user.email:<24} password: {user.password}")
    if no_serve:
        return
    start_consumer_thread()
    mail_folder = f"{current_app.instance_path}/mail"
    click.echo(f"Jobs run in this process; emails are written to {mail_folder}/*.eml")
    # Flask's app.run() declines to run under its own CLI; Werkzeug's server is the same one.
    run_simple(host, port, current_app._get_current_object(), threaded=True)
