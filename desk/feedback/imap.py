"""The IMAP poller: unseen messages of the intake mailbox become feedback.

``desk poll-imap`` (and, once jobs exist, a periodic job calling :func:`poll_imap`) logs in to
DESK_IMAP_HOST, selects DESK_IMAP_FOLDER and takes every unseen message through the same path
as the LMTP receiver. Messages are fetched with ``BODY.PEEK[]`` (which leaves them unseen) and
flagged ``\\Seen`` only after their transaction is committed: a crash in between means the
message is fetched again next time, and Message-ID dedupe keeps that from making a second item.
A message that can never be taken is flagged too (and logged); one that failed for a passing
reason (database down) stays unseen for the next poll.

TLS: IMAP over TLS (DESK_IMAP_USE_SSL, port 993) with a verified default context; otherwise a
plain connection upgraded with STARTTLS whenever the server offers it.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from desk.feedback.email_in import EmailOutcome, EmailRefused, deliver_email

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

#: Seconds a network operation may take before the poll gives up (and runs again next time).
TIMEOUT = 60
#: Unseen messages taken per poll; the rest wait for the next one.
BATCH = 200


class ImapError(RuntimeError):
    """The mailbox could not be read (connection, login or folder); nothing was taken."""


@dataclass
class PollReport:
    #: (UID, outcome) of every message taken, in order.
    taken: list[tuple[str, EmailOutcome]] = field(default_factory=list)
    #: (UID, reason) of every message that failed; those refused for good are flagged seen.
    failed: list[tuple[str, str]] = field(default_factory=list)


def _connect(app: Flask, ssl_context: ssl.SSLContext | None) -> imaplib.IMAP4:
    config = app.config
    host, port = config["DESK_IMAP_HOST"], int(config["DESK_IMAP_PORT"])
    context = ssl_context or ssl.create_default_context()
    try:
        if config["DESK_IMAP_USE_SSL"]:
            return imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT)
        imap = imaplib.IMAP4(host, port, timeout=TIMEOUT)
        if "STARTTLS" in imap.capabilities:
            imap.starttls(ssl_context=context)
        elif host not in {"localhost", "127.0.0.1", "::1"}:
            log.warning("imap: %s offers no STARTTLS; the password is sent unencrypted", host)
        return imap
    except (OSError, imaplib.IMAP4.error) as error:
        raise ImapError(f"cannot connect to {host}:{port}: {_text(error)}") from error


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, imaplib.IMAP4.error) and value.args:
        return _text(value.args[0])
    return str(value)


def _check(response: tuple[str, list], what: str) -> list:
    status, data = response
    if status != "OK":
        detail = " ".join(_text(d) for d in data if isinstance(d, bytes))
        raise ImapError(f"{what} failed: {detail}")
    return data


def _step(what: str, call: Callable[[], tuple[str, list]]) -> list:
    """One IMAP command; any refusal or network error becomes an ImapError naming it."""
    try:
        return _check(call(), what)
    except (OSError, imaplib.IMAP4.error) as error:
        raise ImapError(f"{what} failed: {_text(error)}") from error


def _message_bytes(data: list) -> bytes | None:
    """The literal of a FETCH answer: imaplib gives (b'1 (UID 7 BODY[] {n}', b'…') pairs."""
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and re.search(rb"BODY\[\]", item[0]):
            return item[1]
    return None


def poll_mailbox(app: Flask, *, ssl_context: ssl.SSLContext | None = None) -> PollReport:
    """Take the unseen messages of the configured folder; see the module's docstring."""
    config = app.config
    if not config["DESK_IMAP_HOST"]:
        raise ImapError("DESK_IMAP_HOST is not set: there is no mailbox to poll")
    report = PollReport()
    imap = _connect(app, ssl_context)
    try:
        user, folder = config["DESK_IMAP_USER"], config["DESK_IMAP_FOLDER"]
        _step(f"LOGIN as {user}", lambda: imap.login(user, config["DESK_IMAP_PASSWORD"]))
        _step(f"SELECT {folder}", lambda: imap.select(_quote(folder)))
        found = _step("UID SEARCH UNSEEN", lambda: imap.uid("SEARCH", None, "UNSEEN"))
        uids = [uid.decode() for uid in (found[0] or b"").split()][:BATCH]
        for uid in uids:
            _take(app, imap, uid, report)
        imap.close()
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            imap.logout()
    return report


def _take(app: Flask, imap: imaplib.IMAP4, uid: str, report: PollReport) -> None:
    try:
        raw = _message_bytes(_step(f"FETCH {uid}", lambda: imap.uid("FETCH", uid, "(BODY.PEEK[])")))
    except ImapError as error:
        report.failed.append((uid, str(error)))
        log.error("imap: could not fetch message %s: %s", uid, error)
        return
    if raw is None:
        report.failed.append((uid, "the server sent no message body"))
        return
    try:
        outcome = deliver_email(app, raw)
    except EmailRefused as refusal:
        report.failed.append((uid, f"refused: {refusal}"))
        log.warning("imap: message %s refused for good (%s); flagged seen", uid, refusal)
    except Exception as error:
        report.failed.append((uid, f"{type(error).__name__}: {error}"))
        log.exception("imap: could not take message %s; left unseen for the next poll", uid)
        return
    else:
        report.taken.append((uid, outcome))
    try:
        _step(f"STORE {uid}", lambda: imap.uid("STORE", uid, "+FLAGS", "(\\Seen)"))
    except ImapError as error:
        # Taken but not flagged: the next poll fetches it again and dedupe recognises it.
        log.warning("imap: could not flag message %s seen: %s", uid, error)


def poll_imap(app: Flask, *, ssl_context: ssl.SSLContext | None = None) -> int:
    """Poll the intake mailbox once; the number of messages taken (0 when none is configured).

    Meant for a periodic job: failures of single messages are logged and retried next time;
    a mailbox that cannot be read raises :class:`ImapError`.
    """
    if not app.config["DESK_IMAP_HOST"]:
        return 0
    return len(poll_mailbox(app, ssl_context=ssl_context).taken)
