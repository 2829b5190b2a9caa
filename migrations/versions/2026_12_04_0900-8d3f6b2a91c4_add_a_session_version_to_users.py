"""Add a session version to users

``user.session_version`` is part of the user id Flask-Login keeps in each session and
remember-me cookie (``"<id>.<version>"``). Deactivating an account or setting a new password
moves it, which ends every session opened before, including one that would otherwise come back
when the account is reactivated. Sessions made before this revision hold a bare id and end once
(their users log in again).

Revision ID: 8d3f6b2a91c4
Revises: 5c1e9a7d2b40
Create Date: 2026-12-04 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "8d3f6b2a91c4"
down_revision = "5c1e9a7d2b40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), server_default="1", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("session_version")
