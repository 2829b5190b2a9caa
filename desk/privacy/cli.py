"""``desk privacy purge | export EMAIL | erase EMAIL``: personal data from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from desk.extensions import db
from desk.privacy import operations

privacy_cli = AppGroup("privacy", help="Readers' personal data: purge, export, erase.")


def register(app: Flask) -> None:
    app.cli.add_command(privacy_cli)


@privacy_cli.command("purge")
def purge_command() -> None:
    """Remove readers' data from items closed longer than the retention period, now."""
    days = operations.retention_days()
    if days <= 0:
        click.echo("DESK_PERSONAL_DATA_RETENTION_DAYS is 0: personal data is kept.")
        return
    total = operations.PurgeReport()
    while True:
        report = operations.purge_expired_personal_data()
        db.session.commit()
        total.items += report.items
        total.mails += report.mails
        total.subscriptions += report.subscriptions
        if not report.items:
            break
    click.echo(
        f"Purged {len(total.items)} items closed over {days} days ago "
        f"({total.mails} emails, {total.subscriptions} ended subscriptions)."
    )


@privacy_cli.command("export")
@click.argument("email")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
def export_command(email: str, output: Path | None) -> None:
    """Everything held about EMAIL, as JSON (on standard output unless --output)."""
    text = json.dumps(operations.export_personal_data(email), indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    output.chmod(0o600)
    click.echo(f"Wrote {output}.", err=True)


@privacy_cli.command("erase")
@click.argument("email")
@click.option(
    "--blank-messages", is_flag=True, help="Also remove the text of their feedback and replies."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(email: str, blank_messages: bool, yes: bool) -> None:
    """Erase what is held about EMAIL: personal fields, files, subscriptions, mail copies."""
    if not yes:
        click.confirm(f"Erase the personal data of {email}? This cannot be undone", abort=True)
    report = operations.erase_personal_data(email, blank_messages=blank_messages)
    db.session.commit()
    deleted = operations.delete_stored_files(report.storage_keys)
    click.echo(
        f"Erased {len(report.items)} items ({deleted} of {len(report.storage_keys)} files "
        f"deleted), ended {report.subscriptions_ended} subscriptions, cleaned {report.mails} "
        "emails."
    )
