"""A 20 MB upload does not raise the worker's peak memory by more than 10 MB.

The upload is a 20 MB PDF (the largest file a reader may send) posted to the real feedback
form, ``POST /profiles/<country>/<topic>/feedback``, with its CSRF token and signed form
token: Desk's request class spools the file to disk while the multipart body is parsed, the
form checks its size and sniffs its type, and ``receive_feedback`` has the storage hash and
store it in chunks. The same file is also posted to a test-only route that hands it straight
to ``receive_feedback`` (:func:`add_intake_route`), which isolates the intake core from the
form. Memory is measured two ways:

* in this process with :mod:`tracemalloc`: the peak of Python's traced allocations during the
  request minus what was allocated before it;
* in a real server: gunicorn with one sync worker (the app built by
  ``tests.feedback.test_upload_memory:build_app()``), the body sent over a loopback socket, and
  the worker's peak resident set during the request (``VmHWM`` in ``/proc/<pid>/status``, reset
  to the current RSS just before it) minus its resident set before it, after small uploads
  have warmed the same path. This counts everything the worker holds, C buffers included. It
  runs with local storage and with S3 storage (a real S3 API server on loopback), since an S3
  upload holds a part of the file in memory.

The body is streamed from a file, so the test process never holds the 20 MB either. Nothing
here depends on timing.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask.testing import FlaskClient

from desk import PROJECT_ROOT, create_app
from desk.core.uploads import spool_of
from desk.extensions import csrf, db
from desk.feedback.models import Attachment, Channel, Feedback
from desk.feedback.operations import IncomingFile, Submission, receive_feedback

MB = 1024 * 1024
#: The largest file a reader may send (DESK_UPLOAD_MAX_FILE_BYTES' default).
UPLOAD_BYTES = 20 * MB
GROWTH_LIMIT = 10 * MB
INTAKE_PATH = "/_test/intake"
PING_PATH = "/_test/ping"
PDF_HEAD = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
HIDDEN_FIELD = r'name="{}"[^>]*value="([^"]+)"'


def add_intake_route(app: Flask) -> None:
    """POST a message and files to ``INTAKE_PATH``: they go through ``receive_feedback``."""

    @csrf.exempt
    def intake_for_memory_test() -> Any:
        incoming = [
            IncomingFile(
                filename=upload.filename or "",
                stream=upload.stream,
                is_over_limit=bool((spool := spool_of(upload)) and spool.is_over_limit),
            )
            for upload in request.files.getlist("file")
        ]
        result = receive_feedback(
            Submission(
                channel=Channel.WEB,
                message=request.form["message"],
                files=incoming,
                submitter_ip=request.remote_addr or "",
            )
        )
        db.session.commit()
        return jsonify(
            rejected=result.rejected_files,
            attachments=[{"size": a.size, "sha256": a.sha256} for a in result.feedback.attachments],
        )

    app.add_url_rule(INTAKE_PATH, view_func=intake_for_memory_test, methods=["POST"])
    app.add_url_rule(PING_PATH, view_func=lambda: "ok", endpoint="ping_for_memory_test")


def build_app() -> Flask:
    """The app gunicorn serves: Desk from the DESK_* environment, plus the intake route."""
    app = create_app({"DESK_INSTANCE_PATH": os.environ["DESK_INSTANCE_PATH"]})
    add_intake_route(app)
    return app


# --------------------------------------------------------------------------------------------
# The files and the form


@dataclass(frozen=True)
class Upload:
    path: Path
    size: int
    sha256: str


def write_pdf(path: Path, size: int) -> Upload:
    """A PDF header (libmagic then calls it application/pdf) padded with numbered lines."""
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        written = line = 0
        while written < size:
            if written == 0:
                block = PDF_HEAD
            else:
                block = b"".join(b"%% padding %010d\n" % (line + n) for n in range(4096))
                line += 4096
            block = block[: size - written]
            handle.write(block)
            digest.update(block)
            written += len(block)
    return Upload(path, size, digest.hexdigest())


@pytest.fixture(scope="module")
def uploads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Upload]:
    folder = tmp_path_factory.mktemp("uploads")
    return {
        "large": write_pdf(folder / "report.pdf", UPLOAD_BYTES),
        "small": write_pdf(folder / "warm-up.pdf", 100 * 1024),
    }


def hidden_fields(html: str) -> dict[str, str]:
    """The form's CSRF token and its signed form token, as the page drew them."""
    fields = {}
    for name in ("csrf_token", "token"):
        match = re.search(HIDDEN_FIELD.format(name), html)
        assert match, f"the form page has no {name} field"
        fields[name] = match.group(1)
    return fields


