"""claims: R-CLM-5 candidate events (status, window, city); R-CLM-8 sampling record (villages, samplers,
the insured's signature)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('disaster_event') as batch:
        batch.add_column(sa.Column('ended_on', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column(
                'status',
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default='confirmed',
            )
        )
        batch.add_column(
            sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False, server_default='')
        )
        batch.add_column(sa.Column('confirmed_by', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('confirmed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.create_index('ix_disaster_event_status', ['status'])
    with op.batch_alter_table('survey_report') as batch:
        batch.add_column(sa.Column('sampling_record', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('disaster_event') as batch:
        batch.drop_index('ix_disaster_event_status')
        for column in ('confirmed_at', 'confirmed_by', 'region_code', 'status', 'ended_on'):
            batch.drop_column(column)
    with op.batch_alter_table('survey_report') as batch:
        batch.drop_column('sampling_record')
