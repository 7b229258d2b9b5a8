-- 004: the database as the last line of defence.
--
-- Roles (cluster-wide; created here when missing, deploy/pg.sh gives the
-- LOGIN ones their passwords):
--   sikka_owner   NOLOGIN. Owns every table and function of the schema, so
--                 the SECURITY DEFINER functions run with its rights, never a
--                 superuser's. deploy/migrate.sh runs later migrations as it.
--   sikka_switch  the daemon. Reads every table; writes nothing directly:
--                 only through the SECURITY DEFINER functions below (postings,
--                 its boot row, the audited operator changes, ending a cap's
--                 grace).
--   sikka_reader  reporting (deploy/local.sh pguri): SELECT on every table,
--                 reconcile(); nothing else, not even a temporary table.
--   PUBLIC        nothing: no function, no schema, no database access.
-- tests/integration/it_roles.c proves this matrix against the catalog; an
-- object added later without its line in the matrix fails that test.
--
-- Postings are derived here, not by the caller: post_batch() takes the
-- transfers and builds their legs from the transfer rows, the participants'
-- position accounts and the fee schedule, into the window that is open when
-- it runs. Settlement legs come from the window's frozen report only.
--
-- Fees (README "Fees"): a transfer whose fee would be as large as its amount
-- is refused (AM06 in the switch; a CHECK here). A return refunds the
-- original's fee pro rata to whoever paid it, the rounding settled so that
-- the returns of a whole amount refund exactly the whole fee.
--
-- Net debit caps: a posting is checked against the cap of every position
-- whose balance falls in it (not a payee netting a credit after its fee).
-- Lowering a cap keeps the old one as `ndc_grace` for postings of payments
-- reserved under it; the switch ends the grace once those are through.
--
-- Every change to participants, windows or fees notifies channel
-- `sikka_state`, so the switch re-reads them whoever made the change.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sikka_owner') THEN
        CREATE ROLE sikka_owner NOLOGIN;
    END IF;
END
$$;

-- ---------------------------------------------------------------- schema

ALTER TABLE participants
    -- the higher cap honoured at posting while payments reserved under it
    -- are in flight; NULL when none (see participants_ndc_change)
    ADD COLUMN ndc_grace bigint CHECK (ndc_grace > ndc);

-- transfers: the participant whose position bears the fee (transfers), or
-- receives the refund of the original's fee (returns, `fee` then being the
-- amount refunded). NULL when the fee is 0.
ALTER TABLE transfers ADD COLUMN fee_payer text COLLATE "C";

-- Rows written before this migration: the fee payer is the position that
-- bore the fee leg. The one UPDATE ever made to transfers, by the owner,
-- inside this migration's transaction.
ALTER TABLE transfers DISABLE TRIGGER transfers_append_only;
UPDATE transfers t SET fee_payer = a.participant
  FROM ledger_entries e JOIN accounts a ON a.id = e.account_id AND a.kind = 'position'
 WHERE e.transfer_id = t.id AND e.leg = 'fee' AND e.amount < 0 AND t.fee > 0;
ALTER TABLE transfers ENABLE TRIGGER transfers_append_only;

ALTER TABLE transfers
    ADD CONSTRAINT transfers_fee_payer CHECK ((fee > 0) = (fee_payer IS NOT NULL)) NOT VALID,
    -- a payment must leave its payee something (older rows are not checked)
    ADD CONSTRAINT transfers_fee_below_amount
        CHECK (status <> 'ACSC' OR kind <> 'transfer' OR fee < amount) NOT VALID;

CREATE TRIGGER window_positions_no_truncate BEFORE TRUNCATE ON window_positions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER switch_boots_append_only BEFORE UPDATE OR DELETE ON switch_boots
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- A lowered cap keeps the old one as grace; a raised one ends any grace.
CREATE FUNCTION participants_ndc_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    old_limit bigint := greatest(OLD.ndc, coalesce(OLD.ndc_grace, 0));
BEGIN
    NEW.ndc_grace := CASE WHEN NEW.ndc < old_limit THEN old_limit END;
    RETURN NEW;
