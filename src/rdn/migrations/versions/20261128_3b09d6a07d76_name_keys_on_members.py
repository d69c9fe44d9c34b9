"""Name keys on members: each member's name-search keys as one JSON array (a GIN index on PostgreSQL)
instead of a row per key in ``case_name_keys``. A search of several common names intersects their keys in the
index instead of probing tens of thousands of rows, and an import writes one row per person, not eight.
``shared_with`` (the organizations a member's case is shared with, identity included, from ``case_shares``) is
in the same index, so that a government's search reads only the people it may see.

Revision ID: 3b09d6a07d76
Revises: 591193d328ee
Create Date: 2026-11-28 13:30:44.321245
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '3b09d6a07d76'
down_revision: str | None = '591193d328ee'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column('case_members', sa.Column('name_keys', JSON, server_default=sa.text("'[]'"), nullable=False))
    op.add_column('case_members', sa.Column('shared_with', JSON, server_default=sa.text("'[]'"), nullable=False))
    if postgres:
        op.execute("UPDATE case_members m SET name_keys = k.keys FROM (SELECT member_id, jsonb_agg(key ORDER BY key) "
                   "AS keys FROM case_name_keys GROUP BY member_id) AS k WHERE k.member_id = m.id")
        op.execute("UPDATE case_members m SET shared_with = s.orgs FROM (SELECT case_id, "
                   "jsonb_agg(replace(org_id::text, '-', '') ORDER BY org_id) AS orgs FROM case_shares "
                   "WHERE identity_until IS NOT NULL GROUP BY case_id) AS s WHERE s.case_id = m.case_id")
        op.create_index('ix_case_members_name_keys', 'case_members', ['name_keys', 'shared_with'], unique=False,
                        postgresql_using='gin')
    else:
        op.execute("UPDATE case_members SET name_keys = (SELECT json_group_array(key) FROM (SELECT key FROM "
                   "case_name_keys AS k WHERE k.member_id = case_members.id ORDER BY key)) "
                   "WHERE EXISTS (SELECT 1 FROM case_name_keys AS k WHERE k.member_id = case_members.id)")
        op.execute("UPDATE case_members SET shared_with = (SELECT json_group_array(org_id) FROM (SELECT org_id FROM "
                   "case_shares AS cs WHERE cs.case_id = case_members.case_id AND cs.identity_until IS NOT NULL "
                   "ORDER BY org_id)) WHERE EXISTS (SELECT 1 FROM case_shares AS cs WHERE "
                   "cs.case_id = case_members.case_id AND cs.identity_until IS NOT NULL)")
    op.drop_index(op.f('ix_case_name_keys_key_owner'), table_name='case_name_keys')
    op.drop_table('case_name_keys')


def downgrade() -> None:
    op.create_table('case_name_keys',
    sa.Column('member_id', sa.UUID(), autoincrement=False, nullable=False),
    sa.Column('key', sa.VARCHAR(length=64), autoincrement=False, nullable=False),
    sa.Column('case_id', sa.UUID(), autoincrement=False, nullable=False),
    sa.Column('owner_org_id', sa.UUID(), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['case_members.id'], name=op.f('fk_case_name_keys_member_id_case_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id', 'key', name=op.f('pk_case_name_keys'))
    )
    op.create_index(op.f('ix_case_name_keys_key_owner'), 'case_name_keys', ['key', 'owner_org_id', 'member_id', 'case_id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("INSERT INTO case_name_keys (member_id, key, case_id, owner_org_id) SELECT m.id, k.key, m.case_id, "
                   "c.owner_org_id FROM case_members m JOIN cases c ON c.id = m.case_id, "
                   "jsonb_array_elements_text(m.name_keys) AS k(key)")
        op.drop_index('ix_case_members_name_keys', table_name='case_members', postgresql_using='gin')
    else:
        op.execute("INSERT INTO case_name_keys (member_id, key, case_id, owner_org_id) SELECT m.id, k.value, m.case_id, "
                   "c.owner_org_id FROM case_members m JOIN cases c ON c.id = m.case_id, json_each(m.name_keys) AS k")
    with op.batch_alter_table('case_members') as batch:
        batch.drop_column('shared_with')
        batch.drop_column('name_keys')
