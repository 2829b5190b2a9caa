"""Smoke: the public site, a submission with files end to end, and the staff inbox."""

from __future__ import annotations

import asyncio

import pytest

from bench.load import Recorder, Submission, log_in, send_feedback
from tests.topology.checks import lost_submissions, stored_files
from tests.topology.client import user_factory, wait_for_acknowledgements
from tests.topology.conftest import Running
from tests.topology.seed import DEMO_EDITOR

pytestmark = pytest.mark.topology


async def _submit_and_look(running: Running) -> tuple[Submission | None, str, str, Recorder]:
    recorder = Recorder()
    profile = next(p for p in running.seeded.profile_paths if "/freedonia/" in p)
    async with user_factory(running.topology.base_url, recorder) as new_user:
        reader = new_user()
        listing, _ = await reader.call("GET", "/profiles/", "list")
        assert profile in listing
        page, _ = await reader.call("GET", profile, "profile")
        assert "Last Updated" in page
        # The topology keeps the default DESK_FORM_MIN_SECONDS (3): a person takes longer.
        submission = await send_feedback(
            reader, profile, "smoke", "smoke.reader@example.org", form_seconds=3.5
        )
        if submission is None:
            return None, "", "", recorder
        editor = new_user()
        await log_in(editor, *DEMO_EDITOR)
        inbox, _ = await editor.call("GET", "/desk/inbox", "inbox")
        item, _ = await editor.call("GET", f"/desk/feedback/{submission.reference}", "item")
    return submission, inbox, item, recorder


def test_a_reader_s_feedback_reaches_the_database_storage_mail_and_inbox(
    shared_topology: Running,
) -> None:
    submission, inbox, item, recorder = asyncio.run(_submit_and_look(shared_topology))
    assert submission is not None, dict(recorder.failures)
    assert not recorder.failures

    items = stored_files(shared_topology.database_url)
    assert lost_submissions([submission], items, shared_topology.topology.storage_root) == []
    assert {f.name for f in items[submission.reference]} == {"evidence.pdf", "notes.txt"}

    copies = wait_for_acknowledgements(
        shared_topology.sink, {submission.reference: "smoke.reader@example.org"}, timeout=60
    )
    assert list(copies.values()) == [1], shared_topology.topology.logs_text()

    assert submission.reference in inbox
    assert "Submission smoke:" in item
    assert "evidence.pdf" in item
    assert shared_topology.topology.server_errors() == []
