-- 013: a transfer's timeline: when it was forwarded to its payee and when
-- its outcome was decided.
--
-- The console shows a transfer's messages in order (received, forwarded,
-- decided, posted, reported). The ledger had the first and the posting;
-- the switch now passes, with every transfer of a batch, when it forwarded
-- the transfer to its payee (NULL when it was decided before: a check
-- refused it, or no payee session) and when its outcome was decided (the
-- payee's answer, the payee timeout, or the switch's own refusal), both
-- Unix ms, and post_batch writes them as transfers.forwarded_at and
-- decided_at. Sixteen bytes a row; nothing else about a posting changes:
-- the two post_batch functions below are 004's and 005's with the two
-- arrays added (and 005's outer one calls the new inner one).

-- No CHECK relates them to received_at: they are the switch's wall clock,
-- which may be stepped, and a posting must never be refused for that.
ALTER TABLE transfers
    ADD COLUMN forwarded_at timestamptz,
    ADD COLUMN decided_at timestamptz;

DROP FUNCTION post_batch(bigint, boolean[], bigint[], text[], text[], text[], text[], text[],
                         text[], text[], text[], bigint[], bigint[], text[], text[], text[],
                         text[], integer[], text[], text[], bigint[], text[], text[], text[],
                         text[], bigint[]);
DROP FUNCTION post_batch(bigint[], text[], text[], text[], text[], text[], text[], text[], text[],
                         bigint[], bigint[], text[], text[], text[], text[], integer[], text[],
                         text[], bigint[], text[], text[], text[], text[], bigint[]);

-- 004's post_batch (see its comment there), with the two times.
CREATE FUNCTION post_batch(
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
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    w bigint;
    at bigint := (extract(epoch FROM now()) * 1000)::bigint;
    n_in integer := coalesce(array_length(t_id, 1), 0);
    inserted bigint[];
    n_entries bigint;
    n_expected bigint;
    adj_id bigint[];
    fee_account bigint := (SELECT a.id FROM accounts a WHERE a.kind = 'fee');
BEGIN
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
                      t_decided_ms)
               WITH ORDINALITY
               AS u(id, kind, payer, msg_id, fp, e2e, payee, dacc, cacc, amount, want_fee,
                    want_fee_payer, currency, purpose, loan_id, instalment, invoice, rmt,
                    original_id, return_reason, status, reason, reason_text, received_ms,
                    forwarded_ms, decided_ms, ord)
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
        RETURNING 1
    )
    SELECT coalesce(array_agg(i.id), '{}'),
           coalesce(sum(CASE WHEN i.status <> 'ACSC' THEN 0 WHEN i.fee > 0 THEN 4 ELSE 2 END), 0),
           (SELECT count(*) FROM ent),
           -- where the fee decided differs from the caller's (rare: the
           -- schedule changed under it); reported for the rows written
           (SELECT coalesce(array_agg(p.id), '{}') FROM priced p
             WHERE p.status = 'ACSC'
               AND (p.dfee <> p.want_fee
                    OR (p.dfee > 0 AND p.dfee_payer IS DISTINCT FROM p.want_fee_payer)))
      INTO inserted, n_expected, n_entries, adj_id
      FROM ins i;

    IF n_entries <> n_expected THEN
        RAISE EXCEPTION 'a settled transfer names a participant without a position account'
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    RETURN QUERY SELECT 'batch'::text, w, NULL::bigint, NULL::text, NULL::text, NULL::text,
                        NULL::boolean, NULL::bigint, NULL::text, at;
    IF cardinality(adj_id) > 0 THEN
        RETURN QUERY SELECT 'fee'::text, t.id, NULL::bigint, NULL::text, NULL::text, NULL::text,
                            NULL::boolean, t.fee, t.fee_payer, NULL::bigint
                       FROM transfers t
                      WHERE t.id = ANY (adj_id) AND t.id = ANY (inserted);
    END IF;

    -- Transfers not inserted: their key was taken. Report the stored outcome.
    -- (The common case, every transfer inserted, needs no lookup at all.)
    IF coalesce(array_length(inserted, 1), 0) = n_in THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT 'duplicate'::text, u.id, t.id, t.status, t.reason, t.reason_text,
           t.fingerprint = decode(u.fp, 'hex'), t.fee, t.fee_payer,
           (extract(epoch FROM t.finished_at) * 1000)::bigint
      FROM unnest(t_id, t_payer, t_msg_id, t_fingerprint_hex) AS u(id, payer, msg_id, fp)
      LEFT JOIN unnest(inserted) AS i(id) ON i.id = u.id
      JOIN transfers t ON t.payer = u.payer AND t.msg_id = u.msg_id
     WHERE i.id IS NULL;
END
$$;

-- 005's fenced post_batch, with the two times.
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
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    current bigint := (SELECT f.epoch FROM switch_fence f WHERE f.id = 1);
BEGIN
    IF current IS DISTINCT FROM p_fence THEN
        RAISE EXCEPTION 'fenced: this switch holds fence epoch %, the fence is at % (another switch is active)',
            p_fence, current
            USING ERRCODE = 'SKF01';
    END IF;
    RETURN QUERY
    WITH r AS MATERIALIZED (
        SELECT * FROM post_batch(t_id, t_kind, t_payer, t_msg_id, t_fingerprint_hex,
                                 t_end_to_end_id, t_payee, t_debtor_account, t_creditor_account,
                                 t_amount, t_fee, t_fee_payer, t_currency, t_purpose, t_loan_id,
                                 t_instalment, t_invoice_number, t_remittance_text, t_original_id,
                                 t_return_reason, t_status, t_reason, t_reason_text,
                                 t_received_ms, t_forwarded_ms, t_decided_ms)
    ), o AS (
        INSERT INTO payee_outbox (transfer_id, payee)
        SELECT u.id, u.payee
          FROM unnest(t_id, t_payee, t_notify) AS u(id, payee, notify)
         WHERE u.notify AND u.payee <> ''
           AND NOT EXISTS (SELECT 1 FROM r WHERE r.kind = 'duplicate' AND r.id = u.id)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT r.kind, r.id, r.stored_id, r.status, r.reason, r.reason_text, r.same_request, r.fee,
           r.fee_payer, r.at_ms
      FROM r, (SELECT count(*) FROM o) done;
END
$$;

-- The switch calls the fenced one; the inner one is reached through it only.
REVOKE EXECUTE ON FUNCTION
    post_batch(bigint, boolean[], bigint[], text[], text[], text[], text[], text[], text[],
               text[], text[], bigint[], bigint[], text[], text[], text[], text[], integer[],
               text[], text[], bigint[], text[], text[], text[], text[], bigint[], bigint[],
               bigint[]),
    post_batch(bigint[], text[], text[], text[], text[], text[], text[], text[], text[],
               bigint[], bigint[], text[], text[], text[], text[], integer[], text[], text[],
               bigint[], text[], text[], text[], text[], bigint[], bigint[], bigint[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    post_batch(bigint, boolean[], bigint[], text[], text[], text[], text[], text[], text[],
               text[], text[], bigint[], bigint[], text[], text[], text[], text[], integer[],
               text[], text[], bigint[], text[], text[], text[], text[], bigint[], bigint[],
               bigint[])
    TO sikka_switch;