END
$$;
CREATE TRIGGER participants_ndc_change BEFORE UPDATE ON participants
    FOR EACH ROW WHEN (OLD.ndc IS DISTINCT FROM NEW.ndc)
    EXECUTE FUNCTION participants_ndc_change();

-- Tells listeners (the switch) that scheme state changed; delivered at commit.
CREATE FUNCTION notify_state_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM pg_notify('sikka_state', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER participants_notify AFTER INSERT OR UPDATE ON participants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_state_change();
CREATE TRIGGER settlement_windows_notify AFTER INSERT OR UPDATE ON settlement_windows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_state_change();
CREATE TRIGGER fee_schedule_notify AFTER INSERT OR UPDATE OR DELETE ON fee_schedule
    FOR EACH STATEMENT EXECUTE FUNCTION notify_state_change();

-- The statement check of new entries, as in 001, with two changes: the cap
-- applies to positions whose balance fell in the statement (by its grace
-- while there is one), and a transfer's entries must be written by the
-- transaction that records the transfer (a later one is a second posting).
CREATE OR REPLACE FUNCTION ledger_entries_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    bad record;
    n_accounts integer;
    n_updated integer;
BEGIN
    SELECT transfer_id, window_id, sum(amount) AS total INTO bad
      FROM new_entries
     GROUP BY transfer_id, CASE WHEN transfer_id IS NULL THEN window_id END, window_id
    HAVING sum(amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unbalanced posting: transfer % window % sums to %',
            bad.transfer_id, bad.window_id, bad.total
            USING ERRCODE = 'check_violation';
    END IF;

    -- One lookup per posting, not per entry: a transfer's entries belong to
    -- a settled (ACSC) transfer of the same window, and are written in the
    -- transaction that records the transfer — entries for a transfer an
    -- earlier transaction recorded are a second posting.
    SELECT e.transfer_id,
           t.id IS NOT NULL AND t.status = 'ACSC' AND t.window_id = e.window_id AS settled
      INTO bad
      FROM (SELECT DISTINCT transfer_id, window_id FROM new_entries
             WHERE transfer_id IS NOT NULL) e
      LEFT JOIN transfers t ON t.id = e.transfer_id
     WHERE t.id IS NULL OR t.status <> 'ACSC' OR t.window_id <> e.window_id
        OR t.xmin <> pg_current_xact_id()::xid
     LIMIT 1;
    IF FOUND AND NOT bad.settled THEN
        RAISE EXCEPTION 'ledger entries must belong to a settled (ACSC) transfer of the same window'
            USING ERRCODE = 'foreign_key_violation';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'transfer % is already posted (an earlier transaction recorded it); '
                        'a second posting is refused', bad.transfer_id
            USING ERRCODE = 'unique_violation';
    END IF;

    -- Lock the windows touched (shared: postings run concurrently, a close
    -- waits for them) and check their state.
    PERFORM 1 FROM settlement_windows w
     WHERE w.id IN (SELECT window_id FROM new_entries) FOR SHARE;
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT window_id, leg = 'settlement' AS settling
                                FROM new_entries) e
                 LEFT JOIN settlement_windows w ON w.id = e.window_id
                WHERE w.id IS NULL
                   OR (NOT e.settling AND w.state <> 'open')
                   OR (e.settling AND w.state <> 'closed')) THEN
        RAISE EXCEPTION 'ledger entries must go to the open window (settlement entries: to a closed one)'
            USING ERRCODE = 'check_violation';
    END IF;

    -- Balances: lock in account id order so concurrent postings never deadlock.
    SELECT count(DISTINCT account_id) INTO n_accounts FROM new_entries;
    PERFORM 1 FROM accounts a
     WHERE a.id IN (SELECT account_id FROM new_entries)
     ORDER BY a.id FOR UPDATE;
    UPDATE accounts a SET balance = a.balance + d.delta
      FROM (SELECT account_id, sum(amount) AS delta FROM new_entries GROUP BY account_id) d
     WHERE a.id = d.account_id;
    GET DIAGNOSTICS n_updated = ROW_COUNT;
    IF n_updated <> n_accounts THEN
        RAISE EXCEPTION 'ledger entries name an unknown account'
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    -- Net debit cap: a position whose balance fell in this statement may not
    -- end below -ndc (below -ndc_grace while a lowered cap's grace lasts).
    SELECT a.participant, a.balance, greatest(p.ndc, coalesce(p.ndc_grace, 0)) AS cap INTO bad
      FROM (SELECT account_id FROM new_entries WHERE leg <> 'settlement'
             GROUP BY account_id HAVING sum(amount) < 0) d
      JOIN accounts a ON a.id = d.account_id AND a.kind = 'position'
      JOIN participants p ON p.code = a.participant
     WHERE a.balance < -greatest(p.ndc, coalesce(p.ndc_grace, 0))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'net debit cap exceeded: % position % below -%',
            bad.participant, bad.balance, bad.cap
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

-- ---------------------------------------------------------------- postings

DROP FUNCTION post_batch(bigint, bigint[], text[], text[], text[], text[], text[], text[], text[],
                         text[], bigint[], bigint[], text[], text[], text[], integer[], text[],
                         text[], bigint[], text[], text[], text[], text[], bigint[], bigint[],
                         bigint[], bigint[], text[]);

-- Writes a batch of finished transfers (ACSC with their postings, RJCT
-- without) in one statement, into the window open when it runs.
--
-- The caller gives the transfers only. Each ACSC transfer's legs are derived
-- here: payer position -amount, payee position +amount and, with a fee, the
-- fee payer's position -fee and the scheme's fee account +fee (returns: the
-- refund in the opposite direction). The fee comes from fee_schedule (returns:
-- the original's fee pro rata); t_fee/t_fee_payer are only what the caller
-- expects, and a row of kind 'fee' reports where the database decided
-- otherwise.
--
-- Idempotency: the unique key (payer, msg_id) is the final word. A transfer
-- whose key already exists is not written; a row of kind 'duplicate' gives
-- the stored outcome (and whether the stored request had the same
-- fingerprint). A batch re-sent after a lost COMMIT therefore posts nothing
-- twice: its transfers come back as duplicates of themselves.
--
-- Result rows:
--   kind 'batch'      id = the window posted to, at_ms = the settlement time
--                     of every transfer written (Unix ms); always one
--   kind 'duplicate'  id = the caller's transfer id; stored_id, status,
--                     reason, reason_text, same_request, fee, fee_payer and
--                     at_ms of the stored transfer
--   kind 'fee'        id, and the fee and fee_payer written
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
    t_received_ms       bigint[])
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
                      t_status, t_reason, t_reason_text, t_received_ms)
               WITH ORDINALITY
               AS u(id, kind, payer, msg_id, fp, e2e, payee, dacc, cacc, amount, want_fee,
                    want_fee_payer, currency, purpose, loan_id, instalment, invoice, rmt,
                    original_id, return_reason, status, reason, reason_text, received_ms, ord)
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
            return_reason, status, reason, reason_text, window_id, received_at)
        SELECT p.id, p.kind, p.payer, p.msg_id, decode(p.fp, 'hex'), p.e2e, p.payee,
               p.dacc, p.cacc, p.amount, p.dfee, CASE WHEN p.dfee > 0 THEN p.dfee_payer END,
               p.currency, p.purpose, p.loan_id, p.instalment, p.invoice, p.rmt, p.original_id,
               p.return_reason, p.status, p.reason, p.reason_text,
               CASE WHEN p.status = 'ACSC' THEN w END,
               timestamptz 'epoch' + p.received_ms * interval '1 millisecond'
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

