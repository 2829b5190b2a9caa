"""Staff log in and out in a real browser, with an account made by ``desk create-user``."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer

EMAIL = "aminata@desk.test"
NAME = "Aminata Traoré"
PASSWORD = "a long and unguessable passphrase"
LOGIN_FAILED = "That email and password do not match an active account."


@pytest.fixture(scope="module")
def staff(live_server: LiveServer) -> str:
    live_server.create_user(EMAIL, password=PASSWORD, role="editor", countries=["ML"], name=NAME)
    return EMAIL


def log_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def test_desk_needs_login_and_login_lands_on_staff_home(page: Page, staff: str) -> None:
    page.goto("/desk/")
    url = urlsplit(page.url)
    assert url.path == "/login"
    assert parse_qs(url.query).get("next") == ["/desk/"]
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff log in")
    expect(page.get_by_text("Please log in to see that page.")).to_be_visible()

    log_in(page, staff, PASSWORD)

    expect(page).to_have_url(re.compile(r"/desk/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {NAME}")
    expect(page.get_by_text("You are signed in as")).to_contain_text("editor for Mali")


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "not the password"), ("nobody@desk.test", PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
def test_failed_login_shows_the_generic_message(
    page: Page, staff: str, email: str, password: str
) -> None:
    page.goto("/login")
    log_in(page, email, password)

    expect(page.locator(".flash-error")).to_have_text(LOGIN_FAILED)
    assert urlsplit(page.url).path == "/login"
    expect(page.get_by_label("Email", exact=True)).to_have_value(email)
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    page.goto("/desk/")
    assert urlsplit(page.url).path == "/login"


def test_logout(page: Page, staff: str) -> None:
    page.goto("/login")
    log_in(page, staff, PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {NAME}")

    page.get_by_role("button", name=f"Log out {NAME}").click()

    expect(page.get_by_text("You are logged out.")).to_be_visible()
    assert urlsplit(page.url).path == "/login"
    page.goto("/desk/")
    assert urlsplit(page.url).path == "/login"
    expect(page.get_by_role("heading", level=1)).to_have_text("Staff log in")
