-- 015: a posting batch in one function and one pass.
--
-- Until now a batch went through two functions (005's fenced post_batch
-- calling 004's, its result materialised twice) and, after the entries were
-- inserted, through ledger_entries_apply(): eleven statements over the
-- statement's transition table to prove what post_batch had just built
-- (every posting balanced, every entry on a settled transfer of this
-- transaction and of the open window) and to apply the entries to the
-- balances. At the batch sizes of a normal day (tens of transfers) those
-- fixed costs were a good part of the batch's time in the database.
--
-- Now post_batch is one function. Its main statement writes the transfers,
-- their entries and the payees' outbox rows, and returns per account what
-- the entries moved; then two statements lock those accounts in id order,
-- apply the deltas and check the net debit caps. ledger_entries_apply()
-- still guards every other writer (settlement, a migration, an owner's
-- hand): its trigger only stands aside while post_batch itself is running.
-- post_batch marks that by setting sikka.posting to a random key that only
-- the owner can read (posting_key, made here), and takes the mark off once
-- its entries are checked and applied; an error ends the transaction (or
-- rolls back a caller's savepoint) and the mark with it. A session that
-- sets sikka.posting itself does not know the key, so it cannot make
-- another function's entries (a settlement's) skip the checks; and nobody
-- but the owner may insert entries at all (004).
--
-- What the trigger proved, post_batch now proves or builds by construction:
--   * a posting sums to zero: its legs are (-amount, +amount) and
--     (-fee, +fee) by construction, and the main statement also adds up
--     the entries it wrote per transfer; a sum other than zero raises;
--   * entries belong to a settled transfer of this transaction and of the
--     open window: they are made from the rows this statement inserted
--     (RETURNING), ACSC only, with the window locked FOR SHARE above;
--   * every entry's account exists: the legs are joined to the position
--     accounts and the fee account, and the count of entries written is
--     compared with the count the transfers need (as before);
--   * balances and caps: as in ledger_entries_apply(), in the same order.
-- transfers_check() (returns, windows) and transfers_pay_requests() still
-- fire on the transfers insert, unchanged.
--
-- Two indexes go, each an insert per entry or per notice that nothing reads:
--   * ledger_entries.id, a surrogate key (and its sequence and primary key
--     index): entries are found by transfer (ledger_entries_transfer) or by
--     window (the BRIN index), never by their own number, and they are
--     never updated or deleted, so no row needs to be named alone;
--   * payee_outbox's two indexes become one: the primary key is now
--     (payee, transfer_id), which the acknowledgement (payee and ids), the
--     resend on reconnect (a payee's rows in id order) and ON CONFLICT all
--     use; a lookup by transfer alone names the transfer's payee too.
-- Measured on the benchmark's database (loadtest/batchcost.sh; figures in
-- loadtest/README "Where the time goes"): the database's CPU per transfer
-- fell by about a fifth for batches of 30 and by a tenth to a seventh for
-- batches of 600.

ALTER TABLE ledger_entries DROP COLUMN id;

ALTER TABLE payee_outbox DROP CONSTRAINT payee_outbox_pkey;
DROP INDEX payee_outbox_payee;
ALTER TABLE payee_outbox ADD PRIMARY KEY (payee, transfer_id);

CREATE TABLE posting_key (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    k         text NOT NULL
);
INSERT INTO posting_key (k) VALUES (gen_random_uuid()::text);

-- Whether a statement's new entries need ledger_entries_apply(): true unless
-- post_batch is running (sikka.posting holds the key).
CREATE FUNCTION ledger_entries_apply_needed() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT current_setting('sikka.posting', true) IS DISTINCT FROM (SELECT k FROM posting_key)
$$;
REVOKE EXECUTE ON FUNCTION ledger_entries_apply_needed() FROM PUBLIC;

DROP TRIGGER ledger_entries_apply ON ledger_entries;
CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT WHEN (ledger_entries_apply_needed())
    EXECUTE FUNCTION ledger_entries_apply();

DROP FUNCTION post_batch(bigint, boolean[], bigint[], text[], text[], text[], text[], text[],
                         text[], text[], text[], bigint[], bigint[], text[], text[], text[],
                         text[], integer[], text[], text[], bigint[], text[], text[], text[],
                         text[], bigint[], bigint[], bigint[]);
DROP FUNCTION post_batch(bigint[], text[], text[], text[], text[], text[], text[], text[], text[],
                         bigint[], bigint[], text[], text[], text[], text[], integer[], text[],
                         text[], bigint[], text[], text[], text[], text[], bigint[], bigint[],
                         bigint[]);

-- The arguments and the result are 013's (see 004 and 005 for what they
-- mean); t_notify: write the payee's outbox row for this transfer.
CREATE FUNCTION post_batch(
    p_fence             bigint,
    t_notify            boolean[],
    t_id                bigint[],
    t_kind              text[],
    t_payer             text[],
    t_msg_id            text[],
    t_fingerprint_hex   text[],
    t_end_to_end_id     text[],
    t_payee             text[],
    t_debtor_account    text[],
    t_creditor_account  text[],
    t_amount            bigint[],
    t_fee               bigint[],
    t_fee_payer         text[],
    t_currency          text[],
    t_purpose           text[],
    t_loan_id           text[],
    t_instalment        integer[],
    t_invoice_number    text[],
    t_remittance_text   text[],
    t_original_id       bigint[],
    t_return_reason     text[],
    t_status            text[],
    t_reason            text[],
    t_reason_text       text[],
    t_received_ms       bigint[],
    t_forwarded_ms      bigint[],
    t_decided_ms        bigint[])
