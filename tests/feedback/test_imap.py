"""The IMAP poller against a real IMAP conversation over a loopback socket.

No IMAP server is installed here, so the tests run a small IMAP4rev1 server of their own
(:class:`FakeImapServer`): LOGIN, SELECT, UID SEARCH UNSEEN, UID FETCH BODY.PEEK[],
UID STORE +FLAGS (\\Seen), CLOSE and LOGOUT, plain or over TLS.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from desk.extensions import db
from desk.feedback import imap
from desk.feedback.email_in import Outcome
from desk.feedback.imap import ImapError, poll_imap, poll_mailbox
from desk.feedback.models import EventKind, Feedback
from desk.feedback.operations import acknowledgement_message_id
from tests.feedback.emails import INTAKE, as_bytes, french_report, message, reply
from tests.smtp import free_port

USER, PASSWORD, FOLDER = "intake", 'pa ss"word', "Feedback In"
TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


@dataclass
class StoredMail:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


class FakeImapServer:
    """Just enough IMAP4rev1 for a poller, in a thread of its own."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        self.mails: list[StoredMail] = []
        self.commands: list[str] = []
        self.refuse_store = False
        self._ssl = ssl_context
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, raw: bytes, *, seen: bool = False) -> int:
        mail = StoredMail(len(self.mails) + 1, raw, {"\\Seen"} if seen else set())
        self.mails.append(mail)
        return mail.uid

    def seen(self, uid: int) -> bool:
        return "\\Seen" in self.mails[uid - 1].flags

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        # A refused TLS handshake is expected in a test; keep asyncio from logging it.
        self._loop.set_exception_handler(lambda loop, context: None)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self._ssl)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(*lines: bytes) -> None:
            for line in lines:
                writer.write(line + b"\r\n")

        send(b"* OK [CAPABILITY IMAP4rev1] fake IMAP ready")
        logged_in = selected = False
        try:
            while line := await reader.readline():
                text = line.decode().rstrip("\r\n")
                self.commands.append(text)
                tag, _, rest = text.partition(" ")
                args = [q.replace('\\"', '"') if q or not u else u for q, u in TOKEN.findall(rest)]
                command = args[0].upper() if args else ""
                if command == "UID" and len(args) > 1:
                    command, args = f"UID {args[1].upper()}", args[1:]
                reply_ = self._answer(command, args[1:], logged_in, selected)
                if command == "LOGIN" and reply_[-1].startswith(b"OK"):
                    logged_in = True
                if command == "SELECT" and reply_[-1].startswith(b"OK"):
                    selected = True
                send(*reply_[:-1], tag.encode() + b" " + reply_[-1])
                await writer.drain()
                if command == "LOGOUT":
                    break
        finally:
            writer.close()

    def _answer(
        self, command: str, args: list[str], logged_in: bool, selected: bool
    ) -> list[bytes]:
        if command == "CAPABILITY":
            return [b"* CAPABILITY IMAP4rev1", b"OK CAPABILITY done"]
        if command in {"NOOP", "CLOSE"}:
            return [b"OK done"]
        if command == "LOGOUT":
            return [b"* BYE see you", b"OK LOGOUT done"]
        if command == "LOGIN":
            ok = args == [USER, PASSWORD]
            return [b"OK LOGIN done" if ok else b"NO [AUTHENTICATIONFAILED] wrong password"]
        if not logged_in:
            return [b"BAD log in first"]
        if command == "SELECT":
            if args != [FOLDER]:
                return [b"NO no such folder"]
            return [
                b"* %d EXISTS" % len(self.mails),
                b"* FLAGS (\\Seen)",
                b"* OK [UIDVALIDITY 7] ok",
                b"OK [READ-WRITE] SELECT done",
            ]
        if not selected:
            return [b"BAD select a folder first"]
        if command == "UID SEARCH" and args == ["UNSEEN"]:
            uids = b" ".join(b"%d" % m.uid for m in self.mails if "\\Seen" not in m.flags)
            return [b"* SEARCH " + uids if uids else b"* SEARCH", b"OK SEARCH done"]
        if command == "UID FETCH" and args[1:] == ["(BODY.PEEK[])"]:
            mail = self.mails[int(args[0]) - 1]
            literal = b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (mail.uid, mail.uid, len(mail.raw))
            return [literal + mail.raw + b")", b"OK FETCH done"]
        if command == "UID STORE" and args[1:] == ["+FLAGS", "(\\Seen)"]:
            if self.refuse_store:
                return [b"NO store refused"]
            mail = self.mails[int(args[0]) - 1]
            mail.flags.add("\\Seen")
            return [b"* %d FETCH (UID %d FLAGS (\\Seen))" % (mail.uid, mail.uid), b"OK STORE done"]
        return [b"BAD unknown command"]


@pytest.fixture
def server(app):
    fake = FakeImapServer()
    fake.start()
    app.config.update(
        DESK_INTAKE_ADDRESS=INTAKE,
        DESK_IMAP_HOST="127.0.0.1",
        DESK_IMAP_PORT=fake.port,
        DESK_IMAP_USE_SSL=False,
        DESK_IMAP_USER=USER,
        DESK_IMAP_PASSWORD=PASSWORD,
        DESK_IMAP_FOLDER=FOLDER,
    )
    yield fake
    fake.stop()


