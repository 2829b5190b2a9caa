"""Add full-text search over feedback and the inbox indexes

``feedback.search_text`` holds each item's words, lower-cased and without accents (the app keeps
it up to date; existing rows are filled here). The index over it depends on the database:

* SQLite: an FTS5 external-content table ``feedback_search`` kept in step by three triggers on
  ``feedback``. A later batch migration that rebuilds ``feedback`` on SQLite drops the triggers:
  it must create them again (and rebuild the FTS table).
* PostgreSQL: a GIN index on ``to_tsvector('simple', search_text)``.

Both are left out of the models' comparison with the schema (see migrations/env.py).

Inbox indexes: ``feedback.duplicate_of_id`` (an item's page lists the items merged into it), and
(country, received) and (assignee, received), which the "My countries" and "Mine" pages walk in
order, one page at a time.

Revision ID: eedcec3518d2
Revises: 7a32cfe23eba
Create Date: 2026-11-29 14:10:13.411488
"""

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "eedcec3518d2"
down_revision = "7a32cfe23eba"
branch_labels = None
depends_on = None

BATCH = 2000

# The folding of desk.inbox.search as it was when this migration was written (a migration must
# not change meaning when the app's code does).
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
_WORD = re.compile(r"[^\W_]+")

SQLITE_DDL = [
    "CREATE VIRTUAL TABLE feedback_search USING fts5("
    "search_text, content='feedback', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER feedback_search_after_insert AFTER INSERT ON feedback BEGIN "
    "INSERT INTO feedback_search (rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER feedback_search_after_delete AFTER DELETE ON feedback BEGIN "
    "INSERT INTO feedback_search (feedback_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER feedback_search_after_update AFTER UPDATE OF search_text ON feedback BEGIN "
    "INSERT INTO feedback_search (feedback_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO feedback_search (rowid, search_text) VALUES (new.id, new.search_text); END",
    "INSERT INTO feedback_search (feedback_search) VALUES ('rebuild')",
]


def _words(text):
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _WORD.findall(folded)


def _fill_search_text(connection):
    feedback = sa.table(
        "feedback",
        sa.column("id"),
        sa.column("reference"),
        sa.column("subject"),
        sa.column("message"),
        sa.column("submitter_name"),
        sa.column("submitter_email"),
        sa.column("submitter_organisation"),
        sa.column("search_text"),
    )
    attachment = sa.table("attachment", sa.column("feedback_id"), sa.column("original_filename"))
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(feedback).where(feedback.c.id > last_id).order_by(feedback.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        ids = [row.id for row in rows]
        names = {}
        for feedback_id, filename in connection.execute(
            sa.select(attachment.c.feedback_id, attachment.c.original_filename).where(
                attachment.c.feedback_id.in_(ids)
            )
        ):
            names.setdefault(feedback_id, []).append(filename)
        connection.execute(
            feedback.update()
            .where(feedback.c.id == sa.bindparam("item_id"))
            .values(search_text=sa.bindparam("text")),
            [
                {
                    "item_id": row.id,
                    "text": " ".join(
                        _words(
                            " ".join(
                                [
                                    row.reference,
                                    row.subject,
                                    row.message,
                                    row.submitter_name,
                                    row.submitter_email,
                                    row.submitter_organisation,
                                    *names.get(row.id, []),
                                ]
                            )
                        )
                    ),
                }
                for row in rows
            ],
        )
        last_id = ids[-1]


def upgrade():
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), server_default="", nullable=False))
        batch_op.create_index(
            batch_op.f("ix_feedback_duplicate_of_id"), ["duplicate_of_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_feedback_country_id_received_at"),
            ["country_id", "received_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_feedback_assignee_id_received_at"),
            ["assignee_id", "received_at"],
            unique=False,
        )
    connection = op.get_bind()
    _fill_search_text(connection)
    if connection.dialect.name == "sqlite":
        for statement in SQLITE_DDL:
            op.execute(statement)
    elif connection.dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_feedback_search_text_tsvector ON feedback "
            "USING gin (to_tsvector('simple'::regconfig, search_text))"
        )


def downgrade():
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        for trigger in ("after_insert", "after_delete", "after_update"):
            op.execute(f"DROP TRIGGER IF EXISTS feedback_search_{trigger}")
        op.execute("DROP TABLE IF EXISTS feedback_search")
    elif connection.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_feedback_search_text_tsvector")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_assignee_id_received_at"))
        batch_op.drop_index(batch_op.f("ix_feedback_country_id_received_at"))
        batch_op.drop_index(batch_op.f("ix_feedback_duplicate_of_id"))
        batch_op.drop_column("search_text")
