"""Response headers every page carries, and the request id that ties logs and audit rows."""

from __future__ import annotations

from flask import Flask, Response, abort, g, request

from desk.core.logging import request_id

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: https:",
        "style-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


#: Sent with every response (set by the app, also on answers made before Flask sees a request).
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


def init_app(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        request_id()  # a safe X-Request-Id from the proxy, else a new one (desk.core.logging)

    @app.before_request
    def refuse_nul_in_url() -> None:
        """A NUL byte has no place in a URL, and PostgreSQL refuses it in any query parameter."""
        if "\x00" in request.path or any(
            "\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)
        ):
            abort(400)

    @app.after_request
    def set_security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in SECURITY_HEADERS:
            headers.setdefault(name, value)
        if "request_id" in g:
            headers.setdefault("X-Request-Id", g.request_id)
        return response
