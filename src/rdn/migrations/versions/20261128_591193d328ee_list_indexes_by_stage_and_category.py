"""List indexes by stage and category: a stage filter walks one stage in due order (the list's usual sort),
and a category filter (on either category) combines two owner-scoped indexes instead of reading a whole
caseload; the unscoped category index goes (every list is scoped to an owner or a recipient).

Revision ID: 591193d328ee
Revises: 305fba0a241c
Create Date: 2026-11-28 10:53:15.280446
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '591193d328ee'
down_revision: str | None = '305fba0a241c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f('ix_case_shares_org_stage'), table_name='case_shares')
    op.create_index('ix_case_shares_org_category_primary', 'case_shares', ['org_id', 'category_primary'], unique=False)
    op.create_index('ix_case_shares_org_category_secondary', 'case_shares', ['org_id', 'category_secondary'], unique=False)
    op.create_index('ix_case_shares_org_stage_due', 'case_shares', ['org_id', 'stage', 'due_at'], unique=False)
    op.drop_index(op.f('ix_cases_category_primary'), table_name='cases')
    op.drop_index(op.f('ix_cases_owner_stage'), table_name='cases')
    op.create_index('ix_cases_owner_category_primary', 'cases', ['owner_org_id', 'category_primary'], unique=False)
    op.create_index('ix_cases_owner_category_secondary', 'cases', ['owner_org_id', 'category_secondary'], unique=False)
    op.create_index('ix_cases_owner_stage_due', 'cases', ['owner_org_id', 'stage', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_owner_stage_due', table_name='cases')
    op.drop_index('ix_cases_owner_category_secondary', table_name='cases')
    op.drop_index('ix_cases_owner_category_primary', table_name='cases')
    op.create_index(op.f('ix_cases_owner_stage'), 'cases', ['owner_org_id', 'stage'], unique=False)
    op.create_index(op.f('ix_cases_category_primary'), 'cases', ['category_primary'], unique=False)
    op.drop_index('ix_case_shares_org_stage_due', table_name='case_shares')
    op.drop_index('ix_case_shares_org_category_secondary', table_name='case_shares')
    op.drop_index('ix_case_shares_org_category_primary', table_name='case_shares')
    op.create_index(op.f('ix_case_shares_org_stage'), 'case_shares', ['org_id', 'stage'], unique=False)
