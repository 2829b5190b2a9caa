"""The LMTP receiver: a mail server delivers the intake address's mail here (aiosmtpd).

Each message is handed to :func:`desk.feedback.email_in.deliver_email` in a worker thread
(the database is not async) and committed before the answer, so a ``250`` means the item is
stored. LMTP answers DATA once per recipient (RFC 2033); one message to several recipients is
one item, so every recipient gets the same answer:

* ``250`` taken (a new item, a reply, a message already taken, or an automatic one dropped);
* ``451`` a temporary failure (database or storage unreachable, an unexpected error): the mail
  server keeps the message and tries again, and Message-ID dedupe makes the retry safe;
* ``554`` never (no email at all); ``552`` over the size limit, which is twice
  DESK_UPLOAD_MAX_SUBMISSION_BYTES and is announced in the LHLO answer (SIZE).

Run it with ``desk lmtp --host 127.0.0.1 --port 8024`` and point the mail server at it, e.g.
Postfix: ``transport_maps`` entry ``feedback@example.org lmtp:inet:127.0.0.1:8024`` (with
``recipient_delimiter = +`` so ``feedback+ml@…`` reaches it too).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import Envelope, Session

from desk.feedback.email_in import EmailOutcome, EmailRefused, deliver_email

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

#: Takes the raw message and its envelope recipients; raises EmailRefused or any other error.
Deliver = Callable[[bytes, Sequence[str]], EmailOutcome]

TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, please try again later"


def max_message_bytes(app: Flask) -> int:
    """The largest message taken: twice the submission limit (base64 inflates files by 4/3)."""
    return 2 * int(app.config["DESK_UPLOAD_MAX_SUBMISSION_BYTES"])


class IntakeHandler:
    """aiosmtpd handler: every message goes through ``deliver`` in a worker thread."""

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        recipients = [str(r) for r in envelope.rcpt_tos]
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(None, self.deliver, bytes(content), recipients)
        except EmailRefused as refusal:
            log.warning("lmtp: refused a message from %s: %s", envelope.mail_from, refusal)
            return f"554 5.6.0 Message refused: {_ascii(str(refusal))}"
        except Exception:
            log.exception("lmtp: could not take a message from %s", envelope.mail_from)
            return TEMPORARY_FAILURE
        return f"250 2.0.0 OK {_ascii(outcome.describe())}"


def _ascii(text: str) -> str:
    return " ".join(text.encode("ascii", "replace").decode().split())[:200]


class DeskLMTP(LMTP):
    """aiosmtpd's LMTP, answering the end of DATA once per recipient as RFC 2033 requires.

    aiosmtpd answers DATA once whatever the number of recipients, including its own size and
    line-length refusals; an LMTP client waiting for one answer per recipient would hang.
    Lines up to 64 KiB are taken, since some mail clients send longer lines than RFC 5322's 998.
    """

    line_length_limit = 64 * 1024

    #: Recipients of the transaction whose DATA is under way (0: none is).
    _data_recipients = 0

    async def push(self, status: AnyStr) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        if text.startswith("354"):
            # The envelope is reset before the final answer; count its recipients now.
            self._data_recipients = len(self.envelope.rcpt_tos) if self.envelope else 1
        elif self._data_recipients:
            recipients, self._data_recipients = self._data_recipients, 0
            if "\r\n" not in text and recipients > 1:
                text = "\r\n".join([text] * recipients)
        await super().push(text)


class LMTPController(Controller):
    """Runs :class:`DeskLMTP` on host:port in a thread of its own."""

    def factory(self) -> DeskLMTP:
        return DeskLMTP(self.handler, **self.SMTP_kwargs)


def make_controller(
    app: Flask, host: str = "127.0.0.1", port: int = 8024, deliver: Deliver | None = None
) -> LMTPController:
    """A controller (not started) taking mail for ``app``; ``deliver`` replaces the default."""

    def deliver_to_app(raw: bytes, recipients: Sequence[str]) -> EmailOutcome:
        return deliver_email(app, raw, recipients)

    return LMTPController(
        IntakeHandler(deliver or deliver_to_app),
        hostname=host,
        port=port,
        data_size_limit=max_message_bytes(app),
        server_hostname=host if host not in {"", "0.0.0.0", "::"} else None,
        ident="Desk LMTP",
    )


def serve_lmtp(app: Flask, host: str, port: int, ready: Callable[[str], None] = print) -> None:
    """Run the receiver until Ctrl-C or SIGTERM."""
    controller = make_controller(app, host, port)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    controller.start()
    try:
        ready(f"Desk LMTP receiver on {host}:{port} (Ctrl-C to stop)")
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        signal.signal(signal.SIGTERM, previous)
