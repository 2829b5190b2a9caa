"""The public pages in a real browser: the Mali profile, footnotes, the list, keyboard, phone."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from desk.profiles.models import SectionKind
from tests.e2e.conftest import SHARED_DATA, LiveServer

MALI_SOURCE = SHARED_DATA / "mali-cluster-munition-ban-policy-2011.txt"
MALI_PAGE = "/profiles/mali/cluster-munition-ban-policy"
PHONE = {"width": 375, "height": 700}

FILLER = "\n\n".join(
    f"Paragraph {n}: the convention prohibits the use, production, transfer and stockpiling of "
    "cluster munitions, and requires clearance of contaminated land and assistance to victims."
    for n in range(1, 16)
)


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
    return MALI_PAGE


@pytest.fixture(scope="module")
def cote_divoire(live_server: LiveServer) -> str:
    """A second listed profile, with an accented name (the filter folds accents)."""
    return live_server.publish_profile(
        "CI",
        "Cluster Munition Ban Policy",
        [("Commitment to the Convention on Cluster Munitions", "Côte d'Ivoire signed.")],
        last_updated_on=date(2012, 7, 3),
    )


@pytest.fixture(scope="module")
def footnoted(live_server: LiveServer) -> str:
    """A profile made with the models: footnotes in a summary field and in two sections.

    Labels belong to their section, so both sections use ``[^sig]`` for different notes; the
    first section cites its ``[^sig]`` twice. Reading order is heading, summary box, text.
    """
    return live_server.publish_profile(
        "LA",
        "Footnote Numbering",
        [
            (
                "Commitment to the Convention",
                f"{FILLER}\n\nLaos signed.[^sig] It ratified.[^rat] It said so again.[^sig]\n\n"
                f"{FILLER}\n\n[^sig]: Note on the signature.\n[^rat]: Note on the ratification.",
            ),
            (
                "Convention status",
                "State Party[^s]\n\n[^s]: Note on the status.",
                SectionKind.FIELD,
            ),
            (
                "Stockpiling",
                "No stockpile.[^sig] No transit.[^x]\n\n"
                f"{FILLER}\n\n[^sig]: Note on the stockpile.\n[^x]: Note on transit.",
            ),
        ],
        last_updated_on=date(2024, 3, 5),
    )


def assert_no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} scrolls sideways: scrollWidth/innerWidth {widths}"


def follow_reference(page: Page, reference: Locator) -> None:
    """Click a footnote reference and its note's back-link, checking where each one lands."""
    ref_id = reference.get_attribute("id")
    target = (reference.get_attribute("href") or "").removeprefix("#")
    assert ref_id and re.fullmatch(r"fn-\d+", target), (ref_id, target)
    note = page.locator(f"[id='{target}']")

    reference.click()
    expect(page).to_have_url(re.compile(f"#{target}$"))
    expect(note).to_be_in_viewport()

    note.locator(f"a.fn-back[href='#{ref_id}']").click()
    expect(page).to_have_url(re.compile(f"#{ref_id}$"))
    expect(page.locator(f"[id='{ref_id}']")).to_be_in_viewport()


# --------------------------------------------------------------------------- the Mali profile


def test_mali_profile_page(page: Page, mali: str) -> None:
    page.goto(mali)

    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(r"Mali\s+Cluster Munition Ban Policy")
    )
    expect(page.locator(".last-updated")).to_have_text("Last Updated: 16 August 2011")
    expect(page.locator(".last-updated time")).to_have_attribute("datetime", "2011-08-16")
    expect(page.locator("article .profile-section").locator("h2, h3, dt")).to_have_text(
        [
            "Commitment to the Convention on Cluster Munitions",
            "Convention on Cluster Munitions status",
            "Participation in Convention on Cluster Munitions meetings",
            "Key developments",
            "Use, production, transfer, and stockpiling",
        ]
    )
    expect(page.locator(".summary-box dd").first).to_have_text("State Party")
    expect(page.get_by_text("Mali’s initial Convention on Cluster Munitions")).to_be_visible()

    references = page.locator("article .profile-section .fn-ref a")
    expect(references).to_have_text([str(n) for n in range(1, 9)])
    expect(page.locator(".fn-missing")).to_have_count(0)
    notes = page.locator(".footnotes li")
    expect(notes).to_have_count(8)
    assert notes.evaluate_all("items => items.map(i => i.id)") == [f"fn-{n}" for n in range(1, 9)]
    expect(page.locator("#fn-1")).to_contain_text("Session on Victim Assistance, Geneva")
    expect(page.locator("#fn-3")).to_contain_text("Banning Cluster Munitions")
    expect(page.locator("#fn-8")).to_contain_text("Amadou Maiga")

    third = references.nth(2)
    expect(third).to_have_attribute("id", "fnref-3")
    follow_reference(page, third)


def test_mali_profile_fits_a_phone(new_context: Callable[..., BrowserContext], mali: str) -> None:
    page = new_context(viewport=PHONE).new_page()
    page.goto(mali)
    expect(page.locator(".last-updated")).to_be_visible()
    assert_no_horizontal_scroll(page)


