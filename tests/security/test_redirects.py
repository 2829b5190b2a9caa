"""Nothing in a ``next`` or ``back`` parameter sends a user off the site after login or an action.

Each answer's Location (or the Back link's href) is resolved as a browser would resolve it
against the page it came from; it must land on the desk's own host.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk.accounts import models as account_models
from tests.conftest import csrf_token_from
from tests.security.conftest import log_in, post_form

SITE = "http://localhost"

HOSTILE_TARGETS = [
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "http:evil.example",
    "https:/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "%5C%5Cevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\x00//evil.example",
    " //evil.example",
    "//evil.example/%2F..",
    "/desk/../..//evil.example",
    "https://localhost@evil.example",
    "//localhost@evil.example/desk/",
    "/desk/\\\\evil.example",
    "/desk/http://evil.example",
    "ftp://evil.example/desk/",
    "\u3002evil.example",
    "//evil%E3%80%82example",
]

#: Pieces hypothesis strings together into would-be targets.
PIECES = st.sampled_from(
    ["/", "//", "\\", "/\\", "evil.example", "desk", "/desk/", ":", "http", "https:", "@",
     "javascript:", "%2F", "%5C", "%2f", "\t", "\n", "\r", " ", "\x0b", ".", "..", "?", "#",
     "localhost", "%09", "%0a", "\u3002", "\uff0f", "a"]
)  # fmt: skip


def stays_on_site(location: str, page: str = "/login") -> bool:
    """True when a browser following ``location`` from ``page`` stays on the desk's host."""
    target = urlsplit(urljoin(SITE + page, location.strip()))
    return target.scheme == "http" and target.netloc == "localhost"


@pytest.fixture
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        account_models, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_logging_in_with_a_hostile_next_stays_on_the_site(
    client: FlaskClient, unlimited, quick_hashes, create_staff, target: str
) -> None:
    user = create_staff("editor", email="editor@desk.test", password="pass-word-123")
    page = client.get("/login", query_string={"next": target})
    if "\x00" in target:
        assert page.status_code == 400  # refused outright (desk/core/security.py)
        return
    assert page.status_code == 200
    response = client.post(
        "/login",
        query_string={"next": target},
        data={
            "email": user.email,
            "password": "pass-word-123",
            "next": target,
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 302
    assert stays_on_site(response.headers["Location"]), response.headers["Location"]


def test_a_local_next_is_still_followed_after_login(
    client: FlaskClient, unlimited, quick_hashes, create_staff
) -> None:
    user = create_staff("editor", email="editor@desk.test", password="pass-word-123")
    page = client.get("/login?next=/desk/inbox%3Fstatus%3Dnew")
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": "pass-word-123",
            "next": "/desk/inbox?status=new",
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
        },
    )
    assert response.headers["Location"] == "/desk/inbox?status=new"


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(target=st.lists(PIECES, min_size=1, max_size=6).map("".join))
def test_no_next_built_from_tricky_pieces_leaves_the_site(
    client: FlaskClient, editor, target: str
) -> None:
    """A logged-in user sent to the login page is redirected to ``next`` by the same check."""
    log_in(client, editor)
    for sent in (target, quote(target, safe="")):
        response = client.get("/login", query_string={"next": sent})
        assert response.status_code == 302
        assert stays_on_site(response.headers["Location"]), (sent, response.headers["Location"])


BACK_LINK = re.compile(r'<a[^>]*href="([^"]*)"[^>]*>\s*(?:←\s*)?Back', re.IGNORECASE)


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_inbox_actions_never_redirect_off_the_site(
    client: FlaskClient, editor, create_feedback, target: str
) -> None:
    item = create_feedback()
    log_in(client, editor)
    response = post_form(
        client,
        f"/desk/feedback/{item.reference}/note",
        {"note-text": "Checked.", "note-next": target},
    )
    assert response.status_code in {302, 303}
    location = response.headers["Location"]
    assert stays_on_site(location), location
    assert urlsplit(urljoin(SITE, location)).path.startswith("/desk/")

    bulk = post_form(
        client, "/desk/inbox/bulk", {"ids": str(item.id), "action": "assign", "next": target}
    )
    assert bulk.status_code in {302, 303}
    assert stays_on_site(bulk.headers["Location"]), bulk.headers["Location"]


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_the_item_pages_back_link_never_leaves_the_desk(
    client: FlaskClient, editor, create_feedback, target: str
) -> None:
    item = create_feedback()
    log_in(client, editor)
    page = client.get(f"/desk/feedback/{item.reference}", query_string={"back": target})
    if "\x00" in target:
        assert page.status_code == 400
        return
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs
    for href in hrefs:
        resolved = href.replace("&amp;", "&")
        if resolved.startswith("mailto:"):
            continue
        assert stays_on_site(resolved, f"/desk/feedback/{item.reference}"), href
