"""Cases and referrals: cases, members, the name index, sealed sections and confidential notes, the pipeline
and its checklist, data-sharing agreements, consent, referral rounds, referrals and their threads, transfers,
imports.

Revision ID: ad1cefa5e303
Revises: 80cc4cb45b5d
Create Date: 2026-11-28 04:20:32.491736
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'ad1cefa5e303'
down_revision: str | None = '80cc4cb45b5d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('case_counters',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_case_counters_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'year', name=op.f('pk_case_counters'))
    )
    op.create_table('case_imports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('cases', sa.Integer(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_case_imports_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_case_imports_org_id_organizations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_imports'))
    )
    with op.batch_alter_table('case_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_imports_org_id'), ['org_id'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_org_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('previous_numbers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('principal_name', sa.String(length=300), nullable=False),
    sa.Column('nationality', sa.String(length=2), nullable=True),
    sa.Column('size', sa.SmallInteger(), nullable=False),
    sa.Column('current_country', sa.String(length=2), nullable=False),
    sa.Column('current_location', sa.String(length=200), nullable=False),
    sa.Column('category_primary', sa.Enum('LPN', 'WGR', 'CAR', 'SVT', 'MED', 'FAM', 'LAS', name='case_category', native_enum=False, length=32), nullable=False),
    sa.Column('category_secondary', sa.Enum('LPN', 'WGR', 'CAR', 'SVT', 'MED', 'FAM', 'LAS', name='case_category', native_enum=False, length=32), nullable=False),
    sa.Column('processing_priority', sa.Enum('emergency', 'urgent', 'normal', name='case_priority', native_enum=False, length=32), nullable=False),
    sa.Column('priority_rank', sa.SmallInteger(), sa.Computed("CASE processing_priority WHEN 'emergency' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END", persisted=True), nullable=False),
    sa.Column('submission_priority', sa.Enum('emergency', 'urgent', 'normal', name='case_priority', native_enum=False, length=32), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('stage_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('departed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stage_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('target_submission_on', sa.Date(), nullable=True),
    sa.Column('target_departure_on', sa.Date(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('preferences', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('protection', sa.LargeBinary(), nullable=True),
    sa.Column('medical', sa.LargeBinary(), nullable=True),
    sa.Column('sogi', sa.LargeBinary(), nullable=True),
    sa.Column('svt', sa.LargeBinary(), nullable=True),
    sa.Column('import_id', sa.Uuid(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_cases_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_org_id'], ['organizations.id'], name=op.f('fk_cases_owner_org_id_organizations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('owner_org_id', 'number', name=op.f('uq_cases_owner_org_id_number'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_category_primary'), ['category_primary'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_current_country'), ['current_country'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_due_at'), ['due_at'], unique=False)
        batch_op.create_index('ix_cases_owner_due', ['owner_org_id', 'due_at'], unique=False)
        batch_op.create_index('ix_cases_owner_nationality', ['owner_org_id', 'nationality'], unique=False)
        batch_op.create_index('ix_cases_owner_priority_due', ['owner_org_id', 'priority_rank', 'due_at'], unique=False)
        batch_op.create_index('ix_cases_owner_stage', ['owner_org_id', 'stage'], unique=False)
        batch_op.create_index('ix_cases_owner_updated', ['owner_org_id', 'updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_processing_priority'), ['processing_priority'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_stage'), ['stage'], unique=False)

    op.create_table('sharing_agreements',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('provider_org_id', sa.Uuid(), nullable=False),
    sa.Column('recipient_org_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('purposes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('sections', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('status', sa.Enum('proposed', 'active', 'declined', 'withdrawn', 'ended', name='agreement_status', native_enum=False, length=32), nullable=False),
    sa.Column('proposed_by_org_id', sa.Uuid(), nullable=False),
    sa.Column('proposed_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['decided_by_user_id'], ['users.id'], name=op.f('fk_sharing_agreements_decided_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ended_by_user_id'], ['users.id'], name=op.f('fk_sharing_agreements_ended_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['proposed_by_org_id'], ['organizations.id'], name=op.f('fk_sharing_agreements_proposed_by_org_id_organizations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['proposed_by_user_id'], ['users.id'], name=op.f('fk_sharing_agreements_proposed_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['provider_org_id'], ['organizations.id'], name=op.f('fk_sharing_agreements_provider_org_id_organizations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recipient_org_id'], ['organizations.id'], name=op.f('fk_sharing_agreements_recipient_org_id_organizations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sharing_agreements'))
    )
    with op.batch_alter_table('sharing_agreements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sharing_agreements_provider_org_id'), ['provider_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sharing_agreements_recipient_org_id'), ['recipient_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sharing_agreements_status'), ['status'], unique=False)

    op.create_table('case_checklist',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('item', sa.Enum('security', 'medical', 'exit_permit', 'travel_document', 'orientation', name='checklist_item', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('pending', 'in_progress', 'done', 'blocked', 'not_needed', name='checklist_status', native_enum=False, length=32), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('obstacle_id', sa.Uuid(), nullable=True),
    sa.Column('updated_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_checklist_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_user_id'], ['users.id'], name=op.f('fk_case_checklist_updated_by_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_checklist')),
    sa.UniqueConstraint('case_id', 'item', name=op.f('uq_case_checklist_case_id_item'))
    )
    op.create_table('case_family_ties',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('city', sa.String(length=120), nullable=False),
    sa.Column('relationship', sa.String(length=60), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_family_ties_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_family_ties'))
    )
    with op.batch_alter_table('case_family_ties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_family_ties_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_family_ties_country'), ['country'], unique=False)

    op.create_table('case_links',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('linked_case_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_links_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['linked_case_id'], ['cases.id'], name=op.f('fk_case_links_linked_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_links')),
    sa.UniqueConstraint('case_id', 'linked_case_id', name=op.f('uq_case_links_case_id_linked_case_id'))
    )
    with op.batch_alter_table('case_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_links_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_links_linked_case_id'), ['linked_case_id'], unique=False)

    op.create_table('case_members',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('relationship', sa.Enum('principal', 'spouse', 'partner', 'child', 'stepchild', 'parent', 'sibling', 'grandparent', 'grandchild', 'other_relative', 'non_relative', name='member_relationship', native_enum=False, length=32), nullable=False),
    sa.Column('given_name', sa.String(length=120), nullable=False),
    sa.Column('family_name', sa.String(length=120), nullable=False),
    sa.Column('other_names', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('sex', sa.Enum('female', 'male', 'other', 'unknown', name='member_sex', native_enum=False, length=32), nullable=False),
    sa.Column('birth_year', sa.SmallInteger(), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('nationality', sa.String(length=2), nullable=True),
    sa.Column('stateless', sa.Boolean(), nullable=False),
    sa.Column('languages', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('education', sa.Enum('none', 'primary', 'secondary', 'vocational', 'university', 'unknown', name='member_education', native_enum=False, length=32), nullable=False),
    sa.Column('occupation', sa.String(length=120), nullable=False),
    sa.Column('specific_needs', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('look_alike_key', sa.String(length=34), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_members_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_members'))
    )
    with op.batch_alter_table('case_members', schema=None) as batch_op:
        batch_op.create_index('ix_case_members_case_position', ['case_id', 'position'], unique=False)
        batch_op.create_index('ix_case_members_nationality_case', ['nationality', 'case_id'], unique=False)
        batch_op.create_index('ix_case_members_look_alike', ['look_alike_key', 'birth_year'], unique=False)

    op.create_table('case_stage_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('from_stage', sa.String(length=32), nullable=True),
    sa.Column('to_stage', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('actor_user_id', sa.Uuid(), nullable=True),
    sa.Column('actor_org_id', sa.Uuid(), nullable=True),
    sa.Column('actor_label', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_org_id'], ['organizations.id'], name=op.f('fk_case_stage_events_actor_org_id_organizations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_case_stage_events_actor_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_stage_events_case_id_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_stage_events'))
    )
    with op.batch_alter_table('case_stage_events', schema=None) as batch_op:
        batch_op.create_index('ix_case_stage_events_case_at', ['case_id', 'at'], unique=False)

    op.create_table('case_transfers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('from_org_id', sa.Uuid(), nullable=False),
    sa.Column('to_org_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.Enum('pending', 'accepted', 'declined', 'cancelled', name='transfer_status', native_enum=False, length=32), nullable=False),
    sa.Column('requested_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=1000), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_transfers_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_user_id'], ['users.id'], name=op.f('fk_case_transfers_decided_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['from_org_id'], ['organizations.id'], name=op.f('fk_case_transfers_from_org_id_organizations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['requested_by_user_id'], ['users.id'], name=op.f('fk_case_transfers_requested_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['to_org_id'], ['organizations.id'], name=op.f('fk_case_transfers_to_org_id_organizations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_transfers'))
    )
    with op.batch_alter_table('case_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_transfers_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_transfers_to_org_id'), ['to_org_id'], unique=False)

    op.create_table('referral_rounds',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('sender_org_id', sa.Uuid(), nullable=False),
    sa.Column('mode', sa.Enum('parallel', 'sequential', name='round_mode', native_enum=False, length=32), nullable=False),
    sa.Column('purpose', sa.Enum('resettlement', 'family_reunification', 'complementary_pathway', 'services', name='referral_purpose', native_enum=False, length=32), nullable=False),
    sa.Column('sections', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('recipients', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('next_index', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('consent_override_reason', sa.String(length=500), nullable=False),
    sa.Column('nationality_override_reason', sa.String(length=500), nullable=False),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_referral_rounds_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_referral_rounds_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sender_org_id'], ['organizations.id'], name=op.f('fk_referral_rounds_sender_org_id_organizations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_rounds'))
    )
    with op.batch_alter_table('referral_rounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_rounds_case_id'), ['case_id'], unique=False)

    op.create_table('case_confidential_notes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('owner_org_id', sa.Uuid(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_confidential_notes_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_case_confidential_notes_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['member_id'], ['case_members.id'], name=op.f('fk_case_confidential_notes_member_id_case_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_org_id'], ['organizations.id'], name=op.f('fk_case_confidential_notes_owner_org_id_organizations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_confidential_notes'))
    )
    with op.batch_alter_table('case_confidential_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_confidential_notes_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_confidential_notes_member_id'), ['member_id'], unique=False)

    op.create_table('case_consents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('recipient_org_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.Enum('resettlement', 'family_reunification', 'complementary_pathway', 'services', name='referral_purpose', native_enum=False, length=32), nullable=False),
    sa.Column('method', sa.Enum('verbal', 'written', 'digital', name='consent_method', native_enum=False, length=32), nullable=False),
    sa.Column('given_by_member_id', sa.Uuid(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('recorded_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('withdrawn_reason', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_consents_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['given_by_member_id'], ['case_members.id'], name=op.f('fk_case_consents_given_by_member_id_case_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recipient_org_id'], ['organizations.id'], name=op.f('fk_case_consents_recipient_org_id_organizations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recorded_by_user_id'], ['users.id'], name=op.f('fk_case_consents_recorded_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['withdrawn_by_user_id'], ['users.id'], name=op.f('fk_case_consents_withdrawn_by_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_consents'))
    )
    with op.batch_alter_table('case_consents', schema=None) as batch_op:
        batch_op.create_index('ix_case_consents_case_recipient', ['case_id', 'recipient_org_id', 'purpose'], unique=False)

    op.create_table('case_name_keys',
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('owner_org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['case_members.id'], name=op.f('fk_case_name_keys_member_id_case_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('member_id', 'key', name=op.f('pk_case_name_keys'))
    )
    with op.batch_alter_table('case_name_keys', schema=None) as batch_op:
        batch_op.create_index('ix_case_name_keys_key_owner', ['key', 'owner_org_id', 'member_id', 'case_id'], unique=False)

    op.create_table('referrals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('round_id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('sender_org_id', sa.Uuid(), nullable=False),
    sa.Column('recipient_org_id', sa.Uuid(), nullable=False),
    sa.Column('agreement_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.Enum('resettlement', 'family_reunification', 'complementary_pathway', 'services', name='referral_purpose', native_enum=False, length=32), nullable=False),
    sa.Column('sections', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('shares_identity', sa.Boolean(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'in_progress', 'accepted', 'rejected', 'done', 'revoked', name='referral_status', native_enum=False, length=32), nullable=False),
    sa.Column('consent_id', sa.Uuid(), nullable=True),
    sa.Column('consent_override_reason', sa.String(length=500), nullable=False),
    sa.Column('consent_override_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('nationality_override_reason', sa.String(length=500), nullable=False),
    sa.Column('nationality_override_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('outcome', sa.Enum('successful', 'not_successful', name='referral_outcome', native_enum=False, length=32), nullable=True),
    sa.Column('outcome_reason', sa.String(length=1000), nullable=False),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agreement_id'], ['sharing_agreements.id'], name=op.f('fk_referrals_agreement_id_sharing_agreements'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_referrals_case_id_cases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['consent_id'], ['case_consents.id'], name=op.f('fk_referrals_consent_id_case_consents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['consent_override_by_user_id'], ['users.id'], name=op.f('fk_referrals_consent_override_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_referrals_created_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['nationality_override_by_user_id'], ['users.id'], name=op.f('fk_referrals_nationality_override_by_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recipient_org_id'], ['organizations.id'], name=op.f('fk_referrals_recipient_org_id_organizations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['round_id'], ['referral_rounds.id'], name=op.f('fk_referrals_round_id_referral_rounds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sender_org_id'], ['organizations.id'], name=op.f('fk_referrals_sender_org_id_organizations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referrals_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index('ix_referrals_case_recipient', ['case_id', 'recipient_org_id'], unique=False)
        batch_op.create_index('ix_referrals_recipient_status', ['recipient_org_id', 'status', 'agreement_id', 'case_id'], unique=False, postgresql_include=['shares_identity', 'nationality_override_reason'])
        batch_op.create_index(batch_op.f('ix_referrals_round_id'), ['round_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referrals_sender_org_id'), ['sender_org_id'], unique=False)

    op.create_table('referral_messages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('author_label', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_referral_messages_org_id_organizations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_referral_messages_referral_id_referrals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_referral_messages_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_messages'))
    )
    with op.batch_alter_table('referral_messages', schema=None) as batch_op:
        batch_op.create_index('ix_referral_messages_referral_at', ['referral_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('referral_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_messages_referral_at')

    op.drop_table('referral_messages')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referrals_sender_org_id'))
        batch_op.drop_index(batch_op.f('ix_referrals_round_id'))
        batch_op.drop_index('ix_referrals_recipient_status')
        batch_op.drop_index('ix_referrals_case_recipient')
        batch_op.drop_index(batch_op.f('ix_referrals_agreement_id'))

    op.drop_table('referrals')
    with op.batch_alter_table('case_name_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_case_name_keys_key_owner')

    op.drop_table('case_name_keys')
    with op.batch_alter_table('case_consents', schema=None) as batch_op:
        batch_op.drop_index('ix_case_consents_case_recipient')

    op.drop_table('case_consents')
    with op.batch_alter_table('case_confidential_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_confidential_notes_member_id'))
        batch_op.drop_index(batch_op.f('ix_case_confidential_notes_case_id'))

    op.drop_table('case_confidential_notes')
    with op.batch_alter_table('referral_rounds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_rounds_case_id'))

    op.drop_table('referral_rounds')
    with op.batch_alter_table('case_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_transfers_to_org_id'))
        batch_op.drop_index(batch_op.f('ix_case_transfers_case_id'))

    op.drop_table('case_transfers')
    with op.batch_alter_table('case_stage_events', schema=None) as batch_op:
        batch_op.drop_index('ix_case_stage_events_case_at')

    op.drop_table('case_stage_events')
    with op.batch_alter_table('case_members', schema=None) as batch_op:
        batch_op.drop_index('ix_case_members_look_alike')
        batch_op.drop_index('ix_case_members_nationality_case')
        batch_op.drop_index('ix_case_members_case_position')

    op.drop_table('case_members')
    with op.batch_alter_table('case_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_links_linked_case_id'))
        batch_op.drop_index(batch_op.f('ix_case_links_case_id'))

    op.drop_table('case_links')
    with op.batch_alter_table('case_family_ties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_family_ties_country'))
        batch_op.drop_index(batch_op.f('ix_case_family_ties_case_id'))

    op.drop_table('case_family_ties')
    op.drop_table('case_checklist')
    with op.batch_alter_table('sharing_agreements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sharing_agreements_status'))
        batch_op.drop_index(batch_op.f('ix_sharing_agreements_recipient_org_id'))
        batch_op.drop_index(batch_op.f('ix_sharing_agreements_provider_org_id'))

    op.drop_table('sharing_agreements')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_stage'))
        batch_op.drop_index(batch_op.f('ix_cases_processing_priority'))
        batch_op.drop_index('ix_cases_owner_updated')
        batch_op.drop_index('ix_cases_owner_stage')
        batch_op.drop_index('ix_cases_owner_priority_due')
        batch_op.drop_index('ix_cases_owner_nationality')
        batch_op.drop_index('ix_cases_owner_due')
        batch_op.drop_index(batch_op.f('ix_cases_due_at'))
        batch_op.drop_index(batch_op.f('ix_cases_current_country'))
        batch_op.drop_index(batch_op.f('ix_cases_category_primary'))

    op.drop_table('cases')
    with op.batch_alter_table('case_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_imports_org_id'))

    op.drop_table('case_imports')
    op.drop_table('case_counters')
