"""Outbox indexes a fan-out row does not need: no index on identity_id (nothing looks rows up by it), and
the provider's message id indexed only once it is known (a queued row has none)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KNOWN = sa.text("external_message_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_identity_id")
        batch_op.drop_index("ix_outbox_external")
    op.create_index(
        "ix_outbox_external",
        "outbox",
        ["channel", "external_message_id"],
        postgresql_where=KNOWN,
        sqlite_where=KNOWN,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_external", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_external", ["channel", "external_message_id"])
        batch_op.create_index("ix_outbox_identity_id", ["identity_id"], unique=False)
