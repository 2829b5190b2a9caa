"""Whatever a visitor sends to any public form or link, the answer is never a server error.

Hypothesis draws field values (control characters, huge and odd Unicode, markup, line breaks),
file names and file contents; each example goes through the real form with a valid CSRF token,
so the checks behind it (validation, intake, storage, the outbox) are what is exercised. The
budget is fixed and the examples derandomised, so CI runs the same cases every time.
"""

from __future__ import annotations

import io
import re
from urllib.parse import quote

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk.accounts import models as account_models
from desk.accounts.models import Role
from desk.accounts.operations import create_user
from desk.admin import PUBLIC_ENDPOINTS
from desk.admin.tokens import LinkPurpose, make_account_token
from desk.extensions import db
from desk.profiles.models import Profile
from tests.security.conftest import FORM, PDF, png_bytes

HIDDEN = re.compile(r'name="(csrf_token|token)" type="hidden" value="([^"]*)"')

BUDGET = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.text(alphabet=st.sampled_from("\x00\r\n\t\x0b\x0c\u2028\u2029\u202e\ufeff <>\"'&%;:@"))
    .filter(bool)
    .map(lambda s: s * 5),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "javascript:alert(1)",
            "{{7*7}}",
            "{% raw %}",
            "a@b.example\r\nBcc: victim@example.org",
            "reader@example.org\nSubject: hi",
            "x" * 5000,
            "é" * 300,
            "\ud7ff\ue000\U0010ffff",
            "../../etc/passwd",
            "' OR 1=1 --",
            "reader@[127.0.0.1]",
            '"quoted local"@example.org',
            "a@b",
            "@",
        ]
    ),
)

FILENAME_PIECES = st.sampled_from(
    ["../", "..\\", "/", "\\", "C:\\", "\x00", "\u202e", "\r\n", ";", '"', "'", "%00",
     "..", ".", " ", "report", "fdp.exe", ".pdf", ".png", ".zip", ".html", ".txt", "x" * 300,
     "é", "\ufeff", ":", "*", "?", "<>", "|", "con", "NUL", "%2e%2e%2f"]
)  # fmt: skip
filenames = st.one_of(st.text(max_size=40), st.lists(FILENAME_PIECES, max_size=8).map("".join))

ZIP_HEADER = b"PK\x03\x04"
file_contents = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([PDF, png_bytes(), b"GIF89a/*<script>*/", b"<html><script>x</script>"]),
    st.tuples(st.sampled_from([PDF[:8], ZIP_HEADER, b"\x89PNG\r\n\x1a\n", b""]), st.binary()).map(
        lambda parts: parts[0] + parts[1]
    ),
)


@pytest.fixture
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Login attempts here hash cheaply: the fuzz is of the form, not of argon2."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(account_models, "_hasher", cheap)
    monkeypatch.setattr(account_models, "_dummy_hash", lambda: cheap.hash("dummy"))


def hidden_fields(client: FlaskClient, url: str) -> dict[str, str]:
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    return dict(HIDDEN.findall(page.get_data(as_text=True)))


def post(client: FlaskClient, url: str, data: dict, *, multipart: bool = False):
    kind = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
    return client.post(url, data=data, content_type=kind)


@BUDGET
@given(
    values=st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(
            ("message", "section", "name", "email", "organisation", "notify", "website", "token"),
            hostile_text,
        ),
    ),
    files=st.lists(st.tuples(filenames, file_contents), max_size=3),
)
def test_the_feedback_form_takes_any_fields_and_files_without_a_server_error(
    client: FlaskClient, mali: Profile, values: dict, files: list
) -> None:
    data = {**hidden_fields(client, FORM), **values}
    data["attachments"] = [(io.BytesIO(content), name) for name, content in files]
    response = post(client, FORM, data, multipart=True)
    assert response.status_code in {303, 400, 413, 422}, response.status_code


SUBSCRIBE = "/profiles/mali/cluster-munition-ban-policy/subscribe"
subscription_fields = st.fixed_dictionaries(
    {},
    optional={
        "email": hostile_text,
        "frequency": st.one_of(hostile_text, st.sampled_from(["immediate", "daily", "weekly"])),
        "language": st.one_of(hostile_text, st.sampled_from(["en", "fr"])),
        "website": hostile_text,
    },
)


@BUDGET
@given(values=subscription_fields)
def test_the_subscribe_form_never_fails(client: FlaskClient, mali: Profile, values: dict) -> None:
    data = {**hidden_fields(client, SUBSCRIBE), **values}
    response = post(client, SUBSCRIBE, data)
    assert response.status_code in {200, 302, 303, 400, 422}, response.status_code


@BUDGET
@given(
    values=subscription_fields,
    profiles=st.lists(st.one_of(hostile_text, st.integers().map(str)), max_size=4),
)
def test_the_my_countries_form_never_fails(
    client: FlaskClient, mali: Profile, values: dict, profiles: list
) -> None:
    url = "/subscriptions/countries"
    data = {**hidden_fields(client, url), **values, "profiles": [*profiles, str(mali.id)][-4:]}
    response = post(client, url, data)
    assert response.status_code in {200, 302, 303, 400, 422}, response.status_code


