"""Pieces every benchmark shares: a gunicorn server and a bounded HTTP load generator.

Everything here talks to 127.0.0.1 only and ends by itself:

* :func:`free_port` asks the kernel for an unused loopback port.
* :class:`GunicornServer` starts gunicorn on a WSGI target with N workers, in a process group of
  its own, waits until a path answers, and stops it: SIGTERM (gunicorn's graceful shutdown),
  then SIGKILL of its group if it has not exited in time. It can also tell how much CPU its
  workers have used, which is steadier than wall-clock rates on a busy machine.
* :func:`run_load` drives one endpoint from several client processes (each with one or more
  threads) for a fixed duration or a fixed number of requests. Every request opens a fresh
  HTTP/1.1 connection with :mod:`http.client`, sends ``Connection: close`` (a sync gunicorn
  worker closes after each response anyway) and has a socket timeout. Responses whose status
  the endpoint does not expect (by default anything outside 2xx/3xx) and failed connections
  count as errors. The client processes start together at an agreed wall-clock instant, stop at
  an agreed one, and are terminated if they have not reported shortly after it.
* :func:`run_rounds` interleaves several endpoints A/B/C/A/B/C… so that a noisy neighbour or a
  CPU frequency change hurts them all alike, and :meth:`LoadResult.pooled` adds the rounds up.
* For benches that measure Desk at a given size inside this process: :func:`seeded_desk` gives
  an app whose database seed-scale filled to N items (reusing one already that size),
  :func:`database_url_for` names one database per size, :func:`log_in` logs a test client in,
  and :func:`interleaved_times` times several calls alternately.

Client processes are forked, so ``run_load`` must be called while the caller runs no threads
of its own.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import multiprocessing
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

LOOPBACK = "127.0.0.1"
#: Seconds the parent waits for client processes after the agreed stop, on top of the timeout.
_REPORT_GRACE = 5.0


class ServerError(RuntimeError):
    """gunicorn did not start, or did not answer in time."""


class LoadError(RuntimeError):
    """The load generator's clients did not report in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def fetch(
    port: int,
    path: str,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "GET",
    timeout: float = 5.0,
) -> Reply:
    """One request on a fresh connection to 127.0.0.1, read to the end."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request(method, path, headers={**(headers or {}), "Connection": "close"})
        response = connection.getresponse()
        body = response.read()
        return Reply(response.status, response.headers, body)
    finally:
        connection.close()


# --------------------------------------------------------------------------------------------
# Server


class GunicornServer:
    """gunicorn serving ``target`` ("package.module:app") on a free loopback port.

    Use as a context manager; the server is stopped on exit whatever happened inside.
    """

    def __init__(
        self,
        target: str,
        *,
        workers: int = 2,
        worker_class: str = "sync",
        chdir: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/",
        ready_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.workers = workers
        self.worker_class = worker_class
        self.chdir = chdir
        self.env = dict(env) if env is not None else None
        self.ready_path = ready_path
        self.ready_timeout = ready_timeout
        self.extra_args = list(extra_args)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> GunicornServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{LOOPBACK}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--log-level",
            "warning",
            "--error-logfile",
            "-",
            "--graceful-timeout",
            "5",
            "--timeout",
            "30",
            *(["--chdir", str(self.chdir)] if self.chdir is not None else []),
            *self.extra_args,
            self.target,
        ]

    def start(self) -> GunicornServer:
        """Start gunicorn and return once ``ready_path`` answers with a 2xx or 3xx status."""
        for _attempt in range(3):
            self.port = free_port()
            if self._log is not None:
                self._log.close()
            # Kept open after stop() so the log can still be read; closed on the next start.
            self._log = tempfile.TemporaryFile()  # noqa: SIM115
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
            try:
                self._wait_until_ready()
            except ServerError:
                self.stop()
                # Another process may have taken the port between our probe and gunicorn's bind.
                if "already in use" in self.log_text():
                    continue
                raise
            return self
        raise ServerError(f"gunicorn could not bind a free port:\n{self.log_text()[-4000:]}")

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise ServerError(
                    f"gunicorn exited with status {code} before answering:\n"
                    f"{self.log_text()[-4000:]}"
                )
            try:
                reply = fetch(self.port, self.ready_path, timeout=2.0)
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if 200 <= reply.status < 400:
                    return
                last = f"HTTP {reply.status}"
            time.sleep(0.1)
        raise ServerError(
            f"gunicorn did not answer {self.ready_path} within {self.ready_timeout:g} s "
            f"(last: {last}):\n{self.log_text()[-4000:]}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown; SIGKILL of the server's own process group if it lingers."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                # The group was created for this server by start_new_session: it is ours.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self._process = None

    def log_text(self) -> str:
        """What gunicorn has written so far (warnings, errors, tracebacks)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0, os.SEEK_END)
        return text

    def worker_pids(self) -> list[int]:
        """The master's current child processes (its workers), read from /proc."""
        if self._process is None:
            return []
        master = self._process.pid
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            stat = _read_stat(entry / "stat")
            if stat is not None and int(stat[1]) == master:
                children.append(int(entry.name))
        return children

    def cpu_seconds(self) -> float | None:
        """User + system CPU time used so far by the master and its live workers (Linux)."""
        if self._process is None or not Path("/proc/self/stat").exists():
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in [self._process.pid, *self.worker_pids()]:
            stat = _read_stat(Path(f"/proc/{pid}/stat"))
            if stat is not None:
                # Fields 14 and 15 of proc(5), counted from 1: utime and stime, in clock ticks.
                total += (int(stat[11]) + int(stat[12])) / ticks
        return total


