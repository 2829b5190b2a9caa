"""Full-text search over feedback: one way in, :func:`search_feedback`, on SQLite and PostgreSQL.

Each item keeps ``Feedback.search_text``: the words of its reference, subject, message,
submitter (name, email, organisation) and attachment names, lower-cased and without accents
("Côte d'Ivoire" is stored as ``cote d ivoire``). It is refreshed here before every flush that
changes one of those, so every channel (form, email-in, API, staff edits) keeps it right without
knowing about it. Folding in Python rather than with PostgreSQL's ``unaccent`` makes both
databases find exactly the same items, and needs no extension on the server.

The index over it (made by the migration, not by the models):

* SQLite: an FTS5 external-content table ``feedback_search`` over ``feedback.search_text``, kept
  in step by triggers on ``feedback``. A batch migration that rebuilds the ``feedback`` table on
  SQLite drops those triggers and must create them again.
* PostgreSQL: a GIN index on ``to_tsvector('simple', search_text)``; the ``simple``
  configuration has no stop words and no stemming, like FTS5's ``unicode61`` tokenizer.

A page of results is the newest matches first, cut like any inbox page. How SQLite finds
them depends on how many items match (see :data:`SQLITE_MANY_MATCHES`); PostgreSQL's planner
makes that choice itself, from its statistics of the index.

Whatever the user types is reduced to words before it reaches either database: quotes, ``-``,
``*``, brackets and operators are never passed through, so no input can be a syntax error. Every
word must match, as the start of a word ("munit" finds "munitions").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, UOWTransaction

from desk.core.db import Session as DeskSession
from desk.extensions import db
from desk.feedback.models import Attachment, Feedback

#: The SQLite FTS5 table and the shadow tables FTS5 keeps beside it.
FTS_TABLE = "feedback_search"
FTS_TABLES = frozenset(
    {FTS_TABLE, *(f"{FTS_TABLE}_{suffix}" for suffix in ("data", "idx", "docsize", "config"))}
)
#: The PostgreSQL GIN index on the search vector.
TSVECTOR_INDEX = "ix_feedback_search_text_tsvector"

#: On SQLite, a search matching more items than this is not answered by fetching every match
#: and sorting them (a lookup and a sort per match: with a common word and a million items, a
#: quarter of a million rows, 1.2 s, for a page of 50). The inbox looks for the page among the
#: newest items first (``desk.inbox.queries.inbox_page``); failing that, the list is walked
#: in page order and each row is looked up in the matches.
SQLITE_MANY_MATCHES = 2000

#: At most this many words of a query are used; each is cut to this many characters.
MAX_TERMS = 12
MAX_TERM_CHARS = 64

#: Letters that Unicode does not decompose into a base letter and an accent.
_LETTERS = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "æ": "ae",
        "Æ": "Ae",
        "œ": "oe",
        "Œ": "Oe",
        "ı": "i",
    }
)
#: A word: letters and digits (the underscore, which Python counts as a word character, is not).
_WORD = re.compile(r"[^\W_]+")

_TEXT_FIELDS = (
    "reference",
    "subject",
    "message",
    "submitter_name",
    "submitter_email",
    "submitter_organisation",
    "attachments",
)


def fold(text: str) -> str:
    """Lower case without accents: "Côte d’Ivoire" → "cote d’ivoire"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The folded words of a text; everything else (punctuation, operators, quotes) is dropped."""
    return _WORD.findall(fold(text))


def search_text_for(feedback: Feedback) -> str:
    """What the index holds for an item (bulk loaders that bypass the ORM call this too)."""
    parts: Iterable[str] = (
        feedback.reference or "",
        feedback.subject or "",
        feedback.message or "",
        feedback.submitter_name or "",
        feedback.submitter_email or "",
        feedback.submitter_organisation or "",
        *(attachment.original_filename for attachment in feedback.attachments),
    )
    return " ".join(words(" ".join(parts)))


def search_terms(query: str) -> list[str]:
    """The words of a user's query that are searched for (none: nothing to search)."""
    terms = [term[:MAX_TERM_CHARS] for term in words(query)]
    return list(dict.fromkeys(terms))[:MAX_TERMS]


