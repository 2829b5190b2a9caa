"""The migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from desk.extensions import db
from desk.inbox.search import include_in_schema_comparison


def test_models_and_migrations_do_not_drift(app):
    # The session's own connection: a second one would wait on the test's open transaction.
    # As migrations/env.py does: the full-text search index is made by hand, not by models.
    context = MigrationContext.configure(
        db.session.connection(),
        opts={"compare_type": True, "include_object": include_in_schema_comparison},
    )
    assert compare_metadata(context, db.metadata) == []


def test_upgrade_builds_an_empty_database_from_nothing(tmp_path):
    from desk import create_app

    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    app = create_app(
        {"DESK_DATABASE_URL": url, "DESK_INSTANCE_PATH": str(tmp_path), "DESK_SECRET_KEY": "k"}
    )
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    check = app.test_cli_runner().invoke(args=["db", "check"])
    assert check.exit_code == 0, check.output
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
    assert {"country", "profile", "section", "section_revision", "user"} <= tables
    assert "alembic_version" in tables
