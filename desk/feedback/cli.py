"""Email-in commands: ``desk lmtp``, ``desk poll-imap`` and ``desk import-eml``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app

from desk.feedback.email_in import EmailOutcome, EmailRefused, deliver_email


def register(app: Flask) -> None:
    app.cli.add_command(lmtp_command)
    app.cli.add_command(poll_imap_command)
    app.cli.add_command(import_eml_command)


def _echo_outcome(label: str, outcome: EmailOutcome) -> None:
    click.echo(f"{label}: {outcome.describe()}")
    for reason in outcome.rejected_files:
        click.echo(f"  file not accepted: {reason}")


@click.command("lmtp")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8024, show_default=True, type=int, help="Port to listen on.")
def lmtp_command(host: str, port: int) -> None:
    """Receive the intake address's mail over LMTP from a mail server, until Ctrl-C."""
    from desk.feedback.lmtp import serve_lmtp

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        serve_lmtp(app, host, port, ready=click.echo)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from error


@click.command("poll-imap")
def poll_imap_command() -> None:
    """Take the unseen messages of the intake mailbox (DESK_IMAP_*) once."""
    from desk.feedback.imap import ImapError, poll_mailbox

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        report = poll_mailbox(app)
    except ImapError as error:
        raise click.ClickException(str(error)) from error
    for uid, outcome in report.taken:
        _echo_outcome(f"message {uid}", outcome)
    for uid, reason in report.failed:
        click.echo(f"message {uid}: failed: {reason}", err=True)
    click.echo(f"{len(report.taken)} taken, {len(report.failed)} failed.")
    if report.failed:
        sys.exit(1)


@click.command("import-eml")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
def import_eml_command(files: tuple[str, ...]) -> None:
    """Take saved emails (.eml files; - reads one from standard input) as feedback."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    failures = 0
    for name in files:
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            outcome = deliver_email(app, raw)
        except EmailRefused as refusal:
            failures += 1
            click.echo(f"{name}: failed: not an email ({refusal})", err=True)
        except OSError as error:
            failures += 1
            click.echo(f"{name}: failed: {error.strerror or error}", err=True)
        except Exception as error:
            failures += 1
            click.echo(f"{name}: failed: {type(error).__name__}: {error}", err=True)
        else:
            _echo_outcome(name, outcome)
    if failures:
        click.echo(f"{failures} of {len(files)} files failed.", err=True)
        sys.exit(1)
