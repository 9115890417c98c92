"""Collective enrollment: the organiser's enrollment and its households; no chat identity for an organiser

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    # A village committee has no chat: its application and policy carry no identity (R-ENR-1).
    # A village's households together pass 2^31 fen (21 million yuan) of sum insured: 64-bit totals.
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.alter_column("identity_id", existing_type=sa.Integer(), nullable=True)
        for column in ("sum_insured_fen", "payable_fen"):
            batch_op.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.alter_column("identity_id", existing_type=sa.Integer(), nullable=True)
        for column in ("sum_insured_fen", "premium_fen"):
            batch_op.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)
    op.create_table(
        "collective_enrollment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("product_code", _text(40), nullable=False),
        sa.Column("region_code", _text(12), nullable=False),
        sa.Column("organiser_kind", _text(30), nullable=False),
        sa.Column("organiser_name", _text(200), nullable=False),
        sa.Column("organiser_credit_code", _text(18), nullable=True),
        sa.Column("status", _text(30), nullable=False),
        sa.Column("list_sha256", _text(64), nullable=False),
        sa.Column("list_filename", _text(200), nullable=False),
        sa.Column("household_count", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("organiser_confirmed_by_name", _text(100), nullable=True),
        sa.Column("organiser_confirmed_by_title", _text(100), nullable=True),
        sa.Column("organiser_confirmation_recorded_by", sa.Integer(), nullable=True),
        sa.Column("organiser_confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("stamp_document_id", sa.Integer(), nullable=True),
        sa.Column("households_notified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("issued_notified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.ForeignKeyConstraint(["policy_id"], ["policy.id"]),
        sa.ForeignKeyConstraint(["product_code"], ["product.code"]),
        sa.ForeignKeyConstraint(["uploaded_by"], ["staff_user.id"]),
        sa.ForeignKeyConstraint(["organiser_confirmation_recorded_by"], ["staff_user.id"]),
        sa.ForeignKeyConstraint(["stamp_document_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("application_id"),
    )
    op.create_index("ix_collective_enrollment_policy_id", "collective_enrollment", ["policy_id"])
    op.create_index("ix_collective_enrollment_region_code", "collective_enrollment", ["region_code"])
    op.create_index("ix_collective_enrollment_status", "collective_enrollment", ["status"])
    op.create_index("ix_collective_enrollment_list_sha256", "collective_enrollment", ["list_sha256"])
    # No foreign keys on collective_id and person_id: checked row by row they took 3.2 of 4.6 s for
    # 100,000 households (see the model).
    op.create_table(
        "policy_household",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collective_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", _text(100), nullable=False),
        sa.Column("id_number", _text(18), nullable=False),
        sa.Column("phone", _text(20), nullable=True),
        sa.Column("product_code", _text(40), nullable=False),
        sa.Column("quantity", _text(20), nullable=False),
        sa.Column("village_code", _text(12), nullable=False),
        sa.Column("place_name", _text(100), nullable=False),
        sa.Column("ear_tags", sa.JSON(), nullable=False),
        sa.Column("bank_name", _text(100), nullable=False),
        sa.Column("bank_account", _text(30), nullable=False),
        sa.Column("sum_insured_fen", sa.Integer(), nullable=False),
        sa.Column("premium_total_fen", sa.Integer(), nullable=False),
        sa.Column("farmer_fen", sa.Integer(), nullable=False),
        sa.Column("status", _text(20), nullable=False),
        sa.Column("signer", sa.JSON(), nullable=True),
        sa.Column("confirmed_identity_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("objection_reason", _text(500), nullable=True),
        sa.Column("objected_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("voucher_document_id", sa.Integer(), nullable=True),
        sa.Column("objection_answer", _text(500), nullable=True),
        sa.Column("objection_answered_by", sa.Integer(), nullable=True),
        sa.Column("objection_answered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["objection_answered_by"], ["staff_user.id"]),
        sa.ForeignKeyConstraint(["confirmed_identity_id"], ["chat_identity.id"]),
        sa.ForeignKeyConstraint(["voucher_document_id"], ["document.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collective_id", "id_number", name="uq_policy_household_id_number"),
    )
    for column in ("person_id", "id_number"):
        op.create_index(f"ix_policy_household_{column}", "policy_household", [column])


def downgrade() -> None:
    for column in ("person_id", "id_number"):
        op.drop_index(f"ix_policy_household_{column}", table_name="policy_household")
    op.drop_table("policy_household")
    for name in ("policy_id", "region_code", "status", "list_sha256"):
        op.drop_index(f"ix_collective_enrollment_{name}", table_name="collective_enrollment")
    op.drop_table("collective_enrollment")
    with op.batch_alter_table("policy", schema=None) as batch_op:
        batch_op.alter_column("identity_id", existing_type=sa.Integer(), nullable=False)
        for column in ("sum_insured_fen", "premium_fen"):
            batch_op.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table("application", schema=None) as batch_op:
        batch_op.alter_column("identity_id", existing_type=sa.Integer(), nullable=False)
        for column in ("sum_insured_fen", "payable_fen"):
            batch_op.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
