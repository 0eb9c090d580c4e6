"""matches: rank is computed when matches are read, no longer stored

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 06:20:00

A stored rank had to be rewritten for every lower match of a party whenever one new match arrived: a
national nightly run rewrote 340,000 rows to rank 75,000 matches. ``broker.match.queries`` ranks the
active matches of a party when they are read (score, then nearest deadline, then opportunity id).
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_column('rank')


def downgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rank', sa.Integer(), nullable=False, server_default='0'))
