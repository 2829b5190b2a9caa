"""Add feedback items, attachments, their timeline, reference counters, the outbox,
and per-country auto-assign.

Revision ID: 4053c869c9c2
Revises: b0e4df45dbd7
Create Date: 2026-11-29 13:43:03.360233
"""

import sqlalchemy as sa
from alembic import op

revision = "4053c869c9c2"
down_revision = "b0e4df45dbd7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column(
            "state",
            sa.Enum("pending", "sent", "failed", "dead", name="outboxstate", native_enum=False),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_message_dedupe_key")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_message_id")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_message_kind"), ["kind"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbox_message_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "reference_counter",
        sa.Column("prefix", sa.String(length=4), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name=op.f("pk_reference_counter")),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=True),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("section_id", sa.Integer(), nullable=True),
        sa.Column(
            "channel",
            sa.Enum("web", "email", "api", name="channel", native_enum=False),
            nullable=False,
        ),
        sa.Column("submitter_name", sa.String(length=200), nullable=False),
        sa.Column("submitter_email", sa.String(length=254), nullable=False),
        sa.Column("submitter_organisation", sa.String(length=200), nullable=False),
        sa.Column("wants_resolution_notice", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "new", "triaged", "in_review", "closed", name="feedbackstatus", native_enum=False
            ),
            nullable=False,
        ),
        sa.Column(
            "resolution",
            sa.Enum(
                "updated", "no_action", "duplicate", "spam", name="resolution", native_enum=False
            ),
            nullable=True,
        ),
        sa.Column("resolution_note", sa.Text(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("duplicate_of_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_quarantined", sa.Boolean(), nullable=False),
        sa.Column("spam_score", sa.Double(), nullable=False),
        sa.Column("spam_reasons", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("email_message_id", sa.String(length=300), nullable=False),
        sa.Column("form_nonce", sa.String(length=32), nullable=False),
        sa.Column("submitter_ip", sa.String(length=45), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["user.id"], name=op.f("fk_feedback_assignee_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["country_id"], ["country.id"], name=op.f("fk_feedback_country_id_country")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"], ["feedback.id"], name=op.f("fk_feedback_duplicate_of_id_feedback")
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profile.id"], name=op.f("fk_feedback_profile_id_profile")
        ),
        sa.ForeignKeyConstraint(
            ["section_id"], ["section.id"], name=op.f("fk_feedback_section_id_section")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("reference", name=op.f("uq_feedback_reference")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feedback_assignee_id_status_received_at"),
            ["assignee_id", "status", "received_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_feedback_content_hash"), ["content_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_feedback_country_id_status_received_at"),
            ["country_id", "status", "received_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_feedback_email_message_id"), ["email_message_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_feedback_form_nonce"), ["form_nonce"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_feedback_is_quarantined_received_at"),
            ["is_quarantined", "received_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_feedback_profile_id"), ["profile_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_section_id"), ["section_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_feedback_submitter_email"), ["submitter_email"], unique=False
        )

    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column("original_filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=120), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column(
            "scan_status",
            sa.Enum(
                "pending", "clean", "infected", "skipped", name="scanstatus", native_enum=False
            ),
            nullable=False,
        ),
        sa.Column("rejection_reason", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["feedback_id"], ["feedback.id"], name=op.f("fk_attachment_feedback_id_feedback")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attachment_feedback_id"), ["feedback_id"], unique=False
        )

    op.create_table(
        "feedback_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feedback_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "received",
                "routed",
                "assigned",
                "status_changed",
                "note",
                "reply_sent",
                "reply_received",
                "linked_to_task",
                "merged",
                "reopened",
                "quarantined",
                "released",
                name="eventkind",
                native_enum=False,
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["user.id"], name=op.f("fk_feedback_event_actor_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["feedback_id"], ["feedback.id"], name=op.f("fk_feedback_event_feedback_id_feedback")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_event")),
    )
    with op.batch_alter_table("feedback_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_event_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_feedback_event_feedback_id_at"), ["feedback_id", "at"], unique=False
        )

    with op.batch_alter_table("country", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "auto_assign",
                sa.Enum("none", "lead", "least_loaded", name="autoassign", native_enum=False),
                server_default="lead",
                nullable=False,
            )
        )


def downgrade():
    with op.batch_alter_table("country", schema=None) as batch_op:
        batch_op.drop_column("auto_assign")

    with op.batch_alter_table("feedback_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_event_feedback_id_at"))
        batch_op.drop_index(batch_op.f("ix_feedback_event_actor_id"))

    op.drop_table("feedback_event")
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_feedback_id"))

    op.drop_table("attachment")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_submitter_email"))
        batch_op.drop_index(batch_op.f("ix_feedback_section_id"))
        batch_op.drop_index(batch_op.f("ix_feedback_received_at"))
        batch_op.drop_index(batch_op.f("ix_feedback_profile_id"))
        batch_op.drop_index(batch_op.f("ix_feedback_is_quarantined_received_at"))
        batch_op.drop_index(batch_op.f("ix_feedback_form_nonce"))
        batch_op.drop_index(batch_op.f("ix_feedback_email_message_id"))
        batch_op.drop_index(batch_op.f("ix_feedback_country_id_status_received_at"))
        batch_op.drop_index(batch_op.f("ix_feedback_content_hash"))
        batch_op.drop_index(batch_op.f("ix_feedback_assignee_id_status_received_at"))

    op.drop_table("feedback")
    op.drop_table("reference_counter")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_message_state_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_outbox_message_kind"))

    op.drop_table("outbox_message")
