"""SQL of the ledger-overflow migration: ``ledger_post_entry`` returns a balance that would
leave the BIGINT range as a refusal (``balance_overflow``) instead of raising.

Frozen with its migration: later changes go into a new migration, never here.
"""

from migrations.sql.ledger_core_2026_11_23 import LEDGER_POST_ENTRY as CREATED

LEDGER_POST_ENTRY = r"""
CREATE OR REPLACE FUNCTION ledger_post_entry(
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
-- insufficient funds, a balance that would leave BIGINT) are *returned*, with everything this call wrote rolled back (the
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
    v_leg integer;  -- the leg being applied, for a refusal raised by its UPDATE
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
                v_leg := v_i;
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
            WHEN numeric_value_out_of_range THEN
                -- A balance row would pass the BIGINT range: the account holds all it can.
                -- (The loop's own v_i is gone here; v_leg names the leg.)
                v_outcome := 'balance_overflow';
                v_account := p_account_ids[v_leg];
                EXIT;
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

#: The function as revision c0392b1d6fe0 created it, for the downgrade.
PREVIOUS = CREATED.replace(
    "CREATE FUNCTION ledger_post_entry(", "CREATE OR REPLACE FUNCTION ledger_post_entry(", 1
)