def _read_stat(path: Path) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None if the process is gone."""
    try:
        raw = path.read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return raw[raw.rfind(")") + 2 :].split()


# --------------------------------------------------------------------------------------------
# Load


@dataclass(frozen=True)
class Endpoint:
    """What the clients request, and which statuses count as success."""

    label: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    #: Statuses that count as success; None means any 2xx or 3xx.
    expect: tuple[int, ...] | None = None

    def accepts(self, status: int) -> bool:
        if self.expect is None:
            return 200 <= status < 400
        return status in self.expect


@dataclass
class LoadResult:
    label: str
    ok: int = 0
    errors: int = 0
    #: Seconds of load: from the agreed start to the last client's stop, summed over rounds.
    elapsed: float = 0.0
    bytes_received: int = 0
    #: Seconds per successful request.
    latencies: array[float] = field(default_factory=lambda: array("d"))
    error_kinds: Counter[str] = field(default_factory=Counter)
    #: CPU seconds the server spent meanwhile, when known.
    server_cpu: float | None = None
    clients: int = 0

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile latency in seconds (linear interpolation), NaN if none."""
        return percentile(self.latencies, q)

    @property
    def server_cpu_per_request(self) -> float | None:
        if self.server_cpu is None or not self.ok + self.errors:
            return None
        return self.server_cpu / (self.ok + self.errors)

    @classmethod
    def pooled(cls, results: Iterable[LoadResult]) -> LoadResult:
        """Consecutive runs of one endpoint added up: requests, time, latencies, CPU."""
        results = list(results)
        total = cls(
            results[0].label if results else "",
            clients=max((result.clients for result in results), default=0),
        )
        cpu: float | None = 0.0
        for result in results:
            total.ok += result.ok
            total.errors += result.errors
            total.elapsed += result.elapsed
            total.bytes_received += result.bytes_received
            total.latencies.extend(result.latencies)
            total.error_kinds.update(result.error_kinds)
            cpu = None if cpu is None or result.server_cpu is None else cpu + result.server_cpu
        total.server_cpu = cpu
        return total


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class _Partial:
    ok: int
    errors: int
    bytes_received: int
    latencies: array[float]
    error_kinds: Counter[str]
    ended_at: float


