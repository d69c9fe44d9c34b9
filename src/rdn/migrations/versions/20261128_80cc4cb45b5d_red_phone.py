"""Red phone: crises, contact chains and methods, escalation runs, pages, the crisis room.

Revision ID: 80cc4cb45b5d
Revises: 3f7c959a9025
Create Date: 2026-11-28 02:56:27.396911
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '80cc4cb45b5d'
down_revision: str | None = '3f7c959a9025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('contact_chains',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('repeat_count', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_contact_chains_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_chains')),
    sa.UniqueConstraint('org_id', name=op.f('uq_contact_chains_org_id'))
    )
    op.create_table('contact_methods',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('email', 'sms', 'webhook', name='contact_kind', native_enum=False, length=32), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=True),
    sa.Column('address', sa.LargeBinary(), nullable=True),
    sa.Column('hint', sa.String(length=120), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verify_code_hash', sa.String(length=64), nullable=True),
    sa.Column('verify_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verify_attempts', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_contact_methods_org_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_contact_methods_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_methods'))
    )
    with op.batch_alter_table('contact_methods', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_methods_user_id'), ['user_id'], unique=False)

    op.create_table('crises',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('reference', sa.String(length=24), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('region', sa.String(length=120), nullable=False),
    sa.Column('countries', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('displaced_population', sa.BigInteger(), nullable=True),
    sa.Column('target_places', sa.Integer(), nullable=True),
    sa.Column('activation_level', sa.Enum('monitoring', 'information_sharing', 'full_activation', name='activation_level', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('declared', 'active', 'stabilised', 'closed', name='crisis_status', native_enum=False, length=32), nullable=False),
    sa.Column('exercise', sa.Boolean(), nullable=False),
    sa.Column('declared_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('declared_by_org_id', sa.Uuid(), nullable=False),
    sa.Column('declared_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['declared_by_org_id'], ['organizations.id'], name=op.f('fk_crises_declared_by_org_id_organizations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['declared_by_user_id'], ['users.id'], name=op.f('fk_crises_declared_by_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crises')),
    sa.UniqueConstraint('reference', name=op.f('uq_crises_reference'))
    )
    with op.batch_alter_table('crises', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crises_declared_at'), ['declared_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_crises_exercise'), ['exercise'], unique=False)
        batch_op.create_index(batch_op.f('ix_crises_status'), ['status'], unique=False)

    op.create_table('chain_levels',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('chain_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('wait_minutes', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['chain_id'], ['contact_chains.id'], name=op.f('fk_chain_levels_chain_id_contact_chains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_levels')),
    sa.UniqueConstraint('chain_id', 'position', name=op.f('uq_chain_levels_chain_id_position'))
    )
    with op.batch_alter_table('chain_levels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chain_levels_chain_id'), ['chain_id'], unique=False)

    op.create_table('crisis_actions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('owner_org_id', sa.Uuid(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('open', 'in_progress', 'done', 'cancelled', name='action_status', native_enum=False, length=32), nullable=False),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_reminded_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_crisis_actions_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_crisis_actions_crisis_id_crises'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_org_id'], ['organizations.id'], name=op.f('fk_crisis_actions_owner_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crisis_actions'))
    )
    with op.batch_alter_table('crisis_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crisis_actions_crisis_id'), ['crisis_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crisis_actions_owner_org_id'), ['owner_org_id'], unique=False)

    op.create_table('crisis_decisions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.Enum('recorded', 'superseded', name='decision_status', native_enum=False, length=32), nullable=False),
    sa.Column('recorded_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('recorded_by_org_id', sa.Uuid(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('superseded_by_id', sa.Uuid(), nullable=True),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_crisis_decisions_crisis_id_crises'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_org_id'], ['organizations.id'], name=op.f('fk_crisis_decisions_recorded_by_org_id_organizations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recorded_by_user_id'], ['users.id'], name=op.f('fk_crisis_decisions_recorded_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['superseded_by_id'], ['crisis_decisions.id'], name=op.f('fk_crisis_decisions_superseded_by_id_crisis_decisions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crisis_decisions'))
    )
    with op.batch_alter_table('crisis_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crisis_decisions_crisis_id'), ['crisis_id'], unique=False)

    op.create_table('crisis_messages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('author_user_id', sa.Uuid(), nullable=True),
    sa.Column('author_org_id', sa.Uuid(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_org_id'], ['organizations.id'], name=op.f('fk_crisis_messages_author_org_id_organizations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_crisis_messages_author_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_crisis_messages_crisis_id_crises'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crisis_messages')),
    sa.UniqueConstraint('crisis_id', 'client_id', name=op.f('uq_crisis_messages_crisis_id_client_id'))
    )
    with op.batch_alter_table('crisis_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crisis_messages_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_crisis_messages_crisis_id'), ['crisis_id'], unique=False)

    op.create_table('crisis_participants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.Enum('chair', 'member', 'rapporteur', 'observer', name='participant_role', native_enum=False, length=32), nullable=False),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_crisis_participants_crisis_id_crises'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_crisis_participants_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crisis_participants')),
    sa.UniqueConstraint('crisis_id', 'org_id', name=op.f('uq_crisis_participants_crisis_id_org_id'))
    )
    with op.batch_alter_table('crisis_participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crisis_participants_crisis_id'), ['crisis_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crisis_participants_org_id'), ['org_id'], unique=False)

    op.create_table('escalation_runs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=30), nullable=False),
    sa.Column('snapshot', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('repeat_count', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('active', 'acknowledged', 'exhausted', 'cancelled', name='run_status', native_enum=False, length=32), nullable=False),
    sa.Column('cycle', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('fence', sa.Integer(), nullable=False),
    sa.Column('next_step_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('acknowledged_via', sa.String(length=20), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by_user_id'], ['users.id'], name=op.f('fk_escalation_runs_acknowledged_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_escalation_runs_crisis_id_crises'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_escalation_runs_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_runs')),
    sa.UniqueConstraint('crisis_id', 'org_id', 'round', name=op.f('uq_escalation_runs_crisis_id_org_id_round'))
    )
    with op.batch_alter_table('escalation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_runs_crisis_id'), ['crisis_id'], unique=False)
        batch_op.create_index('ix_escalation_runs_due', ['status', 'next_step_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_runs_org_id'), ['org_id'], unique=False)

    op.create_table('pledges',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('places', sa.Integer(), nullable=False),
    sa.Column('population', sa.String(length=120), nullable=False),
    sa.Column('time_frame', sa.String(length=120), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('status', sa.Enum('proposed', 'confirmed', 'fulfilled', 'withdrawn', name='pledge_status', native_enum=False, length=32), nullable=False),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_pledges_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_pledges_crisis_id_crises'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_pledges_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pledges'))
    )
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pledges_crisis_id'), ['crisis_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pledges_org_id'), ['org_id'], unique=False)

    op.create_table('chain_members',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('level_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['level_id'], ['chain_levels.id'], name=op.f('fk_chain_members_level_id_chain_levels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_chain_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_members')),
    sa.UniqueConstraint('level_id', 'user_id', name=op.f('uq_chain_members_level_id_user_id'))
    )
    with op.batch_alter_table('chain_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chain_members_level_id'), ['level_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_chain_members_user_id'), ['user_id'], unique=False)

    op.create_table('pages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('run_id', sa.Uuid(), nullable=False),
    sa.Column('crisis_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('cycle', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'delivered', 'acknowledged', 'timed_out', 'failed', name='page_status', native_enum=False, length=32), nullable=False),
    sa.Column('short_code', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('timed_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['crisis_id'], ['crises.id'], name=op.f('fk_pages_crisis_id_crises'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_pages_org_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['escalation_runs.id'], name=op.f('fk_pages_run_id_escalation_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_pages_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pages')),
    sa.UniqueConstraint('run_id', 'cycle', 'level', 'user_id', name=op.f('uq_pages_run_id_cycle_level_user_id'))
    )
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pages_crisis_id'), ['crisis_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pages_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pages_short_code'), ['short_code'], unique=False)
        batch_op.create_index('ix_pages_user_status', ['user_id', 'status'], unique=False)

    op.create_table('page_attempts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('page_id', sa.Uuid(), nullable=False),
    sa.Column('method_id', sa.Uuid(), nullable=True),
    sa.Column('kind', sa.Enum('email', 'sms', 'webhook', name='contact_kind', native_enum=False, length=32), nullable=False),
    sa.Column('hint', sa.String(length=120), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=300), nullable=False),
    sa.Column('reference', sa.String(length=120), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['method_id'], ['contact_methods.id'], name=op.f('fk_page_attempts_method_id_contact_methods'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['page_id'], ['pages.id'], name=op.f('fk_page_attempts_page_id_pages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_page_attempts'))
    )
    with op.batch_alter_table('page_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_page_attempts_page_id'), ['page_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_page_attempts_reference'), ['reference'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('page_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_page_attempts_reference'))
        batch_op.drop_index(batch_op.f('ix_page_attempts_page_id'))

    op.drop_table('page_attempts')
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_index('ix_pages_user_status')
        batch_op.drop_index(batch_op.f('ix_pages_short_code'))
        batch_op.drop_index(batch_op.f('ix_pages_run_id'))
        batch_op.drop_index(batch_op.f('ix_pages_crisis_id'))

    op.drop_table('pages')
    with op.batch_alter_table('chain_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chain_members_user_id'))
        batch_op.drop_index(batch_op.f('ix_chain_members_level_id'))

    op.drop_table('chain_members')
    with op.batch_alter_table('pledges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pledges_org_id'))
        batch_op.drop_index(batch_op.f('ix_pledges_crisis_id'))

    op.drop_table('pledges')
    with op.batch_alter_table('escalation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_runs_org_id'))
        batch_op.drop_index('ix_escalation_runs_due')
        batch_op.drop_index(batch_op.f('ix_escalation_runs_crisis_id'))

    op.drop_table('escalation_runs')
    with op.batch_alter_table('crisis_participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crisis_participants_org_id'))
        batch_op.drop_index(batch_op.f('ix_crisis_participants_crisis_id'))

    op.drop_table('crisis_participants')
    with op.batch_alter_table('crisis_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crisis_messages_crisis_id'))
        batch_op.drop_index(batch_op.f('ix_crisis_messages_created_at'))

    op.drop_table('crisis_messages')
    with op.batch_alter_table('crisis_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crisis_decisions_crisis_id'))

    op.drop_table('crisis_decisions')
    with op.batch_alter_table('crisis_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crisis_actions_owner_org_id'))
        batch_op.drop_index(batch_op.f('ix_crisis_actions_crisis_id'))

    op.drop_table('crisis_actions')
    with op.batch_alter_table('chain_levels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chain_levels_chain_id'))

    op.drop_table('chain_levels')
    with op.batch_alter_table('crises', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crises_status'))
        batch_op.drop_index(batch_op.f('ix_crises_exercise'))
        batch_op.drop_index(batch_op.f('ix_crises_declared_at'))

    op.drop_table('crises')
    with op.batch_alter_table('contact_methods', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_methods_user_id'))

    op.drop_table('contact_methods')
    op.drop_table('contact_chains')
