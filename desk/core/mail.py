"""The mail transport: Flask-Mail over SMTP with a timeout and a verified TLS context.

Flask-Mail opens its SMTP connection without a timeout and starts TLS without checking the
server's certificate; Desk's connection does both. For a desk on one machine, mail can instead
be written to files in the instance folder or printed to the console (DESK_MAIL_BACKEND).
"""

from __future__ import annotations

import smtplib
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import current_app
from flask_mail import BadHeaderError, Connection, Mail, Message, email_dispatched


def tls_context() -> ssl.SSLContext:
    """A context that verifies the server (with an extra CA file when one is configured)."""
    context = ssl.create_default_context()
    ca_file = current_app.config.get("DESK_MAIL_CA_FILE")
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class _BeforeData:
    """An SMTP client that runs a hook between RCPT TO and DATA.

    That is the last moment before the server takes responsibility for a message (at the end
    of DATA): the outbox uses it to finish recording the previous message's outcome while this
    message's envelope is already on its way (desk.notify.delivery). A hook that raises
    leaves the transaction open and unsent; the connection is then closed.
    """

    before_data: Callable[[], None] | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        if self.before_data is not None:
            self.before_data()
        return super().data(msg)  # type: ignore[misc]


class _SMTP(_BeforeData, smtplib.SMTP):
    pass


class _SMTPOverSSL(_BeforeData, smtplib.SMTP_SSL):
    pass


class SMTPConnection(Connection):
    #: Run before each message's DATA (see :class:`_BeforeData`); None for none.
    before_data: Callable[[], None] | None = None

    def configure_host(self) -> smtplib.SMTP | smtplib.SMTP_SSL:
        timeout = current_app.config["DESK_MAIL_TIMEOUT_SECONDS"]
        host: _SMTP | _SMTPOverSSL
        if self.mail.use_ssl:
            host = _SMTPOverSSL(
                self.mail.server, self.mail.port, timeout=timeout, context=tls_context()
            )
        else:
            host = _SMTP(self.mail.server, self.mail.port, timeout=timeout)
        host.before_data = self._before_data
        if self.mail.use_tls:
            host.starttls(context=tls_context())
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host

    def _before_data(self) -> None:
        if self.before_data is not None:
            self.before_data()

    def send(self, message: Message, envelope_from: str | tuple[str, str] | None = None) -> None:
        """Flask-Mail's send; a message that carries its ``envelope`` is sent with it as given.

        Flask-Mail parses and writes out the sender and every recipient again for each
        message, which costs a good part of sending an outbox message (whose envelope is
        written once per delivery run, desk.notify.delivery.OutboxMail). Everything else is
        as Flask-Mail does it: the header check, the ``email_dispatched`` signal, and a new
        connection after MAIL_MAX_EMAILS messages.
        """
        envelope = getattr(message, "envelope", None)
        if envelope is None or envelope_from is not None or self.host is None:
            super().send(message, envelope_from)
            return
        if message.has_bad_headers():
            raise BadHeaderError
        sender, recipients = envelope
        self.host.sendmail(
            sender, recipients, message.as_bytes(), message.mail_options, message.rcpt_options
        )
        email_dispatched.send(current_app._get_current_object(), message=message)  # type: ignore[attr-defined]
        self.num_emails += 1
        if self.num_emails == self.mail.max_emails:
            self.num_emails = 0
            self.host.quit()
            self.host = self.configure_host()


class FileConnection:
    """Writes each message as an .eml file into a folder (the demo's "mail server")."""

    def __init__(self, folder: Path, stream: Any = None) -> None:
        self.folder = folder
        self.stream = stream

    def __enter__(self) -> FileConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, message: Message) -> None:
        raw = message.as_bytes()
        if self.stream is not None:
            self.stream.write(raw.decode("utf-8", "replace") + "\n" + "-" * 72 + "\n")
            self.stream.flush()
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = message.msgId.strip("<>").replace("/", "_").replace("@", "_at_")
        (self.folder / f"{name}.eml").write_bytes(raw)


class DeskMail(Mail):
    def connect(self) -> Any:  # type: ignore[override]
        backend = current_app.config["DESK_MAIL_BACKEND"]
        if backend == "file":
            return FileConnection(Path(current_app.instance_path) / "mail")
        if backend == "console":
            return FileConnection(Path(), stream=sys.stdout)
        return SMTPConnection(current_app.extensions["mail"])