RETURNS TABLE (kind text, id bigint, stored_id bigint, status text, reason text,
               reason_text text, same_request boolean, fee bigint, fee_payer text, at_ms bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    current bigint := (SELECT f.epoch FROM switch_fence f WHERE f.id = 1);
    w bigint;
    at bigint := (extract(epoch FROM now()) * 1000)::bigint;
    n_in integer := coalesce(array_length(t_id, 1), 0);
    n_inserted integer;
    n_entries bigint;
    n_expected bigint;
    unbalanced bigint;
    adj_id bigint[];
    acc_id bigint[];
    acc_delta bigint[];
    n_updated integer;
    bad record;
    fee_account bigint := (SELECT a.id FROM accounts a WHERE a.kind = 'fee');
BEGIN
    IF current IS DISTINCT FROM p_fence THEN
        RAISE EXCEPTION 'fenced: this switch holds fence epoch %, the fence is at % (another switch is active)',
            p_fence, current
            USING ERRCODE = 'SKF01';
    END IF;

    -- this call's own entries are checked and applied below, not by the
    -- trigger (the mark is taken off again once they are; an error ends the
    -- transaction, or rolls back the caller's savepoint, and the mark with it)
    PERFORM set_config('sikka.posting', (SELECT k FROM posting_key), true);

    -- The open window, share-locked until commit: a close waits for this
    -- posting. A close committed while we waited leaves the old row no longer
    -- open; the next statement's snapshot sees its successor.
    FOR attempt IN 1..5 LOOP
        SELECT sw.id INTO w FROM settlement_windows sw WHERE sw.state = 'open' FOR SHARE;
        EXIT WHEN FOUND;
    END LOOP;
    IF w IS NULL THEN
        RAISE EXCEPTION 'no open settlement window'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    -- Returns refund their original's fee by what was returned before them:
    -- serialise the returns of one original first (ids in order: no deadlock).
    IF 'return' = ANY (t_kind) THEN
        PERFORM 1 FROM transfers o
         WHERE o.id = ANY (t_original_id) ORDER BY o.id FOR NO KEY UPDATE;
    END IF;

    WITH u AS (
        SELECT *
          FROM unnest(t_id, t_kind, t_payer, t_msg_id, t_fingerprint_hex, t_end_to_end_id,
                      t_payee, t_debtor_account, t_creditor_account, t_amount, t_fee,
                      t_fee_payer, t_currency, t_purpose, t_loan_id, t_instalment,
                      t_invoice_number, t_remittance_text, t_original_id, t_return_reason,
                      t_status, t_reason, t_reason_text, t_received_ms, t_forwarded_ms,
                      t_decided_ms, t_notify)
               WITH ORDINALITY
               AS u(id, kind, payer, msg_id, fp, e2e, payee, dacc, cacc, amount, want_fee,
                    want_fee_payer, currency, purpose, loan_id, instalment, invoice, rmt,
                    original_id, return_reason, status, reason, reason_text, received_ms,
                    forwarded_ms, decided_ms, notify, ord)
    ), originals AS (
        -- the originals of the batch's returns, and what was returned of
        -- each before each return (joined on their own: a transfer row
        -- never makes the planner scan the transfers table)
        SELECT u.ord, o.fee, o.amount, o.fee_payer,
               coalesce((SELECT sum(x.amount) FROM transfers x
                          WHERE x.original_id = u.original_id AND x.kind = 'return'
                            AND x.status = 'ACSC'), 0)
               + coalesce(sum(u.amount) OVER (PARTITION BY u.original_id ORDER BY u.ord
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                          0) AS before
          FROM u JOIN transfers o ON o.id = u.original_id
         WHERE u.kind = 'return' AND u.status = 'ACSC'
    ), priced AS (
        -- transfers: the schedule's fee; returns: the original's fee for the
        -- returned total after this return, less that before it
        SELECT u.*,
               CASE WHEN u.status <> 'ACSC' THEN 0
                    WHEN u.kind = 'transfer' THEN
                         coalesce(least(u.amount, f.max_fee,
                                        greatest(f.min_fee, div(u.amount::numeric * f.bps, 10000)
                                                               ::bigint)), 0)
                    WHEN o.fee > 0 THEN
                         (div(o.fee::numeric * (o.before + u.amount), o.amount)
                          - div(o.fee::numeric * o.before, o.amount))::bigint
                    ELSE 0 END AS dfee,
               CASE WHEN u.kind = 'transfer' THEN
                         CASE f.charged_to WHEN 'payer' THEN u.payer ELSE u.payee END
                    ELSE o.fee_payer END AS dfee_payer
          FROM u
          LEFT JOIN fee_schedule f ON u.kind = 'transfer' AND f.purpose = u.purpose
          LEFT JOIN originals o ON o.ord = u.ord
    ), ins AS (
        INSERT INTO transfers AS t (
            id, kind, payer, msg_id, fingerprint, end_to_end_id, payee,
            debtor_account, creditor_account, amount, fee, fee_payer, currency, purpose,
            loan_id, instalment, invoice_number, remittance_text, original_id,
            return_reason, status, reason, reason_text, window_id, received_at, forwarded_at,
            decided_at)
        SELECT p.id, p.kind, p.payer, p.msg_id, decode(p.fp, 'hex'), p.e2e, p.payee,
               p.dacc, p.cacc, p.amount, p.dfee, CASE WHEN p.dfee > 0 THEN p.dfee_payer END,
               p.currency, p.purpose, p.loan_id, p.instalment, p.invoice, p.rmt, p.original_id,
               p.return_reason, p.status, p.reason, p.reason_text,
               CASE WHEN p.status = 'ACSC' THEN w END,
               timestamptz 'epoch' + p.received_ms * interval '1 millisecond',
               timestamptz 'epoch' + p.forwarded_ms * interval '1 millisecond',
               timestamptz 'epoch' + p.decided_ms * interval '1 millisecond'
          FROM priced p
        ON CONFLICT DO NOTHING
        RETURNING t.id, t.kind, t.payer, t.payee, t.amount, t.fee, t.fee_payer, t.status
    ), pos AS (
        SELECT a.participant, a.id FROM accounts a WHERE a.kind = 'position'
    ), ent AS (
        INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg)
        SELECT i.id, w, l.account_id, l.amount, l.leg
          FROM ins i
          JOIN pos pp ON pp.participant = i.payer
          JOIN pos pe ON pe.participant = i.payee
          LEFT JOIN pos pf ON pf.participant = i.fee_payer
          CROSS JOIN LATERAL (VALUES
               (pp.id, -i.amount, 'principal'),
               (pe.id, i.amount, 'principal'),
               (pf.id, CASE i.kind WHEN 'transfer' THEN -i.fee ELSE i.fee END, 'fee'),
               (fee_account, CASE i.kind WHEN 'transfer' THEN i.fee ELSE -i.fee END, 'fee'))
               AS l(account_id, amount, leg)
         WHERE i.status = 'ACSC' AND (l.leg = 'principal' OR i.fee > 0)
        RETURNING transfer_id, account_id, amount
    ), outbox AS (
        -- the payee's settlement report, for every transfer written here
        -- that was forwarded to its payee
        INSERT INTO payee_outbox (transfer_id, payee)
        SELECT i.id, i.payee
          FROM ins i JOIN u ON u.id = i.id
         WHERE u.notify AND i.payee <> ''
        ON CONFLICT DO NOTHING
        RETURNING 1
    ), moved AS (
        SELECT e.account_id, sum(e.amount) AS delta FROM ent e GROUP BY e.account_id
    )
    SELECT (SELECT count(*) FROM ins),
           (SELECT coalesce(sum(CASE WHEN i.status <> 'ACSC' THEN 0 WHEN i.fee > 0 THEN 4
                                     ELSE 2 END), 0) FROM ins i),
           (SELECT count(*) FROM ent),
           (SELECT count(*) FROM (SELECT 1 FROM ent e GROUP BY e.transfer_id
                                   HAVING sum(e.amount) <> 0) x),
           -- where the fee decided differs from the caller's (rare: the
           -- schedule changed under it); reported for the rows written
           (SELECT coalesce(array_agg(i.id), '{}') FROM ins i JOIN priced p ON p.id = i.id
             WHERE p.status = 'ACSC'
               AND (p.dfee <> p.want_fee
                    OR (p.dfee > 0 AND p.dfee_payer IS DISTINCT FROM p.want_fee_payer))),
           (SELECT array_agg(m.account_id ORDER BY m.account_id) FROM moved m),
           (SELECT array_agg(m.delta ORDER BY m.account_id) FROM moved m),
           (SELECT count(*) FROM outbox)
      INTO n_inserted, n_expected, n_entries, unbalanced, adj_id, acc_id, acc_delta;

    IF n_entries <> n_expected THEN
        RAISE EXCEPTION 'a settled transfer names a participant without a position account'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF unbalanced <> 0 THEN
        RAISE EXCEPTION 'unbalanced posting: % transfers of the batch do not sum to zero', unbalanced
            USING ERRCODE = 'check_violation';
    END IF;

    -- Balances: lock in account id order so concurrent postings never
    -- deadlock, apply, and check the caps of the positions that fell (by a
    -- lowered cap's grace while there is one), as ledger_entries_apply().
    IF acc_id IS NOT NULL THEN
        PERFORM 1 FROM accounts a WHERE a.id = ANY (acc_id) ORDER BY a.id FOR UPDATE;
        WITH d AS (
            UPDATE accounts a SET balance = a.balance + m.delta
              FROM unnest(acc_id, acc_delta) AS m(account_id, delta)
             WHERE a.id = m.account_id
            RETURNING a.id, a.participant, a.kind, a.balance, m.delta
        )
        SELECT (SELECT count(*) FROM d) AS n, x.participant, x.balance, x.cap
          INTO bad
          FROM (SELECT 1) one
          LEFT JOIN (SELECT d.participant, d.balance,
                            greatest(p.ndc, coalesce(p.ndc_grace, 0)) AS cap
                       FROM d JOIN participants p ON p.code = d.participant
                      WHERE d.kind = 'position' AND d.delta < 0
                        AND d.balance < -greatest(p.ndc, coalesce(p.ndc_grace, 0))
                      LIMIT 1) x ON true;
        IF bad.n <> cardinality(acc_id) THEN
            RAISE EXCEPTION 'ledger entries name an unknown account'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        IF bad.participant IS NOT NULL THEN
            RAISE EXCEPTION 'net debit cap exceeded: % position % below -%',
                bad.participant, bad.balance, bad.cap
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;

    PERFORM set_config('sikka.posting', '', true);

    RETURN QUERY SELECT 'batch'::text, w, NULL::bigint, NULL::text, NULL::text, NULL::text,
                        NULL::boolean, NULL::bigint, NULL::text, at;
    IF cardinality(adj_id) > 0 THEN
        RETURN QUERY SELECT 'fee'::text, t.id, NULL::bigint, NULL::text, NULL::text, NULL::text,
                            NULL::boolean, t.fee, t.fee_payer, NULL::bigint
                       FROM transfers t
                      WHERE t.id = ANY (adj_id);
    END IF;

    -- Transfers not inserted: their key was taken. Report the stored outcome.
    -- (The common case, every transfer inserted, needs no lookup at all.)
    IF n_inserted = n_in THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT 'duplicate'::text, u.id, t.id, t.status, t.reason, t.reason_text,
           t.fingerprint = decode(u.fp, 'hex'), t.fee, t.fee_payer,
           (extract(epoch FROM t.finished_at) * 1000)::bigint
      FROM unnest(t_id, t_payer, t_msg_id, t_fingerprint_hex) AS u(id, payer, msg_id, fp)
      JOIN transfers t ON t.payer = u.payer AND t.msg_id = u.msg_id
     WHERE t.id <> u.id OR t.xmin <> pg_current_xact_id()::xid;
END
$$;

REVOKE EXECUTE ON FUNCTION
    post_batch(bigint, boolean[], bigint[], text[], text[], text[], text[], text[], text[],
               text[], text[], bigint[], bigint[], text[], text[], text[], text[], integer[],
               text[], text[], bigint[], text[], text[], text[], text[], bigint[], bigint[],
               bigint[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    post_batch(bigint, boolean[], bigint[], text[], text[], text[], text[], text[], text[],
               text[], text[], bigint[], bigint[], text[], text[], text[], text[], integer[],
               text[], text[], bigint[], text[], text[], text[], text[], bigint[], bigint[],
               bigint[])
    TO sikka_switch;
