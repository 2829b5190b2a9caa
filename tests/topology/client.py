"""Virtual users for the smoke and fault tests: bench/load.py's, a few at a time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp

from bench.load import Recorder, User
from tests.topology.services import MailSink

#: Long enough that a hung request is told apart from a slow one, short enough to end a test.
REQUEST_TIMEOUT = 30.0


@asynccontextmanager
async def user_factory(
    base_url: str, recorder: Recorder | None = None
) -> AsyncIterator[Callable[[], User]]:
    """Make users (each with its own cookies) that share one connector and one recorder."""
    recorder = recorder or Recorder()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    made: list[User] = []

    def new_user() -> User:
        made.append(User(base_url, connector, recorder, REQUEST_TIMEOUT))
        return made[-1]

    try:
        yield new_user
    finally:
        for user in made:
            await user.close()
        await connector.close()


def ack_message_id(reference: str) -> str:
    """The Message-ID Desk gives an acknowledgement (desk/feedback/operations.py)."""
    return f"<ack.{reference}@topology.test>"


def wait_for_acknowledgements(
    sink: MailSink, expected: dict[str, str], timeout: float
) -> dict[tuple[str, str], int]:
    """Wait until every (email, reference) pair's acknowledgement arrived, or the timeout.

    Returns how many copies of each expected acknowledgement arrived, a moment after the last
    (so that a late duplicate is seen too).
    """
    wanted = {(email.lower(), ack_message_id(ref)) for ref, email in expected.items()}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not wanted <= set(sink.copies()):
        time.sleep(0.5)
    time.sleep(3)
    copies = sink.copies()
    return {key: copies.get(key, 0) for key in wanted}
