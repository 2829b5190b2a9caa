"""Every answer the app gives carries the security headers, whatever route or error made it.

The walk covers every URL rule of the app with sample arguments, as staff (so the staff pages
are drawn, not just their login redirects) and as a visitor, plus the error pages and static
files. A new route is covered the day it is added; a rule without sample arguments fails here.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from desk.extensions import db
from desk.notify.models import OutboxMessage
from desk.notify.outbox import new_message
from desk.notify.tokens import (
    ConfirmRequest,
    make_confirm_token,
    make_manage_token,
    make_unsubscribe_token,
)
from desk.profiles.models import Profile
from desk.reviews import operations as reviews
from tests.notify.helpers import subscribe
from tests.security.conftest import PDF, log_in

REQUIRED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": {"same-origin", "no-referrer", "strict-origin-when-cross-origin"},
}


def csp_directives(value: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_secure(response: Any, where: str) -> None:
    headers = response.headers
    for name, expected in REQUIRED.items():
        value = headers.get(name)
        allowed = expected if isinstance(expected, set) else {expected}
        assert value in allowed, f"{where}: {name} is {value!r}"
    csp = headers.get("Content-Security-Policy")
    assert csp, f"{where}: no Content-Security-Policy"
    directives = csp_directives(csp)
    if directives == {"sandbox": []}:
        # A served attachment: sandboxed, so nothing in it runs or frames anything, and framing
        # is still refused by X-Frame-Options above.
        return
    assert directives.get("frame-ancestors") == ["'none'"], f"{where}: {csp}"
    for name in ("script-src", "style-src", "default-src"):
        sources = directives.get(name, directives.get("default-src", []))
        assert sources, f"{where}: no {name} in {csp}"
        assert "'unsafe-inline'" not in sources, f"{where}: {name} allows inline code"
        assert "'unsafe-eval'" not in sources, f"{where}: {name} allows eval"
        assert "*" not in sources, f"{where}: {name} allows any origin"
    assert directives.get("object-src") == ["'none'"], f"{where}: {csp}"


@pytest.fixture
def world(app: Flask, mali: Profile, editor, admin, create_feedback) -> dict[str, Any]:
    """One of everything a URL can name: item, file, task, revision, mail, view, links."""
    item = create_feedback(files=(("report.pdf", PDF),))
    section = mali.sections[1]
    task = reviews.open_review_task(
        mali, section, actor=editor, title="Check the stockpile", assignee=editor, feedback=[item]
    ).task
    revision = reviews.start_revision(task, editor)
    subscription = subscribe(mali, "reader@example.org")
    mail = new_message(
        "test", "reader@example.org", subject="Hi", text="Hi", html="", dedupe_key="test:1"
    )
    db.session.add(mail)
    from desk.accounts.models import SavedView

    view = SavedView(user_id=admin.id, name="Mali", query={"country": "ML"})
    db.session.add(view)
    db.session.commit()
    confirm = ConfirmRequest("reader@example.org", (mali.id,), subscription.frequency, "en")
    return {
        "country_slug": "mali",
        "topic_slug": mali.topic_slug,
        "reference": item.reference,
        "attachment_id": item.attachments[0].id,
        "feedback_id": item.id,
        "profile_id": mali.id,
        "section_id": section.id,
        "task_id": task.id,
        "revision_id": revision.id,
        "message_id": db.session.get(OutboxMessage, mail.id).id,
        "view_id": view.id,
        "subscription_id": subscription.id,
        "filename": "desk.css",
        "number": 1,
        "user_id": editor.id,
        "code": "ML",
        "name": "DESK_SLA_FIRST_RESPONSE_DAYS",
        "token": {
            "notify.confirm": make_confirm_token(confirm),
            "notify.unsubscribe": make_unsubscribe_token([subscription.id]),
        },
        "manage_token": make_manage_token(subscription.id, "en"),
    }


def url_for_rule(rule: Rule, world: dict[str, Any]) -> str:
    values: dict[str, Any] = {}
    for name in rule.arguments:
        if name == "token":
            tokens = world["token"]
            values[name] = tokens.get(rule.endpoint, world["manage_token"])
        else:
            assert name in world, f"no sample value for <{name}> in {rule.rule}: add one"
            values[name] = world[name]
    return rule.build(values, append_unknown=False)[1]


def every_rule(app: Flask) -> list[Rule]:
    return sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule)


def test_every_route_answers_staff_with_the_security_headers(
    app: Flask, client: FlaskClient, world, admin
) -> None:
    log_in(client, admin)
    seen = 0
    for rule in every_rule(app):
        url = url_for_rule(rule, world)
        method = "GET" if "GET" in rule.methods else "POST"
        response = client.open(url, method=method)
        assert response.status_code < 500, (url, response.status_code)
        assert_secure(response, f"{method} {url} ({response.status_code})")
        seen += 1
    assert seen >= 60


def test_every_route_answers_visitors_with_the_security_headers(
    app: Flask, client: FlaskClient, world
) -> None:
    for rule in every_rule(app):
        url = url_for_rule(rule, world)
        for method in sorted(rule.methods - {"OPTIONS"}):
            response = client.open(url, method=method)
            assert response.status_code < 500, (method, url, response.status_code)
            assert_secure(response, f"{method} {url} ({response.status_code})")


def test_error_pages_carry_the_security_headers(app: Flask, client: FlaskClient, mali) -> None:
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert_secure(missing, "404")

    wrong_method = client.delete("/login")
    assert wrong_method.status_code == 405
    assert_secure(wrong_method, "405")

    no_csrf = client.post("/login", data={"email": "a@b.example", "password": "x"})
    assert no_csrf.status_code == 400
    assert_secure(no_csrf, "400")

    app.config["MAX_CONTENT_LENGTH"] = 1024
    too_large = client.post(
        "/profiles/mali/cluster-munition-ban-policy/feedback",
        data={"message": "x", "attachments": (io.BytesIO(b"x" * 4096), "big.txt")},
        content_type="multipart/form-data",
    )
    assert too_large.status_code == 413
    assert_secure(too_large, "413")


def test_the_rate_limit_page_carries_the_security_headers(app: Flask, client: FlaskClient) -> None:
    app.config["DESK_LOGIN_RATE_LIMIT"] = "1 per hour"
    statuses = []
    for _ in range(3):
        page = client.get("/login").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        response = client.post(
            "/login", data={"email": "nobody@example.org", "password": "x", "csrf_token": token}
        )
        statuses.append(response.status_code)
        assert_secure(response, f"login attempt ({response.status_code})")
    assert 429 in statuses


def test_static_files_carry_the_security_headers(client: FlaskClient) -> None:
    response = client.get("/static/desk.css")
    assert response.status_code == 200
    assert_secure(response, "static")


def test_attachments_are_downloaded_never_shown_as_pages(
    client: FlaskClient, editor, create_feedback
) -> None:
    item = create_feedback(files=(("report.pdf", PDF),))
    log_in(client, editor)
    response = client.get(f"/desk/feedback/{item.reference}/files/{item.attachments[0].id}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert csp_directives(response.headers["Content-Security-Policy"]) == {"sandbox": []}
