"""Template globals and filters shared by every page, and the site's error pages."""

from __future__ import annotations

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from desk.core.time import format_day


def init_app(app: Flask) -> None:
    app.add_template_filter(format_day, "day")

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
        template = "errors/404.html" if error.code == 404 else "errors/error.html"
        return render_template(template, error=error), error.code
