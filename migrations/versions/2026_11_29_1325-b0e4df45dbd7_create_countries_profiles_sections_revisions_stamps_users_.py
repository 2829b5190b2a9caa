"""Create countries, profiles, sections, revisions, stamps, users and the audit trail

Revision ID: b0e4df45dbd7
Revises:
Create Date: 2026-11-29 13:25:30.734163
"""

import sqlalchemy as sa
from alembic import op

revision = "b0e4df45dbd7"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "country",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=2), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_country")),
        sa.UniqueConstraint("code", name=op.f("uq_country_code")),
        sa.UniqueConstraint("slug", name=op.f("uq_country_slug")),
    )
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum("editor", "manager", "admin", name="role", native_enum=False),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint("email", name=op.f("uq_user_email")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user.id"], name=op.f("fk_audit_event_actor_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_event_object_type_object_id"),
            ["object_type", "object_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_audit_event_request_id"), ["request_id"], unique=False)

    op.create_table(
        "country_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.Column("is_lead", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["country_id"], ["country.id"], name=op.f("fk_country_assignment_country_id_country")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_country_assignment_user_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_country_assignment")),
        sa.UniqueConstraint(
            "user_id", "country_id", name=op.f("uq_country_assignment_user_id_country_id")
        ),
    )
    with op.batch_alter_table("country_assignment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_country_assignment_country_id"), ["country_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_country_assignment_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("topic_slug", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("last_updated_on", sa.Date(), nullable=True),
        sa.Column("reviewed_on", sa.Date(), nullable=True),
        sa.Column("is_published", sa.Boolean(), nullable=False),
        sa.Column("content_version", sa.Integer(), nullable=False),
        sa.Column("content_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["country_id"], ["country.id"], name=op.f("fk_profile_country_id_country")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile")),
        sa.UniqueConstraint(
            "country_id",
            "topic_slug",
            "language",
            name=op.f("uq_profile_country_id_topic_slug_language"),
        ),
    )
    with op.batch_alter_table("profile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_profile_country_id"), ["country_id"], unique=False)

    op.create_table(
        "profile_update",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("stamped_on", sa.Date(), nullable=False),
        sa.Column("change_note", sa.Text(), nullable=False),
        sa.Column("is_manual", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_profile_update_created_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profile.id"], name=op.f("fk_profile_update_profile_id_profile")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_update")),
    )
    with op.batch_alter_table("profile_update", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_profile_update_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "section",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("anchor", sa.String(length=200), nullable=False),
        sa.Column("heading", sa.String(length=300), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column(
            "kind", sa.Enum("text", "field", name="sectionkind", native_enum=False), nullable=False
        ),
        sa.Column("current_revision_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profile.id"], name=op.f("fk_section_profile_id_profile")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_section")),
        sa.UniqueConstraint("profile_id", "anchor", name=op.f("uq_section_profile_id_anchor")),
    )
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_section_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "section_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("heading", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("base_revision_id", sa.Integer(), nullable=True),
        sa.Column("change_note", sa.Text(), nullable=False),
        sa.Column(
            "update_type",
            sa.Enum("major", "minor", name="updatetype", native_enum=False),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "submitted",
                "approved",
                "rejected",
                "superseded",
                name="revisionstate",
                native_enum=False,
            ),
            nullable=False,
        ),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("profile_update_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["user.id"], name=op.f("fk_section_revision_author_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["base_revision_id"],
            ["section_revision.id"],
            name=op.f("fk_section_revision_base_revision_id_section_revision"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["user.id"], name=op.f("fk_section_revision_decided_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["profile_update_id"],
            ["profile_update.id"],
            name=op.f("fk_section_revision_profile_update_id_profile_update"),
        ),
        sa.ForeignKeyConstraint(
            ["section_id"], ["section.id"], name=op.f("fk_section_revision_section_id_section")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_section_revision")),
        sa.UniqueConstraint(
            "section_id", "number", name=op.f("uq_section_revision_section_id_number")
        ),
    )
    with op.batch_alter_table("section_revision", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_section_revision_profile_update_id"), ["profile_update_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_section_revision_section_id"), ["section_id"], unique=False
        )

    # section and section_revision point at each other: the second link is added once both exist.
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_section_current_revision_id_section_revision"),
            "section_revision",
            ["current_revision_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_section_current_revision_id_section_revision"), type_="foreignkey"
        )
    with op.batch_alter_table("section_revision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_section_revision_section_id"))
        batch_op.drop_index(batch_op.f("ix_section_revision_profile_update_id"))

    op.drop_table("section_revision")
    with op.batch_alter_table("section", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_section_profile_id"))

    op.drop_table("section")
    with op.batch_alter_table("profile_update", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_update_profile_id"))

    op.drop_table("profile_update")
    with op.batch_alter_table("profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_country_id"))

    op.drop_table("profile")
    with op.batch_alter_table("country_assignment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_country_assignment_user_id"))
        batch_op.drop_index(batch_op.f("ix_country_assignment_country_id"))

    op.drop_table("country_assignment")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_request_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_object_type_object_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_actor_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))

    op.drop_table("audit_event")
    op.drop_table("user")
    op.drop_table("country")
