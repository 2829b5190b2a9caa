"""A storage that is full, unwritable or unreachable: the submission is refused with a clear
503 page that keeps what the reader typed, and nothing is half-stored (no item, no file)."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from desk.core.storage import LocalStorage, StorageError, get_storage
from desk.extensions import db
from desk.feedback.models import Attachment, Feedback
from tests.core.test_health import closed_port
from tests.feedback.test_form import MESSAGE, SECTIONS, minimal_pdf, send, tiny_png

TWO_FILES = (("report.pdf", minimal_pdf()), ("photo.png", tiny_png()))


@pytest.fixture
def mali(app, create_profile):
    app.config["DESK_FORM_MIN_SECONDS"] = 0
    return create_profile("ML", sections=SECTIONS)


def nothing_recorded() -> bool:
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0
        and db.session.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0
    )


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def assert_refused_keeping_the_message(response) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Your files could not be stored just now, so nothing was sent." in html
    assert MESSAGE in html  # the textarea still holds what the reader typed
    assert 'name="csrf_token"' in html  # and the form can be sent again as it is


def test_an_unwritable_storage_folder_refuses_the_submission(app, client, mali):
    app.extensions["desk_storage"] = LocalStorage(Path("/proc/desk-unwritable-storage"))
    response = send(client, files=TWO_FILES)
    assert_refused_keeping_the_message(response)
    assert nothing_recorded()


def test_a_storage_folder_that_is_a_file_refuses_the_submission(app, client, mali, tmp_path):
    blocker = tmp_path / "files"
    blocker.write_bytes(b"in the way")
    app.extensions["desk_storage"] = LocalStorage(blocker)
    assert_refused_keeping_the_message(send(client, files=TWO_FILES))
    assert nothing_recorded()
    assert blocker.read_bytes() == b"in the way"


def test_a_full_disk_on_the_second_file_leaves_neither_file_nor_item(
    app, client, mali, monkeypatch
):
    """ENOSPC surfaces when the data reaches the disk: the first file was already complete."""
    root = get_storage().root
    real_fsync = os.fsync
    calls = []

    def fsync_then_full(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr("desk.core.storage.os.fsync", fsync_then_full)
    response = send(client, files=TWO_FILES)
    assert len(calls) == 2
    assert_refused_keeping_the_message(response)
    assert nothing_recorded()
    assert stored_files(root) == []


def test_the_same_submission_goes_through_once_there_is_room_again(app, client, mali, monkeypatch):
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("desk.core.storage.os.fsync", disk_full)
    assert send(client, files=TWO_FILES).status_code == 503
    monkeypatch.undo()
    assert send(client, files=TWO_FILES).status_code == 303
    (item,) = db.session.scalars(sa.select(Feedback))
    assert [a.original_filename for a in item.attachments] == ["report.pdf", "photo.png"]
    assert len(stored_files(get_storage().root)) == 2


def test_an_unreachable_s3_storage_refuses_the_submission(app, client, mali, monkeypatch):
    from desk.core.s3 import S3Storage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "desk-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "desk-test-secret")
    app.extensions["desk_storage"] = S3Storage.from_url(
        f"s3://desk/files?endpoint_url=http://127.0.0.1:{closed_port()}&region=us-east-1"
        "&max_attempts=1&connect_timeout=1"
    )
    assert_refused_keeping_the_message(send(client, files=TWO_FILES))
    assert nothing_recorded()


def test_the_intake_api_answers_503_in_json(app, client, mali):
    app.extensions["desk_storage"] = LocalStorage(Path("/proc/desk-unwritable-storage"))
    response = client.post(
        "/api/v1/feedback",
        data={
            "profile": "mali/cluster-munition-ban-policy",
            "message": MESSAGE,
            "attachments": [(io.BytesIO(minimal_pdf()), "report.pdf")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.is_json
    assert nothing_recorded()


def test_a_storage_failure_no_view_handles_gets_the_friendly_503_page(app):
    @app.get("/_storage_probe")
    def probe() -> str:
        raise StorageError("could not store the file: No space left on device")

    response = app.test_client().get("/_storage_probe")
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Files cannot be stored just now" in html
    assert "No space left on device" not in html  # details go to the log, not to readers
    assert response.headers["Retry-After"] == "300"
