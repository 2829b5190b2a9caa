"""What the tests assert about the database and the storage folder once the processes are done.

Read with plain SQL over psycopg, not through the app: these checks must not share the code or
the session state they are checking.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa

from bench.load import Submission


def libpq_url(database_url: str) -> str:
    """A psycopg connection string from Desk's SQLAlchemy URL."""
    return sa.make_url(database_url).set(drivername="postgresql").render_as_string(False)


@dataclass(frozen=True)
class StoredFile:
    reference: str
    name: str
    size: int
    sha256: str
    storage_key: str


def stored_files(database_url: str) -> dict[str, list[StoredFile]]:
    """Every feedback item's reference with its accepted attachments (an item without: [])."""
    query = """
        SELECT f.reference, a.original_filename, a.size, a.sha256, a.storage_key
        FROM feedback f LEFT JOIN attachment a
          ON a.feedback_id = f.id AND a.rejection_reason = ''
        ORDER BY f.reference, a.id
    """
    items: dict[str, list[StoredFile]] = {}
    with psycopg.connect(libpq_url(database_url)) as connection:
        for reference, name, size, sha256, key in connection.execute(query):
            files = items.setdefault(reference, [])
            if key is not None:
                files.append(StoredFile(reference, name, size, sha256, key))
    return items


def file_problem(root: Path, stored: StoredFile) -> str | None:
    """Why an attachment row's file is not right in storage, or None if it is."""
    path = root / stored.storage_key
    if not path.is_file():
        return f"{stored.reference}: {stored.name} has no file at {stored.storage_key}"
    content = path.read_bytes()
    if len(content) != stored.size or hashlib.sha256(content).hexdigest() != stored.sha256:
        return f"{stored.reference}: {stored.name} differs from its row"
    return None


def lost_submissions(
    accepted: Iterable[Submission], items: dict[str, list[StoredFile]], root: Path
) -> list[str]:
    """Accepted submissions that are not in the database with every file sent, intact."""
    lost = []
    for submission in accepted:
        files = items.get(submission.reference)
        if files is None:
            lost.append(f"{submission.reference}: no such item")
            continue
        sent = sorted((f.name, f.size, f.sha256) for f in submission.files)
        kept = sorted((f.name, f.size, f.sha256) for f in files)
        if sent != kept:
            lost.append(f"{submission.reference}: sent {sent}, stored {kept}")
            continue
        lost.extend(problem for f in files if (problem := file_problem(root, f)))
    return lost


def half_written_items(items: dict[str, list[StoredFile]], root: Path) -> list[str]:
    """Items without any file (every test submission has at least one) or with a missing file."""
    problems = [f"{reference}: no attachment" for reference, files in items.items() if not files]
    for files in items.values():
        problems.extend(problem for f in files if (problem := file_problem(root, f)))
    return problems


def orphan_files(items: dict[str, list[StoredFile]], root: Path) -> set[str]:
    """Files in storage that no attachment row names."""
    referenced = {f.storage_key for files in items.values() for f in files}
    present = {
        path.relative_to(root).as_posix()
        for path in (root.rglob("*") if root.exists() else [])
        if path.is_file()
    }
    return present - referenced


def outbox_states(database_url: str) -> dict[str, int]:
    with psycopg.connect(libpq_url(database_url)) as connection:
        rows = connection.execute("SELECT state, count(*) FROM outbox_message GROUP BY state")
        return {str(state): int(count) for state, count in rows}


def claimed_but_unsent(database_url: str) -> int:
    """Outbox messages a worker claimed (an attempt counted) that are not yet sent."""
    query = "SELECT count(*) FROM outbox_message WHERE state = 'pending' AND attempts > 0"
    with psycopg.connect(libpq_url(database_url)) as connection:
        row = connection.execute(query).fetchone()
        return int(row[0]) if row else 0
