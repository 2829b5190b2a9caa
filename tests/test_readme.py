"""The README stays true: its two commands are the ones CI runs, and every setting is documented."""

import re
from pathlib import Path

from desk.config import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> list[str]:
    section = README.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_opens_with_exactly_two_commands():
    commands = _commands()
    assert len(commands) == 2
    assert "desk demo" in commands[0]
    assert commands[1].endswith("pytest")


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci


def test_every_setting_is_documented_in_the_readme():
    missing = [name for name in SETTINGS if f"`{name}`" not in README]
    assert missing == []