-- One row per start of the switch: the high half of its transfer ids.
CREATE FUNCTION switch_boot_register(p_host text, p_pid integer)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    INSERT INTO switch_boots (host, pid) VALUES (left(p_host, 255), p_pid) RETURNING id;
$$;

-- Ends a lowered cap's grace once the switch has no payment in flight that
-- was reserved under the old cap. A position still beyond the new cap keeps
-- a grace of exactly its exposure (no further debit can pass) until it is
-- back within. p_ndc is the cap the switch reserves under: when the row's
-- differs, someone lowered it since and the switch has not applied that
-- yet, so payments it reserved under p_ndc may be in flight and the grace
-- stays (the switch asks again once it has). Returns the grace left (NULL:
-- none).
CREATE FUNCTION participant_end_ndc_grace(p_code text, p_ndc bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    p participants;
    bal bigint;
BEGIN
    SELECT * INTO p FROM participants WHERE code = p_code FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'participant % does not exist', p_code USING ERRCODE = 'no_data_found';
    END IF;
    IF p.ndc_grace IS NULL OR p.ndc IS DISTINCT FROM p_ndc THEN
        RETURN p.ndc_grace;
    END IF;
    SELECT balance INTO bal FROM accounts WHERE participant = p_code AND kind = 'position';
    UPDATE participants SET ndc_grace = CASE WHEN bal >= -ndc THEN NULL
                                             ELSE least(ndc_grace, -bal) END
     WHERE code = p_code
    RETURNING ndc_grace INTO p.ndc_grace;
    RETURN p.ndc_grace;
END
$$;

-- ---------------------------------------------------------------- reconcile

DROP FUNCTION reconcile();

-- Recomputes every ledger invariant from the entries: one row per check,
-- status 'ok', 'failed' or 'not checked' (the check itself could not run;
-- never counted as passed). Runs with the caller's rights (read only).
CREATE FUNCTION reconcile()
RETURNS TABLE (check_name text, status text, detail text)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n bigint;
    m bigint;
    checks text[] := ARRAY[
        'postings balanced', 'balances equal entries', 'settled transfers in a window',
        'postings match their transfers', 'window reports sum to zero',
        'window reports cover their postings', 'settlements match their reports',
        'returns within their originals', 'one open window', 'positions within their caps'];
    c text;
    ok boolean;
    msg text;
BEGIN
    FOREACH c IN ARRAY checks LOOP
        BEGIN
            CASE c
            WHEN 'postings balanced' THEN
                SELECT count(*) INTO n FROM (
                    SELECT 1 FROM ledger_entries
                     GROUP BY transfer_id, CASE WHEN transfer_id IS NULL THEN window_id END
                    HAVING sum(amount) <> 0) x;
                SELECT count(*) INTO m FROM (SELECT DISTINCT transfer_id FROM ledger_entries) x;
                ok := n = 0;
                msg := format('%s postings, %s not summing to zero', m, n);

            WHEN 'balances equal entries' THEN
                SELECT count(*) INTO n FROM accounts a
                  LEFT JOIN (SELECT account_id, sum(amount) AS s FROM ledger_entries
                              GROUP BY account_id) e ON e.account_id = a.id
                 WHERE a.balance <> coalesce(e.s, 0);
                ok := n = 0;
                msg := format('%s accounts whose balance differs from the sum of their entries', n);

            WHEN 'settled transfers in a window' THEN
                SELECT count(*) INTO n FROM transfers t
                 WHERE t.status = 'ACSC'
                   AND (t.window_id IS NULL
                        OR NOT EXISTS (SELECT 1 FROM settlement_windows w WHERE w.id = t.window_id));
                ok := n = 0;
                msg := format('%s settled transfers outside any window', n);

            WHEN 'postings match their transfers' THEN
                -- every settled transfer's legs, derived from its row as
                -- post_batch derives them, against the entries it has
                WITH pos AS (SELECT participant, id FROM accounts WHERE kind = 'position'),
                fa AS (SELECT id FROM accounts WHERE kind = 'fee'),
                expected AS (
                    SELECT t.id AS transfer_id, t.window_id, l.account_id, l.amount, l.leg,
                           count(*) AS c
                      FROM transfers t
                      LEFT JOIN pos pp ON pp.participant = t.payer
                      LEFT JOIN pos pe ON pe.participant = t.payee
                      LEFT JOIN pos pf ON pf.participant = t.fee_payer
                      CROSS JOIN fa
                      CROSS JOIN LATERAL (VALUES
                           (pp.id, -t.amount, 'principal'), (pe.id, t.amount, 'principal'),
                           (pf.id, CASE t.kind WHEN 'transfer' THEN -t.fee ELSE t.fee END, 'fee'),
                           (fa.id, CASE t.kind WHEN 'transfer' THEN t.fee ELSE -t.fee END, 'fee'))
                           AS l(account_id, amount, leg)
                     WHERE t.status = 'ACSC' AND (l.leg = 'principal' OR t.fee > 0)
                     GROUP BY 1, 2, 3, 4, 5),
                actual AS (
                    SELECT transfer_id, window_id, account_id, amount, leg, count(*) AS c
                      FROM ledger_entries WHERE transfer_id IS NOT NULL
                     GROUP BY 1, 2, 3, 4, 5)
                -- per transfer with a differing leg, the entries beyond its
                -- legs (legs that match add as many to both sides): more
                -- than none is a second posting, or entries of a transfer
                -- not settled or unknown; a wrong account or amount is not
                SELECT count(*), count(*) FILTER (WHERE x.extra > 0) INTO n, m
                  FROM (SELECT sum(coalesce(a.c, 0) - coalesce(e.c, 0)) AS extra
                          FROM expected e
                          FULL JOIN actual a
                            ON a.transfer_id = e.transfer_id AND a.window_id = e.window_id
                           AND a.account_id IS NOT DISTINCT FROM e.account_id
                           AND a.amount = e.amount AND a.leg = e.leg
                         WHERE e.c IS DISTINCT FROM a.c
                         GROUP BY coalesce(e.transfer_id, a.transfer_id)) x;
                ok := n = 0;
                msg := format('%s transfers whose entries differ from the legs their row '
                              'implies (accounts, amounts, fee, window; %s with more entries '
                              'than legs: posted twice, unsettled or unknown)', n, m);

            WHEN 'window reports sum to zero' THEN
                SELECT count(*) INTO n FROM settlement_windows w
                 WHERE w.state <> 'open'
                   AND (SELECT coalesce(sum(net), 0) FROM window_positions p
                         WHERE p.window_id = w.id) <> 0;
                ok := n = 0;
                msg := format('%s closed windows whose net report does not sum to zero', n);

            WHEN 'window reports cover their postings' THEN
                SELECT count(*) INTO n FROM (
                    SELECT p.window_id, p.account_id FROM window_positions p
                      LEFT JOIN (SELECT window_id, account_id, sum(amount) AS s FROM ledger_entries
                                  WHERE leg <> 'settlement' GROUP BY window_id, account_id) e
                        ON e.window_id = p.window_id AND e.account_id = p.account_id
                     WHERE p.net <> coalesce(e.s, 0)
                    UNION ALL
                    SELECT e.window_id, e.account_id FROM ledger_entries e
                      JOIN settlement_windows w ON w.id = e.window_id AND w.state <> 'open'
                     WHERE e.leg <> 'settlement'
                       AND NOT EXISTS (SELECT 1 FROM window_positions p
                                        WHERE p.window_id = e.window_id
                                          AND p.account_id = e.account_id)) x;
                SELECT count(*) INTO m FROM settlement_windows w
                  LEFT JOIN (SELECT window_id, count(*) AS n FROM transfers
                              WHERE status = 'ACSC' GROUP BY window_id) t ON t.window_id = w.id
                 WHERE w.state <> 'open' AND w.postings <> coalesce(t.n, 0);
                ok := n = 0 AND m = 0;
                msg := format('%s report lines that differ from the entries, %s windows whose '
                              'posting count differs from their settled transfers', n, m);

            WHEN 'settlements match their reports' THEN
                -- both sides: each report line's position (or fee account)
                -- settled by -net, its settlement account (the scheme's for
                -- the fee account) by +net; nothing in windows not settled
                WITH expected AS (
                    SELECT window_id, account_id, sum(amount) AS s FROM (
                        SELECT p.window_id, p.account_id, -p.net AS amount
                          FROM window_positions p
                          JOIN settlement_windows w ON w.id = p.window_id AND w.state = 'settled'
                        UNION ALL
                        SELECT p.window_id,
                               CASE WHEN p.participant IS NULL
                                    THEN (SELECT id FROM accounts WHERE kind = 'scheme_settlement')
                                    ELSE (SELECT id FROM accounts s WHERE s.kind = 'settlement'
                                             AND s.participant = p.participant) END,
                               p.net
                          FROM window_positions p
                          JOIN settlement_windows w ON w.id = p.window_id AND w.state = 'settled') x
                     GROUP BY 1, 2 HAVING sum(amount) <> 0),
                actual AS (
                    SELECT window_id, account_id, sum(amount) AS s FROM ledger_entries
                     WHERE leg = 'settlement' GROUP BY 1, 2 HAVING sum(amount) <> 0)
                SELECT count(*) INTO n
                  FROM expected e FULL JOIN actual a
                    ON a.window_id = e.window_id AND a.account_id IS NOT DISTINCT FROM e.account_id
                 WHERE e.s IS DISTINCT FROM a.s;
                SELECT count(*) INTO m FROM settlement_windows w
                 WHERE w.state = 'settled'
                   AND EXISTS (SELECT 1 FROM window_positions p
                                WHERE p.window_id = w.id AND p.net <> 0)
                   AND NOT EXISTS (SELECT 1 FROM ledger_entries e
                                    WHERE e.window_id = w.id AND e.leg = 'settlement');
                ok := n = 0 AND m = 0;
                msg := format('%s settlement lines (position or settlement side) differing from '
                              'the reports or outside settled windows, %s settled windows '
                              'without settlement entries', n, m);

            WHEN 'returns within their originals' THEN
                SELECT count(*) INTO n FROM (
                    SELECT r.original_id FROM transfers r
                      LEFT JOIN transfers o ON o.id = r.original_id
                     WHERE r.kind = 'return' AND r.status = 'ACSC'
                     GROUP BY r.original_id, o.id, o.amount, o.kind, o.status, o.fee
                    HAVING o.id IS NULL OR o.kind <> 'transfer' OR o.status <> 'ACSC'
                        OR sum(r.amount) > o.amount OR sum(r.fee) > o.fee) x;
                ok := n = 0;
                msg := format('%s originals over-returned (amount or fee refund) or not '
                              'returnable', n);

            WHEN 'one open window' THEN
                SELECT count(*) INTO n FROM settlement_windows WHERE state = 'open';
                ok := n = 1;
                msg := format('%s open windows', n);

            WHEN 'positions within their caps' THEN
                SELECT count(*), string_agg(format('%s %s below -%s', p.code, a.balance,
                                                   greatest(p.ndc, coalesce(p.ndc_grace, 0))),
                                            '; ')
                  INTO n, msg
                  FROM participants p
                  JOIN accounts a ON a.participant = p.code AND a.kind = 'position'
                 WHERE a.balance < -greatest(p.ndc, coalesce(p.ndc_grace, 0));
                ok := n = 0;
                msg := CASE WHEN n = 0 THEN 'every position within its net debit cap'
                            ELSE format('%s positions beyond their cap: %s', n, msg) END;
            END CASE;
            RETURN QUERY SELECT c, CASE WHEN ok THEN 'ok' ELSE 'failed' END, msg;
        EXCEPTION WHEN OTHERS THEN
            RETURN QUERY SELECT c, 'not checked'::text,
                                'the check could not run: ' || SQLERRM;
        END;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- ownership

-- Everything of the schema belongs to sikka_owner, so SECURITY DEFINER
-- functions run with its rights (never a superuser's).
GRANT USAGE, CREATE ON SCHEMA public TO sikka_owner;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO sikka_owner', r.name);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO sikka_owner', r.name);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- privileges

-- Start from nothing: no role but the owner keeps any right from 001-003.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, sikka_switch, sikka_reader;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, sikka_switch, sikka_reader;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC, sikka_switch, sikka_reader;

-- Objects created later start with no rights for anyone but their owner,
-- whoever creates them (the owner, or a superuser running a migration).
ALTER DEFAULT PRIVILEGES FOR ROLE sikka_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC',
                   current_user);
    -- deploy/pg.sh of earlier versions made new tables readable by default
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public '
                   'REVOKE SELECT ON TABLES FROM sikka_reader', current_user);
    -- the database itself: connect for our roles only, temporary tables for none
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO sikka_switch, sikka_reader',
                   current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO sikka_switch, sikka_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO sikka_switch, sikka_reader;

