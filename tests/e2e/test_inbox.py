"""The inbox in a real browser: an editor triages the Mali item with the keyboard and replies.

The reply travels the whole way: outbox row, then a real SMTP server (aiosmtpd) once the
outbox is drained, with the reference in its subject and a Message-ID that threads the reader's
answer back onto the item.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from io import BytesIO

import pytest
import sqlalchemy as sa
from playwright.sync_api import BrowserContext, Page, expect

from desk.extensions import db, mail
from desk.feedback.models import Channel, Feedback
from desk.feedback.operations import IncomingFile, Submission, receive_feedback
from desk.notify.delivery import deliver_due
from desk.notify.models import OutboxMessage
from desk.profiles.models import Profile
from tests.e2e.conftest import SHARED_DATA, STAFF_PASSWORD, LiveServer
from tests.inbox.conftest import PDF
from tests.smtp import SMTPSink

MALI_SOURCE = SHARED_DATA / "mali-cluster-munition-ban-policy-2011.txt"
EDITOR = "aminata@desk.test"
READER = "amadou@example.org"


def receive(message: str, *, email: str = READER, name: str = "", files=()) -> str:
    """Feedback on the Mali profile's stockpiling section, through the real intake."""
    profile = db.session.scalar(sa.select(Profile).where(Profile.topic_slug.like("cluster%")))
    section = next(s for s in profile.sections if "stockpiling" in s.heading.lower())
    result = receive_feedback(
        Submission(
            channel=Channel.WEB,
            profile=profile,
            section=section,
            message=message,
            submitter_name=name,
            submitter_email=email,
            files=[IncomingFile(filename, BytesIO(data)) for filename, data in files],
        )
    )
    return result.feedback.reference


@pytest.fixture(scope="module")
def desk(live_server: LiveServer) -> dict[str, str]:
    """The Mali profile, an editor of Mali, the Mali item (with a PDF) and a second item."""
    live_server.cli("import-profile", str(MALI_SOURCE))
    live_server.create_user(EDITOR, role="editor", countries=["ML"], name="Aminata Traoré")
    first = live_server.run(
        receive,
        "Mali's stockpile of cluster munitions was destroyed in 2012; the profile still "
        "says it is unknown. The ministry's statement is attached.",
        name="Amadou Maiga",
        files=[("declaration.pdf", PDF)],
    )
    second = live_server.run(
        receive,
        "Sending again: the stockpile was destroyed, see my earlier message.",
        email="other.reader@example.net",
    )
    return {"first": first, "second": second}


def log_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(EDITOR)
    page.get_by_label("Password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello")


def keyboard_ready(page: Page) -> None:
    """Wait until inbox.js listens (it is deferred: the page shows before it runs)."""
    expect(page.locator("html[data-keyboard=ready]")).to_have_count(1)


def mail_to(live_server: LiveServer, sink: SMTPSink) -> None:
    """Point the live app's outgoing mail at the test's SMTP server."""
    live_server.app.config.update(
        DESK_MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=sink.port,
        DESK_MAIL_TIMEOUT_SECONDS=5,
    )
    mail.init_app(live_server.app)


