"""Staff accounts: login, logout, users and their countries."""

from flask import Blueprint

bp = Blueprint("accounts", __name__)

from desk.accounts import views  # noqa: E402, F401  (routes attach to bp)
