"""opportunities and releases: publishers' text stored as Text; the ocid index takes any length

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:00:00

Real publishers send values longer than the old VARCHAR sizes (Public Contracts Scotland buyer types of
96 characters; ocids, release ids and buyer ids over 255). SQLite never enforced the sizes, PostgreSQL
does, so the same file ingested on one and failed on the other. Publishers' text is now Text; ids the
store keys on stay VARCHAR(255) and hold a readable start plus a sha256 when longer, with the full value
kept in ``opportunities.ocid`` / ``lot_id`` and in the raw release. The ocid index becomes a hash index on
PostgreSQL (a btree entry must fit in about 2,700 bytes); SQLite keeps its ordinary index.
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_OPPORTUNITY_TEXT = {
    'ocid': 255, 'lot_id': 255, 'buyer_id': 255, 'buyer_type': 80, 'notice_type': 40, 'value_currency': 3,
    'value_original': 80, 'postcode': 16, 'lad_code': 16, 'itl_code': 16, 'region': 80,
}


def upgrade() -> None:
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index('ix_opportunities_ocid')
        for name, size in _OPPORTUNITY_TEXT.items():
            batch_op.alter_column(name, existing_type=sa.String(length=size), type_=sa.Text())
    op.create_index('ix_opportunities_ocid', 'opportunities', ['ocid'], unique=False, postgresql_using='hash')
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.alter_column('date', existing_type=sa.String(length=40), type_=sa.Text())


def downgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.alter_column('date', existing_type=sa.Text(), type_=sa.String(length=40))
    op.drop_index('ix_opportunities_ocid', table_name='opportunities')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        for name, size in _OPPORTUNITY_TEXT.items():
            batch_op.alter_column(name, existing_type=sa.Text(), type_=sa.String(length=size))
        batch_op.create_index('ix_opportunities_ocid', ['ocid'], unique=False)