def items() -> list[Feedback]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Feedback).order_by(Feedback.id)))


def test_poll_takes_unseen_messages_and_flags_them_seen_after_commit(app, server):
    report_uid = server.add(french_report())
    old_uid = server.add(as_bytes(message(message_id="<old@x>")), seen=True)

    assert poll_imap(app) == 1
    assert server.seen(report_uid) and server.seen(old_uid)
    [feedback] = items()
    assert feedback.country.code == "ML" and feedback.attachments[0].original_filename.endswith(
        ".pdf"
    )
    assert any("BODY.PEEK[]" in c for c in server.commands)
    assert any(f'SELECT "{FOLDER}"' in c for c in server.commands)

    reply_uid = server.add(reply(in_reply_to=acknowledgement_message_id(feedback)))
    report = poll_mailbox(app)
    assert [(uid, o.outcome) for uid, o in report.taken] == [(str(reply_uid), Outcome.REPLY)]
    assert server.seen(reply_uid)
    assert [e.kind for e in items()[0].events].count(EventKind.REPLY_RECEIVED) == 1
    assert poll_imap(app) == 0


def test_a_passing_failure_leaves_the_message_unseen_for_the_next_poll(app, server, monkeypatch):
    good = server.add(as_bytes(message(message_id="<good@x>", body="good")))
    bad = server.add(as_bytes(message(message_id="<bad@x>", body="unlucky")))
    deliver = imap.deliver_email

    def flaky(app_, raw, recipients=()):
        if b"<bad@x>" in raw:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is down"))
        return deliver(app_, raw, recipients)

    monkeypatch.setattr(imap, "deliver_email", flaky)
    report = poll_mailbox(app)
    assert [uid for uid, _ in report.taken] == [str(good)]
    assert [uid for uid, _ in report.failed] == [str(bad)]
    assert server.seen(good) and not server.seen(bad)

    monkeypatch.setattr(imap, "deliver_email", deliver)
    assert poll_imap(app) == 1
    assert server.seen(bad)
    assert len(items()) == 2


def test_a_flag_lost_after_commit_does_not_make_a_second_item(app, server):
    uid = server.add(french_report())
    server.refuse_store = True
    assert poll_imap(app) == 1
    assert not server.seen(uid)
    server.refuse_store = False
    report = poll_mailbox(app)
    assert [o.outcome for _, o in report.taken] == [Outcome.ALREADY]
    assert server.seen(uid)
    assert len(items()) == 1


def test_a_message_that_is_no_email_is_flagged_seen_and_reported(app, server):
    uid = server.add(b"\r\nno headers at all\r\n")
    report = poll_mailbox(app)
    assert report.taken == [] and report.failed[0][0] == str(uid)
    assert "refused" in report.failed[0][1]
    assert server.seen(uid)


def test_wrong_password_or_folder_takes_nothing(app, server):
    server.add(french_report())
    app.config["DESK_IMAP_PASSWORD"] = "wrong"
    with pytest.raises(ImapError, match="LOGIN"):
        poll_imap(app)
    app.config.update(DESK_IMAP_PASSWORD=PASSWORD, DESK_IMAP_FOLDER="Elsewhere")
    with pytest.raises(ImapError, match="SELECT"):
        poll_imap(app)
    assert items() == []


def test_no_configured_host_polls_nothing(app):
    app.config["DESK_IMAP_HOST"] = ""
    assert poll_imap(app) == 0


def _self_signed(directory: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "imap.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + certificate.public_bytes(serialization.Encoding.PEM)
    )
    return path


def test_imap_over_tls_verifies_the_server_certificate(app, tmp_path):
    pem = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(pem)
    fake = FakeImapServer(ssl_context=server_context)
    fake.start()
    try:
        fake.add(french_report())
        app.config.update(
            DESK_INTAKE_ADDRESS=INTAKE,
            DESK_IMAP_HOST="127.0.0.1",
            DESK_IMAP_PORT=fake.port,
            DESK_IMAP_USE_SSL=True,
            DESK_IMAP_USER=USER,
            DESK_IMAP_PASSWORD=PASSWORD,
            DESK_IMAP_FOLDER=FOLDER,
        )
        # The system's trust store does not know this certificate: refused.
        with pytest.raises(ImapError, match="CERTIFICATE_VERIFY_FAILED"):
            poll_imap(app)
        assert items() == []
        trusting = ssl.create_default_context(cafile=str(pem))
        assert poll_imap(app, ssl_context=trusting) == 1
    finally:
        fake.stop()
    assert items()[0].country.code == "ML"


def test_desk_poll_imap_command(app, runner, server):
    server.add(french_report())
    result = runner.invoke(args=["poll-imap"])
    assert result.exit_code == 0, result.output
    assert "message 1: ML-" in result.output
    assert "1 taken, 0 failed." in result.output
    server.add(b"\r\nno headers\r\n")
    result = runner.invoke(args=["poll-imap"])
    assert result.exit_code == 1
    assert "message 2: failed: refused" in result.output
    app.config["DESK_IMAP_HOST"] = ""
    result = runner.invoke(args=["poll-imap"])
    assert result.exit_code == 1
    assert "DESK_IMAP_HOST is not set" in result.output
