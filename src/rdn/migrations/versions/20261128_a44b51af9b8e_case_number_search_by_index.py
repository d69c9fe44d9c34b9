"""Case number search by index: a number a case had under an earlier owner is looked up in a GIN index of
previous numbers (PostgreSQL) instead of reading every case's list as text, and a recipient finds a shared
case by its number through (org, number).

Revision ID: a44b51af9b8e
Revises: 3b09d6a07d76
Create Date: 2026-11-28 13:35:01.326562
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = 'a44b51af9b8e'
down_revision: str | None = '3b09d6a07d76'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_case_shares_org_number', 'case_shares', ['org_id', 'number'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.create_index('ix_cases_previous_numbers', 'cases', ['previous_numbers'], unique=False,
                        postgresql_using='gin')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_cases_previous_numbers', table_name='cases', postgresql_using='gin')
    op.drop_index('ix_case_shares_org_number', table_name='case_shares')
