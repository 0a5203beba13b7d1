"""SQL of the payments migration: default fees and the audit trail's append-only rule.

Frozen with its migration: later changes go into a new migration, never here.
"""

AUDIT_GUARD = r"""
CREATE FUNCTION audit_records_guard() RETURNS trigger
LANGUAGE plpgsql AS $fn$
-- Audit rows are inserted once and sealed once: the only UPDATE allowed gives an unsealed
-- row its place in the hash chain and changes nothing else.
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.hash IS NULL AND OLD.chain_seq IS NULL
       AND NEW.hash IS NOT NULL AND NEW.chain_seq IS NOT NULL
       AND (to_jsonb(NEW) - 'chain_seq' - 'prev_hash' - 'hash')
           = (to_jsonb(OLD) - 'chain_seq' - 'prev_hash' - 'hash') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on audit_records is not allowed: the audit trail is append-only', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$fn$
"""

UPGRADE = [
    # Default fee: a flat 0.10 in every currency, as the API reference's estimate shows.
    """INSERT INTO fee_schedules (currency, flat, percent_bps) VALUES
       ('USD', 10, 0), ('USDC', 100000, 0), ('USDT', 100000, 0),
       ('PYUSD', 100000, 0), ('EURC', 100000, 0)""",
    # The platform's fee revenue accounts exist from the start (16 balance slots each, so
    # concurrent payments credit different rows).
    """INSERT INTO ledger_accounts
           (id, owner_id, kind, currency, must_not_go_negative, balance_slots, system_key)
       SELECT 'acct_fee_revenue_' || lower(c), NULL, 'fee_revenue', c, true, 16, 'fee_revenue:' || c
         FROM unnest(ARRAY['USD', 'USDC', 'USDT', 'PYUSD', 'EURC']) AS c
       ON CONFLICT (system_key) DO NOTHING""",
    """INSERT INTO ledger_balances (account_id, slot, balance, must_not_go_negative)
       SELECT a.id, s.slot, 0, a.must_not_go_negative
         FROM ledger_accounts a, generate_series(0, a.balance_slots - 1) AS s(slot)
        WHERE a.system_key LIKE 'fee_revenue:%'
       ON CONFLICT DO NOTHING""",
    AUDIT_GUARD,
    """CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
       FOR EACH ROW EXECUTE FUNCTION audit_records_guard()""",
    """CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()""",
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS audit_records_no_truncate ON audit_records",
    "DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records",
    "DROP FUNCTION IF EXISTS audit_records_guard()",
]
