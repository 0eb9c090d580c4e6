"""target ledger: append-only batches and entries counting brokered value

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00.000000

Both tables are append-only (BRIEF, Policies / Ledger): triggers refuse UPDATE and DELETE, so history
cannot be edited by any client, not only by broker's own code. TRUNCATE (test fixtures, a deliberate
administrator reset) is not a row operation and is not refused.
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TABLES = ("target_batches", "target_entries")
MESSAGE = "the target ledger is append-only: record an adjusting entry instead"


def upgrade() -> None:
    op.create_table('target_batches',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cause', sa.String(length=255), nullable=False),
    sa.Column('as_of', sa.String(length=10), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_sha256', sa.String(length=64), nullable=False),
    sa.Column('software', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('target_entries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('opportunity_id', sa.String(length=255), nullable=False),
    sa.Column('party_id', sa.String(length=255), nullable=True),
    sa.Column('party_type', sa.String(length=24), nullable=True),
    sa.Column('cluster', sa.String(length=120), nullable=True),
    sa.Column('stage', sa.String(length=16), nullable=True),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('amount_pence', sa.BigInteger(), nullable=False),
    sa.Column('value_min_pence', sa.BigInteger(), nullable=True),
    sa.Column('value_max_pence', sa.BigInteger(), nullable=True),
    sa.Column('framework', sa.Boolean(), nullable=True),
    sa.Column('notice_status', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('cause', sa.String(length=255), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['target_batches.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('target_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_target_entries_as_of'), ['as_of'], unique=False)
        batch_op.create_index(batch_op.f('ix_target_entries_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_target_entries_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_target_entries_party_id'), ['party_id'], unique=False)
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    with op.batch_alter_table('target_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_target_entries_party_id'))
        batch_op.drop_index(batch_op.f('ix_target_entries_opportunity_id'))
        batch_op.drop_index(batch_op.f('ix_target_entries_batch_id'))
        batch_op.drop_index(batch_op.f('ix_target_entries_as_of'))
    op.drop_table('target_entries')
    op.drop_table('target_batches')


def _create_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION target_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE} (% on %)', TG_OP, TG_TABLE_NAME; END; $$")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION target_ledger_append_only()")
    elif dialect == "sqlite":
        for table in TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def _drop_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS target_ledger_append_only()")
    elif dialect == "sqlite":
        for table in TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
