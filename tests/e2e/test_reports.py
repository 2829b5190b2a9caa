"""A manager reads the turnaround report in a real browser and downloads its CSV."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from desk.scale import PASSWORD, STAFF_DOMAIN
from tests.e2e.conftest import LiveServer

MANAGER = f"manager1@{STAFF_DOMAIN}"


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer) -> None:
    """A synthetic desk of 400 items over three countries, Mali first (and busiest)."""
    live_server.cli("seed-scale", "--feedback", "400", "--countries", "3", "--months", "3")


def log_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/desk/$"))


def table_cells(page: Page, table_id: str) -> list[list[str]]:
    rows = page.locator(f"#{table_id} tr")
    return [
        [" ".join(text.split()) for text in rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_manager_filters_turnaround_to_mali_and_downloads_the_same_numbers(
    page: Page, seeded: None, tmp_path: Path
) -> None:
    log_in(page, MANAGER)
    page.get_by_role("link", name="Reports").first.click()
    page.get_by_role("link", name="Turnaround").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Turnaround")

    page.get_by_label("Country", exact=True).select_option(label="Mali")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"country=ML"))
    expect(page.locator(".report-scope")).to_contain_text("Country: Mali")

    chart = page.get_by_role("img", name=re.compile("Time to first response: median"))
    expect(chart).to_be_visible()
    expect(chart.locator("path").first).to_be_attached()
    table = page.locator("#table-overall")
    expect(table).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(7)
    on_page = table_cells(page, "table-overall")
    assert on_page[1][0] == "Time to first response"
    assert int(on_page[1][3]) > 0  # Mali has items in the last 90 days

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download “All items” as CSV").click()
    download = download_info.value
    assert re.fullmatch(r"turnaround-overall-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with path.open(newline="", encoding="utf-8") as file:
        rows = [row for row in csv.reader(file) if row]
    header = [row for row in rows if row[0].startswith("#")]
    exported = [row for row in rows if not row[0].startswith("#")]
    assert ["# Country", "Mali"] in header
    assert any(row[0] == "# Percentiles" for row in header)
    # Same header and the same numbers, cell for cell (the page adds a column of row links).
    assert exported == [row[:-1] for row in on_page]
