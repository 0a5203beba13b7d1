"""SQL of the ledger-core migration: functions and triggers Alembic cannot autogenerate.

Frozen with its migration: later changes go into a new migration, never here.
"""

LEDGER_POST_ENTRY = r"""
CREATE FUNCTION ledger_post_entry(
    p_entry_id text,
    p_kind text,
    p_reference text,
    p_description text,
    p_metadata jsonb,
    p_account_ids text[],
    p_currencies text[],
    p_amounts bigint[],
    p_slot_seed integer
) RETURNS TABLE (outcome text, account_id text, available bigint, entry_id text)
LANGUAGE plpgsql AS $fn$
-- Posts one journal entry in the caller's transaction, in one round trip.
-- The legs come merged by account (one per account). Expected refusals (unknown account,
-- currency mismatch, insufficient funds, reference already used) are *returned* before
-- anything is written, so the caller's transaction stays usable (it may record the
-- failed attempt); only broken invariants raise.
DECLARE
    v_attempt integer;
    v_leg record;
    v_slot record;
    v_remaining bigint;
    v_take bigint;
    v_existing text;
    v_upd_accounts text[] := '{}';
    v_upd_slots smallint[] := '{}';
    v_upd_deltas bigint[] := '{}';
BEGIN
    -- 1. Lock the balance rows, always in (account_id, slot) order, so two entries never
    --    wait on each other in a cycle. A credit, or a posting to an account that may go
    --    negative, touches one slot chosen by p_slot_seed (hot accounts spread their
    --    writers over their slots); a debit of a protected account locks all its slots,
    --    to check and spend their sum. Deadlocks and serialization failures (possible only
    --    with locks the caller took earlier) are retried here, a bounded number of times.
    FOR v_attempt IN 1..5 LOOP
        BEGIN
            PERFORM 1
               FROM unnest(p_account_ids, p_amounts) AS l(account_id, amount)
               JOIN ledger_accounts a ON a.id = l.account_id
               JOIN ledger_balances b ON b.account_id = a.id
              WHERE b.slot = p_slot_seed % a.balance_slots
                 OR (l.amount < 0 AND a.must_not_go_negative)
              ORDER BY b.account_id, b.slot
                FOR UPDATE OF b;
            EXIT;
        EXCEPTION WHEN deadlock_detected OR serialization_failure OR lock_not_available THEN
            IF v_attempt = 5 THEN
                RAISE;
            END IF;
            PERFORM pg_sleep(random() * 0.005 * v_attempt);
        END;
    END LOOP;

    -- 2. Check every leg against its (now locked, freshly read) account.
    FOR v_leg IN
        SELECT l.account_id, l.currency, l.amount,
               a.currency AS account_currency, a.must_not_go_negative, a.balance_slots
          FROM unnest(p_account_ids, p_currencies, p_amounts) AS l(account_id, currency, amount)
          LEFT JOIN ledger_accounts a ON a.id = l.account_id
         ORDER BY l.account_id
    LOOP
        IF v_leg.account_currency IS NULL THEN
            RETURN QUERY SELECT 'unknown_account'::text, v_leg.account_id, NULL::bigint, NULL::text;
            RETURN;
        END IF;
        IF v_leg.account_currency <> v_leg.currency THEN
            RETURN QUERY SELECT 'currency_mismatch'::text, v_leg.account_id, NULL::bigint, NULL::text;
            RETURN;
        END IF;
        IF v_leg.amount < 0 AND v_leg.must_not_go_negative THEN
            -- Spend the slots in order so that every slot, not only their sum, stays >= 0.
            v_remaining := -v_leg.amount;
            FOR v_slot IN
                SELECT b.slot, b.balance FROM ledger_balances b
                 WHERE b.account_id = v_leg.account_id AND b.balance > 0
                 ORDER BY b.slot
            LOOP
                EXIT WHEN v_remaining = 0;
                v_take := least(v_slot.balance, v_remaining);
                v_upd_accounts := v_upd_accounts || v_leg.account_id;
                v_upd_slots := v_upd_slots || v_slot.slot;
                v_upd_deltas := v_upd_deltas || -v_take;
                v_remaining := v_remaining - v_take;
            END LOOP;
            IF v_remaining > 0 THEN
                RETURN QUERY SELECT 'insufficient_funds'::text, v_leg.account_id,
                    (SELECT coalesce(sum(b.balance), 0)::bigint FROM ledger_balances b
                      WHERE b.account_id = v_leg.account_id),
                    NULL::text;
                RETURN;
            END IF;
        ELSE
            v_upd_accounts := v_upd_accounts || v_leg.account_id;
            v_upd_slots := v_upd_slots || (p_slot_seed % v_leg.balance_slots)::smallint;
            v_upd_deltas := v_upd_deltas || v_leg.amount;
        END IF;
    END LOOP;

    -- 3. The entry; a reference already used (possibly by a transaction that committed
    --    while we waited on it) is reported, not raised.
    INSERT INTO journal_entries (id, kind, reference, description, metadata)
    VALUES (p_entry_id, p_kind, p_reference, p_description, p_metadata)
    ON CONFLICT (reference) DO NOTHING;
    IF NOT FOUND THEN
        SELECT e.id INTO v_existing FROM journal_entries e WHERE e.reference = p_reference;
        RETURN QUERY SELECT 'duplicate_reference'::text, NULL::text, NULL::bigint, v_existing;
        RETURN;
    END IF;

    -- 4. Postings and the balance projection, in the same transaction.
    INSERT INTO postings (entry_id, account_id, currency, amount)
    SELECT p_entry_id, l.account_id, l.currency, l.amount
      FROM unnest(p_account_ids, p_currencies, p_amounts) AS l(account_id, currency, amount);

    UPDATE ledger_balances b
       SET balance = b.balance + u.delta
      FROM unnest(v_upd_accounts, v_upd_slots, v_upd_deltas) AS u(account_id, slot, delta)
     WHERE b.account_id = u.account_id AND b.slot = u.slot;

    RETURN QUERY SELECT 'posted'::text, NULL::text, NULL::bigint, p_entry_id;
END
$fn$
"""