GRANT EXECUTE ON FUNCTION
    post_batch(bigint[], text[], text[], text[], text[], text[], text[], text[], text[],
               bigint[], bigint[], text[], text[], text[], text[], integer[], text[], text[],
               bigint[], text[], text[], text[], text[], bigint[]),
    switch_boot_register(text, integer),
    participant_end_ndc_grace(text, bigint),
    participant_add(text, text, text, text, bigint),
    participant_set_status(text, text, text),
    participant_set_ndc(text, text, bigint),
    close_window(text),
    settle_window(text, bigint)
    TO sikka_switch;
GRANT EXECUTE ON FUNCTION reconcile() TO sikka_switch, sikka_reader;

-- Functions of PostgreSQL's own that let any login write or hold what the
-- switch relies on: large objects (disk), advisory locks (a switch pair's
-- fence). Nobody here needs them; a migration that does grants them.
REVOKE EXECUTE ON FUNCTION
    lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea), lo_put(oid, bigint, bytea),
    lo_import(text), lo_import(text, oid), lo_open(oid, integer), lo_unlink(oid),
    lowrite(integer, bytea), lo_truncate(integer, integer), lo_truncate64(integer, bigint)
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    pg_advisory_lock(bigint), pg_advisory_lock(integer, integer),
    pg_advisory_lock_shared(bigint), pg_advisory_lock_shared(integer, integer),
    pg_try_advisory_lock(bigint), pg_try_advisory_lock(integer, integer),
    pg_try_advisory_lock_shared(bigint), pg_try_advisory_lock_shared(integer, integer),
    pg_advisory_xact_lock(bigint), pg_advisory_xact_lock(integer, integer),
    pg_advisory_xact_lock_shared(bigint), pg_advisory_xact_lock_shared(integer, integer),
    pg_try_advisory_xact_lock(bigint), pg_try_advisory_xact_lock(integer, integer),
    pg_try_advisory_xact_lock_shared(bigint), pg_try_advisory_xact_lock_shared(integer, integer)
    FROM PUBLIC;

-- A leaked reporting password must not be able to take every connection
-- or hold back vacuum for long.
ALTER ROLE sikka_reader CONNECTION LIMIT 16;
ALTER ROLE sikka_reader SET idle_in_transaction_session_timeout = '60s';
