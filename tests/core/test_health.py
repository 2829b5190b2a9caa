"""/healthz and /readyz: 200 when every dependency answers, 503 naming the one that does not."""

from __future__ import annotations

import socket
from pathlib import Path

import flask_migrate
import pytest
from flask import Flask

from desk import create_app
from desk.core.storage import LocalStorage
from tests.conftest import base_settings


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def other_app(database_url: str, tmp_path: Path, **settings: object) -> Flask:
    """An app of its own (no test transaction): for settings the shared fixture cannot have."""
    return create_app({**base_settings(database_url, tmp_path / "other"), **settings})


def test_healthz_is_ok_when_database_queue_and_storage_answer(client):
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "queue", "storage"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert isinstance(check["ms"], float)
    assert body["checks"]["queue"]["pending"] >= 0


def test_health_answers_are_never_cached_and_set_no_cookie(client):
    for path in ("/healthz", "/readyz"):
        response = client.get(path)
        assert "no-store" in response.headers["Cache-Control"]
        assert "Set-Cookie" not in response.headers
        assert response.headers["Content-Type"] == "application/json"


def test_readyz_is_ok_on_a_migrated_database(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is True
    assert len(body["checks"]["migrations"]["revision"]) == 1


def test_unwritable_storage_fails_healthz_but_not_readyz(app, client):
    app.extensions["desk_storage"] = LocalStorage(Path("/proc/desk-health-check"))
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["checks"]["storage"] == {
        "ok": False,
        "error": "StorageError",
        "ms": body["checks"]["storage"]["ms"],
    }
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["queue"]["ok"] is True
    assert client.get("/readyz").status_code == 200


def test_storage_folder_that_is_a_file_fails_healthz(app, client, tmp_path):
    blocker = tmp_path / "files"
    blocker.write_text("not a folder")
    app.extensions["desk_storage"] = LocalStorage(blocker)
    assert client.get("/healthz").get_json()["checks"]["storage"]["ok"] is False


def test_a_database_that_does_not_answer_fails_both(tmp_path):
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/desk"
    client = other_app(dead, tmp_path).test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    checks = health.get_json()["checks"]
    assert checks["database"]["ok"] is False
    assert checks["database"]["error"] == "OperationalError"
    assert checks["queue"]["ok"] is True
    assert checks["storage"]["ok"] is True
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"]["ok"] is False


def test_a_redis_queue_that_does_not_answer_fails_healthz(database_url, tmp_path):
    app = other_app(database_url, tmp_path, DESK_REDIS_URL=f"redis://127.0.0.1:{closed_port()}/7")
    response = app.test_client().get("/healthz")
    checks = response.get_json()["checks"]
    assert response.status_code == 503
    assert checks["queue"] == {"ok": False, "error": "ConnectionError", "ms": checks["queue"]["ms"]}
    assert checks["database"]["ok"] is True


def test_a_live_redis_queue_passes(database_url, tmp_path):
    app = other_app(database_url, tmp_path, DESK_REDIS_URL="redis://127.0.0.1:6379/7")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"]["queue"]["ok"] is True


def test_readyz_fails_until_the_database_is_migrated(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    app = other_app(url, tmp_path)
    client = app.test_client()
    response = client.get("/readyz")
    migrations = response.get_json()["checks"]["migrations"]
    assert response.status_code == 503
    assert migrations["ok"] is False
    assert migrations["revision"] == []
    assert len(migrations["expected"]) == 1
    with app.app_context():
        flask_migrate.upgrade()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["migrations"]["revision"] == migrations["expected"]


def test_a_database_one_migration_behind_is_not_ready(tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    app = other_app(url, tmp_path)
    with app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="-1")
    response = app.test_client().get("/readyz")
    migrations = response.get_json()["checks"]["migrations"]
    assert response.status_code == 503
    assert migrations["revision"] != migrations["expected"]
    assert migrations["revision"] != []


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_is_not_rate_limited(app, client, path):
    app.config["DESK_FEEDBACK_RATE_LIMIT"] = "1 per hour"
    statuses = {client.get(path).status_code for _ in range(30)}
    assert statuses == {200}
