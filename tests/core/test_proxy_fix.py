"""Behind a proxy: X-Forwarded-* headers count only when DESK_PROXY_FIX_* says how many to trust."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, request, url_for

from desk import create_app
from desk.extensions import limiter
from tests.conftest import base_settings, csrf_token_from

FORWARDED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "desk.example.org",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Prefix": "/feedback-desk",
}


def probe_app(database_url: str, tmp_path: Path, **settings: object) -> Flask:
    """The app with one extra page showing what it believes about the request."""
    app = create_app({**base_settings(database_url, tmp_path / "proxy"), **settings})
    with app.app_context():
        limiter.reset()  # counters may live in Redis, shared with earlier tests

    @app.get("/_probe")
    def probe() -> dict[str, str | None]:
        return {
            "remote_addr": request.remote_addr,
            "profiles": url_for("profiles.index", _external=True),
        }

    return app


def test_forwarded_headers_are_ignored_by_default(database_url, tmp_path):
    client = probe_app(database_url, tmp_path).test_client()
    seen = client.get("/_probe", headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert seen.get_json() == {
        "remote_addr": "10.0.0.5",
        "profiles": "http://localhost/profiles/",
    }


def test_trusted_proxy_sets_client_address_scheme_host_and_prefix(database_url, tmp_path):
    app = probe_app(
        database_url,
        tmp_path,
        DESK_PROXY_FIX_X_FOR=1,
        DESK_PROXY_FIX_X_PROTO=1,
        DESK_PROXY_FIX_X_HOST=1,
        DESK_PROXY_FIX_X_PORT=1,
        DESK_PROXY_FIX_X_PREFIX=1,
    )
    seen = app.test_client().get(
        "/_probe", headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.0.0.5"}
    )
    assert seen.get_json() == {
        "remote_addr": "203.0.113.9",
        "profiles": "https://desk.example.org/feedback-desk/profiles/",
    }


def test_only_the_configured_number_of_proxies_is_believed(database_url, tmp_path):
    """One trusted proxy: the address it appended counts, not what the client claimed before."""
    app = probe_app(database_url, tmp_path, DESK_PROXY_FIX_X_FOR=1)
    seen = app.test_client().get(
        "/_probe",
        headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.4", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "10.0.0.5"},
    )
    assert seen.get_json() == {
        "remote_addr": "198.51.100.4",
        "profiles": "http://localhost/profiles/",  # X-Forwarded-Proto is not trusted
    }


@pytest.mark.parametrize("trusted", [0, 1])
def test_rate_limits_count_the_address_the_proxy_reports(database_url, tmp_path, trusted):
    """Two clients behind one proxy have their own limits only when the proxy is trusted."""
    app = probe_app(
        database_url,
        tmp_path,
        DESK_PROXY_FIX_X_FOR=trusted,
        DESK_LOGIN_RATE_LIMIT="1 per minute",
    )
    client = app.test_client()
    statuses = []
    for number, address in enumerate(("203.0.113.1", "203.0.113.1", "203.0.113.2")):
        token = csrf_token_from(client.get("/login").get_data(as_text=True))
        answer = client.post(
            "/login",
            data={"email": f"nobody{number}@example.org", "password": "x", "csrf_token": token},
            headers={"X-Forwarded-For": address},
            environ_base={"REMOTE_ADDR": "10.0.0.5"},
        )
        statuses.append(answer.status_code)
    assert statuses[0] != 429
    assert statuses[1] == 429
    assert (statuses[2] == 429) is (trusted == 0)
