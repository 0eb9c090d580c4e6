"""web: officers who log in to ``broker serve``; the cause of feedback and preference changes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:00:00

``officers`` holds the people who may log in to the officer workspace (argon2 password hashes, never
passwords). ``digest_feedback.cause`` and ``digest_preferences.cause`` say where a VCSE's feedback or
opt-out came from (``feedback:web`` for a signed link in a digest; NULL for rows an officer typed in).
"""

from alembic import op
import sqlalchemy as sa
import broker.store.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('officers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', broker.store.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    with op.batch_alter_table('digest_feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cause', sa.String(length=40), nullable=True))
    with op.batch_alter_table('digest_preferences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cause', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('digest_preferences', schema=None) as batch_op:
        batch_op.drop_column('cause')
    with op.batch_alter_table('digest_feedback', schema=None) as batch_op:
        batch_op.drop_column('cause')
    op.drop_table('officers')
