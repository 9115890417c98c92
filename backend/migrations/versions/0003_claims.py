"""claims

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 13:36:03.184615
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('disaster_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('started_on', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('catastrophe', sa.Boolean(), nullable=False),
    sa.Column('catastrophe_reasons', sa.JSON(), nullable=False),
    sa.Column('raised_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('index_reading',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('township_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('peril', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('observed_on', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('station', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('township_code', 'peril', 'observed_on', name='uq_index_reading_day')
    )
    with op.batch_alter_table('index_reading', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_index_reading_township_code'), ['township_code'], unique=False)

    op.create_table('claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('product_code', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('identity_id', sa.Integer(), nullable=True),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('county_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('insured_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('loss_started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('loss_ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('lost_quantity', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('unit', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('estimated_amount_fen', sa.Integer(), nullable=False),
    sa.Column('place_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('reporter_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('reporter_phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('injured', sa.Integer(), nullable=True),
    sa.Column('dead', sa.Integer(), nullable=True),
    sa.Column('reported_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('reported_by_staff_id', sa.Integer(), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('delay_minutes', sa.Integer(), nullable=False),
    sa.Column('disposal_required', sa.Boolean(), nullable=False),
    sa.Column('disposal_proven_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('adjuster_id', sa.Integer(), nullable=True),
    sa.Column('survey_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('survey_agreed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('joint_survey', sa.Boolean(), nullable=False),
    sa.Column('remote_survey', sa.Boolean(), nullable=False),
    sa.Column('surveyed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('settlement_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('assessed_amount_fen', sa.Integer(), nullable=True),
    sa.Column('assessed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('agreed_amount_fen', sa.Integer(), nullable=True),
    sa.Column('agreed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('confirmation', sa.JSON(), nullable=False),
    sa.Column('objection', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('payment_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('paid_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('paid_amount_fen', sa.Integer(), nullable=True),
    sa.Column('denied_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('denial_reasons', sa.JSON(), nullable=False),
    sa.Column('reminders', sa.JSON(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['adjuster_id'], ['staff_user.id'], ),
    sa.ForeignKeyConstraint(['event_id'], ['disaster_event.id'], ),
    sa.ForeignKeyConstraint(['identity_id'], ['chat_identity.id'], ),
    sa.ForeignKeyConstraint(['policy_id'], ['policy.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_adjuster_id'), ['adjuster_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_county_code'), ['county_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_identity_id'), ['identity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_payment_due_at'), ['payment_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_region_code'), ['region_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_reported_at'), ['reported_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_settlement_due_at'), ['settlement_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_survey_due_at'), ['survey_due_at'], unique=False)

    op.create_table('claim_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_event_claim_id'), ['claim_id'], unique=False)

    op.create_table('claim_payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('payee_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('bank_name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('account_number', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('payee_is_insured', sa.Boolean(), nullable=False),
    sa.Column('explanation', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('paid_by', sa.Integer(), nullable=False),
    sa.Column('paid_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['paid_by'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('claim_id')
    )
    op.create_table('document_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=False),
    sa.Column('requested_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('fulfilled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['requested_by'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('claim_id')
    )
    op.create_table('index_payout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reading_id', sa.Integer(), nullable=False),
    sa.Column('policy_id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=True),
    sa.Column('level', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('share', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['policy_id'], ['policy.id'], ),
    sa.ForeignKeyConstraint(['reading_id'], ['index_reading.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('reading_id', 'policy_id', name='uq_index_payout')
    )
    with op.batch_alter_table('index_payout', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_index_payout_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_index_payout_reading_id'), ['reading_id'], unique=False)

    op.create_table('staff_alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('region_code', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=True),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['event_id'], ['disaster_event.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    with op.batch_alter_table('staff_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_alert_claim_id'), ['claim_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_alert_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_alert_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_alert_region_code'), ['region_code'], unique=False)

    op.create_table('survey_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('loss', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('covered', sa.Boolean(), nullable=False),
    sa.Column('surveyors', sa.JSON(), nullable=False),
    sa.Column('loss_degree', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('sampling', sa.JSON(), nullable=False),
    sa.Column('remote', sa.Boolean(), nullable=False),
    sa.Column('joint_with_government', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['staff_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('claim_id')
    )
    op.create_table('claim_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('added_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['document_id'], ['document.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_attachment_claim_id'), ['claim_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('claim_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_attachment_claim_id'))

    op.drop_table('claim_attachment')
    op.drop_table('survey_report')
    with op.batch_alter_table('staff_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_alert_region_code'))
        batch_op.drop_index(batch_op.f('ix_staff_alert_kind'))
        batch_op.drop_index(batch_op.f('ix_staff_alert_created_at'))
        batch_op.drop_index(batch_op.f('ix_staff_alert_claim_id'))

    op.drop_table('staff_alert')
    with op.batch_alter_table('index_payout', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_index_payout_reading_id'))
        batch_op.drop_index(batch_op.f('ix_index_payout_policy_id'))

    op.drop_table('index_payout')
    op.drop_table('document_request')
    op.drop_table('claim_payment')
    with op.batch_alter_table('claim_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_event_claim_id'))

    op.drop_table('claim_event')
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_survey_due_at'))
        batch_op.drop_index(batch_op.f('ix_claim_status'))
        batch_op.drop_index(batch_op.f('ix_claim_settlement_due_at'))
        batch_op.drop_index(batch_op.f('ix_claim_reported_at'))
        batch_op.drop_index(batch_op.f('ix_claim_region_code'))
        batch_op.drop_index(batch_op.f('ix_claim_policy_id'))
        batch_op.drop_index(batch_op.f('ix_claim_payment_due_at'))
        batch_op.drop_index(batch_op.f('ix_claim_identity_id'))
        batch_op.drop_index(batch_op.f('ix_claim_event_id'))
        batch_op.drop_index(batch_op.f('ix_claim_county_code'))
        batch_op.drop_index(batch_op.f('ix_claim_adjuster_id'))

    op.drop_table('claim')
    with op.batch_alter_table('index_reading', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_index_reading_township_code'))

    op.drop_table('index_reading')
    op.drop_table('disaster_event')
