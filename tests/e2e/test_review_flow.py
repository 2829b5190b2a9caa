"""From a reader's feedback to a new Last Updated date, in a real browser, on the Mali profile.

An editor of Mali opens a review task from the feedback item, adds a sentence and a footnote to
"Use, production, transfer, and stockpiling", previews the whole page (the new note is number
9), and submits it as a major revision; a manager sees the diff and approves it. The public page
then shows the text and today's date, the item is closed as updated, and the subscriber's and
the reader's emails wait in the outbox.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from desk.core.time import desk_today, format_day, utcnow
from desk.extensions import db
from desk.feedback.models import Channel, Feedback
from desk.feedback.operations import Submission, receive_feedback
from desk.notify.models import Frequency, OutboxMessage, Subscription
from desk.profiles.models import Section
from desk.profiles.queries import find_profile
from tests.e2e.conftest import SHARED_DATA, STAFF_PASSWORD, LiveServer

MALI_SOURCE = SHARED_DATA / "mali-cluster-munition-ban-policy-2011.txt"
MALI_PAGE = "/profiles/mali/cluster-munition-ban-policy"
SECTION = "Use, production, transfer, and stockpiling"
SENTENCE = "In 2026 Mali told the Monitor again that it holds no cluster munitions."
NOTE = "Letter from the Ministry of Foreign Affairs of Mali, 3 March 2026."
READER = "reader@example.org"
SUBSCRIBER = "subscriber@example.org"
EDITOR = "awa@desk.test"
MANAGER = "moussa@desk.test"
NIGER_EDITOR = "ibrahim@desk.test"


def _feedback_and_subscriber() -> str:
    profile = find_profile("mali", "cluster-munition-ban-policy")
    section = db.session.scalar(
        sa.select(Section).where(Section.profile_id == profile.id, Section.heading == SECTION)
    )
    db.session.add(
        Subscription(
            email=SUBSCRIBER,
            profile=profile,
            frequency=Frequency.IMMEDIATE,
            language="en",
            confirmed_at=utcnow(),
        )
    )
    result = receive_feedback(
        Submission(
            channel=Channel.WEB,
            profile=profile,
            section=section,
            message="Mali restated in 2026 that it has no cluster munitions; please add it.",
            submitter_name="A. Reader",
            submitter_email=READER,
            wants_resolution_notice=True,
        )
    )
    return result.feedback.reference


@pytest.fixture(scope="module")
def reference(live_server: LiveServer) -> str:
    """The real Mali profile, a reader's item on its stockpiling section, a subscriber, staff."""
    if not MALI_SOURCE.is_file():
        pytest.fail(f"missing {MALI_SOURCE}: the shared data folder is required", pytrace=False)
    live_server.cli("import-profile", str(MALI_SOURCE))
    live_server.create_user(EDITOR, role="editor", countries=["ML"], name="Awa Editor")
    live_server.create_user(MANAGER, role="manager", countries=[], name="Moussa Manager")
    live_server.create_user(NIGER_EDITOR, role="editor", countries=["NE"], name="Ibrahim Editor")
    return live_server.run(_feedback_and_subscriber)


def log_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/desk/"))


def log_out(page: Page) -> None:
    page.get_by_role("button", name=re.compile(r"^Log out")).click()
    expect(page).to_have_url(re.compile(r"/login"))


def _outcome(reference: str) -> dict[str, Any]:
    item = db.session.scalar(sa.select(Feedback).where(Feedback.reference == reference))
    outbox = db.session.execute(sa.select(OutboxMessage.kind, OutboxMessage.recipient)).all()
    return {
        "status": str(item.status),
        "resolution": str(item.resolution),
        "outbox": {(kind, recipient) for kind, recipient in outbox},
    }


