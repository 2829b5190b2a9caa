"""Who may reach what: every staff route and file × every kind of user.

The cast (tests/inbox/conftest.py): an editor of Mali, an editor of France ("other"), Mali's
lead editor, a manager and an admin, and an anonymous visitor. The item is a Mali item with a
picture attached; another item waits unrouted. Another country's item is a 404 — the same
answer as a reference that does not exist — and its page, files and actions give nothing away.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import g
from PIL import Image

from desk.extensions import db
from desk.feedback.models import Feedback, FeedbackStatus
from tests.inbox.conftest import PDF, csrf_token, log_in, png_bytes

ROLES = ("anonymous", "editor", "other", "lead", "manager", "admin")
MALI_MESSAGE = "The stockpile figure in Mali's profile is out of date."


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    #: Expected status per role; a role left out gets ``default``.
    expected: dict[str, int]
    data: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def mali_only(ok: int, **overrides: int) -> dict[str, int]:
    """Staff who may see the Mali item get ``ok``; the editor of France a 404."""
    return {"editor": ok, "other": 404, "lead": ok, "manager": ok, "admin": ok, **overrides}


EVERY_STAFF = {"editor": 200, "other": 200, "lead": 200, "manager": 200, "admin": 200}
ITEM = "/desk/feedback/{mali}"
ROUTES = [
    Route("GET", "/desk/", EVERY_STAFF),
    Route("GET", "/desk/inbox", EVERY_STAFF),
    Route("GET", "/desk/inbox?view=all&status=any&q=stockpile", EVERY_STAFF),
    Route("GET", "/desk/quarantine", EVERY_STAFF),
    Route("GET", ITEM, mali_only(200)),
    Route("GET", ITEM.lower(), mali_only(200)),
    Route("GET", ITEM + "/files/{picture}", mali_only(200)),
    Route("GET", ITEM + "/files/{picture}/preview", mali_only(200)),
    Route("GET", ITEM + "/files/{document}", mali_only(200)),
    Route("GET", ITEM + "/files/{document}/preview", mali_only(200)),
    Route("GET", ITEM + "/files/{document}/pages/1.png", mali_only(200)),
    Route("GET", "/desk/feedback/{unrouted}", mali_only(200, editor=404, lead=404)),
    Route("GET", "/desk/feedback/ML-1999-99999", mali_only(404, manager=404, admin=404)),
    Route("GET", "/desk/audit", mali_only(403, other=403, admin=200)),
    Route("POST", ITEM + "/assign", mali_only(302), (("assign-assignee", "me"),)),
    Route("POST", ITEM + "/status", mali_only(302), (("status-status", "triaged"),)),
    Route("POST", ITEM + "/note", mali_only(302), (("note-text", "Checked the figures."),)),
    Route(
        "POST",
        ITEM + "/reply",
        mali_only(302),
        (("reply-subject", "Thank you"), ("reply-text", "We are checking it.")),
    ),
    Route("POST", ITEM + "/close", mali_only(302), (("close-reason", "Already correct."),)),
    Route("POST", ITEM + "/reopen", mali_only(302)),
    Route("POST", ITEM + "/duplicate", mali_only(302), (("duplicate-original", "{second}"),)),
    Route("POST", ITEM + "/spam", mali_only(302)),
    Route("POST", ITEM + "/release", mali_only(302)),
    Route(
        "POST", ITEM + "/route", mali_only(302, editor=403, lead=403), (("route-country", "ML"),)
    ),
    Route(
        "POST",
        "/desk/feedback/{unrouted}/route",
        mali_only(302, editor=404, lead=404),
        (("route-country", "FR"),),
    ),
    Route("POST", "/desk/inbox/bulk", mali_only(302), (("ids", "{mali_id}"), ("action", "spam"))),
    Route("POST", "/desk/inbox/views", dict.fromkeys(EVERY_STAFF, 302), (("name", "Mine"),)),
    Route("POST", "/desk/quarantine/{held_id}/release", mali_only(302)),
]


@pytest.fixture
def items(staff, create_feedback) -> dict[str, str]:
    """The Mali item (a picture and a PDF attached), a second Mali item, an unrouted and a
    held one; their references and ids, ready to put in a path."""
    mali = create_feedback(
        "ML",
        message=MALI_MESSAGE,
        submitter_email="amadou@example.org",
        files=(("stockpile.png", png_bytes()), ("report.pdf", PDF)),
    )
    second = create_feedback("ML", message="The same stockpile figure again.")
    unrouted = create_feedback(None, message="Which country is this about?")
    held = create_feedback("ML", message="Cheap pills", spam_signs=("honeypot",))
    picture, document = mali.attachments
    return {
        "mali": mali.reference,
        "mali_id": str(mali.id),
        "second": second.reference,
        "unrouted": unrouted.reference,
        "held_id": str(held.id),
        "picture": str(picture.id),
        "document": str(document.id),
    }


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_access_matrix(app, staff, items, route: Route) -> None:
    """Each role, in a browser session of its own, gets the expected status and no more."""
    statuses = {}
    for role in ROLES:
        # Requests share the test's app context, so flask.g too; each role is its own browser.
        g.pop("csrf_token", None)
        client = app.test_client()
        user = staff.user(role)
        if user is not None:
            log_in(client, user)
        path = route.path.format(**items)
        if route.method == "GET":
            response = client.get(path)
        else:
            data = {name: value.format(**items) for name, value in route.data}
            response = client.post(path, data={"csrf_token": csrf_token(client), **data})
        statuses[role] = response.status_code
        if role == "anonymous":
            assert response.headers["Location"].startswith("/login"), role
        if response.status_code in (403, 404):
            body = response.get_data(as_text=True)
            for secret in (items["mali"], MALI_MESSAGE, "amadou@example.org"):
                assert secret not in body, (role, secret)
    assert statuses == {"anonymous": 302, **route.expected}


def test_another_countrys_editor_changes_nothing(client, login, items) -> None:
    """Every action the editor of France tries on the Mali item is refused before it acts."""
    login("other")
    token = csrf_token(client)
    for route in ROUTES:
        if route.method == "POST" and route.expected.get("other") == 404:
            data = {name: value.format(**items) for name, value in route.data}
            client.post(route.path.format(**items), data={"csrf_token": token, **data})
    db.session.expire_all()
    mali = db.session.scalar(sa.select(Feedback).where(Feedback.reference == items["mali"]))
    assert mali.status == FeedbackStatus.NEW
    assert [event.kind for event in mali.events] == ["received", "routed", "assigned"]


@pytest.mark.parametrize("role", ["editor", "other", "lead", "manager", "admin"])
def test_lists_and_search_show_only_what_the_user_may_see(client, login, items, role) -> None:
    login(role)
    may_see = role != "other"
    for view in ("countries", "mine", "unassigned", "all", "unrouted", "quarantine"):
        for query in ("", "&q=stockpile", "&q=amadou", "&status=any"):
            response = client.get(f"/desk/inbox?view={view}{query}", follow_redirects=True)
            assert response.status_code == 200
            body = response.get_data(as_text=True)
            if not may_see:
                assert items["mali"] not in body, (view, query)
                assert items["second"] not in body, (view, query)
    page = client.get("/desk/inbox?q=stockpile&status=any").get_data(as_text=True)
    assert (items["mali"] in page) == may_see
    assert (
        items["unrouted"] in client.get("/desk/inbox?view=unrouted").get_data(as_text=True)
    ) == (role in ("manager", "admin"))


def test_attachment_downloads_cannot_be_sniffed_into_pages(client, login, items) -> None:
    login("editor")
    download = client.get(f"/desk/feedback/{items['mali']}/files/{items['document']}")
    assert download.status_code == 200
    assert download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "report.pdf" in download.headers["Content-Disposition"]
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Security-Policy"] == "sandbox"
    preview = client.get(f"/desk/feedback/{items['mali']}/files/{items['picture']}/preview")
    assert preview.status_code == 200
    assert preview.headers["Content-Type"] == "image/png"
    assert preview.headers["Content-Disposition"].startswith("inline;")
    assert preview.headers["Content-Security-Policy"] == "sandbox"
    assert preview.headers["X-Content-Type-Options"] == "nosniff"


def test_a_file_of_another_item_is_not_served_under_this_items_reference(
    client, login, items
) -> None:
    login("editor")
    response = client.get(f"/desk/feedback/{items['second']}/files/{items['picture']}")
    assert response.status_code == 404


def test_a_pdf_is_previewed_as_pictures_of_its_pages_never_as_the_file(
    client, login, items
) -> None:
    login("editor")
    base = f"/desk/feedback/{items['mali']}/files/{items['document']}"
    page = client.get(f"{base}/preview")
    html = page.get_data(as_text=True)
    assert page.headers["Content-Type"].startswith("text/html")
    assert PDF not in page.data
    assert "1 page." in html
    assert f'src="{base}/pages/1.png"' in html
    assert f'src="{base}/pages/2.png"' not in html

    picture = client.get(f"{base}/pages/1.png")
    assert picture.status_code == 200
    assert picture.headers["Content-Type"] == "image/png"
    assert picture.headers["X-Content-Type-Options"] == "nosniff"
    assert picture.headers["Content-Security-Policy"] == "sandbox"
    image = Image.open(io.BytesIO(picture.data))
    # 200 × 100 points drawn 1000 pixels wide keeps the page's shape.
    assert (image.format, image.size) == ("PNG", (1000, 500))
    assert client.get(f"{base}/pages/2.png").status_code == 404
    assert client.get(f"{base}/pages/0.png").status_code == 404
    photo = f"/desk/feedback/{items['mali']}/files/{items['picture']}/pages/1.png"
    assert client.get(photo).status_code == 404, "only PDFs have pages"


def test_a_damaged_pdf_says_it_cannot_be_previewed(client, login, create_feedback) -> None:
    damaged = create_feedback("ML", files=(("broken.pdf", b"%PDF-1.4\n%%EOF\n"),))
    login("editor")
    [attachment] = damaged.attachments
    assert attachment.content_type == "application/pdf"
    base = f"/desk/feedback/{damaged.reference}/files/{attachment.id}"
    html = client.get(f"{base}/preview").get_data(as_text=True)
    assert "This PDF cannot be previewed" in html
    assert "Download the file" in html
    assert client.get(f"{base}/pages/1.png").status_code == 404
