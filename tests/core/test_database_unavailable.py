"""A database that does not answer gets a 503 page that says nothing was kept, not a 500.

The app here has a database URL of its own that cannot be opened (a file in a folder that does
not exist), as when PostgreSQL restarts under a running worker.
"""

from __future__ import annotations

from pathlib import Path

from desk import create_app
from tests.conftest import base_settings


def test_a_database_outage_is_a_503_that_shows_the_readers_message(tmp_path: Path) -> None:
    unreachable = f"sqlite:///{tmp_path / 'no-such-folder' / 'desk.sqlite3'}"
    app = create_app(base_settings(unreachable, tmp_path / "instance"))
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()

    sent = client.post(
        "/profiles/mali/cluster-munition-ban-policy/feedback",
        data={"message": "The 2011 stockpile figure is <b>out of date</b>."},
    )
    page = sent.get_data(as_text=True)
    assert sent.status_code == 503
    assert "nothing from this request was kept" in page
    assert "The 2011 stockpile figure is &lt;b&gt;out of date&lt;/b&gt;." in page

    listing = client.get("/profiles/", headers={"Accept-Language": "fr"})
    assert listing.status_code == 503
    assert listing.headers["Retry-After"] == "30"
    assert "Veuillez réessayer dans un instant" in listing.get_data(as_text=True)
