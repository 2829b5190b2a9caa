"""Subscribing in a real browser: the Mali profile, the link in the email that arrived, the notice.

The live server sends its mail over SMTP to an aiosmtpd server this module starts; the outbox is
drained by ``deliver_due()`` in the server's app, as the job would. The test reads each link
from the email as it arrived and opens it in the browser, as a reader would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from playwright.sync_api import Page, expect

from desk.accounts.operations import find_user_by_email
from desk.core.time import desk_today, format_day
from desk.extensions import mail
from desk.notify.delivery import deliver_due
from desk.profiles.models import UpdateType
from desk.profiles.queries import find_profile
from desk.reviews.operations import (
    approve_revision,
    save_draft,
    start_section_draft,
    submit_revision,
)
from tests.e2e.conftest import SHARED_DATA, LiveServer
from tests.smtp import SMTPSink

MALI_SOURCE = SHARED_DATA / "mali-cluster-munition-ban-policy-2011.txt"
MALI_PAGE = "/profiles/mali/cluster-munition-ban-policy"
READER = "reader@example.org"
STOCKPILING = "use-production-transfer-and-stockpiling"
URL = re.compile(r"https?://[^\s<>\"]+")


@pytest.fixture(scope="module")
def sink() -> Iterator[SMTPSink]:
    server = SMTPSink()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mailing_server(live_server: LiveServer, sink: SMTPSink) -> LiveServer:
    """The live server, sending its mail to the sink over SMTP."""
    live_server.app.config.update(
        DESK_MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=sink.port,
        DESK_MAIL_TIMEOUT_SECONDS=5,
    )
    mail.init_app(live_server.app)
    return live_server


@pytest.fixture(scope="module")
def mali(mailing_server: LiveServer) -> str:
    if not MALI_SOURCE.is_file():
        pytest.fail(f"missing {MALI_SOURCE}: the shared data folder is required", pytrace=False)
    mailing_server.cli("import-profile", str(MALI_SOURCE))
    mailing_server.create_user("editor@desk.test", countries=("ML",), name="Edith Editor")
    mailing_server.create_user("manager@desk.test", role="manager", name="Mo Manager")
    return MALI_PAGE


def deliver(server: LiveServer) -> int:
    return len(server.run(lambda: deliver_due().sent))


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return body.get_content()


def link_in(message: EmailMessage, containing: str) -> str:
    found = [url for url in URL.findall(text_of(message)) if containing in url]
    assert found, f"no link with {containing!r} in:\n{text_of(message)}"
    return found[0]


def approve_a_major_revision(change_note: str, paragraph: str) -> str:
    """An editor revises the stockpiling section, a manager approves; returns its anchor."""
    profile = find_profile("mali", "cluster-munition-ban-policy")
    assert profile is not None
    (section,) = [s for s in profile.sections if s.anchor == STOCKPILING]
    editor = find_user_by_email("editor@desk.test")
    manager = find_user_by_email("manager@desk.test")
    revision = start_section_draft(section, editor)
    save_draft(
        revision,
        editor,
        heading=section.heading,
        body=f"{section.body}\n\n{paragraph}",
        change_note=change_note,
        update_type=UpdateType.MAJOR,
    )
    submit_revision(revision, editor)
    approval = approve_revision(revision, manager)
    assert approval.update is not None
    return section.anchor


def test_subscribe_confirm_from_the_email_and_hear_of_the_approval(
    page: Page, mali: str, mailing_server: LiveServer, sink: SMTPSink
) -> None:
    page.goto(mali)
    page.get_by_role("link", name="Email me when this profile is updated").click()
    expect(page).to_have_url(f"{mali}/subscribe")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Email me when this profile is updated"
    )
    page.get_by_label("Your email address").fill(READER)
    page.get_by_label("As soon as it is updated").check()
    page.get_by_label("English").check()
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.locator("main")).to_contain_text(READER)

    assert deliver(mailing_server) >= 1
    (confirmation,) = sink.to(READER)
    assert confirmation["Subject"] == "Please confirm your subscription"
    page.goto(link_in(confirmation, "/subscriptions/confirm/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your subscription")
    expect(page.locator("main")).to_contain_text("Mali: Cluster Munition Ban Policy")
    page.get_by_role("button", name="Confirm my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your subscriptions")
    expect(page.locator(".flash-success")).to_contain_text("your subscription is confirmed")
    expect(page.locator("main")).to_contain_text("Mali: Cluster Munition Ban Policy")

    anchor = mailing_server.run(
        approve_a_major_revision,
        "Added the 2026 stockpile figures.",
        "In 2026 Mali reported that it holds no stockpile.",
    )
    deliver(mailing_server)
    notices = [m for m in sink.to(READER) if "was updated" in m["Subject"]]
    assert len(notices) == 1, [m["Subject"] for m in sink.to(READER)]
    (notice,) = notices
    assert notice["Subject"] == "Mali: Cluster Munition Ban Policy was updated"
    assert notice["Message-ID"]
    assert notice["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    today = mailing_server.run(lambda: format_day(desk_today()))
    assert f"Last Updated date: {today}" in text_of(notice)
    assert "Added the 2026 stockpile figures." in text_of(notice)

    page.goto(link_in(notice, f"#{anchor}"))
    expect(page.locator(".last-updated")).to_have_text(f"Last Updated: {today}")
    expect(page.locator(f"[id='{anchor}']")).to_contain_text("holds no stockpile")
    expect(page.locator(".what-changed")).to_contain_text("Added the 2026 stockpile figures.")

    # Nobody is told twice: running delivery again sends nothing new.
    deliver(mailing_server)
    assert len([m for m in sink.to(READER) if "was updated" in m["Subject"]]) == 1

    # The unsubscribe link of the email, opened in the browser, asks before it acts.
    page.goto(notice["List-Unsubscribe"].strip().strip("<>"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")


def test_a_french_reader_subscribes_in_french(
    page: Page, mali: str, mailing_server: LiveServer, sink: SMTPSink
) -> None:
    page.goto(f"{mali}/subscribe?lang=fr")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "M’avertir par e-mail quand ce profil est mis à jour"
    )
    page.get_by_label("Votre adresse e-mail").fill("lecteur@example.org")
    page.get_by_label("Au plus une fois par jour").check()
    page.get_by_role("button", name="S’abonner").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Consultez vos e-mails")
    deliver(mailing_server)
    (confirmation,) = sink.to("lecteur@example.org")
    assert confirmation["Subject"] == "Veuillez confirmer votre abonnement"
    page.goto(link_in(confirmation, "/subscriptions/confirm/"))
    page.get_by_role("button", name="Confirmer mon abonnement").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Vos abonnements")
    expect(page.get_by_label("Fréquence")).to_have_value("daily")