def test_skip_link_is_first_and_visibly_focused(page: Page, mali: str) -> None:
    page.goto(mali)
    page.keyboard.press("Tab")

    skip = page.locator("a.skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_have_text("Skip to content")
    expect(skip).to_be_in_viewport()
    outline = skip.evaluate(
        "el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none" and outline[1] != "0px", f"no visible focus outline: {outline}"

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    expect(page.locator("main")).to_be_focused()


# --------------------------------------------------------------------------- the list


def test_profile_list_filters_as_you_type(page: Page, mali: str, cote_divoire: str) -> None:
    page.goto("/profiles/")
    items = page.locator("#profile-list li")
    mali_item = items.filter(has_text="Mali")
    cote_item = items.filter(has_text="Côte d'Ivoire")
    expect(mali_item).to_contain_text("Cluster Munition Ban Policy")
    expect(mali_item.locator(".updated")).to_have_text("Last Updated: 16 August 2011")
    expect(cote_item.locator(".updated")).to_have_text("Last Updated: 3 July 2012")
    listed = page.url

    box = page.get_by_label("Filter by country or topic")
    box.press_sequentially("mal")
    expect(mali_item).to_be_visible()
    expect(cote_item).to_be_hidden()
    for text in page.locator("#profile-list li:visible").all_inner_texts():
        assert "Mali" in text
    assert page.url == listed, "the filter reloaded the page instead of filtering in place"

    box.clear()
    box.press_sequentially("cote")
    expect(cote_item).to_be_visible()
    expect(mali_item).to_be_hidden()

    box.fill("no such country")
    expect(items.filter(visible=True)).to_have_count(0)
    expect(page.locator(".filter-empty")).to_be_visible()

    box.fill("")
    expect(mali_item).to_be_visible()
    expect(cote_item).to_be_visible()
    expect(page.locator(".filter-empty")).to_be_hidden()


def test_profile_list_filter_works_without_javascript(
    new_context: Callable[..., BrowserContext], mali: str, cote_divoire: str
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/profiles/")
    items = page.locator("#profile-list li")

    page.get_by_label("Filter by country or topic").fill("mali")
    page.get_by_role("button", name="Filter").click()

    expect(page).to_have_url(re.compile(r"\?q=mali$"))
    expect(items).to_have_count(1)
    expect(items).to_contain_text("Mali")
    expect(page.get_by_label("Filter by country or topic")).to_have_value("mali")

    page.get_by_label("Filter by country or topic").fill("cote")
    page.get_by_role("button", name="Filter").click()
    expect(items).to_have_count(1)
    expect(items).to_contain_text("Côte d'Ivoire")

    page.get_by_label("Filter by country or topic").fill("atlantis")
    page.get_by_role("button", name="Filter").click()
    assert parse_qs(urlsplit(page.url).query) == {"q": ["atlantis"]}
    expect(items).to_have_count(0)
    expect(page.get_by_text("No profile matches “atlantis”.")).to_be_visible()


def test_profile_list_fits_a_phone(
    new_context: Callable[..., BrowserContext], cote_divoire: str
) -> None:
    page = new_context(viewport=PHONE).new_page()
    page.goto("/profiles/")
    expect(page.locator("#profile-list li").first).to_be_visible()
    assert_no_horizontal_scroll(page)


# --------------------------------------------------------------------------- footnotes


def test_footnotes_are_numbered_across_sections(page: Page, footnoted: str) -> None:
    page.goto(footnoted)

    references = page.locator("article .profile-section .fn-ref a")
    expect(references).to_have_text(["1", "2", "3", "2", "4", "5"])
    assert references.evaluate_all("links => links.map(a => a.id)") == [
        "fnref-1",
        "fnref-2",
        "fnref-3",
        "fnref-2-2",
        "fnref-4",
        "fnref-5",
    ]
    notes = page.locator(".footnotes li")
    expect(notes).to_have_count(5)
    assert notes.evaluate_all("items => items.map(i => i.id)") == [f"fn-{n}" for n in range(1, 6)]
    for number, text in enumerate(
        [
            "Note on the status.",
            "Note on the signature.",
            "Note on the ratification.",
            "Note on the stockpile.",
            "Note on transit.",
        ],
        start=1,
    ):
        expect(page.locator(f"#fn-{number}")).to_contain_text(text)
    expect(page.locator("#fn-2 a.fn-back")).to_have_count(2)

    for index in range(references.count()):
        follow_reference(page, references.nth(index))
        # The notes sit far below the text, so a jump really scrolled the page.
        references.nth(index).click()
        expect(references.nth(index)).not_to_be_in_viewport()


def test_footnoted_profile_fits_a_phone(
    new_context: Callable[..., BrowserContext], footnoted: str
) -> None:
    page = new_context(viewport=PHONE).new_page()
    page.goto(footnoted)
    expect(page.locator(".footnotes")).to_be_visible()
    assert_no_horizontal_scroll(page)


def test_wide_content_does_not_widen_the_page_on_a_phone(
    new_context: Callable[..., BrowserContext], live_server: LiveServer
) -> None:
    path = live_server.publish_profile(
        "NE",
        "Wide Content",
        [
            (
                "Stockpiling",
                "| Type | Caliber | Quantity | Submunitions | Submunition type | Status |\n"
                "|---|---|---|---|---|---|\n"
                "| Projectile | 155mm | 12,345 | 1,086,360 | M42/M46 DPICM | Destroyed |",
            ),
            ("Contact", "Write to internationalhumanitarianlaw@foreignaffairs.example.org."),
        ],
    )
    page = new_context(viewport=PHONE).new_page()
    page.goto(path)
    expect(page.locator("table")).to_be_visible()
    assert_no_horizontal_scroll(page)
