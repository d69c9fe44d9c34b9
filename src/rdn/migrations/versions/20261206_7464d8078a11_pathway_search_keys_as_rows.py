"""Pathway search keys as rows of their own (``pathway_keys``), replacing the ``pathways.keys`` list: a search
probes an index on either database instead of reading every pathway's list. Existing keys are carried over.

Revision ID: 7464d8078a11
Revises: 747289ca6fcd
Create Date: 2026-12-06 10:09:46.264381
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '7464d8078a11'
down_revision: str | None = '747289ca6fcd'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _as_list(value: object) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value)
    return [str(v) for v in value or []]


def upgrade() -> None:
    keys = op.create_table(
        'pathway_keys',
        sa.Column('key', sa.String(length=8), nullable=False),
        sa.Column('pathway_id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(['pathway_id'], ['pathways.id'], name=op.f('fk_pathway_keys_pathway_id_pathways'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('key', 'pathway_id', name=op.f('pk_pathway_keys')))
    op.create_index(op.f('ix_pathway_keys_pathway_id'), 'pathway_keys', ['pathway_id'], unique=False)
    pathways = sa.table('pathways', sa.column('id', sa.Uuid()), sa.column('keys', _JSON))
    conn = op.get_bind()
    rows = [{'key': key, 'pathway_id': pathway_id}
            for pathway_id, listed in conn.execute(sa.select(pathways.c.id, pathways.c["keys"]))
            for key in dict.fromkeys(_as_list(listed)) if not key.endswith(':*')]  # "any" is an empty list now
    if rows:
        op.bulk_insert(keys, rows)
    # Not in batch mode: on SQLite that copies the table and drops the original, which (foreign keys being on)
    # would delete the keys just written and clear every reference to a pathway. SQLite 3.35 and later drop a
    # column in place.
    op.drop_column('pathways', 'keys')


def downgrade() -> None:
    op.add_column('pathways', sa.Column('keys', _JSON, server_default=sa.text("'[]'"), nullable=False))
    conn = op.get_bind()
    listed: dict[object, list[str]] = {}
    keys = sa.table('pathway_keys', sa.column('key', sa.String()), sa.column('pathway_id', sa.Uuid()))
    for key, pathway_id in conn.execute(sa.select(keys.c.key, keys.c.pathway_id).order_by(keys.c.key)):
        listed.setdefault(pathway_id, []).append(key)
    pathways = sa.table('pathways', sa.column('id', sa.Uuid()), sa.column('keys', _JSON))
    for (pathway_id,) in conn.execute(sa.select(pathways.c.id)).all():
        codes = listed.get(pathway_id, [])
        codes = ([k for k in codes if k.startswith('n:')] or ['n:*']) + ([k for k in codes if k.startswith('l:')]
                                                                         or ['l:*'])
        conn.execute(pathways.update().where(pathways.c.id == pathway_id).values({"keys": codes}))
    op.drop_index(op.f('ix_pathway_keys_pathway_id'), table_name='pathway_keys')
    op.drop_table('pathway_keys')
