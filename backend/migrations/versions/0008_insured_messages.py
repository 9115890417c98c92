"""insured messages: a staff alert may carry the chat identity of the insured who wrote it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('staff_alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_staff_alert_identity_id'), ['identity_id'], unique=False)
        batch_op.create_foreign_key(
            'fk_staff_alert_identity_id_chat_identity', 'chat_identity', ['identity_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('staff_alert', schema=None) as batch_op:
        batch_op.drop_constraint('fk_staff_alert_identity_id_chat_identity', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_staff_alert_identity_id'))
        batch_op.drop_column('identity_id')
