"""SQL of the audit owner-sequence migration: the append-only guard lets the sealer give
a row its owner's sequence number with its chain position, and nothing else.

Frozen with its migration: later changes go into a new migration, never here.
"""

from migrations.sql import payments_2026_11_23 as payments

AUDIT_GUARD = r"""
CREATE OR REPLACE FUNCTION audit_records_guard() RETURNS trigger
LANGUAGE plpgsql AS $fn$
-- Audit rows are inserted once and sealed once: the only UPDATE allowed gives an unsealed
-- row its place in the hash chain and in its owner's sequence, and changes nothing else.
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.hash IS NULL AND OLD.chain_seq IS NULL AND OLD.owner_seq IS NULL
       AND NEW.hash IS NOT NULL AND NEW.chain_seq IS NOT NULL AND NEW.owner_seq IS NOT NULL
       AND (to_jsonb(NEW) - 'chain_seq' - 'prev_hash' - 'hash' - 'owner_seq')
           = (to_jsonb(OLD) - 'chain_seq' - 'prev_hash' - 'hash' - 'owner_seq') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on audit_records is not allowed: the audit trail is append-only', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$fn$
"""

# Rows sealed before this revision get their owner's numbers in chain order, as the sealer
# gives them from now on. They are sealed, so the guard refuses the edit: it is switched off
# for this one statement, inside the migration's transaction.
NUMBER_SEALED_ROWS = [
    "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only",
    """UPDATE audit_records a
          SET owner_seq = n.owner_seq
         FROM (SELECT seq,
                      row_number() OVER (PARTITION BY owner_id ORDER BY chain_seq) AS owner_seq
                 FROM audit_records
                WHERE chain_seq IS NOT NULL) AS n
        WHERE a.seq = n.seq""",
    "ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only",
]

UPGRADE = [*NUMBER_SEALED_ROWS, AUDIT_GUARD]

DOWNGRADE = [payments.AUDIT_GUARD.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)]
