"""claim workflow: payee registry and exceptions (R-CLM-12), disposal confirmation (R-CLM-7),
pre-payments (R-LIA-6)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payee_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_number', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('bank_name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('removed_by', sa.Integer(), nullable=True),
    sa.Column('removed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_user.id'], ),
    sa.ForeignKeyConstraint(['removed_by'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payee_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payee_account_account_number'), ['account_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_payee_account_region_code'), ['region_code'], unique=False)

    op.create_table('claim_payee_exception',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('payee_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('bank_name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('account_number', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('explanation', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('entered_by', sa.Integer(), nullable=False),
    sa.Column('entered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('decision_note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['entered_by'], ['staff_user.id'], ),
    sa.ForeignKeyConstraint(['decided_by'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_payee_exception', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_payee_exception_claim_id'), ['claim_id'], unique=False)

    op.create_table('claim_prepayment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('payee_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('payee_kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default='other'),
    sa.Column('bank_name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False, server_default=''),
    sa.Column('account_number', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False, server_default=''),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['recorded_by'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_prepayment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_prepayment_claim_id'), ['claim_id'], unique=False)

    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disposal_received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('disposal_confirmation', sa.JSON(), nullable=False, server_default='{}'))

    with op.batch_alter_table('claim_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payee_exception_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approved_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prepaid_fen', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_foreign_key('fk_claim_payment_payee_exception_id', 'claim_payee_exception', ['payee_exception_id'], ['id'])
        batch_op.create_foreign_key('fk_claim_payment_approved_by', 'staff_user', ['approved_by'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('claim_payment', schema=None) as batch_op:
        batch_op.drop_constraint('fk_claim_payment_approved_by', type_='foreignkey')
        batch_op.drop_constraint('fk_claim_payment_payee_exception_id', type_='foreignkey')
        batch_op.drop_column('prepaid_fen')
        batch_op.drop_column('approved_by')
        batch_op.drop_column('payee_exception_id')

    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.drop_column('disposal_confirmation')
        batch_op.drop_column('disposal_received_at')

    with op.batch_alter_table('claim_prepayment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_prepayment_claim_id'))
    op.drop_table('claim_prepayment')
    with op.batch_alter_table('claim_payee_exception', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_payee_exception_claim_id'))
    op.drop_table('claim_payee_exception')
    with op.batch_alter_table('payee_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payee_account_region_code'))
        batch_op.drop_index(batch_op.f('ix_payee_account_account_number'))
    op.drop_table('payee_account')
