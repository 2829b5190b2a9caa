"""Record each revision's submission time; index attachments by storage key

``section_revision.submitted_at``: when the revision was (last) sent for approval. Review wait
(DESIGN.md, turnaround metrics) starts there; before this column only the task's latest
submission time was kept. Existing revisions under review or decided are filled from their
task's submission time when it falls within the revision's life, else from their creation time,
which is what the reports assumed until now.

``attachment.storage_key`` is indexed: the nightly orphan sweep looks stored files up by key.

Revision ID: 5c1e9a7d2b40
Revises: eedcec3518d2
Create Date: 2026-12-04 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "5c1e9a7d2b40"
down_revision = "eedcec3518d2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "section_revision",
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute(
        """
        UPDATE section_revision
        SET submitted_at = COALESCE(
            (
                SELECT review_task.submitted_at
                FROM review_task
                WHERE review_task.id = section_revision.task_id
                  AND review_task.submitted_at >= section_revision.created_at
                  AND (
                      section_revision.decided_at IS NULL
                      OR review_task.submitted_at <= section_revision.decided_at
                  )
            ),
            section_revision.created_at
        )
        WHERE section_revision.task_id IS NOT NULL
          AND section_revision.state IN ('submitted', 'approved', 'rejected')
        """
    )
    op.create_index(op.f("ix_attachment_storage_key"), "attachment", ["storage_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_attachment_storage_key"), table_name="attachment")
    op.drop_column("section_revision", "submitted_at")
