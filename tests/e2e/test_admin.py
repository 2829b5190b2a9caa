"""An admin invites an editor in a real browser; the editor follows the emailed link and starts."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import BrowserContext, Page, expect

from desk.extensions import db
from desk.notify.models import OutboxMessage
from tests.e2e.conftest import STAFF_PASSWORD, LiveServer

ADMIN = "fatou@desk.test"
EDITOR = "awa@desk.test"
EDITOR_PASSWORD = "a passphrase Awa chose herself"
LINK = re.compile(r"https?://\S+/desk/invitation/\S+")


def log_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def invitation_link(live_server: LiveServer, email: str) -> str:
    """The link in the invitation email, read from the outbox table as a mail reader would."""

    def read() -> str:
        text = db.session.scalars(
            sa.select(OutboxMessage.text).where(
                OutboxMessage.kind == "account.invitation", OutboxMessage.recipient == email
            )
        ).one()
        found = LINK.search(text)
        assert found, text
        return found.group(0)

    return live_server.run(read)


def test_an_invited_editor_sets_a_password_logs_in_and_sees_the_inbox(
    live_server: LiveServer, page: Page, new_context
) -> None:
    live_server.create_user(ADMIN, role="admin", countries=(), name="Fatou Diallo")
    log_in(page, ADMIN, STAFF_PASSWORD)
    page.get_by_role("link", name="Admin", exact=True).click()
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Users").click()
    page.get_by_label("Name").fill("Awa Keita")
    page.get_by_label("Email", exact=True).fill(EDITOR)
    page.get_by_label("Role").select_option("editor")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.locator(".flash-success")).to_contain_text("Invited Awa Keita")
    expect(page.get_by_role("heading", level=1)).to_have_text("Awa Keita")
    expect(page.locator(".facts")).to_contain_text("invited")

    page.get_by_role("link", name="Countries").click()
    page.get_by_label("Country").select_option("ML")
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Mali")
    page.get_by_label("Editor").select_option(label=f"Awa Keita <{EDITOR}>")
    page.get_by_role("button", name="Add the editor").click()
    expect(page.locator(".flash-success")).to_have_text("Awa Keita now works on Mali.")

    link = invitation_link(live_server, EDITOR)
    assert link.startswith(live_server.url)
    editor: BrowserContext = new_context()
    awa = editor.new_page()
    awa.goto(link)
    expect(awa.get_by_role("heading", level=1)).to_have_text("Welcome, Awa Keita")
    awa.get_by_label("New password").fill(EDITOR_PASSWORD)
    awa.get_by_label("The same password again").fill(EDITOR_PASSWORD)
    awa.get_by_role("button", name="Set my password").click()
    expect(awa.locator(".flash-success")).to_have_text("Your password is set. Log in with it now.")

    awa.get_by_label("Email", exact=True).fill(EDITOR)
    awa.get_by_label("Password", exact=True).fill(EDITOR_PASSWORD)
    awa.get_by_role("button", name="Log in").click()
    expect(awa.get_by_role("heading", level=1)).to_have_text("Hello, Awa Keita")
    expect(awa.get_by_text("You are signed in as")).to_contain_text("editor for Mali")
    awa.get_by_role("link", name="Inbox", exact=True).click()
    expect(awa.get_by_role("heading", level=1)).to_have_text("My countries")
    expect(awa.get_by_role("link", name="Admin", exact=True)).to_have_count(0)

    awa.goto(link)  # the link worked once
    expect(awa.get_by_role("heading", level=1)).to_have_text("This link has already been used")
