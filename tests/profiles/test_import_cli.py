"""``desk import-profile`` and ``desk export-profile`` as an operator uses them."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from desk.extensions import db
from desk.profiles.models import Country, Profile, SectionRevision
from desk.profiles.queries import profile_sections

MALI_PATH = "/profiles/mali/cluster-munition-ban-policy"


def mali_profile() -> Profile | None:
    return db.session.scalar(sa.select(Profile).join(Profile.country).where(Country.code == "ML"))


def test_import_profile_creates_mali_commits_and_prints_one_summary_line(runner, mali_profile_path):
    result = runner.invoke(args=["import-profile", str(mali_profile_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Created {MALI_PATH}: 5 sections, 5 new revisions, Last Updated 16 August 2011.\n"
    )
    assert result.stderr == ""
    db.session.expire_all()
    profile = mali_profile()
    assert profile is not None
    assert profile.last_updated_on == date(2011, 8, 16)
    assert len(profile_sections(profile)) == 5


def test_import_profile_twice_reports_unchanged(runner, mali_profile_path):
    runner.invoke(args=["import-profile", str(mali_profile_path)])
    revisions = db.session.scalar(sa.select(sa.func.count()).select_from(SectionRevision))
    result = runner.invoke(args=["import-profile", str(mali_profile_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Unchanged {MALI_PATH}: 5 sections, 0 new revisions.\n"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SectionRevision)) == revisions


def test_import_profile_prints_warnings_on_stderr_and_still_imports(runner, edited_mali):
    path = edited_mali(("[8]", "[8][9]"))
    result = runner.invoke(args=["import-profile", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: reference [9] in section 'Use, production, transfer, and stockpiling' "
        "has no footnote text\n"
    )
    assert result.stdout.startswith(f"Created {MALI_PATH}: 5 sections")


def test_import_profile_options_set_country_topic_and_language(runner, mali_profile_path):
    result = runner.invoke(
        args=[
            "import-profile",
            str(mali_profile_path),
            "--country",
            "sn",
            "--topic",
            "Politique d’interdiction",
            "--language",
            "fr",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "Created /profiles/senegal/politique-d-interdiction?lang=fr: 5 sections"
    )


def test_unknown_country_is_a_clear_error(runner, mali_profile_path):
    result = runner.invoke(args=["import-profile", str(mali_profile_path), "--country", "XX"])
    assert result.exit_code == 1
    assert "'XX' is not an ISO 3166-1 alpha-2 country code" in result.stderr
    assert mali_profile() is None


def test_text_without_a_country_name_asks_for_the_country_option(runner, tmp_path):
    path = tmp_path / "page.txt"
    path.write_text("Last Updated: 2 May 2012\n\nMine Ban Policy\n\nStatus\n\nJoined.\n")
    result = runner.invoke(args=["import-profile", str(path)])
    assert result.exit_code == 1
    assert "page.txt: the text names no country" in result.stderr
    assert "--country CODE" in result.stderr


def test_missing_file_is_a_clear_error(runner, tmp_path):
    result = runner.invoke(args=["import-profile", str(tmp_path / "nowhere.txt")])
    assert result.exit_code == 2
    assert "nowhere.txt" in result.stderr
    assert "does not exist" in result.stderr


def test_bad_front_matter_is_an_error_naming_file_and_line(runner, tmp_path):
    path = tmp_path / "mali.md"
    path.write_text("---\ncountry: ML\ntopic: T\nlast_updated: 16 August 2011\n---\n## A\n")
    result = runner.invoke(args=["import-profile", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: mali.md: line 4: 'last_updated' must be a date")


def test_export_profile_writes_markdown_to_stdout(runner, mali_profile_path):
    runner.invoke(args=["import-profile", str(mali_profile_path)])
    result = runner.invoke(args=["export-profile", "ML", "cluster-munition-ban-policy"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("---\ncountry: ML\ntopic: Cluster Munition Ban Policy\n")
    assert "\n### Key developments {#key-developments .field}\n" in result.stdout
    assert result.stderr == ""


def test_export_to_a_file_then_import_it_changes_nothing(runner, mali_profile_path, tmp_path):
    runner.invoke(args=["import-profile", str(mali_profile_path)])
    output = tmp_path / "mali.md"
    exported = runner.invoke(
        args=["export-profile", "mali", "Cluster Munition Ban Policy", "--output", str(output)]
    )
    assert exported.exit_code == 0, exported.output
    assert output.read_text(encoding="utf-8").startswith("---\ncountry: ML\n")
    result = runner.invoke(args=["import-profile", str(output)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Unchanged {MALI_PATH}: 5 sections, 0 new revisions.\n"


def test_export_of_an_unknown_profile_is_a_clear_error(runner):
    result = runner.invoke(args=["export-profile", "ML", "no-such-topic"])
    assert result.exit_code == 1
    assert "no profile for country 'ML', topic 'no-such-topic'" in result.stderr
