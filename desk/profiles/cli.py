"""``desk import-profile`` and ``desk export-profile``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask

from desk.core.time import format_day
from desk.extensions import db
from desk.profiles.exporting import export_problems, export_profile, find_profile_to_export
from desk.profiles.importing import ProfileFileError, read_profile_file
from desk.profiles.operations import ImportResult, UnknownCountry, import_profile


def register(app: Flask) -> None:
    """Attach the profile commands."""
    app.cli.add_command(import_profile_command)
    app.cli.add_command(export_profile_command)


@click.command("import-profile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--country", metavar="CODE", help="ISO 3166-1 alpha-2 code (default: the file's).")
@click.option("--topic", metavar="TEXT", help="The profile's topic (default: the file's title).")
@click.option("--language", metavar="LANG", help="Language tag of the text (default: en).")
def import_profile_command(
    file: Path, country: str | None, topic: str | None, language: str | None
) -> None:
    """Create or update a profile from FILE.

    FILE is a Markdown profile file (front matter, or a .md name) or a profile page saved as
    plain text from the Monitor's old website. Importing the same file twice changes nothing.
    """
    try:
        parsed = read_profile_file(file, country=country, topic=topic, language=language)
        result = import_profile(parsed, source=file.name)
    except (ProfileFileError, UnknownCountry) as error:
        raise click.ClickException(f"{file.name}: {error}") from error
    db.session.commit()
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(_summary(result))


def _summary(result: ImportResult) -> str:
    profile = result.profile
    path = f"/profiles/{profile.slug}"
    if profile.language != "en":
        path += f"?lang={profile.language}"
    state = "Created" if result.created else "Updated" if result.changed else "Unchanged"
    line = (
        f"{state} {path}: {len(profile.sections)} sections, "
        f"{result.revisions_created} new revisions"
    )
    if result.stamped_on is not None:
        line += f", Last Updated {format_day(result.stamped_on)}"
    return f"{line}."


@click.command("export-profile")
@click.argument("country")
@click.argument("topic")
@click.option("--language", default="en", show_default=True, metavar="LANG")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: standard output).",
)
def export_profile_command(country: str, topic: str, language: str, output: Path | None) -> None:
    """Write the profile of COUNTRY (ISO code or slug) and TOPIC (slug or text) as Markdown.

    The output is the format import-profile reads; importing it back changes nothing.
    """
    profile = find_profile_to_export(country, topic, language)
    if profile is None:
        raise click.ClickException(
            f"no profile for country {country!r}, topic {topic!r}, language {language!r}"
        )
    for problem in export_problems(profile):
        click.echo(f"warning: {problem}", err=True)
    text = export_profile(profile)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {output} ({len(profile.sections)} sections).", err=True)