def form_path(country_slug: str, topic_slug: str) -> str:
    return f"/profiles/{country_slug}/{topic_slug}/feedback"


# --------------------------------------------------------------------------------------------
# In this process: tracemalloc


def allocation_growth(send: Callable[[], Any]) -> tuple[Any, int]:
    """What ``send`` returned, and the peak of traced allocations during it above the start."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = send()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - before


def test_the_form_takes_a_20_mb_pdf_in_less_than_10_mb_of_allocations(
    app: Flask, client: FlaskClient, create_profile, uploads: dict[str, Upload]
):
    app.config["DESK_FORM_MIN_SECONDS"] = 0
    profile = create_profile("ML")
    path = form_path(profile.country.slug, profile.topic_slug)

    def send(upload: Upload) -> Any:
        page = client.get(path)
        assert page.status_code == 200
        fields = hidden_fields(page.get_data(as_text=True))
        with upload.path.open("rb") as handle:
            return client.post(
                path,
                data={**fields, "message": f"See {upload.path.name}", "attachments": handle},
            )

    assert send(uploads["small"]).status_code == 303  # imports and caches, outside the count
    response, growth = allocation_growth(lambda: send(uploads["large"]))
    print(f"\ntracemalloc, feedback form: peak growth {growth / MB:.2f} MB for a 20 MB PDF")
    assert response.status_code == 303, response.get_data(as_text=True)
    attachment = db.session.scalars(
        sa.select(Attachment).join(Feedback).where(Feedback.message == "See report.pdf")
    ).one()
    assert (attachment.size, attachment.sha256) == (UPLOAD_BYTES, uploads["large"].sha256)
    assert attachment.content_type == "application/pdf"
    assert growth < GROWTH_LIMIT, f"the upload allocated {growth / MB:.1f} MB at its peak"


def test_the_intake_core_takes_a_20_mb_file_in_less_than_10_mb_of_allocations(
    app: Flask, uploads: dict[str, Upload]
):
    add_intake_route(app)
    client = app.test_client()

    def send(upload: Upload) -> Any:
        with upload.path.open("rb") as handle:
            return client.post(
                INTAKE_PATH, data={"message": f"See {upload.path.name}", "file": handle}
            )

    assert send(uploads["small"]).status_code == 200
    response, growth = allocation_growth(lambda: send(uploads["large"]))
    print(f"\ntracemalloc, intake core: peak growth {growth / MB:.2f} MB for a 20 MB PDF")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json == {
        "rejected": [],
        "attachments": [{"size": UPLOAD_BYTES, "sha256": uploads["large"].sha256}],
    }
    assert growth < GROWTH_LIMIT, f"the upload allocated {growth / MB:.1f} MB at its peak"


# --------------------------------------------------------------------------------------------
# In a real worker: gunicorn, peak RSS


def memory_of(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in {"VmHWM", "VmRSS"}:
            values[name] = int(rest.split()[0]) * 1024
    return values


def reset_peak(pid: int) -> None:
    """Bring the process's VmHWM down to its current RSS (proc(5): clear_refs, value 5).

    Without this a peak reached while the worker started, and since freed, would hide any
    growth below it.
    """
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    status = memory_of(pid)
    assert status["VmHWM"] <= status["VmRSS"] + MB, status


def server_settings(database_url: str, instance: Path) -> dict[str, str]:
    return {
        "DESK_ENV": "testing",
        "DESK_SECRET_KEY": "memory-test",
        "DESK_DATABASE_URL": database_url,
        "DESK_INSTANCE_PATH": str(instance),
        # The form is posted as soon as it is drawn, several times from one address.
        "DESK_FORM_MIN_SECONDS": "0",
        "DESK_FEEDBACK_RATE_LIMIT": "1000 per minute",
    }


@dataclass(frozen=True)
class ServedDatabase:
    url: str
    form_path: str


@pytest.fixture(scope="module")
def served_database(tmp_path_factory: pytest.TempPathFactory) -> ServedDatabase:
    """A migrated SQLite database of its own with one published profile (the server commits)."""
    import flask_migrate

    from desk.profiles.models import Profile
    from desk.profiles.operations import ensure_country

    folder = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{folder / 'desk.sqlite3'}"
    app = create_app(server_settings(url, folder / "migrate"))
    with app.app_context():
        flask_migrate.upgrade()
        country = ensure_country("ML")
        profile = Profile(
            country=country, topic="Mine Ban Policy", topic_slug="mine-ban-policy", language="en"
        )
        db.session.add(profile)
        db.session.commit()
        path = form_path(country.slug, profile.topic_slug)
        db.engine.dispose()
    return ServedDatabase(url, path)


@pytest.fixture(scope="module")
def s3_storage_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3 API server on loopback with a bucket; its URL, and credentials in the env."""
    from moto.server import ThreadedMotoServer

    from desk.core.s3 import S3Storage

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "desk-test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "desk-test-secret")
        nowhere = tmp_path_factory.mktemp("aws") / "none"
        env.setenv("AWS_CONFIG_FILE", str(nowhere))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"s3://desk-memory/files?endpoint_url=http://{host}:{port}&region=us-east-1"
        try:
            S3Storage.from_url(url).client.create_bucket(Bucket="desk-memory")
            yield url
        finally:
            server.stop()


