"""audit: ledger entries carry their hash and every ledger batch is sealed into the audit chain

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:00:00

Adds ``target_entries.entry_hash``. Entries written before this revision get their hash here (the
append-only triggers are lifted for that one update and put back), and every existing batch is sealed
into the chain by a ``ledger`` link marked as sealed at upgrade: the chain vouches for those entries from
the upgrade on, not for what happened to them before.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.orm import Session


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

MESSAGE = "the target ledger is append-only: record an adjusting entry instead"


def upgrade() -> None:
    with op.batch_alter_table('target_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_hash', sa.String(length=64), nullable=True))
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM target_entries")).scalar():
        _seal_existing(bind)


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM audit_chain WHERE kind = 'ledger'"))
    _drop_triggers(bind)
    with op.batch_alter_table('target_entries', schema=None) as batch_op:
        batch_op.drop_column('entry_hash')
    _create_triggers(bind)


def _seal_existing(bind: sa.Connection) -> None:
    # The broker's own hashing and sealing code, so that upgraded and new databases verify alike.
    from broker.audit.ledger import ENTRY_FIELDS, entry_hash, seal_batch
    from broker.store.models import TargetBatch, TargetEntry

    _drop_triggers(bind)
    table = TargetEntry.__table__
    # Typed columns (not raw SQL): SQLite returns booleans as 0/1, which would hash differently.
    rows = bind.execute(sa.select(*(table.c[k] for k in ("id", *ENTRY_FIELDS))).order_by(table.c.id)).mappings().all()
    update = sa.text("UPDATE target_entries SET entry_hash = :h WHERE id = :i")
    for start in range(0, len(rows), 5000):
        bind.execute(update, [{"h": entry_hash(dict(r)), "i": r["id"]} for r in rows[start:start + 5000]])
    _create_triggers(bind)
    session = Session(bind=bind)
    for batch in session.scalars(sa.select(TargetBatch).order_by(TargetBatch.id)):
        seal_batch(session, batch, note="sealed at upgrade (revision 0008)")
    session.flush()


def _drop_triggers(bind: sa.Connection) -> None:
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("DROP TRIGGER IF EXISTS target_entries_append_only ON target_entries"))
    elif bind.dialect.name == "sqlite":
        for action in ("update", "delete"):
            bind.execute(sa.text(f"DROP TRIGGER IF EXISTS target_entries_no_{action}"))


def _create_triggers(bind: sa.Connection) -> None:
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("CREATE TRIGGER target_entries_append_only BEFORE UPDATE OR DELETE ON target_entries "
                             "FOR EACH ROW EXECUTE FUNCTION target_ledger_append_only()"))
    elif bind.dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            bind.execute(sa.text(f"CREATE TRIGGER target_entries_no_{action.lower()} BEFORE {action} ON "
                                 f"target_entries BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"))
