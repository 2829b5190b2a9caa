"""The WSGI module ``bench/profile_page.py`` has gunicorn load: Desk plus a bare endpoint.

The app is built with :func:`desk.create_app` from the ``DESK_*`` environment variables (and
``DESK_INSTANCE_PATH``, which only the factory's argument reads). One extra route,
:data:`BARE_PATH`, is added to the same Flask app: it answers with the bytes and the content
type of the profile page named by ``BENCH_PROFILE_PATH``, captured once per worker at start-up
through the test client. Both endpoints therefore run in the same worker, through the same
middleware and request hooks; the bare one just skips the view's work (queries, ETag, template).

    BENCH_PROFILE_PATH=/profiles/mali/… gunicorn --chdir /path/to/desk \
        'bench.profile_page_app:build_app()'

The factory is called by gunicorn in each worker, so importing this module builds nothing.
"""

from __future__ import annotations

import os

from flask import Flask, Response

from desk import create_app
from desk.extensions import db

#: The route that returns the captured page.
BARE_PATH = "/_bench/bare"
#: Environment variable naming the page to capture ("/profiles/mali/…").
PROFILE_PATH_VARIABLE = "BENCH_PROFILE_PATH"


def build_app() -> Flask:
    instance_path = os.environ.get("DESK_INSTANCE_PATH")
    app = create_app({"DESK_INSTANCE_PATH": instance_path} if instance_path else None)
    captured: dict[str, bytes | str] = {}

    # Routes must be added before the app handles its first request (the capture below).
    @app.get(BARE_PATH)
    def bench_bare() -> Response:
        return Response(captured["body"], content_type=captured["content_type"])

    path = os.environ.get(PROFILE_PATH_VARIABLE)
    if not path:
        raise RuntimeError(f"{PROFILE_PATH_VARIABLE} must name the profile page to capture.")
    page = app.test_client().get(path)
    if page.status_code != 200:
        raise RuntimeError(f"GET {path} answered {page.status} while capturing the page.")
    captured["body"] = page.get_data()
    captured["content_type"] = page.headers["Content-Type"]
    # Start serving with an empty pool, as a freshly booted worker would (and safe with --preload).
    with app.app_context():
        db.engine.dispose()
    return app