def _client_thread(
    port: int,
    endpoint: Endpoint,
    start_at: float,
    stop_at: float,
    quota: int | None,
    timeout: float,
    out: list[_Partial],
) -> None:
    headers = {**dict(endpoint.headers), "Connection": "close"}
    latencies: array[float] = array("d")
    kinds: Counter[str] = Counter()
    ok = errors = received = sent = 0
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    while (quota is None or sent < quota) and time.time() < stop_at:
        sent += 1
        began = time.perf_counter()
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        try:
            connection.request(endpoint.method, endpoint.path, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            errors += 1
            kinds[type(exc).__name__] += 1
            time.sleep(0.001)  # no hot loop against a refusing port
            continue
        finally:
            connection.close()
        took = time.perf_counter() - began
        if endpoint.accepts(response.status):
            ok += 1
            received += len(body)
            latencies.append(took)
        else:
            errors += 1
            kinds[f"HTTP {response.status}"] += 1
    out.append(_Partial(ok, errors, received, latencies, kinds, time.time()))


def _client_process(
    port: int,
    endpoint: Endpoint,
    quotas: list[int | None],
    start_at: float,
    stop_at: float,
    timeout: float,
    results: Any,
) -> None:
    parts: list[_Partial] = []
    threads = [
        threading.Thread(
            target=_client_thread,
            args=(port, endpoint, start_at, stop_at, quota, timeout, parts),
            daemon=True,
        )
        for quota in quotas
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, stop_at - time.time()) + timeout + 1)
    results.put(parts)