def test_feedback_becomes_an_approved_major_revision_and_a_new_last_updated_date(
    page: Page, live_server: LiveServer, reference: str
) -> None:
    today = live_server.run(desk_today)

    # The editor opens a task from the item (its page links to the task form when it can).
    log_in(page, EDITOR)
    page.goto(f"/desk/feedback/{reference}")
    open_task = page.locator("a[href*='/desk/tasks/new']")
    if open_task.count():
        open_task.first.click()
    else:
        page.goto(f"/desk/tasks/new?feedback={reference}")
    expect(page.get_by_role("heading", level=1)).to_have_text("New review task")
    expect(page.get_by_label("Section", exact=True)).to_have_value(re.compile(r"^section:\d+$"))
    expect(page.get_by_label("Section", exact=True).locator("option:checked")).to_have_text(SECTION)
    page.get_by_role("button", name="Open task").click()
    expect(page.locator(".flash-success")).to_have_text("Review task opened.")
    task_url = page.url

    # Revise: a sentence and its footnote, after the section's last reference ([^8]).
    page.get_by_role("button", name="Start revising").click()
    body = page.get_by_label("Text (Markdown)")
    text = body.input_value()
    assert "[^8]" in text and "[^9]" not in text
    first_lines, _, definitions = text.partition("\n\n[^")
    body.fill(f"{first_lines} {SENTENCE}[^9]\n\n[^{definitions}\n[^9]: {NOTE}")
    page.get_by_role("button", name="Save and preview").click()

    # The preview is the whole public page: nine notes, numbered in reading order.
    expect(page.locator(".preview-banner")).to_contain_text("not published")
    references = page.locator("article .profile-section .fn-ref a")
    expect(references).to_have_text([str(n) for n in range(1, 10)])
    expect(page.locator(".footnotes li")).to_have_count(9)
    expect(page.locator("#fn-9")).to_contain_text(NOTE)
    expect(page.locator("#fn-8")).to_contain_text("Amadou Maiga")
    expect(page.locator("#fn-1")).to_contain_text("Session on Victim Assistance, Geneva")
    expect(page.get_by_text(SENTENCE)).to_be_visible()
    expect(page.locator(".last-updated")).to_have_text(f"Last Updated: {format_day(today)}")

    # Back in the draft: a major change needs its note; then submit it.
    page.get_by_role("link", name="Back to the draft").click()
    page.get_by_label(re.compile(r"^Major")).check()
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator("#change_note-error")).to_contain_text("needs a change note")
    expect(page.get_by_label("Text (Markdown)")).to_have_value(re.compile(re.escape(SENTENCE)))
    page.get_by_label("Change note").fill("Adds Mali's 2026 statement that it holds none.")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page).to_have_url(task_url)
    expect(page.locator(".meta .state").first).to_have_text("submitted")

    # The editor's own revision waits for someone else.
    page.get_by_role("link", name=re.compile(r"^Review revision")).click()
    expect(page.get_by_text("You wrote this revision")).to_be_visible()
    expect(page.get_by_role("button", name="Approve and publish")).to_have_count(0)
    log_out(page)

    # The manager sees the diff and the feedback, and approves.
    log_in(page, MANAGER)
    page.goto("/desk/tasks?view=approval")
    page.get_by_role("link", name=SECTION).click()
    expect(page.locator(".diff ins")).to_contain_text([f"{SENTENCE}[^9]"])
    expect(page.locator(".diff ins").last).to_contain_text(f"[^9]: {NOTE}")
    expect(page.locator(".feedback-items")).to_contain_text(reference)
    page.get_by_role("button", name="Approve and publish").click()
    expect(page.locator(".flash-success")).to_contain_text(
        f"Approved and published. Last Updated is now {format_day(today)}"
    )
    log_out(page)

    # Readers see the new text, the new note and today's date.
    page.goto(MALI_PAGE)
    expect(page.locator(".last-updated")).to_have_text(f"Last Updated: {format_day(today)}")
    expect(page.locator(".last-updated time")).to_have_attribute("datetime", today.isoformat())
    expect(page.get_by_text(SENTENCE)).to_be_visible()
    expect(page.locator("article .profile-section .fn-ref a")).to_have_count(9)
    expect(page.locator("#fn-9")).to_contain_text(NOTE)
    changes = page.locator(".what-changed")
    expect(changes.locator("dt").first).to_have_text(format_day(today))
    expect(changes.locator("dd").first).to_have_text(
        "Adds Mali's 2026 statement that it holds none."
    )

    outcome = live_server.run(_outcome, reference)
    assert (outcome["status"], outcome["resolution"]) == ("closed", "updated")
    assert ("profile.updated", SUBSCRIBER) in outcome["outbox"]
    assert ("feedback.resolved", READER) in outcome["outbox"]

    # An editor of another country finds no such task.
    log_in(page, NIGER_EDITOR)
    response = page.goto(task_url)
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
