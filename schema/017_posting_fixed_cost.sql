-- 017: less of a posting batch's cost that does not grow with its size.
--
-- Measured with loadtest/batchcost.sh --instructions (callgrind: the same
-- count on a busy machine as on an idle one) on the database of a short
-- benchmark run (SIKKA_BENCH_RECORDS=20000 and short steps), a
-- post_batch of one transfer cost 3.41 million instructions, and one of 30
-- only 3.3 times that: at the batch sizes of a normal day most of a
-- batch's work is the same whatever its size. Three parts of it go here.
--
-- * The trigger WHEN function that lets post_batch's entries skip
--   ledger_entries_apply() (015) was LANGUAGE sql, and a SQL function in a
--   WHEN clause is parsed and planned again for every statement, for one
--   comparison. It is PL/pgSQL now (its query planned once per
--   connection), and named for what it decides, posting_checks_needed():
--   true unless post_batch holds the posting key.
-- * The transfers' two statement triggers, transfers_check() (windows and
--   returns) and transfers_pay_requests() (requests to pay), fired on every
--   batch: two PL/pgSQL calls over the transition table, to find in the
--   common case that the batch holds no return and pays no request. They
--   stand aside for post_batch too, under the same WHEN, and post_batch does
--   their work itself, only when there is some: transfers_check_returns()
--   and requests_pay(), which the triggers now call as well, so the rules
--   are written once. Every other writer of transfers is checked as before.
-- * post_batch's main statement read its results through eight scalar
--   subqueries, each with an aggregate to set up in every call; now the
--   counts of one source share one aggregate.
--
-- Instructions per call, before, with the WHEN function alone, and after:
--   a batch of 1 transfer:  3,409,505   3,325,480   3,248,056  (4.7 % less)
--   a batch of 30:         11,349,998  11,235,380  11,046,112  (2.7 % less)

ALTER FUNCTION ledger_entries_apply_needed() RENAME TO posting_checks_needed;
CREATE OR REPLACE FUNCTION posting_checks_needed() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN current_setting('sikka.posting', true) IS DISTINCT FROM (SELECT k FROM posting_key);
END
$$;

-- The returns among the transfers p_ids (ids of other kinds, or of no
-- transfer, are passed over), just recorded: each settled one reverses a
-- settled transfer between the same two participants, and the settled
-- returns of one original never total more than it. Concurrent returns of
-- one original are serialised on it (ids in order: no deadlock).
CREATE FUNCTION transfers_check_returns(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    PERFORM 1 FROM transfers o
     WHERE o.id IN (SELECT n.original_id FROM transfers n
                     WHERE n.id = ANY (p_ids) AND n.kind = 'return')
     ORDER BY o.id FOR NO KEY UPDATE;
    SELECT n.id, n.original_id INTO bad
      FROM transfers n LEFT JOIN transfers o ON o.id = n.original_id
     WHERE n.id = ANY (p_ids) AND n.kind = 'return' AND n.status = 'ACSC'
       AND (o.id IS NULL OR o.kind <> 'transfer' OR o.status <> 'ACSC'
            OR n.payer <> o.payee OR n.payee <> o.payer)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'return % does not reverse a settled transfer %', bad.id, bad.original_id
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT r.original_id, r.total, o.amount INTO bad
      FROM (SELECT t.original_id, sum(t.amount) AS total FROM transfers t
             WHERE t.original_id IN (SELECT n.original_id FROM transfers n
                                      WHERE n.id = ANY (p_ids) AND n.kind = 'return')
               AND t.status = 'ACSC' AND t.kind = 'return'
             GROUP BY t.original_id) r
      JOIN transfers o ON o.id = r.original_id
     WHERE r.total > o.amount
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'returns of transfer % total % beyond its amount %',
            bad.original_id, bad.total, bad.amount
            USING ERRCODE = 'check_violation';
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION transfers_check_returns(bigint[]) FROM PUBLIC;

-- The requests to pay that the transfers p_ids, just recorded, pay (009,
-- 014): a settled payment marks its request paid; a rejected one frees it
-- to be paid again.
CREATE FUNCTION requests_pay(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE requests r
       SET state = CASE WHEN n.status = 'ACSC' THEN 'paid' ELSE 'accepted' END,
           paid_transfer_id = CASE WHEN n.status = 'ACSC' THEN n.id END,
           pay_msg_id = CASE WHEN n.status = 'ACSC' THEN r.pay_msg_id END,
           pay_boot = CASE WHEN n.status = 'ACSC' THEN r.pay_boot END
      FROM transfers n
     WHERE n.id = ANY (p_ids)
       AND r.pay_msg_id IS NOT NULL AND r.state = 'accepted'
       AND r.debtor_agent = n.payer AND r.pay_msg_id = n.msg_id AND n.kind = 'transfer';
END
$$;
REVOKE EXECUTE ON FUNCTION requests_pay(bigint[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION transfers_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT window_id FROM new_transfers
                               WHERE status = 'ACSC') n
                 LEFT JOIN settlement_windows w ON w.id = n.window_id
                WHERE w.id IS NULL) THEN
        RAISE EXCEPTION 'settled transfer without a settlement window'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM new_transfers WHERE kind = 'return') THEN
        PERFORM transfers_check_returns(ARRAY(SELECT id FROM new_transfers WHERE kind = 'return'));
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION transfers_pay_requests() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM requests WHERE pay_msg_id IS NOT NULL AND state = 'accepted') THEN
        PERFORM requests_pay(ARRAY(SELECT id FROM new_transfers));
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER transfers_check ON transfers;
CREATE TRIGGER transfers_check AFTER INSERT ON transfers
    REFERENCING NEW TABLE AS new_transfers
    FOR EACH STATEMENT WHEN (posting_checks_needed())
    EXECUTE FUNCTION transfers_check();
