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
--
-- The legs come merged (one per account). They are sorted by account id here and each
-- is one conditional UPDATE of one balance row, taken in that order, so every entry
-- locks rows in (account_id, slot) order and two entries never wait on each other in
-- a cycle, whoever calls this function.
-- A credit, or a debit of an account allowed to go negative, touches the slot chosen by
-- p_slot_seed: hot accounts spread their writers over their slots. A debit of a
-- protected account with several slots locks all of them and spends them in order, so
-- every slot stays >= 0.
--
-- Expected refusals (reference already used, unknown account, currency mismatch,
-- insufficient funds) are *returned*, with everything this call wrote rolled back (the
-- block below is a subtransaction): the caller's transaction stays usable, for example
-- to record the failed attempt. Deadlocks and serialization failures, possible only
-- with locks the caller took before this call, are retried here a bounded number of times.
DECLARE
    v_attempt integer;
    v_i integer;
    v_done boolean;
    v_acct record;
    v_slot record;
    v_remaining bigint;
    v_take bigint;
    v_outcome text;
    v_account text;
    v_available bigint;
    v_existing text;
BEGIN
    SELECT array_agg(l.account_id ORDER BY l.account_id),
           array_agg(l.currency ORDER BY l.account_id),
           array_agg(l.amount ORDER BY l.account_id)
      INTO p_account_ids, p_currencies, p_amounts
      FROM unnest(p_account_ids, p_currencies, p_amounts) AS l(account_id, currency, amount);

    FOR v_attempt IN 1..3 LOOP
        v_outcome := NULL;
        v_account := NULL;
        v_available := NULL;
        v_existing := NULL;
        BEGIN
            INSERT INTO journal_entries (id, kind, reference, description, metadata)
            VALUES (p_entry_id, p_kind, p_reference, p_description, p_metadata)
            ON CONFLICT (reference) WHERE reference IS NOT NULL DO NOTHING;
            IF NOT FOUND THEN
                SELECT e.id INTO v_existing FROM journal_entries e WHERE e.reference = p_reference;
                v_outcome := 'duplicate_reference';
                RAISE EXCEPTION USING ERRCODE = 'LR001';
            END IF;

            FOR v_i IN 1 .. cardinality(p_account_ids) LOOP
                -- Fast path: one row, checked and changed by one statement.
                UPDATE ledger_balances b
                   SET balance = b.balance + p_amounts[v_i]
                  FROM ledger_accounts a
                 WHERE a.id = p_account_ids[v_i]
                   AND a.currency = p_currencies[v_i]
                   AND b.account_id = a.id
                   AND b.slot = p_slot_seed % a.balance_slots
                   AND (p_amounts[v_i] > 0
                        OR NOT a.must_not_go_negative
                        OR (a.balance_slots = 1 AND b.balance + p_amounts[v_i] >= 0));
                v_done := FOUND;
                IF NOT v_done THEN
                    SELECT a.currency, a.must_not_go_negative, a.balance_slots INTO v_acct
                      FROM ledger_accounts a WHERE a.id = p_account_ids[v_i];
                    v_account := p_account_ids[v_i];
                    IF NOT FOUND THEN
                        v_outcome := 'unknown_account';
                        RAISE EXCEPTION USING ERRCODE = 'LR001';
                    END IF;
                    IF v_acct.currency <> p_currencies[v_i] THEN
                        v_outcome := 'currency_mismatch';
                        RAISE EXCEPTION USING ERRCODE = 'LR001';
                    END IF;
                    IF v_acct.balance_slots > 1 THEN
                        -- A protected account with several slots: lock them all, in order.
                        PERFORM 1 FROM ledger_balances b
                          WHERE b.account_id = v_account ORDER BY b.slot FOR UPDATE;
                        v_remaining := -p_amounts[v_i];
                        FOR v_slot IN
                            SELECT b.slot, b.balance FROM ledger_balances b
                             WHERE b.account_id = v_account AND b.balance > 0
                             ORDER BY b.slot
                        LOOP
                            EXIT WHEN v_remaining = 0;
                            v_take := least(v_slot.balance, v_remaining);
                            UPDATE ledger_balances b SET balance = b.balance - v_take
                             WHERE b.account_id = v_account AND b.slot = v_slot.slot;
                            v_remaining := v_remaining - v_take;
                        END LOOP;
                        v_done := v_remaining = 0;
                    END IF;
                    IF NOT v_done THEN
                        SELECT coalesce(sum(b.balance), 0)::bigint INTO v_available
                          FROM ledger_balances b WHERE b.account_id = v_account;
                        v_outcome := 'insufficient_funds';
                        RAISE EXCEPTION USING ERRCODE = 'LR001';
                    END IF;
                    v_account := NULL;
                END IF;
            END LOOP;

            INSERT INTO postings (entry_id, account_id, currency, amount)
            SELECT p_entry_id, l.account_id, l.currency, l.amount
              FROM unnest(p_account_ids, p_currencies, p_amounts) AS l(account_id, currency, amount);
            EXIT;
        EXCEPTION
            WHEN SQLSTATE 'LR001' THEN
                EXIT;  -- refused: the subtransaction undid this call's writes
            WHEN deadlock_detected OR serialization_failure OR lock_not_available THEN
                IF v_attempt = 3 THEN
                    RAISE;
                END IF;
                PERFORM pg_sleep(random() * 0.005 * v_attempt);
        END;
    END LOOP;
    RETURN QUERY SELECT coalesce(v_outcome, 'posted'), v_account, v_available,
                        coalesce(v_existing, p_entry_id);
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
