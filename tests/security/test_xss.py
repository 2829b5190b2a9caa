"""Markup typed by readers or staff is shown as text: in staff pages, public pages and emails."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from desk.extensions import db
from desk.inbox.operations import add_note, reply_to_submitter
from desk.notify.models import OutboxMessage
from desk.reviews import operations as reviews
from tests.security.conftest import PDF, log_in

PAYLOADS = [
    "<script>alert('x1')</script>",
    "\"><img src=x onerror=alert('x2')>",
    "javascript:alert('x3')",
    "{{7*7}}{% if true %}x4{% endif %}",
    "<a href=\"javascript:alert('x5')\">x5</a>",
    "<svg/onload=alert('x6')>",
]
ALL = " ".join(PAYLOADS)


def assert_inert(html: str, where: str) -> None:
    """No payload became markup: no script, no handler attribute, no javascript: link."""
    assert "<script>alert" not in html, where
    assert not re.search(r"<img[^>]*onerror", html, re.I), where
    assert not re.search(r"<svg[^>]*onload", html, re.I), where
    assert not re.search(r"""href\s*=\s*["']?\s*javascript:""", html, re.I), where


@pytest.fixture
def hostile_item(app: Flask, create_feedback, editor):
    """An item whose every reader field and every staff input carries the payloads."""
    item = create_feedback(
        message=ALL,
        submitter_name=PAYLOADS[1],
        submitter_organisation=PAYLOADS[0],
        subject=PAYLOADS[3],
        files=((f"{PAYLOADS[1]}.pdf", PDF),),
    )
    add_note(item, ALL, editor)
    reply_to_submitter(item, PAYLOADS[0], ALL, editor)
    section = item.profile.sections[1]
    task = reviews.open_review_task(
        item.profile, section, actor=editor, title=ALL[:300], assignee=editor, feedback=[item]
    ).task
    revision = reviews.start_revision(task, editor)
    reviews.save_draft(
        revision,
        editor,
        heading=revision.heading,
        body=f"{ALL}\n\n[click](javascript:alert('x7'))",
        change_note=ALL,
        update_type=revision.update_type,
    )
    db.session.commit()
    return item, task, revision


def test_staff_pages_show_the_payloads_as_text(client: FlaskClient, editor, hostile_item) -> None:
    item, task, revision = hostile_item
    log_in(client, editor)
    pages = [
        f"/desk/feedback/{item.reference}",
        "/desk/inbox",
        "/desk/inbox?q=script",
        "/desk/",
        "/desk/tasks",
        f"/desk/tasks/{task.id}",
        f"/desk/revisions/{revision.id}",
        f"/desk/revisions/{revision.id}/preview",
        f"/desk/profiles/{item.profile_id}",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_inert(response.get_data(as_text=True), url)
    item_page = client.get(f"/desk/feedback/{item.reference}").get_data(as_text=True)
    assert "&lt;script&gt;alert(" in item_page
    assert "{{7*7}}{% if true %}x4{% endif %}" in item_page  # shown, never evaluated


def test_reports_show_the_payloads_as_text(client: FlaskClient, admin, hostile_item) -> None:
    log_in(client, admin)
    for url in ("/desk/reports/", "/desk/reports/backlog", "/desk/reports/turnaround",
                "/desk/reports/outcomes", "/desk/outbox", "/desk/audit"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 200, url
        assert_inert(response.get_data(as_text=True), url)


def test_emails_carry_the_payloads_as_text(app: Flask, hostile_item) -> None:
    mails = db.session.scalars(sa.select(OutboxMessage)).all()
    assert {m.kind for m in mails} >= {"feedback.acknowledgement", "feedback.reply"}
    for mail in mails:
        assert_inert(mail.html, f"{mail.kind} (HTML)")
    reply = next(m for m in mails if m.kind == "feedback.reply")
    assert "&lt;script&gt;alert(" in reply.html
    assert "<script>alert('x1')</script>" in reply.text  # plain text: shown as typed


def test_markdown_in_a_section_cannot_run_on_the_public_page(
    client: FlaskClient, create_profile
) -> None:
    create_profile(
        "SN",
        sections=[
            (
                "Overview",
                "<script>alert('m1')</script>\n\n<img src=x onerror=alert('m2')>\n\n"
                "[a](javascript:alert('m3')) [b](JAVASCRIPT:alert('m4')) "
                "[c](vbscript:msgbox) [d](data:text/html,<script>alert('m5')</script>)\n\n"
                "![e](javascript:alert('m6'))[^1]\n\n[^1]: <script>alert('m7')</script>",
            )
        ],
    )
    page = client.get("/profiles/senegal/cluster-munition-ban-policy")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert_inert(html, "public profile")
    assert not re.search(r"""(href|src)\s*=\s*["']?\s*(vbscript|data:text/html)""", html, re.I)
    assert "&lt;script&gt;alert('m1')" in html.replace("&#39;", "'")
