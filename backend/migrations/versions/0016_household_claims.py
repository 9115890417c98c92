"""Claims of a collective policy's households (R-CLM-12, R-CLM-14): claim.household_id

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("claim", schema=None) as batch_op:
        batch_op.add_column(sa.Column("household_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_claim_household_id"), ["household_id"], unique=False)
    # The payee check looks a payee's account up among every household's (R-CLM-12).
    op.create_index("ix_policy_household_bank_account", "policy_household", ["bank_account"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_policy_household_bank_account", table_name="policy_household")
    with op.batch_alter_table("claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_claim_household_id"))
        batch_op.drop_column("household_id")
