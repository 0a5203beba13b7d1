"""SQL of the modes migration: postings keep to their entry's mode, accounts keep theirs.

Frozen with its migration: later changes go into a new migration, never here.
"""

from migrations.sql import ledger_core_2026_11_23 as ledger_core

CHECK_POSTINGS = r"""
CREATE OR REPLACE FUNCTION ledger_check_postings() RETURNS trigger
LANGUAGE plpgsql AS $fn$
-- Once per INSERT statement on postings (it sees all inserted rows): every posting must
-- name an entry created by this same transaction, and an existing account in the
-- posting's currency and of the entry's mode. Together with the append-only triggers this
-- makes the commit-time balance check of each entry see all of its postings, and keeps
-- sandbox and live money out of each other's entries: an entry takes the mode of the
-- connection that writes it, so a live server cannot move sandbox money even by naming
-- its accounts. The mode costs no extra query: it is compared in the one that was there.
DECLARE
    v record;
BEGIN
    SELECT n.entry_id, n.account_id, n.currency, e.id IS NULL AS foreign_entry,
           a.id IS NULL AS unknown_account, e.mode AS entry_mode, a.mode AS account_mode
      INTO v
      FROM inserted n
      LEFT JOIN journal_entries e
             ON e.id = n.entry_id AND e.txid = (pg_current_xact_id())::text::bigint
      LEFT JOIN ledger_accounts a ON a.id = n.account_id AND a.currency = n.currency
     WHERE e.id IS NULL OR a.id IS NULL OR a.mode <> e.mode
     LIMIT 1;
    IF FOUND THEN
        IF v.foreign_entry THEN
            RAISE EXCEPTION 'posting for account % names entry %, which this transaction did not create',
                v.account_id, v.entry_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        IF v.unknown_account THEN
            RAISE EXCEPTION 'posting of entry % names account % in %, which does not exist in that currency',
                v.entry_id, v.account_id, v.currency
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RAISE EXCEPTION 'posting of % entry % names % account %: sandbox and live money never meet',
            v.entry_mode, v.entry_id, v.account_mode, v.account_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'postings_one_mode';
    END IF;
    RETURN NULL;
END
$fn$
"""

UPGRADE = [
    CHECK_POSTINGS,
    # An account's mode is as fixed as its currency: changing it would put the money of
    # its past entries in the other mode.
    "DROP TRIGGER ledger_accounts_fixed ON ledger_accounts",
    """CREATE TRIGGER ledger_accounts_fixed
       BEFORE UPDATE OF id, currency, must_not_go_negative, mode ON ledger_accounts FOR EACH ROW
       WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.currency IS DISTINCT FROM OLD.currency
             OR NEW.must_not_go_negative IS DISTINCT FROM OLD.must_not_go_negative
             OR NEW.mode IS DISTINCT FROM OLD.mode)
       EXECUTE FUNCTION ledger_forbid_change()""",
]

DOWNGRADE = [
    "DROP TRIGGER ledger_accounts_fixed ON ledger_accounts",
    """CREATE TRIGGER ledger_accounts_fixed BEFORE UPDATE OF id, currency, must_not_go_negative
       ON ledger_accounts FOR EACH ROW
       WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.currency IS DISTINCT FROM OLD.currency
             OR NEW.must_not_go_negative IS DISTINCT FROM OLD.must_not_go_negative)
       EXECUTE FUNCTION ledger_forbid_change()""",
    ledger_core.CHECK_POSTINGS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1),
]
