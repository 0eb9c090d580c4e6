"""digests, delivery log, feedback and preferences

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 12:00:00

Branches off 0002 beside 0003 (the target ledger); a later merge revision joins the two heads.
"""

from alembic import op
import sqlalchemy as sa
import broker.store.types


revision = '0004'
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('digests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('recipient_id', sa.String(length=255), nullable=False),
    sa.Column('as_of', sa.String(length=10), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('to_address', sa.Text(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('delivered_as_of', sa.String(length=10), nullable=True),
    sa.Column('delivered_at', broker.store.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('file_name'),
    sa.UniqueConstraint('recipient_id', 'as_of')
    )
    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_digests_as_of'), ['as_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_digests_recipient_id'), ['recipient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_digests_status'), ['status'], unique=False)

    op.create_table('digest_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('digest_id', sa.String(length=40), nullable=False),
    sa.Column('recipient_id', sa.String(length=255), nullable=False),
    sa.Column('opportunity_id', sa.String(length=255), nullable=False),
    sa.Column('party_id', sa.String(length=255), nullable=False),
    sa.Column('party_type', sa.String(length=24), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['digest_id'], ['digests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('recipient_id', 'opportunity_id'),
    sa.UniqueConstraint('reference')
    )
    with op.batch_alter_table('digest_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_digest_items_digest_id'), ['digest_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_digest_items_opportunity_id'), ['opportunity_id'], unique=False)

    op.create_table('digest_deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('digest_id', sa.String(length=40), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('as_of', sa.String(length=10), nullable=False),
    sa.Column('logged_at', broker.store.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['digest_id'], ['digests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest_id', 'attempt')
    )
    with op.batch_alter_table('digest_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_digest_deliveries_digest_id'), ['digest_id'], unique=False)

    op.create_table('digest_feedback',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('party_id', sa.String(length=255), nullable=False),
    sa.Column('opportunity_id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('reference', sa.String(length=16), nullable=True),
    sa.Column('as_of', sa.String(length=10), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('party_id', 'opportunity_id', 'kind')
    )
    with op.batch_alter_table('digest_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_digest_feedback_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_digest_feedback_party_id'), ['party_id'], unique=False)

    op.create_table('digest_preferences',
    sa.Column('party_id', sa.String(length=255), nullable=False),
    sa.Column('opt_in', sa.Boolean(), nullable=True),
    sa.Column('digest_cap', sa.Integer(), nullable=True),
    sa.Column('min_score', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('party_id')
    )


def downgrade() -> None:
    op.drop_table('digest_preferences')
    with op.batch_alter_table('digest_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_digest_feedback_party_id'))
        batch_op.drop_index(batch_op.f('ix_digest_feedback_opportunity_id'))
    op.drop_table('digest_feedback')
    with op.batch_alter_table('digest_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_digest_deliveries_digest_id'))
    op.drop_table('digest_deliveries')
    with op.batch_alter_table('digest_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_digest_items_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_digest_items_digest_id'))
    op.drop_table('digest_items')
    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_digests_status'))
        batch_op.drop_index(batch_op.f('ix_digests_recipient_id'))
        batch_op.drop_index(batch_op.f('ix_digests_as_of'))
    op.drop_table('digests')