@dataclass(frozen=True)
class Served:
    storage: str
    port: int
    worker: int
    database: ServedDatabase
    log: Callable[[], str]


@pytest.fixture(params=["local", "s3"])
def served(
    request: pytest.FixtureRequest, served_database: ServedDatabase, tmp_path: Path
) -> Iterator[Served]:
    """gunicorn, one sync worker, serving Desk with local or S3 storage.

    A new worker for each test: what one test's large upload left in the allocator's free
    lists would otherwise hide the next test's growth.
    """
    from bench._harness import GunicornServer

    settings = server_settings(served_database.url, tmp_path / "instance")
    if request.param == "s3":
        settings["DESK_STORAGE_URL"] = request.getfixturevalue("s3_storage_url")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
    with GunicornServer(
        "tests.feedback.test_upload_memory:build_app()",
        workers=1,
        chdir=PROJECT_ROOT,
        env={**environment, **settings},
        ready_path=PING_PATH,
    ) as server:
        [worker] = server.worker_pids()
        yield Served(request.param, server.port, worker, served_database, server.log_text)
        assert server.worker_pids() == [worker], "the worker was replaced:\n" + server.log_text()


def multipart(
    fields: dict[str, str], file_field: str, upload: Upload
) -> tuple[str, int, Iterator[bytes]]:
    """Content type, length and chunks of a form with one file, the file read from disk."""
    boundary = f"desk-memory-{uuid.uuid4().hex}"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{upload.path.name}"\r\nContent-Type: application/pdf\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        with upload.path.open("rb") as handle:
            while chunk := handle.read(64 * 1024):
                yield chunk
        yield tail

    length = len(head) + upload.size + len(tail)
    return f"multipart/form-data; boundary={boundary}", length, chunks()


