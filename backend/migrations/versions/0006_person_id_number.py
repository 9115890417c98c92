"""R-ENR-5 bindings: the resident ID number and the credit code a chat account's person signs as the insured
for (each bound to one person only), and the staff member who uploaded a document (a late entry's signed form
must be its own underwriter's or from their region)

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
        batch.add_column(sa.Column('credit_code', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True))
        # Unique: one ID number or credit code signs "as the insured" through one person's accounts only.
        batch.create_index('ix_person_id_number', ['id_number'], unique=True)
        batch.create_index('ix_person_credit_code', ['credit_code'], unique=True)
    with op.batch_alter_table('document') as batch:
        batch.add_column(sa.Column('uploaded_by_staff_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(
            'fk_document_uploaded_by_staff_id_staff_user', 'staff_user', ['uploaded_by_staff_id'], ['id']
        )
        batch.create_index('ix_document_uploaded_by_staff_id', ['uploaded_by_staff_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('document') as batch:
        batch.drop_index('ix_document_uploaded_by_staff_id')
        batch.drop_constraint('fk_document_uploaded_by_staff_id_staff_user', type_='foreignkey')
        batch.drop_column('uploaded_by_staff_id')
    with op.batch_alter_table('person') as batch:
        batch.drop_index('ix_person_credit_code')
        batch.drop_index('ix_person_id_number')
        batch.drop_column('credit_code')
        batch.drop_column('id_number')