def test_an_editor_triages_the_mali_item_from_the_keyboard(
    page: Page, live_server: LiveServer, desk: dict[str, str], smtp_sink: SMTPSink
) -> None:
    first, second = desk["first"], desk["second"]
    log_in(page)
    page.get_by_role("link", name="Inbox", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My countries")

    # Find it with a search: "/" goes to the search box, accents and case do not matter.
    keyboard_ready(page)
    page.keyboard.press("/")
    expect(page.get_by_role("searchbox")).to_be_focused()
    page.keyboard.type("MINISTRY declaration")
    page.keyboard.press("Enter")
    rows = page.locator("tr[data-item]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(first)

    # Open it with the keyboard.
    keyboard_ready(page)
    page.keyboard.press("j")
    expect(rows.first).to_have_class(re.compile("is-current"))
    page.keyboard.press("o")
    expect(page).to_have_url(re.compile(f"/desk/feedback/{first}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(first)
    expect(page.locator(".file-name")).to_have_text("declaration.pdf")

    # Assign it to herself ("a"), add a note, reply to the reader.
    keyboard_ready(page)
    page.keyboard.press("a")
    expect(page.locator(".flash-success")).to_have_text(f"{first} is assigned to you.")
    page.get_by_label("Note", exact=True).fill("Checked with the 2012 Article 7 report.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator(".flash-success")).to_have_text("Note added.")
    page.get_by_label("Message to the reader").fill(
        "Thank you. We have checked the ministry's statement and will correct the profile."
    )
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".flash-success")).to_have_text(f"Reply to {READER} is on its way.")

    def reply_row() -> dict[str, str]:
        message = db.session.scalar(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "feedback.reply")
        )
        return {"to": message.recipient, "subject": message.subject, "id": message.message_id}

    row = live_server.run(reply_row)
    assert row["to"] == READER
    assert f"[{first}]" in row["subject"]

    mail_to(live_server, smtp_sink)
    live_server.run(deliver_due)
    [arrived] = [m for m in smtp_sink.to(READER) if m["Message-ID"] == row["id"]]
    assert f"[{first}]" in arrived["Subject"]
    assert arrived["In-Reply-To"] == f"<ack.{first}@localhost>"
    assert "will correct the profile" in arrived.get_body(("plain",)).get_content()

    # Mark the second item as a duplicate of this one.
    page.goto(f"/desk/feedback/{second}")
    page.get_by_label("Duplicate of (reference)").fill(first)
    page.get_by_role("button", name="Close as duplicate").click()
    expect(page.locator(".flash-success")).to_have_text(
        f"{second} is closed as a duplicate of {first}."
    )

    # The timeline of the first item tells the whole story, oldest first.
    page.goto(f"/desk/feedback/{first}")
    expect(page.locator(".timeline .event-title")).to_have_text(
        [
            "Received by the web form",
            "Routed to ML",
            "Assigned to Aminata Traoré",
            "Internal note",
            f"Replied to {READER}",
            f"{second} merged into this item",
        ]
    )
    expect(page.locator(".event-note .event-body")).to_have_text(
        "Checked with the 2012 Article 7 report."
    )

    def stamped() -> bool:
        item = db.session.scalar(sa.select(Feedback).where(Feedback.reference == first))
        return item.first_response_at is not None and item.assignee.email == EDITOR

    assert live_server.run(stamped)


def test_spam_and_close_from_the_list_with_the_keyboard(
    page: Page, live_server: LiveServer, desk: dict[str, str]
) -> None:
    junk = live_server.run(receive, "Buy cheap watches at example dot com", email="")
    keep = live_server.run(receive, "Is the 2011 figure final?", email="q@example.org")
    log_in(page)
    page.goto("/desk/inbox?q=watches")
    keyboard_ready(page)
    page.keyboard.press("j")
    page.keyboard.press("#")
    expect(page.locator(".flash-success")).to_have_text(f"{junk} is closed as spam.")
    expect(page).to_have_url(re.compile(r"/desk/inbox\?q=watches$"))
    expect(page.locator("tr[data-item]")).to_have_count(0)

    page.goto("/desk/inbox?q=figure+final")
    keyboard_ready(page)
    page.keyboard.press("j")
    page.keyboard.press("e")
    expect(page).to_have_url(re.compile(f"/desk/feedback/{keep}.*#close-reason$"))
    expect(page.get_by_label("Why no action")).to_be_focused()
    page.keyboard.type("It is final; answered by phone.")
    page.get_by_role("button", name="Close: no action").click()
    expect(page.locator(".flash-success")).to_have_text(f"{keep} is closed: no action.")


def test_shortcuts_list_opens_with_question_mark(page: Page, desk: dict[str, str]) -> None:
    log_in(page)
    page.goto("/desk/inbox")
    shortcuts = page.locator("#shortcuts")
    expect(shortcuts.get_by_text("Next / previous item in the list")).to_be_hidden()
    keyboard_ready(page)
    page.keyboard.press("?")
    expect(shortcuts.get_by_text("Next / previous item in the list")).to_be_visible()
    page.keyboard.press("Escape")
    expect(shortcuts.get_by_text("Next / previous item in the list")).to_be_hidden()


def test_without_javascript_everything_is_a_link_or_a_button(
    new_context: Callable[..., BrowserContext], desk: dict[str, str]
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    log_in(page)
    page.goto("/desk/inbox?view=countries&status=any")
    page.get_by_role("searchbox").fill("sending again")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name=re.compile(desk["second"])).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(desk["second"])
    page.get_by_text("Keyboard shortcuts").click()
    expect(page.get_by_text("Next / previous item in the list")).to_be_visible()
    page.get_by_role("link", name="← Back to the inbox").click()
    expect(page).to_have_url(re.compile(r"/desk/inbox\?"))
    page.get_by_role("checkbox", name=f"Tick {desk['second']}").check()
    page.get_by_role("button", name="Set status").click()
    expect(page.locator(".flash").first).to_be_visible()


def test_a_pdf_attachment_is_previewed_as_page_pictures(
    page: Page, context: BrowserContext, desk: dict[str, str]
) -> None:
    log_in(page)
    page.goto(f"/desk/feedback/{desk['first']}")
    with context.expect_page() as opened:
        page.get_by_role("link", name="Preview declaration.pdf").click()
    preview = opened.value
    expect(preview.get_by_role("heading", level=1)).to_have_text("declaration.pdf")
    picture = preview.get_by_role("img", name="Page 1 of declaration.pdf")
    expect(picture).to_be_visible()
    width = picture.evaluate("img => img.complete ? img.naturalWidth : 0")
    assert width == 1000, "the page picture was drawn and loaded"