def http_request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            method, path, body=body, headers={**(headers or {}), "Connection": "close"}
        )
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def post_file(
    port: int, path: str, fields: dict[str, str], file_field: str, upload: Upload, cookie: str = ""
) -> tuple[int, bytes]:
    content_type, length, chunks = multipart(fields, file_field, upload)
    headers = {"Content-Type": content_type, "Content-Length": str(length)}
    if cookie:
        headers["Cookie"] = cookie
    status, _, body = http_request(port, "POST", path, chunks, headers)
    return status, body


def rss_growth(worker: int, send: Callable[[], Any]) -> tuple[Any, int, dict[str, int]]:
    """What ``send`` returned, the worker's peak RSS during it above its RSS before, and the
    figures before."""
    reset_peak(worker)
    before = memory_of(worker)
    result = send()
    after = memory_of(worker)
    return result, after["VmHWM"] - before["VmRSS"], before


def report(label: str, served: Served, before: dict[str, int], growth: int) -> None:
    print(
        f"\ngunicorn worker, {label}, {served.storage} storage: RSS {before['VmRSS'] / MB:.1f} MB "
        f"before, peak {(before['VmRSS'] + growth) / MB:.1f} MB during a 20 MB PDF upload "
        f"(growth {growth / MB:.2f} MB)"
    )


def test_the_form_under_gunicorn_takes_a_20_mb_pdf_in_less_than_10_mb_of_rss(
    served: Served, uploads: dict[str, Upload]
):
    path = served.database.form_path
    message = f"Memory test, {served.storage} storage: see the report."

    def draw_form() -> tuple[dict[str, str], str]:
        status, headers, body = http_request(served.port, "GET", path)
        assert status == 200, body.decode(errors="replace") + served.log()
        jar = SimpleCookie()
        for header in headers.get_all("Set-Cookie") or []:
            jar.load(header)
        assert "session" in jar, headers
        return hidden_fields(body.decode()), f"session={jar['session'].value}"

    for number in range(2):
        fields, cookie = draw_form()
        fields["message"] = f"Warm-up {number}, {served.storage} storage."
        status, body = post_file(served.port, path, fields, "attachments", uploads["small"], cookie)
        assert status == 303, body.decode(errors="replace") + served.log()

    fields, cookie = draw_form()
    fields["message"] = message
    (status, body), growth, before = rss_growth(
        served.worker,
        lambda: post_file(served.port, path, fields, "attachments", uploads["large"], cookie),
    )
    report("feedback form", served, before, growth)
    assert status == 303, body.decode(errors="replace") + served.log()
    engine = sa.create_engine(served.database.url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.select(Attachment.size, Attachment.sha256)
                .join(Feedback, Attachment.feedback_id == Feedback.id)
                .where(Feedback.message == message)
            ).one()
    finally:
        engine.dispose()
    assert tuple(row) == (UPLOAD_BYTES, uploads["large"].sha256)
    assert growth < GROWTH_LIMIT, f"the worker's peak RSS grew by {growth / MB:.1f} MB"


def test_the_intake_core_under_gunicorn_takes_a_20_mb_file_in_less_than_10_mb_of_rss(
    served: Served, uploads: dict[str, Upload]
):
    def send(upload: Upload) -> dict[str, Any]:
        fields = {"message": f"Intake core, {served.storage} storage: {upload.path.name}"}
        status, body = post_file(served.port, INTAKE_PATH, fields, "file", upload)
        assert status == 200, body.decode(errors="replace") + served.log()
        return json.loads(body)

    for _ in range(2):
        send(uploads["small"])
    answer, growth, before = rss_growth(served.worker, lambda: send(uploads["large"]))
    report("intake core", served, before, growth)
    assert answer["attachments"] == [{"size": UPLOAD_BYTES, "sha256": uploads["large"].sha256}]
    assert growth < GROWTH_LIMIT, f"the worker's peak RSS grew by {growth / MB:.1f} MB"
