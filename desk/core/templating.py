"""Template globals and filters shared by every page, and the site's error pages."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, render_template, request
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException

from desk.core import locale
from desk.core.time import format_day

#: Error pages of their own; any other error uses errors/error.html.
ERROR_TEMPLATES = {
    404: "errors/404.html",
    413: "errors/413.html",
    429: "errors/429.html",
}


#: Request bodies whose fields Werkzeug has parsed (or can parse) into ``request.form``.
FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def ui_language() -> str:
    """The language this page's own words are in (may differ from a profile's text)."""
    return str(get_locale() or "en")


def init_app(app: Flask) -> None:
    # Templates are where the translations are read, so they are compiled with the templating.
    locale.init_app(app)
    app.add_template_filter(format_day, "day")
    app.add_template_filter(locale.format_size, "filesize")
    app.add_template_global(ui_language)

    @app.context_processor
    def site_settings() -> dict[str, object]:
        config = app.config
        return {
            "site": {
                "name": config["DESK_SITE_NAME"],
                "logo_url": config["DESK_SITE_LOGO_URL"],
                "home_url": config["DESK_SITE_HOME_URL"],
                "nav": config["DESK_SITE_NAV"],
                "footer": config["DESK_SITE_FOOTER"],
            }
        }

    @app.errorhandler(sa.exc.OperationalError)
    @app.errorhandler(sa.exc.InterfaceError)
    def database_unavailable(error: sa.exc.DBAPIError) -> tuple[str, int, dict[str, str]]:
        """The database is restarting, unreachable or locked: say so, and keep the reader's text.

        Nothing of the request was committed (the session is rolled back at teardown), so the
        page says plainly that nothing was kept, and shows the message a reader was sending so
        that it can be copied and sent again.
        """
        app.logger.error("database unavailable: %s", type(error.orig or error).__name__)
        message = ""
        if request.method == "POST" and request.mimetype in FORM_TYPES:
            message = request.form.get("message", "")
        headers = {"Retry-After": "30", "Cache-Control": "no-store"}
        return render_template("errors/unavailable.html", message=message), 503, headers

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | HTTPException:
        if error.code is None or error.code < 400:
            return error
        template = ERROR_TEMPLATES.get(error.code, "errors/error.html")
        # The error's own headers stay (a 405's Allow, which RFC 9110 requires).
        headers = [h for h in error.get_headers() if h[0].lower() != "content-type"]
        return render_template(template, error=error), error.code, headers