@BUDGET
@given(values=st.fixed_dictionaries({}, optional={"email": hostile_text, "website": hostile_text}))
def test_the_manage_link_form_never_fails(client: FlaskClient, mali: Profile, values: dict) -> None:
    url = "/subscriptions/manage"
    data = {**hidden_fields(client, url), **values}
    response = post(client, url, data)
    assert response.status_code in {200, 302, 303, 400, 422}, response.status_code


@BUDGET
@given(
    values=st.fixed_dictionaries(
        {},
        optional={
            "email": hostile_text,
            "password": hostile_text,
            "remember": hostile_text,
            "next": hostile_text,
        },
    )
)
def test_the_login_form_never_fails(
    client: FlaskClient, unlimited: Flask, quick_hashes: None, create_staff, values: dict
) -> None:
    data = {**hidden_fields(client, "/login"), **values}
    response = post(client, "/login", data)
    assert response.status_code in {200, 302, 400}, response.status_code


tokens = st.one_of(
    st.text(min_size=1, max_size=80),
    st.sampled_from(["eyJzIjoxfQ.aaaa.bbbb", "W10.x.y", "e30", "..", "%00", "a" * 2000]),
    st.binary(min_size=1, max_size=60).map(lambda b: b.hex()),
)


@BUDGET
@given(token=tokens, subscription_id=st.integers(min_value=0, max_value=2**63 - 1))
def test_token_links_never_fail_whatever_they_carry(
    client: FlaskClient, mali: Profile, token: str, subscription_id: int
) -> None:
    quoted = quote(token, safe="")
    csrf = hidden_fields(client, "/subscriptions/manage")["csrf_token"]
    for method, url in [
        ("GET", f"/subscriptions/confirm/{quoted}"),
        ("POST", f"/subscriptions/confirm/{quoted}"),
        ("GET", f"/unsubscribe/{quoted}"),
        ("POST", f"/unsubscribe/{quoted}"),
        ("GET", f"/subscriptions/manage/{quoted}"),
        ("POST", f"/subscriptions/manage/{quoted}/{subscription_id}"),
        ("POST", f"/subscriptions/manage/{quoted}/{subscription_id}/end"),
        ("POST", f"/subscriptions/manage/{quoted}/end-all"),
        ("GET", f"{FORM}/thanks?ref={quoted}"),
    ]:
        response = client.open(url, method=method, data={"csrf_token": csrf})
        assert response.status_code < 500, (method, url, response.status_code)


@BUDGET
@given(country=tokens, topic=tokens, language=hostile_text, section=hostile_text)
def test_public_pages_never_fail_whatever_the_url_names(
    client: FlaskClient, mali: Profile, country: str, topic: str, language: str, section: str
) -> None:
    args = {"lang": language, "section": section, "q": section}
    for path in (
        f"/profiles/{quote(country, safe='')}/{quote(topic, safe='')}",
        f"/profiles/{quote(country, safe='')}/{quote(topic, safe='')}/feedback",
        f"/profiles/mali/{mali.topic_slug}",
        FORM,
        SUBSCRIBE,
        "/profiles/",
        "/subscriptions/countries",
    ):
        response = client.get(path, query_string=args)
        assert response.status_code < 500, (path, args, response.status_code)


@pytest.fixture
def invited(app: Flask, quick_hashes: None) -> str:
    """The path of a valid invitation link of a fresh, inactive account."""
    user = create_user("newcomer@desk.test", name="New Comer", role=Role.EDITOR)
    user.is_active = False
    db.session.commit()
    return f"/desk/invitation/{make_account_token(LinkPurpose.INVITATION, user)}"


@BUDGET
@given(email=hostile_text, token=tokens, password=hostile_text, confirm=hostile_text)
def test_password_forms_and_links_never_fail_whatever_they_carry(
    client: FlaskClient, invited: str, email: str, token: str, password: str, confirm: str
) -> None:
    forgot = "/desk/password/forgot"
    data = {**hidden_fields(client, forgot), "email": email}
    assert post(client, forgot, data).status_code < 500
    quoted = quote(token, safe="")
    fields = {"password": password, "confirm": confirm}
    for url in (f"/desk/password/reset/{quoted}", f"/desk/invitation/{quoted}", invited):
        data = {"csrf_token": hidden_fields(client, forgot)["csrf_token"], **fields}
        response = post(client, url, data)
        assert response.status_code < 500, (url, response.status_code)


#: The public endpoints that take a POST, and the test above that fuzzes each.
FUZZED_POST_ENDPOINTS = {
    "feedback.form",
    "notify.subscribe",
    "notify.countries",
    "notify.manage_link",
    "notify.confirm",
    "notify.unsubscribe",
    "notify.change",
    "notify.end",
    "notify.end_all",
    "accounts.login",
    "feedback_api.submit_feedback",  # tests/security/test_api_schema.py
    *PUBLIC_ENDPOINTS,  # the password forms: test_password_forms_and_links_never_fail…
}


def test_every_public_form_is_fuzzed(app: Flask) -> None:
    """A new public form (outside the staff desk) fails here until a fuzz test covers it."""
    public_posts = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or set())
        and (not rule.rule.startswith("/desk/") or rule.endpoint in PUBLIC_ENDPOINTS)
        and rule.endpoint != "accounts.logout"
    }
    assert public_posts <= FUZZED_POST_ENDPOINTS, sorted(public_posts - FUZZED_POST_ENDPOINTS)