def run_load(
    port: int,
    endpoint: Endpoint,
    *,
    processes: int = 4,
    threads: int = 1,
    seconds: float | None = None,
    requests: int | None = None,
    timeout: float = 5.0,
    max_seconds: float = 120.0,
    start_delay: float = 0.2,
) -> LoadResult:
    """Load ``endpoint`` from ``processes × threads`` concurrent clients.

    Stops after ``seconds``, or once ``requests`` requests were sent in all (split evenly over
    the clients), and in any case after ``max_seconds``. Requests/s counts successful responses
    over the time from the agreed start to the moment the last client stopped.
    """
    if seconds is None and requests is None:
        raise ValueError("run_load needs seconds or requests")
    if processes < 1 or threads < 1:
        raise ValueError("run_load needs at least one process and one thread")
    clients = processes * threads
    duration = min(seconds, max_seconds) if seconds is not None else max_seconds
    if requests is None:
        quotas: list[int | None] = [None] * clients
    else:
        share, extra = divmod(requests, clients)
        quotas = [share + (1 if i < extra else 0) for i in range(clients)]
    start_at = time.time() + start_delay
    stop_at = start_at + duration
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [
        context.Process(
            target=_client_process,
            args=(
                port,
                endpoint,
                quotas[i * threads : (i + 1) * threads],
                start_at,
                stop_at,
                timeout,
                results,
            ),
            daemon=True,
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    deadline = stop_at + timeout + _REPORT_GRACE
    parts: list[_Partial] = []
    try:
        for _ in workers:
            parts.extend(results.get(timeout=max(0.1, deadline - time.time())))
    except queue.Empty:
        raise LoadError(f"load clients for {endpoint.label} did not report in time") from None
    finally:
        for worker in workers:
            worker.join(max(0.1, deadline - time.time()))
            if worker.is_alive():
                worker.terminate()
                worker.join(1)
        results.close()
    result = LoadResult(endpoint.label, clients=clients)
    for part in parts:
        result.ok += part.ok
        result.errors += part.errors
        result.bytes_received += part.bytes_received
        result.latencies.extend(part.latencies)
        result.error_kinds.update(part.error_kinds)
    result.elapsed = max((part.ended_at for part in parts), default=start_at) - start_at
    return result


def run_rounds(
    server: GunicornServer,
    endpoints: Sequence[Endpoint],
    *,
    rounds: int,
    seconds: float,
    **load_options: Any,
) -> dict[str, list[LoadResult]]:
    """Each endpoint for ``seconds``, in turn, ``rounds`` times (A/B/C/A/B/C…).

    Each run also records the server's CPU time, so CPU per request can be compared.
    """
    runs: dict[str, list[LoadResult]] = {endpoint.label: [] for endpoint in endpoints}
    for _round in range(rounds):
        for endpoint in endpoints:
            cpu_before = server.cpu_seconds()
            result = run_load(server.port, endpoint, seconds=seconds, **load_options)
            cpu_after = server.cpu_seconds()
            if cpu_before is not None and cpu_after is not None:
                result.server_cpu = max(0.0, cpu_after - cpu_before)
            runs[endpoint.label].append(result)
    return runs


# --------------------------------------------------------------------------------------------
# Desks seeded to a size, measured in this process
#
# Desk itself is imported inside these functions: the load generator above runs in forked
# client processes that have no use for the whole application.


def size_label(count: int) -> str:
    """A size as people say it and database names carry it: 10000 → "10k", 1000000 → "1m"."""
    for factor, suffix in ((1_000_000, "m"), (1_000, "k")):
        if count >= factor and count % factor == 0:
            return f"{count // factor}{suffix}"
    return str(count)


def database_url_for(template: str | None, workdir: Path, count: int) -> str:
    """The database of one size: ``{size}`` in ``template`` becomes its label ("10k"); without
    it, the label is added to the database's name. No template: a SQLite file in ``workdir``."""
    import sqlalchemy as sa

    label = size_label(count)
    if template is None:
        return f"sqlite:///{workdir / f'desk-{label}.sqlite3'}"
    if "{size}" in template:
        return template.replace("{size}", label)
    url = sa.make_url(template)
    return url.set(database=f"{url.database}_{label}").render_as_string(hide_password=False)


def ensure_postgres_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names unless it exists; True if it was created.

    SQLite makes its file on first use; other databases are left to their owner.
    """
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return False
    engine = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": parsed.database},
            )
            if not exists:
                quoted = connection.dialect.identifier_preparer.quote(parsed.database)
                connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
            return not exists
    finally:
        engine.dispose()


def desk_settings(database_url: str, instance_path: Path, secret: str) -> dict[str, Any]:
    """Settings of a Desk app for a bench: testing mode, its own instance folder, no CSRF."""
    return {
        "DESK_ENV": "testing",
        "DESK_SECRET_KEY": secret,
        "DESK_INSTANCE_PATH": str(instance_path),
        "DESK_DATABASE_URL": database_url,
        "WTF_CSRF_ENABLED": False,
    }


def seeded_desk(settings: Mapping[str, Any], count: int) -> tuple[Any, str]:
    """A Desk app whose database holds ``count`` seed-scale items, and a note of how it got them.

    The schema is migrated first. An empty database is seeded; one that already holds
    ``count`` items is used as it is, so a re-run does not wait for a million rows again; one
    that a killed seed-scale left short is topped up with ``--append``. Anything else (more
    items, or items seed-scale did not make) stops the bench rather than measure the wrong size.
    """
    import flask_migrate
    import sqlalchemy as sa

    from desk import create_app
    from desk.accounts.models import User
    from desk.extensions import db
    from desk.feedback.models import Feedback
    from desk.scale import STAFF_DOMAIN, seed_scale

    app = create_app(dict(settings))
    with app.app_context():
        flask_migrate.upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        held = db.session.scalar(sa.select(sa.func.count()).select_from(Feedback)) or 0
        seeded = db.session.scalar(
            sa.select(sa.func.count()).where(User.email.like(f"%@{STAFF_DOMAIN}"))
        )
        if held == count:
            return app, f"database already holds {held:,} items (seed-scale not run)"
        if held > count or (held and not seeded):
            raise SystemExit(
                f"{settings['DESK_DATABASE_URL']} holds {held:,} items, not the {count:,} "
                "seed-scale would make: give an empty database or one of that size"
            )
        label = f"seed-scale --feedback {count - held:,}" + (" --append" if held else "")
        result = seed_scale(
            count - held,
            append=bool(held),
            progress=lambda text: print(f"  {label}: {text}", end="\r", flush=True),
        )
        print()
        s = result.seconds
        return app, (
            f"{label}: {s['total']:.1f} s (generate {s['generate']:.1f} s, write "
            f"{s['write']:.1f} s, analyze {s['analyze']:.1f} s)"
        )


def log_in(client: Any, email: str, password: str) -> None:
    """Log a Flask test client in through the login form, as a person would."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token.group(1) if token else ""},
    )
    if response.status_code != 302:
        raise SystemExit(f"could not log in as {email} (status {response.status_code})")


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds one call of ``fn`` takes."""
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def interleaved_times(
    measures: Mapping[str, Callable[[], object]], *, rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Each measure timed ``rounds`` times, A/B/C/A/B/C…, after ``warmup`` untimed rounds, so
    that a busy neighbour slows them all alike (compare their medians)."""
    for _round in range(warmup):
        for fn in measures.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in measures}
    for _round in range(rounds):
        for name, fn in measures.items():
            times[name].append(timed(fn))
    return times
