"""The staff desk under /desk: home, the inbox, feedback items, quarantine and the audit log."""

from flask import Blueprint

bp = Blueprint("inbox", __name__, url_prefix="/desk")

# Routes attach to bp; search keeps every item's search text up to date on flush.
from desk.inbox import audit_log, files, quarantine, search, views  # noqa: E402, F401
