"""Settings are checked at start: a wrong one stops Desk with one line naming it, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desk import create_app
from desk.config import SettingsError, load_settings, unknown_settings

DESK = Path(sys.executable).parent / "desk"
GOOD_SECRET = "k" * 40


def settings(tmp_path: Path, **values: object) -> dict[str, object]:
    return load_settings(tmp_path, {"DESK_SECRET_KEY": "test", **values})


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DESK_* setting of the machine running the tests leaks into these."""
    for name in list(os.environ):
        if name.startswith("DESK_") and not name.startswith("DESK_TEST_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"DESK_ENV": "prod"}, "DESK_ENV must be one of development, testing, production"),
        ({"DESK_DATABASE_URL": "not a url"}, "DESK_DATABASE_URL is not a database URL"),
        ({"DESK_DATABASE_URL": "postgres://u@h/desk"}, "DESK_DATABASE_URL is not a database URL"),
        ({"DESK_DATABASE_URL": "mysql://u@h/desk"}, "Desk runs on postgresql or sqlite"),
        ({"DESK_DATABASE_URL": "postgresql+psycopg://u@h"}, "DESK_DATABASE_URL names no database"),
        ({"DESK_REDIS_URL": "redis://127.0.0.1:port/0"}, "DESK_REDIS_URL is not a Redis URL"),
        ({"DESK_REDIS_URL": "http://127.0.0.1:6379/0"}, "DESK_REDIS_URL is not a Redis URL"),
        ({"DESK_REDIS_URL": "redis://127.0.0.1:6379/x"}, "the database must be a number"),
        ({"DESK_RATELIMIT_STORAGE_URL": "cache"}, "DESK_RATELIMIT_STORAGE_URL must be memory://"),
        ({"DESK_UPLOAD_MAX_FILES": "10 files"}, "DESK_UPLOAD_MAX_FILES must be a whole number"),
        ({"DESK_UPLOAD_MAX_FILES": 2.5}, "DESK_UPLOAD_MAX_FILES must be a whole number"),
        ({"DESK_UPLOAD_MAX_FILES": 0}, "DESK_UPLOAD_MAX_FILES must be at least 1"),
        ({"DESK_MAIL_PORT": 70000}, "DESK_MAIL_PORT must be a port number"),
        ({"DESK_FOUR_EYES": "maybe"}, "DESK_FOUR_EYES must be true or false"),
        ({"DESK_FOUR_EYES": 1}, "DESK_FOUR_EYES must be true or false"),
        ({"DESK_SPAM_THRESHOLD": -1}, "DESK_SPAM_THRESHOLD must be a number of at least 0"),
        ({"DESK_FEEDBACK_RATE_LIMIT": "lots"}, "DESK_FEEDBACK_RATE_LIMIT is not a rate limit"),
        ({"DESK_TIMEZONE": "Mars/Olympus"}, "DESK_TIMEZONE is not a time zone"),
        ({"DESK_LOG_FORMAT": "xml"}, "DESK_LOG_FORMAT must be one of text, json"),
        ({"DESK_LOG_LEVEL": "LOUD"}, "DESK_LOG_LEVEL must be one of"),
        ({"DESK_MAIL_BACKEND": "pigeon"}, "DESK_MAIL_BACKEND must be one of"),
        ({"DESK_SITE_URL": "desk.example.org"}, "DESK_SITE_URL must be the site's public"),
        ({"DESK_PROXY_FIX_X_FOR": -1}, "DESK_PROXY_FIX_X_FOR must be at least 0"),
        ({"DESK_UPLOAD_EXTENSIONS": "pdf"}, "DESK_UPLOAD_EXTENSIONS must be JSON"),
        ({"DESK_UPLOAD_EXTENSIONS": '"pdf"'}, "DESK_UPLOAD_EXTENSIONS must be a JSON list"),
        (
            {"DESK_UPLOAD_MAX_FILE_BYTES": 10, "DESK_UPLOAD_MAX_SUBMISSION_BYTES": 5},
            "a file that size could never be sent",
        ),
    ],
)
def test_a_wrong_setting_is_refused_with_its_name(clean_environment, tmp_path, values, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        settings(tmp_path, **values)


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("DESK_UPLOAD_MAX_FILES", "ten", "DESK_UPLOAD_MAX_FILES must be a whole number, not 'ten'"),
        ("DESK_SPAM_THRESHOLD", "high", "DESK_SPAM_THRESHOLD must be a number, not 'high'"),
        ("DESK_CORS_ORIGINS", "[oops", "DESK_CORS_ORIGINS must be JSON, not '[oops'"),
    ],
)
def test_an_environment_value_of_the_wrong_kind_is_refused(
    clean_environment, monkeypatch, tmp_path, variable, raw, message
):
    monkeypatch.setenv(variable, raw)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        settings(tmp_path)


