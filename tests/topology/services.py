"""The processes of a multi-process Desk, started on this machine and stopped whatever happens.

* :class:`ManagedProcess`: one command in a process group of its own, its output in a log file;
  stopped with SIGTERM to the group, then SIGKILL, so no child outlives a test.
* :class:`PrivatePostgres` and :class:`PrivateRedis`: servers of the test's own, on free
  loopback ports, for the fault tests that stop and start them. The machine's shared servers
  are never stopped: other people use them.
* :class:`MailSink`: an SMTP server (aiosmtpd) that counts every message by recipient and
  Message-ID, and can hold one sender mid-transaction so a test can kill it there.
* :class:`Topology`: gunicorn with two workers and two ``desk worker`` consumers, all configured
  through ``DESK_*`` environment variables, on a database migrated with ``desk db upgrade``.
"""

from __future__ import annotations

import contextlib
import email
import glob
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import IO

import psycopg
from aiosmtpd.controller import Controller
from psycopg import sql

LOOPBACK = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The virtualenv's executables (gunicorn, desk) sit beside the interpreter running the tests.
BIN = Path(sys.executable).parent


class TopologyError(RuntimeError):
    """A process did not start, did not become ready, or died."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise TopologyError(f"timed out after {timeout:g} s waiting for {what}")


# --------------------------------------------------------------------------------------------
# Processes


class ManagedProcess:
    """A command run in its own session (process group), with its output kept in a file."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise TopologyError(f"{self.name} is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> ManagedProcess:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL, at once and without warning (the fault a test means to cause)."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        self._close()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the group (a graceful stop), SIGKILL to it if it lingers."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
        # Whatever is left of the group (a gunicorn worker, a consumer thread's child) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        self._close()

    def _close(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def run_checked(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120):
    """Run a set-up command to its end; a failure shows its output."""
    result = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise TopologyError(
            f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def http_status(port: int, path: str, timeout: float = 3.0) -> int | None:
    """The status of one GET on 127.0.0.1, or None if nothing answered."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


# --------------------------------------------------------------------------------------------
# Databases and Redis


def admin_execute(server_url: str, statement: sql.Composable | str) -> None:
    """One statement on the server's ``postgres`` database, outside any transaction."""
    with psycopg.connect(server_url, dbname="postgres", autocommit=True) as connection:
        connection.execute(statement)


def create_database(server_url: str, name: str) -> None:
    admin_execute(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server_url: str, name: str) -> None:
    admin_execute(
        server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise TopologyError("no PostgreSQL server programs under /usr/lib/postgresql/*/bin")
    return Path(found[-1])


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary folder, on a free port.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user
    and its programs run through ``runuser``.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="desk-topology-pg-"))
        self.data = self.root / "data"
        self._bin = _postgres_bin()
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    @property
    def server_url(self) -> str:
        """A libpq URI for psycopg."""
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        """A SQLAlchemy URL for Desk."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/{name}"

    def _pg(self, program: str, *args: str) -> None:
        run_checked([*self._as_owner, str(self._bin / program), *args], timeout=90)

    def init(self) -> None:
        self._pg(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses={LOOPBACK}"
        self._pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast``: connections are ended and the server shuts down cleanly at once."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(TopologyError, subprocess.TimeoutExpired):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class PrivateRedis:
    """A redis-server of the test's own: no persistence, loopback only, on a free port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self._log_dir = log_dir
        self._process: ManagedProcess | None = None

    def url(self, database: int) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{database}"

    def start(self) -> None:
        argv = [
            "redis-server", "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
            "--appendonly", "no", "--dir", str(self._log_dir),
        ]  # fmt: skip
        self._process = ManagedProcess("redis", argv, os.environ, self._log_dir).start()
        wait_until(self._answers, 20, f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None


# --------------------------------------------------------------------------------------------
# Mail


@dataclass(frozen=True)
class ReceivedMail:
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "").strip()


@dataclass
class HoldRule:
    """Hold the envelope of the message after ``after`` messages, until :meth:`release`."""

    after: int
    held: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    peer: tuple[str, int] | None = None

    def release(self) -> None:
        self.released.set()


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        rule = self._sink._take_hold_rule()
        if rule is not None:
            rule.peer = session.peer
            rule.held.set()
            # Wait off the event loop: other connections go on being served meanwhile.
            await server.loop.run_in_executor(None, rule.released.wait, 120)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        self._sink._record(ReceivedMail(tuple(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class MailSink:
    """A real SMTP server on a free loopback port; thread-safe reads of what it received."""

    def __init__(self) -> None:
        self.port = free_port()
        self._received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._hold: HoldRule | None = None
        self._controller: Controller | None = None

    def start(self) -> None:
        # aiosmtpd logs every SMTP command at INFO: thousands of lines under load.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller = Controller(_Handler(self), hostname=LOOPBACK, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._hold is not None:
            self._hold.release()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def hold_after(self, count: int) -> HoldRule:
        """Arm a hold on the first MAIL FROM that comes once ``count`` messages have arrived."""
        rule = HoldRule(after=count)
        with self._lock:
            self._hold = rule
        return rule

    def _take_hold_rule(self) -> HoldRule | None:
        with self._lock:
            rule = self._hold
            if rule is None or len(self._received) < rule.after:
                return None
            self._hold = None
            return rule

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._received.append(mail)

    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    def copies(self) -> Counter[tuple[str, str]]:
        """How many times each (recipient, Message-ID) arrived."""
        counts: Counter[tuple[str, str]] = Counter()
        for mail in self.received:
            for recipient in mail.recipients:
                counts[(recipient.lower(), mail.message_id)] += 1
        return counts


def process_owning_connection(local_port: int, candidates: Sequence[int]) -> int | None:
    """Which of ``candidates`` (pids) holds the loopback TCP socket bound to ``local_port``.

    Read from /proc: the socket's inode from /proc/net/tcp, then the process whose file
    descriptors include ``socket:[inode]``.
    """
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in candidates:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    return None


# --------------------------------------------------------------------------------------------
# The topology


@dataclass
class TopologyConfig:
    """Where a topology keeps its state, and the settings that differ between tests."""

    database_url: str
    queue_url: str
    limits_url: str
    root: Path
    mail_port: int
    settings: dict[str, str] = field(default_factory=dict)


class Topology:
    """gunicorn -w 2 and two ``desk worker`` processes on one database, queue and mail sink."""

    WEB_WORKERS = 2
    CONSUMERS = 2

    def __init__(self, config: TopologyConfig) -> None:
        self.config = config
        self.port = free_port()
        self.logs = config.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.storage_root = config.root / "files"
        self.web: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self._worker_count = 0

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def settings(self) -> dict[str, str]:
        """Every DESK_* setting the processes run with (nothing inherited from the caller)."""
        return {
            "DESK_ENV": "production",
            "DESK_SECRET_KEY": "topology-secret-key-not-for-use-anywhere-else",
            "DESK_DATABASE_URL": self.config.database_url,
            "DESK_REDIS_URL": self.config.queue_url,
            "DESK_RATELIMIT_STORAGE_URL": self.config.limits_url,
            "DESK_INSTANCE_PATH": str(self.config.root / "instance"),
            "DESK_STORAGE_URL": str(self.storage_root),
            "DESK_SITE_URL": self.base_url,
            "DESK_TIMEZONE": "UTC",
            "DESK_MAIL_BACKEND": "smtp",
            "DESK_MAIL_SERVER": LOOPBACK,
            "DESK_MAIL_PORT": str(self.config.mail_port),
            "DESK_MAIL_TIMEOUT_SECONDS": "10",
            "DESK_MAIL_FROM": "desk@topology.test",
            # Every client comes from 127.0.0.1: a per-address limit would throttle them all
            # as one reader. The limits still count, in Redis.
            "DESK_FEEDBACK_RATE_LIMIT": "100000 per hour",
            **self.config.settings,
        }

    @property
    def env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("DESK_")}
        return {**inherited, **self.settings, "PYTHONUNBUFFERED": "1"}

    def migrate(self) -> None:
        run_checked([str(BIN / "desk"), "db", "upgrade"], env=self.env, timeout=180)

    def start(self) -> None:
        """Start the web server and the consumers; return once the site answers."""
        self.web = ManagedProcess(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "-w", str(self.WEB_WORKERS),
                "-b", f"{LOOPBACK}:{self.port}",
                "--timeout", "60",
                "--graceful-timeout", "5",
                "desk:create_app()",
            ],
            self.env,
            self.logs,
        ).start()  # fmt: skip
        for _ in range(self.CONSUMERS):
            self.start_worker()
        wait_until(self.ready, 90, f"gunicorn on {self.base_url}", every=0.3)

    def start_worker(self) -> ManagedProcess:
        self._worker_count += 1
        worker = ManagedProcess(
            f"worker-{self._worker_count}",
            [str(BIN / "desk"), "worker", "--workers", "2"],
            self.env,
            self.logs,
        ).start()
        self.workers.append(worker)
        return worker

    def ready(self) -> bool:
        """``/healthz`` answers 200 (or, while the app has none, the public profile list does)."""
        if self.web is None or not self.web.running:
            raise TopologyError(f"gunicorn exited:\n{self.web.log_tail() if self.web else ''}")
        status = http_status(self.port, "/healthz")
        if status == 404:
            status = http_status(self.port, "/profiles/")
        return status == 200

    def stop(self) -> None:
        for process in [*self.workers, self.web]:
            if process is not None:
                process.stop()

    def logs_text(self) -> str:
        """The end of every process's log, for a failing assertion's message."""
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} (last 3000 characters) ---\n{text[-3000:]}")
        return "\n".join(parts)

    def server_errors(self) -> list[str]:
        """Tracebacks the web server and the workers logged (a 500 leaves one)."""
        found = []
        for path in sorted(self.logs.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("Traceback") or "Exception on " in line:
                    found.append(f"{path.name}: {line}")
        return found


@contextlib.contextmanager
def running(topology: Topology) -> Iterator[Topology]:
    """Start the topology; stop every process on the way out, even after a failure."""
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()
