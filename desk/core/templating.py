"""Template globals and filters shared by every page, and the site's error pages."""

from __future__ import annotations

from flask import Flask, render_template
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

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | HTTPException:
        if error.code is None or error.code < 400:
            return error
        template = ERROR_TEMPLATES.get(error.code, "errors/error.html")
        return render_template(template, error=error), error.code