DROP TRIGGER transfers_pay_requests ON transfers;
CREATE TRIGGER transfers_pay_requests AFTER INSERT ON transfers
    REFERENCING NEW TABLE AS new_transfers
    FOR EACH STATEMENT WHEN (posting_checks_needed())
    EXECUTE FUNCTION transfers_pay_requests();

-- 015's post_batch with the two changes above; arguments, result and
-- grants as they were (see 004, 005 and 013 for what they mean).
CREATE OR REPLACE FUNCTION post_batch(
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
        -- (a data-modifying WITH runs to completion whether read or not)
        INSERT INTO payee_outbox (transfer_id, payee)
        SELECT i.id, i.payee
          FROM ins i JOIN u ON u.id = i.id
         WHERE u.notify AND i.payee <> ''
        ON CONFLICT DO NOTHING
    ), moved AS (
        SELECT e.account_id, sum(e.amount) AS delta FROM ent e GROUP BY e.account_id
    )
    -- one aggregate per thing read (each costs its set-up in every call)
    SELECT ni.n, ni.expected, ne.n, ne.unbalanced,
           -- where the fee decided differs from the caller's (rare: the
           -- schedule changed under it); reported for the rows written
           (SELECT coalesce(array_agg(i.id), '{}') FROM ins i JOIN priced p ON p.id = i.id
             WHERE p.status = 'ACSC'
               AND (p.dfee <> p.want_fee
                    OR (p.dfee > 0 AND p.dfee_payer IS DISTINCT FROM p.want_fee_payer))),
           mv.ids, mv.deltas
      INTO n_inserted, n_expected, n_entries, unbalanced, adj_id, acc_id, acc_delta
      FROM (SELECT count(*) AS n,
                   coalesce(sum(CASE WHEN i.status <> 'ACSC' THEN 0 WHEN i.fee > 0 THEN 4
                                     ELSE 2 END), 0) AS expected
              FROM ins i) ni,
           (SELECT coalesce(sum(x.n), 0)::bigint AS n,
                   count(*) FILTER (WHERE x.total <> 0) AS unbalanced
              FROM (SELECT count(*) AS n, sum(e.amount) AS total
                      FROM ent e GROUP BY e.transfer_id) x) ne,
           (SELECT array_agg(m.account_id ORDER BY m.account_id) AS ids,
                   array_agg(m.delta ORDER BY m.account_id) AS deltas
              FROM moved m) mv;

    IF n_entries <> n_expected THEN
        RAISE EXCEPTION 'a settled transfer names a participant without a position account'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF unbalanced <> 0 THEN
        RAISE EXCEPTION 'unbalanced posting: % transfers of the batch do not sum to zero', unbalanced
            USING ERRCODE = 'check_violation';
    END IF;

    -- What the transfers' triggers do for every other writer, and stand
    -- aside from here (017): a return reverses a settled transfer and stays
    -- within its amount; a request to pay that this batch pays is marked
    -- paid (or freed, if the payment was rejected). The window check needs
    -- nothing: w is the open window, share-locked above.
    IF 'return' = ANY (t_kind) THEN
        PERFORM transfers_check_returns(
            ARRAY(SELECT u.id FROM unnest(t_id, t_kind) AS u(id, kind) WHERE u.kind = 'return'));
    END IF;
    IF EXISTS (SELECT 1 FROM requests WHERE pay_msg_id IS NOT NULL AND state = 'accepted') THEN
        PERFORM requests_pay(t_id);
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
