"""SMS channel: message kind and template on the outbox, receipts, numbers that stopped bulk, short links

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
    op.create_table(
        'sms_link',
        sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('token'),
    )
    op.create_index('ix_sms_link_person_id', 'sms_link', ['person_id'])


def downgrade() -> None:
    op.drop_index('ix_sms_link_person_id', table_name='sms_link')
    op.drop_table('sms_link')
    op.drop_table('sms_number')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_external')
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('template')
        batch_op.drop_column('kind')
