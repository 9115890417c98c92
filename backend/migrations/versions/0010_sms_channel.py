"""SMS channel: message kind and template on the outbox, delivery receipts, numbers that stopped bulk texts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='notice')
        )
        batch_op.add_column(sa.Column('template', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_outbox_external', ['channel', 'external_message_id'])
    op.create_table(
        'sms_number',
        sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('bulk_stopped_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('stop_source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('phone'),
    )


def downgrade() -> None:
    op.drop_table('sms_number')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_external')
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('template')
        batch_op.drop_column('kind')
