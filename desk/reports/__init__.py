"""Turnaround, backlog and outcome reports for managers (and editors, for their countries)."""

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/desk/reports")

from desk.reports import views  # noqa: E402, F401  (routes attach to bp)
