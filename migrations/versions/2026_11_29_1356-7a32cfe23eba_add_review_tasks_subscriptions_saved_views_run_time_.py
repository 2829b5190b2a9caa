"""Add review tasks, subscriptions, saved views, run-time settings and notification modes

Revision ID: 7a32cfe23eba
Revises: 4053c869c9c2
Create Date: 2026-11-29 13:56:45.001349
"""

import sqlalchemy as sa
from alembic import op

revision = "7a32cfe23eba"
down_revision = "4053c869c9c2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "saved_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_saved_view_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_view")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_saved_view_user_id_name")),
    )
    op.create_table(
        "setting",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["user.id"], name=op.f("fk_setting_updated_by_id_user")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_setting")),
    )
    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column(
            "frequency",
            sa.Enum("immediate", "daily", "weekly", name="frequency", native_enum=False),
            nullable=False,
        ),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_reason", sa.String(length=60), nullable=False),
        sa.Column("digested_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profile.id"], name=op.f("fk_subscription_profile_id_profile")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription")),
    )
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscription_email"), ["email"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_subscription_profile_id_confirmed_at"),
            ["profile_id", "confirmed_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_subscription_active_email_profile",
            ["email", "profile_id"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    op.create_table(
        "review_task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "in_progress",
                "submitted",
                "changes_requested",
                "approved",
                "cancelled",
                name="taskstate",
                native_enum=False,
            ),
            nullable=False,
        ),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["user.id"], name=op.f("fk_review_task_assignee_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["user.id"], name=op.f("fk_review_task_created_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profile.id"], name=op.f("fk_review_task_profile_id_profile")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["user.id"], name=op.f("fk_review_task_reviewer_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["section_id"], ["section.id"], name=op.f("fk_review_task_section_id_section")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_task")),
    )
    with op.batch_alter_table("review_task", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_task_assignee_id_state"), ["assignee_id", "state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_review_task_profile_id_state"), ["profile_id", "state"], unique=False
        )
        batch_op.create_index(
            "uq_review_task_open_section",
            ["section_id"],
            unique=True,
            sqlite_where=sa.text(
                "state IN ('open', 'in_progress', 'submitted', 'changes_requested')"
            ),
            postgresql_where=sa.text(
                "state IN ('open', 'in_progress', 'submitted', 'changes_requested')"
            ),
        )

    op.create_table(
        "review_task_feedback",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feedback_id"],
            ["feedback.id"],
            name=op.f("fk_review_task_feedback_feedback_id_feedback"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["review_task.id"],
            name=op.f("fk_review_task_feedback_task_id_review_task"),
        ),
        sa.PrimaryKeyConstraint("task_id", "feedback_id", name=op.f("pk_review_task_feedback")),
    )
    with op.batch_alter_table("review_task_feedback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_task_feedback_feedback_id"), ["feedback_id"], unique=False
        )

    with op.batch_alter_table("section_revision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_section_revision_task_id"), ["task_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_section_revision_task_id_review_task"),
            "review_task",
            ["task_id"],
            ["id"],
        )

    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "notification_mode",
                sa.Enum("immediate", "daily_digest", name="notificationmode", native_enum=False),
                server_default="immediate",
                nullable=False,
            )
        )


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("notification_mode")

    with op.batch_alter_table("section_revision", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_section_revision_task_id_review_task"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_section_revision_task_id"))
        batch_op.drop_column("task_id")

    with op.batch_alter_table("review_task_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_task_feedback_feedback_id"))

    op.drop_table("review_task_feedback")
    with op.batch_alter_table("review_task", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_review_task_open_section",
            sqlite_where=sa.text(
                "state IN ('open', 'in_progress', 'submitted', 'changes_requested')"
            ),
            postgresql_where=sa.text(
                "state IN ('open', 'in_progress', 'submitted', 'changes_requested')"
            ),
        )
        batch_op.drop_index(batch_op.f("ix_review_task_profile_id_state"))
        batch_op.drop_index(batch_op.f("ix_review_task_assignee_id_state"))

    op.drop_table("review_task")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_subscription_active_email_profile",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_subscription_profile_id_confirmed_at"))
        batch_op.drop_index(batch_op.f("ix_subscription_email"))

    op.drop_table("subscription")
    op.drop_table("setting")
    op.drop_table("saved_view")
