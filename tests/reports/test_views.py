"""The report pages and their CSV: access by role and country, figures, charts and exports."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

import pytest

from tests.reports.conftest import NOW

RANGE = "from=2026-01-01&to=2026-03-31"
PAGES = [
    "/desk/reports/",
    f"/desk/reports/turnaround?{RANGE}",
    f"/desk/reports/turnaround?{RANGE}&group=month",
    f"/desk/reports/turnaround?{RANGE}&format=csv&table=overall",
    f"/desk/reports/turnaround/items?{RANGE}&metric=first_response",
    "/desk/reports/backlog",
    "/desk/reports/backlog?format=csv&table=buckets-country",
    "/desk/reports/backlog?format=csv&table=overdue-tasks",
    f"/desk/reports/outcomes?{RANGE}",
    f"/desk/reports/outcomes?{RANGE}&format=csv&table=by-country",
]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr("desk.reports.views.utcnow", lambda: NOW)


class Tables(HTMLParser):
    """The text of every cell of every table on a page, by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "caption":
            self._in_caption = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data):
        if self._cell is not None and not self._in_caption:
            self._cell.append(data)


def page_tables(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def csv_rows(body: str) -> tuple[list[list[str]], list[list[str]]]:
    """The ``#`` header lines and the table (column names first) of an export."""
    rows = list(csv.reader(io.StringIO(body)))
    header = [row for row in rows if row and row[0].startswith("#")]
    table = [row for row in rows if row and not row[0].startswith("#")]
    return header, table


@pytest.mark.parametrize("path", PAGES)
def test_reports_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["ml_editor", "manager", "admin"])
@pytest.mark.parametrize("path", PAGES)
def test_every_report_opens_for_every_staff_role(client, auth, history, role, path):
    auth.login(getattr(history, role).email)
    response = client.get(path)
    assert response.status_code == 200
    if "format=csv" in path or "/items" in path:
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    "query",
    ["country=NE", "profile={ne_profile}", "section={ne_section}", "editor={ne_editor}"],
)
@pytest.mark.parametrize(
    "path",
    [
        "/desk/reports/turnaround",
        "/desk/reports/turnaround/items?metric=first_response",
        "/desk/reports/backlog",
        "/desk/reports/outcomes",
    ],
)
def test_an_editor_asking_for_another_country_gets_a_404(client, auth, history, query, path):
    auth.login(history.ml_editor.email)
    query = query.format(
        ne_profile=history.ne_profile.id,
        ne_section=history.sections["s3"].id,
        ne_editor=history.ne_editor.id,
    )
    separator = "&" if "?" in path else "?"
    assert client.get(f"{path}{separator}{query}").status_code == 404


def test_an_editor_sees_no_figure_of_another_country(client, auth, history):
    auth.login(history.ml_editor.email)
    for path in PAGES:
        body = client.get(path).get_data(as_text=True)
        assert "Niger" not in body, path
        assert "Unrouted" not in body, path
        assert history.items["N1"].reference not in body, path
    overall = page_tables(client.get(f"/desk/reports/turnaround?{RANGE}").get_data(as_text=True))
    first_response = overall["table-overall"][1]
    assert first_response[:4] == ["Time to first response", "hours", "3", "9"]


def test_a_manager_sees_every_country_and_the_unrouted(client, auth, history):
    auth.login(history.manager.email)
    tables = page_tables(client.get(f"/desk/reports/turnaround?{RANGE}").get_data(as_text=True))
    by_country = tables["table-by-first_response"]
    assert [row[0] for row in by_country[1:]] == ["Mali", "Niger", "Unrouted"]
    # Items, pending, median, p90, mean (hours), within target (%): see test_metrics.py.
    assert by_country[1][1:7] == ["9", "2", "1.5", "52.8", "18.4", "75.0"]


def test_turnaround_table_shows_the_hand_checked_figures(client, auth, history):
    auth.login(history.manager.email)
    html = client.get(f"/desk/reports/turnaround?{RANGE}").get_data(as_text=True)
    rows = {row[0]: row[1:9] for row in page_tables(html)["table-overall"][1:]}
    assert rows == {
        "Time to first response": ["hours", "3", "12", "4", "3.8", "45.6", "17.6", "63.6"],
        "Time to resolution": ["days", "30", "11", "6", "10.0", "37.2", "16.8", "57.1"],
        "Time to publication": ["days", "", "2", "0", "20.0", "28.0", "20.0", ""],
        "Task cycle time": ["days", "", "4", "2", "17.0", "25.8", "17.0", ""],
        "Review wait": ["days", "", "4", "1", "2.0", "18.8", "8.7", ""],
        "Backlog age": ["days", "", "5", "0", "8.0", "42.8", "19.5", ""],
    }
    assert "linear interpolation between the closest ranks" in html


def test_csv_export_has_the_definitions_the_filters_and_the_tables_numbers(client, auth, history):
    auth.login(history.manager.email)
    html = client.get(f"/desk/reports/turnaround?{RANGE}&country=ML").get_data(as_text=True)
    on_page = page_tables(html)["table-overall"]
    response = client.get(f"/desk/reports/turnaround?{RANGE}&country=ML&format=csv&table=overall")
    header, table = csv_rows(response.get_data(as_text=True))
    names = {row[0]: row[1] if len(row) > 1 else "" for row in header}
    assert names["# Date range"] == "2026-01-01 to 2026-03-31"
    assert names["# Country"] == "Mali"
    assert "percentile_cont" in names["# Percentiles"]
    assert names["# Time to resolution"].startswith("From received_at to the item's final close")
    # The page has one more column: the link to the rows.
    assert table == [row[:-1] for row in on_page]