_FTS = sa.table(FTS_TABLE, sa.column("rowid"))


def _fts_hits(terms: list[str]) -> sa.Select[Any]:
    """The ids of the items that have every term (as the start of a word), on SQLite."""
    match = " AND ".join(f'"{term}"*' for term in terms)
    return sa.select(_FTS.c.rowid).where(sa.literal_column(FTS_TABLE).op("MATCH")(match))


def _matches(terms: list[str], dialect: str) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        config = sa.literal_column("'simple'::regconfig")
        query = " & ".join(f"'{term}':*" for term in terms)
        vector = sa.func.to_tsvector(config, Feedback.search_text)
        return vector.op("@@")(sa.func.to_tsquery(config, query))
    hits = _fts_hits(terms)
    if _more_than(hits, SQLITE_MANY_MATCHES):
        # "id + 0" keeps SQLite from starting at the matches: it walks the list's own index
        # in page order and looks each row up in the matches (read once into a temporary
        # index), stopping when the page is full.
        return (Feedback.id + 0).in_(hits)
    return Feedback.id.in_(hits)


def _more_than(hits: sa.Select[Any], count: int) -> bool:
    """Whether the search matches more than ``count`` items, counting no further."""
    limited = hits.limit(count + 1).subquery()
    return (db.session.scalar(sa.select(sa.func.count()).select_from(limited)) or 0) > count


def search_feedback(statement: sa.Select[Any], query: str) -> sa.Select[Any]:
    """Narrow a select of Feedback to the items whose text has every word of ``query``.

    Any input is safe: it is reduced to words first. A query without a word (only punctuation)
    leaves the statement as it was.
    """
    terms = search_terms(query)
    if not terms:
        return statement
    return statement.where(_matches(terms, db.session.get_bind().dialect.name))


def has_many_matches(query: str) -> bool:
    """Whether a search is worth cutting into windows of ids (SQLite, many matches): see
    ``desk.inbox.queries.inbox_page``. PostgreSQL's planner needs no such help."""
    terms = search_terms(query)
    if not terms or db.session.get_bind().dialect.name != "sqlite":
        return False
    return _more_than(_fts_hits(terms), SQLITE_MANY_MATCHES)


def search_feedback_between(
    statement: sa.Select[Any], query: str, low_id: int, high_id: int
) -> sa.Select[Any]:
    """:func:`search_feedback` on SQLite, among the items whose ids are in a range only.

    FTS5 applies the range as it reads its lists: only the matches in it reach the query.
    """
    terms = search_terms(query)
    if not terms:
        return statement
    hits = _fts_hits(terms).where(_FTS.c.rowid.between(low_id, high_id))
    return statement.where(Feedback.id.in_(hits))


def include_in_schema_comparison(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object``: the search index is made by hand in its migration."""
    if type_ == "table" and name in FTS_TABLES:
        return False
    return not (type_ == "index" and name == TSVECTOR_INDEX)


def _changed(feedback: Feedback) -> bool:
    state = sa.inspect(feedback)
    return any(state.attrs[name].history.has_changes() for name in _TEXT_FIELDS)


def _refresh_search_text(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    """Before a flush, recompute the search text of every item whose words may have changed."""
    stale: dict[int, Feedback] = {}
    for obj in session.new:
        if isinstance(obj, Feedback):
            stale[id(obj)] = obj
    for obj in session.dirty:
        if isinstance(obj, Feedback) and _changed(obj):
            stale[id(obj)] = obj
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(obj, Attachment):
            parent = obj.feedback
            if parent is None and obj.feedback_id is not None:
                parent = session.get(Feedback, obj.feedback_id)
            if parent is not None and parent not in session.deleted:
                stale[id(parent)] = parent
    for feedback in stale.values():
        feedback.search_text = search_text_for(feedback)


sa.event.listen(DeskSession, "before_flush", _refresh_search_text)
