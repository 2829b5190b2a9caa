"""A reader sends feedback on the real Mali profile in a real browser, in English and French."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import BrowserContext, Page, expect

from desk.core.time import utcnow
from desk.extensions import db
from desk.feedback.models import Feedback
from desk.notify.models import OutboxMessage
from tests.e2e.conftest import SHARED_DATA, LiveServer
from tests.feedback.test_form import minimal_pdf, tiny_png

MALI_SOURCE = SHARED_DATA / "mali-cluster-munition-ban-policy-2011.txt"
MALI_PAGE = "/profiles/mali/cluster-munition-ban-policy"
FORM = f"{MALI_PAGE}/feedback"
USE = "use-production-transfer-and-stockpiling"
PHONE = {"width": 375, "height": 700}
#: The form may be sent this many seconds after it is drawn without looking like a bot.
MIN_SECONDS = 1


@pytest.fixture(scope="module")
def mali(live_server: LiveServer) -> str:
    """The Monitor's real Mali profile, imported with ``desk import-profile``; its path."""
    if not MALI_SOURCE.is_file():
        pytest.fail(
            f"missing {MALI_SOURCE}: the shared data folder must sit beside the clone "
            "(<clone>/../shared/data), as it does on the desk machines and in CI",
            pytrace=False,
        )
    live_server.cli("import-profile", str(MALI_SOURCE))
    live_server.app.config.update(
        DESK_FORM_MIN_SECONDS=MIN_SECONDS, DESK_FEEDBACK_RATE_LIMIT="100 per hour"
    )
    return MALI_PAGE


@pytest.fixture
def attachments(tmp_path: Path) -> list[Path]:
    pdf = tmp_path / "ratification-decree.pdf"
    pdf.write_bytes(minimal_pdf())
    png = tmp_path / "photo.png"
    png.write_bytes(tiny_png())
    return [pdf, png]


def wait_like_a_person(page: Page) -> None:
    page.wait_for_timeout(MIN_SECONDS * 1000 + 200)


def stored_item(reference: str) -> dict[str, Any]:
    item = db.session.scalar(sa.select(Feedback).where(Feedback.reference == reference))
    assert item is not None, f"no item {reference}"
    acknowledgement = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.dedupe_key.contains(reference))
    )
    return {
        "message": item.message,
        "section": item.section.heading if item.section else None,
        "files": [(a.original_filename, a.content_type) for a in item.attachments],
        "events": [str(event.kind) for event in item.events],
        "language": item.language,
        "is_quarantined": item.is_quarantined,
        "acknowledgement": acknowledgement.subject if acknowledgement else None,
    }


def count_items() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Feedback))


def test_reader_suggests_a_correction_with_a_pdf_and_a_png(
    page: Page, mali: str, live_server: LiveServer, attachments: list[Path]
) -> None:
    page.goto(mali)
    section = page.locator(f"section#{USE}")
    section.get_by_role("link", name="Suggest a correction to this section").click()

    expect(page).to_have_url(re.compile(rf"{FORM}\?section={USE}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Send feedback on this profile")
    expect(page.get_by_label("Section", exact=True)).to_have_value(USE)
    message = "Mali’s stockpile statement was made in November 2010, not 2011."
    page.get_by_label("Your feedback", exact=True).fill(message)
    page.get_by_label("Your email address", exact=True).fill("awa@example.org")
    page.get_by_label("Files", exact=True).set_input_files(attachments)
    wait_like_a_person(page)
    page.get_by_role("button", name="Send feedback").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your feedback")
    reference = page.locator(".reference").inner_text()
    assert re.fullmatch(rf"ML-{utcnow().year}-\d{{5}}", reference), reference
    item = live_server.run(stored_item, reference)
    assert item["message"] == message
    assert item["section"] == "Use, production, transfer, and stockpiling"
    assert item["files"] == [
        ("ratification-decree.pdf", "application/pdf"),
        ("photo.png", "image/png"),
    ]
    assert "routed" in item["events"]
    assert item["language"] == "en"
    assert item["is_quarantined"] is False
    assert item["acknowledgement"] == f"We received your feedback [{reference}]"


def test_french_reader_gets_the_french_form(
    new_context: Callable[..., BrowserContext],
    mali: str,
    live_server: LiveServer,
    attachments: list[Path],
) -> None:
    page = new_context(locale="fr-FR").new_page()
    page.goto(mali)
    expect(
        page.get_by_role("link", name="Envoyer un commentaire sur ce profil").first
    ).to_be_visible()
    section = page.locator(f"section#{USE}")
    section.get_by_role("link", name="Proposer une correction à cette section").click()

    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Envoyer un commentaire sur ce profil"
    )
    expect(page.get_by_text("Il ne sera ni publié ni mis en ligne.")).to_be_visible()
    expect(page.get_by_label("Section", exact=True)).to_have_value(USE)
    message = "La déclaration sur les stocks date de novembre 2010."
    page.get_by_label("Votre commentaire", exact=True).fill(message)
    page.get_by_label("Votre adresse e-mail", exact=True).fill("awa@example.org")
    page.get_by_label("Fichiers", exact=True).set_input_files(attachments)
    wait_like_a_person(page)
    page.get_by_role("button", name="Envoyer le commentaire").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Merci pour votre commentaire")
    reference = page.locator(".reference").inner_text()
    assert re.fullmatch(rf"ML-{utcnow().year}-\d{{5}}", reference), reference
    item = live_server.run(stored_item, reference)
    assert item["message"] == message
    assert item["section"] == "Use, production, transfer, and stockpiling"
    assert [name for name, _ in item["files"]] == ["ratification-decree.pdf", "photo.png"]
    assert "routed" in item["events"]
    assert item["language"] == "fr"
    assert item["acknowledgement"] == f"Nous avons bien reçu votre commentaire [{reference}]"