def test_text_values_are_read_like_the_environment(clean_environment, tmp_path):
    values = settings(
        tmp_path,
        DESK_FORM_MIN_SECONDS="0",
        DESK_FOUR_EYES="off",
        DESK_SPAM_THRESHOLD="2.5",
        DESK_CORS_ORIGINS='["https://monitor.example"]',
    )
    assert values["DESK_FORM_MIN_SECONDS"] == 0
    assert values["DESK_FOUR_EYES"] is False
    assert values["DESK_SPAM_THRESHOLD"] == 2.5
    assert values["DESK_CORS_ORIGINS"] == ["https://monitor.example"]


def test_password_values_are_never_echoed(clean_environment, monkeypatch, tmp_path):
    monkeypatch.setenv("DESK_REDIS_URL", "redis://:hunter2-secret@127.0.0.1:nope/0")
    with pytest.raises(SettingsError) as raised:
        settings(tmp_path)
    assert "hunter2-secret" not in str(raised.value)
    assert "redis://:***@127.0.0.1:nope/0" in str(raised.value)


@pytest.mark.parametrize("key", [None, "", "a long random string", "short-key"])
def test_production_needs_a_real_secret_key(clean_environment, tmp_path, key):
    with pytest.raises(SettingsError, match="DESK_SECRET_KEY"):
        load_settings(tmp_path, {"DESK_ENV": "production", "DESK_SECRET_KEY": key})


def test_development_and_testing_generate_a_key_when_none_is_set(clean_environment, tmp_path):
    app = create_app({"DESK_INSTANCE_PATH": str(tmp_path), "DESK_ENV": "development"})
    assert len(app.config["SECRET_KEY"]) >= 32
    assert (tmp_path / "secret_key").read_text().strip() == app.config["SECRET_KEY"]


def test_good_production_settings_pass(clean_environment, tmp_path):
    values = load_settings(
        tmp_path,
        {
            "DESK_ENV": "production",
            "DESK_SECRET_KEY": GOOD_SECRET,
            "DESK_DATABASE_URL": "postgresql+psycopg://desk:pw@db.internal:5432/desk",
            "DESK_REDIS_URL": "redis://127.0.0.1:6379/7",
            "DESK_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/8",
            "DESK_SITE_URL": "https://desk.example.org",
            "DESK_LOG_FORMAT": "json",
            "DESK_PROXY_FIX_X_FOR": 1,
        },
    )
    assert values["DESK_MAIL_BACKEND"] == "smtp"


def test_a_misspelt_setting_is_reported(clean_environment, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("DESK_DATABSE_URL", "postgresql+psycopg://u@h/desk")
    monkeypatch.setenv("DESK_TEST_ANYTHING", "harness")
    values = settings(tmp_path)
    assert unknown_settings(values) == ["DESK_DATABSE_URL"]
    create_app({"DESK_INSTANCE_PATH": str(tmp_path), "DESK_SECRET_KEY": "x"})
    assert "DESK_DATABSE_URL is not a setting and is ignored" in caplog.text


def test_a_bad_s3_storage_url_is_a_settings_error(clean_environment, tmp_path):
    with pytest.raises(SettingsError, match="DESK_STORAGE_URL: unknown S3 storage option"):
        create_app(
            {
                "DESK_INSTANCE_PATH": str(tmp_path),
                "DESK_SECRET_KEY": "x",
                "DESK_STORAGE_URL": "s3://bucket/files?colour=blue",
            }
        )


def run_desk(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed ``desk`` command, as an operator runs it, with only these settings."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DESK_") or name.startswith("DESK_TEST_")
    }
    environment.update(DESK_INSTANCE_PATH=str(tmp_path / "instance"), **env)
    return subprocess.run(
        [str(DESK), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            ("db", "upgrade"),
            {"DESK_DATABASE_URL": "postgresql+psycopg://desk@localhost"},
            "Desk cannot start: DESK_DATABASE_URL names no database",
        ),
        (
            ("worker",),
            {"DESK_REDIS_URL": "redis://127.0.0.1:six/7"},
            "Desk cannot start: DESK_REDIS_URL is not a Redis URL",
        ),
        (
            ("routes",),
            {"DESK_ENV": "production"},
            "Desk cannot start: DESK_SECRET_KEY must be set when DESK_ENV=production",
        ),
        (
            ("create-user", "a@example.org", "--role", "admin"),
            {"DESK_UPLOAD_MAX_FILES": "many"},
            "Desk cannot start: DESK_UPLOAD_MAX_FILES must be a whole number, not 'many'",
        ),
    ],
)
def test_the_desk_command_refuses_a_wrong_setting_in_one_line(tmp_path, args, env, line):
    result = run_desk(tmp_path, *args, **env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(line)
    assert "Traceback" not in result.stderr + result.stdout


def test_desk_help_still_lists_commands_with_a_wrong_setting(tmp_path):
    result = run_desk(tmp_path, "--help", DESK_ENV="staging")
    assert "Desk cannot start: DESK_ENV must be one of" in result.stderr
    assert "Traceback" not in result.stderr
    assert "db" in result.stdout