@pytest.mark.parametrize(
    ("page", "table"),
    [
        ("turnaround", "by-resolution"),
        ("turnaround", "trend-first_response"),
        ("backlog", "buckets-editor"),
        ("outcomes", "by-month"),
        ("outcomes", "no-action-reasons"),
        ("outcomes", "publication"),
    ],
)
def test_every_table_exports_the_numbers_it_shows(client, auth, history, page, table):
    auth.login(history.manager.email)
    url = f"/desk/reports/{page}?{RANGE}"
    on_page = page_tables(client.get(url).get_data(as_text=True))[f"table-{table}"]
    _, exported = csv_rows(client.get(f"{url}&format=csv&table={table}").get_data(as_text=True))
    width = len(exported[0])
    assert exported == [row[:width] for row in on_page]


def test_rows_behind_a_figure_are_exported_item_by_item(client, auth, history):
    auth.login(history.manager.email)
    url = f"/desk/reports/turnaround/items?{RANGE}&metric=first_response&country=ML"
    _, table = csv_rows(client.get(url).get_data(as_text=True))
    assert table[0][:3] == ["Id", "Reference", "Country"]
    references = {history.items[name].reference for name in ("F1", "F2", "F3", "F4", "F5")}
    assert references <= {row[1] for row in table[1:]}
    assert len(table) == 1 + 9
    _, pending = csv_rows(client.get(f"{url}&pending=1").get_data(as_text=True))
    assert sorted(row[1] for row in pending[1:]) == sorted(
        history.items[name].reference for name in ("F4", "F8")
    )
    f1 = next(row for row in table if row[1] == history.items["F1"].reference)
    assert f1[5:] == ["2026-01-05T10:00:00Z", "2026-01-05T10:00:40Z", "0.0"]


def test_charts_are_accessible_svg_without_inline_style_or_script(client, auth, history):
    auth.login(history.manager.email)
    for page in ("turnaround", "backlog", "outcomes"):
        html = client.get(f"/desk/reports/{page}?{RANGE}").get_data(as_text=True)
        charts = re.findall(r"<svg[^>]*>.*?</svg>", html, re.S)
        assert charts, page
        for chart in charts:
            assert 'role="img"' in chart
            assert re.search(r"<title id=\"[^\"]+\">[^<]+</title><desc", chart)
            assert "style=" not in chart
        assert "<script>" not in html
        assert "reports.css" in html


def test_backlog_page_lists_overdue_tasks_waiting_revisions_and_aging_profiles(
    client, auth, history
):
    auth.login(history.manager.email)
    tables = page_tables(client.get("/desk/reports/backlog?months=6").get_data(as_text=True))
    assert tables["table-buckets"][1:] == [
        ["0–2 days", "1"],
        ["3–7 days", "1"],
        ["8–30 days", "1"],
        ["over 30 days", "3"],
        ["All open items", "6"],
    ]
    assert tables["table-overdue-tasks"][1][0] == "Review Policy (ML)"
    assert tables["table-overdue-tasks"][1][-1] == "6"
    assert tables["table-waiting-revisions"][1][-1] == "6.5"
    assert [row[:2] for row in tables["table-aging-profiles"][1:]] == [
        ["Mali", "Mine Ban Policy"],
        ["Niger", "Mine Ban Policy"],
    ]


def test_figure_links_lead_to_the_inbox_and_to_the_rows(client, auth, history):
    auth.login(history.manager.email)
    html = client.get(f"/desk/reports/turnaround?{RANGE}&group=month").get_data(as_text=True)
    assert "/desk/inbox?status=any&amp;received_from=2026-02-01&amp;received_to=2026-02-28" in html
    assert "/desk/reports/turnaround/items?" in html
    backlog = client.get("/desk/reports/backlog").get_data(as_text=True)
    assert "/desk/inbox?status=open&amp;age=31%2B" in backlog


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/desk/reports/turnaround?from=yesterday", 400),
        ("/desk/reports/turnaround?from=2026-03-01&to=2026-01-01", 400),
        ("/desk/reports/turnaround?group=planet", 400),
        ("/desk/reports/turnaround?channel=pigeon", 400),
        ("/desk/reports/turnaround?country=ZZ", 404),
        ("/desk/reports/turnaround?format=csv&table=nothing", 404),
        ("/desk/reports/turnaround/items?metric=nothing", 404),
        ("/desk/reports/backlog?months=0", 400),
    ],
)
def test_bad_parameters_are_refused(client, auth, history, path, status):
    auth.login(history.manager.email)
    assert client.get(path).status_code == status


def test_report_command_writes_the_same_csv(app, history, tmp_path, monkeypatch):
    monkeypatch.setattr("desk.reports.cli.utcnow", lambda: NOW)
    target = tmp_path / "turnaround.csv"
    result = app.test_cli_runner().invoke(
        args=[
            "report",
            "turnaround",
            "--from",
            "2026-01-01",
            "--to",
            "2026-03-31",
            "--country",
            "ML",
            "--csv",
            str(target),
        ]
    )
    assert result.exit_code == 0, result.output
    header, table = csv_rows(target.read_text())
    assert ["# Country", "Mali"] in header
    assert table[1][:9] == [
        "Time to first response",
        "hours",
        "3",
        "9",
        "2",
        "1.5",
        "52.8",
        "18.4",
        "75.0",
    ]
    bad = app.test_cli_runner().invoke(
        args=["report", "turnaround", "--country", "ZZ", "--csv", str(target)]
    )
    assert bad.exit_code != 0
    assert "unknown country" in bad.output