def test_language_switch_on_the_form(page: Page, mali: str) -> None:
    page.goto(f"{FORM}?section={USE}")
    page.get_by_role("link", name="Français").click()
    expect(page.get_by_label("Votre commentaire", exact=True)).to_be_visible()
    expect(page.get_by_label("Section", exact=True)).to_have_value(USE)
    page.get_by_role("link", name="English").click()
    expect(page.get_by_label("Your feedback", exact=True)).to_be_visible()


def test_too_large_file_is_refused_in_the_browser_and_the_message_stays(
    page: Page,
    mali: str,
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(live_server.app.config, "DESK_UPLOAD_MAX_FILE_BYTES", 100 * 1024)
    big = tmp_path / "scan.pdf"
    big.write_bytes(minimal_pdf() + b"%" * (200 * 1024))
    before = live_server.run(count_items)

    page.goto(FORM)
    message = "Please see the attached scan of the decree."
    page.get_by_label("Your feedback", exact=True).fill(message)
    page.get_by_label("Files", exact=True).set_input_files(big)
    error = page.locator("#attachments-browser-error")
    expect(error).to_have_text("“scan.pdf” is too large: each file can be up to 100 KB.")
    page.get_by_role("button", name="Send feedback").click()

    expect(error).to_be_visible()
    expect(page.get_by_label("Files", exact=True)).to_be_focused()
    expect(page.get_by_label("Your feedback", exact=True)).to_have_value(message)
    assert page.url.endswith(FORM)
    assert live_server.run(count_items) == before


def test_too_large_file_without_javascript_gets_the_form_back_with_the_message(
    new_context: Callable[..., BrowserContext],
    mali: str,
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(live_server.app.config, "DESK_UPLOAD_MAX_FILE_BYTES", 100 * 1024)
    big = tmp_path / "scan.pdf"
    big.write_bytes(minimal_pdf() + b"%" * (200 * 1024))
    page = new_context(java_script_enabled=False).new_page()
    page.goto(FORM)
    message = "Please see the attached scan of the decree."
    page.get_by_label("Your feedback", exact=True).fill(message)
    page.get_by_label("Files", exact=True).set_input_files(big)
    page.get_by_role("button", name="Send feedback").click()

    expect(page.locator(".error-summary")).to_contain_text("“scan.pdf” is too large")
    expect(page.get_by_text("Your files were not kept: please choose them again")).to_be_visible()
    expect(page.get_by_label("Your feedback", exact=True)).to_have_value(message)


def test_draft_survives_a_reload_and_is_forgotten_once_sent(page: Page, mali: str) -> None:
    page.goto(FORM)
    draft = "Half-written: the intersessional meetings were in June 2011."
    page.get_by_label("Your feedback", exact=True).fill(draft)
    page.reload()
    expect(page.get_by_label("Your feedback", exact=True)).to_have_value(draft)
    expect(page.get_by_role("status")).to_have_text(
        "We restored the text you had typed in this tab but not sent."
    )

    wait_like_a_person(page)
    page.get_by_role("button", name="Send feedback").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your feedback")
    page.goto(FORM)
    expect(page.get_by_label("Your feedback", exact=True)).to_have_value("")


def test_form_fits_a_phone(new_context: Callable[..., BrowserContext], mali: str) -> None:
    page = new_context(viewport=PHONE, locale="fr-FR").new_page()
    page.goto(FORM)
    expect(page.get_by_role("button", name="Envoyer le commentaire")).to_be_visible()
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the form scrolls sideways on a phone: {widths}"
    expect(page.locator(".hp-field input")).not_to_be_in_viewport()