CHECK_POSTINGS = r"""
CREATE FUNCTION ledger_check_postings() RETURNS trigger
LANGUAGE plpgsql AS $fn$
-- Once per INSERT statement on postings (it sees all inserted rows): every posting must
-- name an entry created by this same transaction, and an existing account in the
-- posting's currency. Together with the append-only triggers this makes the commit-time
-- balance check of each entry see all of its postings.
DECLARE
    v record;
BEGIN
    SELECT n.entry_id, n.account_id, n.currency, e.id IS NULL AS foreign_entry INTO v
      FROM inserted n
      LEFT JOIN journal_entries e
             ON e.id = n.entry_id AND e.txid = (pg_current_xact_id())::text::bigint
      LEFT JOIN ledger_accounts a ON a.id = n.account_id AND a.currency = n.currency
     WHERE e.id IS NULL OR a.id IS NULL
     LIMIT 1;
    IF FOUND THEN
        IF v.foreign_entry THEN
            RAISE EXCEPTION 'posting for account % names entry %, which this transaction did not create',
                v.account_id, v.entry_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RAISE EXCEPTION 'posting of entry % names account % in %, which does not exist in that currency',
            v.entry_id, v.account_id, v.currency
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$fn$
"""

CHECK_ENTRY_BALANCED = r"""
CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger
LANGUAGE plpgsql AS $fn$
-- Deferred to commit, once per entry: by then every posting of the entry is in.
DECLARE
    v record;
    v_count integer;
BEGIN
    SELECT count(*) INTO v_count FROM postings p WHERE p.entry_id = NEW.id;
    IF v_count < 2 THEN
        RAISE EXCEPTION 'journal entry % has % postings; an entry needs at least two', NEW.id, v_count
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_balanced';
    END IF;
    SELECT p.currency, sum(p.amount) AS total INTO v
      FROM postings p
     WHERE p.entry_id = NEW.id
     GROUP BY p.currency
    HAVING sum(p.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entry % is unbalanced: its % postings sum to %',
            NEW.id, v.currency, v.total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'journal_entries_balanced';
    END IF;
    RETURN NULL;
END
$fn$
"""

FORBID_CHANGE = r"""
CREATE FUNCTION ledger_forbid_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$fn$
"""

UPGRADE = [
    LEDGER_POST_ENTRY,
    CHECK_POSTINGS,
    CHECK_ENTRY_BALANCED,
    FORBID_CHANGE,
    """CREATE TRIGGER postings_checked AFTER INSERT ON postings
       REFERENCING NEW TABLE AS inserted
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_postings()""",
    """CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced()""",
    """CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
       FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()""",
    """CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()""",
    """CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
       FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()""",
    """CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid_change()""",
    # Accounts and balance rows are never deleted, and what makes a balance row protected
    # never changes after it is opened.
    """CREATE TRIGGER ledger_accounts_keep BEFORE DELETE ON ledger_accounts
       FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()""",
    """CREATE TRIGGER ledger_accounts_fixed BEFORE UPDATE OF id, currency, must_not_go_negative
       ON ledger_accounts FOR EACH ROW
       WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.currency IS DISTINCT FROM OLD.currency
             OR NEW.must_not_go_negative IS DISTINCT FROM OLD.must_not_go_negative)
       EXECUTE FUNCTION ledger_forbid_change()""",
    """CREATE TRIGGER ledger_balances_keep BEFORE DELETE ON ledger_balances
       FOR EACH ROW EXECUTE FUNCTION ledger_forbid_change()""",
    """CREATE TRIGGER ledger_balances_fixed BEFORE UPDATE OF account_id, slot, must_not_go_negative
       ON ledger_balances FOR EACH ROW
       WHEN (NEW.account_id IS DISTINCT FROM OLD.account_id OR NEW.slot IS DISTINCT FROM OLD.slot
             OR NEW.must_not_go_negative IS DISTINCT FROM OLD.must_not_go_negative)
       EXECUTE FUNCTION ledger_forbid_change()""",
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS ledger_balances_fixed ON ledger_balances",
    "DROP TRIGGER IF EXISTS ledger_balances_keep ON ledger_balances",
    "DROP TRIGGER IF EXISTS ledger_accounts_fixed ON ledger_accounts",
    "DROP TRIGGER IF EXISTS ledger_accounts_keep ON ledger_accounts",
    "DROP TRIGGER IF EXISTS postings_no_truncate ON postings",
    "DROP TRIGGER IF EXISTS postings_append_only ON postings",
    "DROP TRIGGER IF EXISTS journal_entries_no_truncate ON journal_entries",
    "DROP TRIGGER IF EXISTS journal_entries_append_only ON journal_entries",
    "DROP TRIGGER IF EXISTS journal_entries_balanced ON journal_entries",
    "DROP TRIGGER IF EXISTS postings_checked ON postings",
    "DROP FUNCTION IF EXISTS ledger_forbid_change()",
    "DROP FUNCTION IF EXISTS ledger_check_entry_balanced()",
    "DROP FUNCTION IF EXISTS ledger_check_postings()",
    "DROP FUNCTION IF EXISTS ledger_post_entry(text, text, text, text, jsonb, text[], text[], bigint[], integer)",
]
