"""person.id_number: the resident ID number of the person a chat account belongs to (R-ENR-5)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('person') as batch:
        batch.add_column(sa.Column('id_number', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True))
        batch.create_index('ix_person_id_number', ['id_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('person') as batch:
        batch.drop_index('ix_person_id_number')
        batch.drop_column('id_number')
