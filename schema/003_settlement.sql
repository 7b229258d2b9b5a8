-- 003: settlement — fee schedule, operator audit trail, settlement window
-- close/settle with the multilateral net report, returns (pacs.004) checked
-- against their originals, and reconcile(): every ledger invariant recomputed
-- from the entries.
--
-- Operator actions (participants, caps, windows) go through SECURITY DEFINER
-- functions that write the audit row in the same transaction as the change;
-- the switch's role loses its direct UPDATE/INSERT on those tables, so an
-- unaudited change is impossible through it.

-- Fees, per purpose: basis points of the amount, clamped to [min_fee,
-- max_fee] and never more than the amount; charged to the payer's or the
-- payee's participant, posted in the same posting as the transfer.
CREATE TABLE fee_schedule (
    purpose     text PRIMARY KEY CHECK (purpose IN ('BNPL_REPAYMENT', 'SUPPLIER_PAYMENT', 'P2P')),
    bps         integer NOT NULL CHECK (bps BETWEEN 0 AND 10000),
    min_fee     bigint NOT NULL CHECK (min_fee >= 0),
    max_fee     bigint NOT NULL CHECK (max_fee >= min_fee),
    charged_to  text NOT NULL CHECK (charged_to IN ('payer', 'payee')),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Raast P2P is free; BNPL repayments are free to the consumer; supplier
-- payments cost the payee's participant 0.20 %, at least PKR 10, at most PKR 500.
INSERT INTO fee_schedule (purpose, bps, min_fee, max_fee, charged_to) VALUES
    ('P2P', 0, 0, 0, 'payer'),
    ('BNPL_REPAYMENT', 0, 0, 0, 'payee'),
    ('SUPPLIER_PAYMENT', 20, 1000, 50000, 'payee');

-- Every operator action that changes something. Append-only.
CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    operator  text NOT NULL CHECK (length(operator) BETWEEN 1 AND 64),
    action    text NOT NULL,
    target    text NOT NULL,
    before    jsonb,
    after     jsonb
);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The multilateral net settlement report of a closed window: the net of
-- every position account (and the scheme's fee account) over the window's
-- transfer postings. Written once, when the window closes.
ALTER TABLE settlement_windows
    ADD COLUMN postings bigint,            -- transfer postings counted at close
    ADD COLUMN gross bigint,               -- sum of the debits of those postings
    ADD COLUMN closed_by text,
    ADD COLUMN settled_by text;

CREATE TABLE window_positions (
    window_id    bigint NOT NULL REFERENCES settlement_windows (id),
    account_id   bigint NOT NULL REFERENCES accounts (id),
    participant  text,                     -- NULL: the scheme's fee account
    net          bigint NOT NULL,          -- credits minus debits in the window
    postings     bigint NOT NULL,          -- postings touching the account
    PRIMARY KEY (window_id, account_id)
);
CREATE TRIGGER window_positions_append_only BEFORE UPDATE OR DELETE ON window_positions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Per-row foreign keys cost a lookup per inserted transfer; the statement
-- trigger below checks the same in one pass per batch.
ALTER TABLE transfers DROP CONSTRAINT transfers_original_id_fkey;
ALTER TABLE transfers DROP CONSTRAINT transfers_window_id_fkey;

-- Transfers inserted by one statement, checked as a whole:
--   * an ACSC transfer names an existing window;
--   * an ACSC return reverses a settled transfer (not a return) between the
--     same two participants, and all ACSC returns of it stay within its amount.
CREATE FUNCTION transfers_check() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    bad record;
BEGIN
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT window_id FROM new_transfers
                               WHERE status = 'ACSC') n
                 LEFT JOIN settlement_windows w ON w.id = n.window_id
                WHERE w.id IS NULL) THEN
        RAISE EXCEPTION 'settled transfer without a settlement window'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM new_transfers WHERE kind = 'return') THEN
        RETURN NULL;
    END IF;
    -- serialise concurrent returns of one original
    PERFORM 1 FROM transfers o
     WHERE o.id IN (SELECT original_id FROM new_transfers WHERE kind = 'return')
     ORDER BY o.id FOR NO KEY UPDATE;
    SELECT n.id, n.original_id INTO bad
      FROM new_transfers n LEFT JOIN transfers o ON o.id = n.original_id
     WHERE n.kind = 'return' AND n.status = 'ACSC'
       AND (o.id IS NULL OR o.kind <> 'transfer' OR o.status <> 'ACSC'
            OR n.payer <> o.payee OR n.payee <> o.payer)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'return % does not reverse a settled transfer %', bad.id, bad.original_id
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT r.original_id, r.total, o.amount INTO bad
      FROM (SELECT t.original_id, sum(t.amount) AS total FROM transfers t
             WHERE t.original_id IN (SELECT original_id FROM new_transfers WHERE kind = 'return')
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
    RETURN NULL;
END
$$;
CREATE TRIGGER transfers_check AFTER INSERT ON transfers
    REFERENCING NEW TABLE AS new_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION transfers_check();

-- Operator actions. Each returns the row as it is after the change.

CREATE FUNCTION participant_add(p_operator text, p_code text, p_name text, p_kind text,
                                p_ndc bigint)
RETURNS participants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r participants;
BEGIN
    INSERT INTO participants (code, name, kind, ndc) VALUES (p_code, p_name, p_kind, p_ndc)
    RETURNING * INTO r;
    INSERT INTO audit_log (operator, action, target, before, after)
    VALUES (p_operator, 'participant.add', p_code, NULL, to_jsonb(r));
    RETURN r;
END
$$;

CREATE FUNCTION participant_set_status(p_operator text, p_code text, p_status text)
RETURNS participants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    old participants;
    r participants;
BEGIN
    SELECT * INTO old FROM participants WHERE code = p_code FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'participant % does not exist', p_code USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE participants SET status = p_status WHERE code = p_code RETURNING * INTO r;
    INSERT INTO audit_log (operator, action, target, before, after)
    VALUES (p_operator, 'participant.' || CASE p_status WHEN 'active' THEN 'resume'
                                                        ELSE 'suspend' END,
            p_code, jsonb_build_object('status', old.status), jsonb_build_object('status', r.status));
    RETURN r;
END
$$;

CREATE FUNCTION participant_set_ndc(p_operator text, p_code text, p_ndc bigint)
RETURNS participants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    old participants;
    r participants;
BEGIN
    SELECT * INTO old FROM participants WHERE code = p_code FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'participant % does not exist', p_code USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE participants SET ndc = p_ndc WHERE code = p_code RETURNING * INTO r;
    INSERT INTO audit_log (operator, action, target, before, after)
    VALUES (p_operator, 'ndc.set', p_code, jsonb_build_object('ndc', old.ndc),
            jsonb_build_object('ndc', r.ndc));
    RETURN r;
END
$$;

-- Closes the open window, opens the next at once and writes the net report.
-- Postings committed before this transaction are in the closed window; every
-- later one goes to the new window (the switch sends this on its posting
-- connection, in order with its batches; other writers wait on the row lock).
CREATE FUNCTION close_window(p_operator text)
RETURNS TABLE (closed_id bigint, opened_id bigint, postings bigint, gross bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    w bigint;
    n bigint;
    g bigint;
    nw bigint;
BEGIN
    UPDATE settlement_windows SET state = 'closed', closed_at = now(), closed_by = p_operator
     WHERE state = 'open' RETURNING id INTO w;
    IF w IS NULL THEN
        RAISE EXCEPTION 'no open settlement window' USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO settlement_windows DEFAULT VALUES RETURNING id INTO nw;

    INSERT INTO window_positions (window_id, account_id, participant, net, postings)
    SELECT w, a.id, a.participant, coalesce(s.net, 0), coalesce(s.postings, 0)
      FROM accounts a
      LEFT JOIN (SELECT e.account_id, sum(e.amount) AS net,
                        count(DISTINCT e.transfer_id) AS postings
                   FROM ledger_entries e
                  WHERE e.window_id = w AND e.leg <> 'settlement'
                  GROUP BY e.account_id) s ON s.account_id = a.id
     WHERE a.kind IN ('position', 'fee');

    SELECT count(DISTINCT e.transfer_id), coalesce(sum(-e.amount) FILTER (WHERE e.amount < 0), 0)
      INTO n, g
      FROM ledger_entries e WHERE e.window_id = w AND e.leg <> 'settlement';
    UPDATE settlement_windows SET postings = n, gross = g WHERE id = w;

    IF (SELECT sum(net) FROM window_positions WHERE window_id = w) <> 0 THEN
        RAISE EXCEPTION 'window % net report does not sum to zero', w
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO audit_log (operator, action, target, before, after)
    VALUES (p_operator, 'window.close', w::text, jsonb_build_object('state', 'open'),
            jsonb_build_object('state', 'closed', 'postings', n, 'gross', g, 'opened', nw));
    RETURN QUERY SELECT w, nw, n, g;
END
$$;

-- Settles a closed window: for every account in its report, a settlement
-- entry moves the net between the position account and the participant's
-- settlement account (the scheme's fee account: to the scheme's settlement
-- account), all in one balanced posting. Returns each position's change so
-- the switch can restore the participants' room under their caps.
CREATE FUNCTION settle_window(p_operator text, p_window bigint)
RETURNS TABLE (participant text, account_id bigint, delta bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    st text;
BEGIN
    SELECT state INTO st FROM settlement_windows WHERE id = p_window FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'settlement window % does not exist', p_window
            USING ERRCODE = 'no_data_found';
    END IF;
    IF st <> 'closed' THEN
        RAISE EXCEPTION 'settlement window % is %, only a closed window can be settled',
            p_window, st USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg)
    SELECT NULL, p_window, x.account_id, x.amount, 'settlement'
      FROM (SELECT wp.account_id, -wp.net AS amount
              FROM window_positions wp WHERE wp.window_id = p_window AND wp.net <> 0
            UNION ALL
            SELECT CASE WHEN wp.participant IS NULL
                        THEN (SELECT id FROM accounts WHERE kind = 'scheme_settlement')
                        ELSE (SELECT id FROM accounts s
                               WHERE s.participant = wp.participant AND s.kind = 'settlement')
                   END,
                   wp.net
              FROM window_positions wp WHERE wp.window_id = p_window AND wp.net <> 0) x;
    UPDATE settlement_windows SET state = 'settled', settled_at = now(), settled_by = p_operator
     WHERE id = p_window;
    INSERT INTO audit_log (operator, action, target, before, after)
    VALUES (p_operator, 'window.settle', p_window::text, jsonb_build_object('state', 'closed'),
            jsonb_build_object('state', 'settled'));
    RETURN QUERY
    SELECT wp.participant, wp.account_id, -wp.net
      FROM window_positions wp WHERE wp.window_id = p_window AND wp.net <> 0;
END
$$;

-- Recomputes everything from the entries; one row per invariant.
CREATE FUNCTION reconcile()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    n bigint;
    m bigint;
BEGIN
    SELECT count(*) INTO n FROM (
        SELECT 1 FROM ledger_entries
         GROUP BY transfer_id, CASE WHEN transfer_id IS NULL THEN window_id END
        HAVING sum(amount) <> 0) x;
    SELECT count(*) INTO m FROM (SELECT DISTINCT transfer_id FROM ledger_entries) x;
    RETURN QUERY SELECT 'postings balanced'::text, n = 0,
        format('%s postings, %s not summing to zero', m, n);

    SELECT count(*) INTO n FROM accounts a
      LEFT JOIN (SELECT account_id, sum(amount) AS s FROM ledger_entries GROUP BY account_id) e
        ON e.account_id = a.id
     WHERE a.balance <> coalesce(e.s, 0);
    RETURN QUERY SELECT 'balances equal entries'::text, n = 0,
        format('%s accounts whose balance differs from the sum of their entries', n);

    SELECT count(*) INTO n FROM transfers t
     WHERE t.status = 'ACSC'
       AND (t.window_id IS NULL
            OR NOT EXISTS (SELECT 1 FROM settlement_windows w WHERE w.id = t.window_id));
    RETURN QUERY SELECT 'settled transfers in a window'::text, n = 0,
        format('%s settled transfers outside any window', n);

    SELECT count(*) INTO n FROM transfers t
      LEFT JOIN (SELECT transfer_id, count(*) AS c FROM ledger_entries
                  WHERE transfer_id IS NOT NULL GROUP BY transfer_id) e ON e.transfer_id = t.id
     WHERE t.status = 'ACSC' AND coalesce(e.c, 0) <> CASE WHEN t.fee > 0 THEN 4 ELSE 2 END;
    SELECT count(*) INTO m FROM ledger_entries e
      JOIN transfers t ON t.id = e.transfer_id WHERE t.status <> 'ACSC';
    SELECT m + count(*) INTO m FROM ledger_entries e
     WHERE e.transfer_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.id = e.transfer_id);
    RETURN QUERY SELECT 'each settled transfer posted once'::text, n = 0 AND m = 0,
        format('%s settled transfers without exactly one posting, %s entries of unsettled or '
               'unknown transfers', n, m);

    SELECT count(*) INTO n FROM settlement_windows w
     WHERE w.state <> 'open'
       AND (SELECT coalesce(sum(net), 0) FROM window_positions p WHERE p.window_id = w.id) <> 0;
    RETURN QUERY SELECT 'window reports sum to zero'::text, n = 0,
        format('%s closed windows whose net report does not sum to zero', n);

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
                            WHERE p.window_id = e.window_id AND p.account_id = e.account_id)) x;
    SELECT count(*) INTO m FROM settlement_windows w
      LEFT JOIN (SELECT window_id, count(*) AS n FROM transfers
                  WHERE status = 'ACSC' GROUP BY window_id) t ON t.window_id = w.id
     WHERE w.state <> 'open' AND w.postings <> coalesce(t.n, 0);
    RETURN QUERY SELECT 'window reports cover their postings'::text, n = 0 AND m = 0,
        format('%s report lines that differ from the entries, %s windows whose posting count '
               'differs from their settled transfers', n, m);

    SELECT count(*) INTO n FROM settlement_windows w
     WHERE (w.state = 'settled') <> EXISTS (SELECT 1 FROM ledger_entries e
                                             WHERE e.window_id = w.id AND e.leg = 'settlement')
       AND EXISTS (SELECT 1 FROM window_positions p WHERE p.window_id = w.id AND p.net <> 0);
    SELECT count(*) INTO m FROM (
        SELECT p.window_id, p.account_id FROM window_positions p
          JOIN settlement_windows w ON w.id = p.window_id AND w.state = 'settled'
          LEFT JOIN (SELECT window_id, account_id, sum(amount) AS s FROM ledger_entries
                      WHERE leg = 'settlement' GROUP BY window_id, account_id) e
            ON e.window_id = p.window_id AND e.account_id = p.account_id
         WHERE coalesce(e.s, 0) <> -p.net) x;
    RETURN QUERY SELECT 'settlements match their reports'::text, n = 0 AND m = 0,
        format('%s windows settled without entries or with entries unsettled, %s position '
               'settlements differing from the report', n, m);

    SELECT count(*) INTO n FROM (
        SELECT r.original_id FROM transfers r
          LEFT JOIN transfers o ON o.id = r.original_id
         WHERE r.kind = 'return' AND r.status = 'ACSC'
         GROUP BY r.original_id, o.id, o.amount, o.kind, o.status
        HAVING o.id IS NULL OR o.kind <> 'transfer' OR o.status <> 'ACSC'
            OR sum(r.amount) > o.amount) x;
    RETURN QUERY SELECT 'returns within their originals'::text, n = 0,
        format('%s originals over-returned or not returnable', n);

    SELECT count(*) INTO n FROM settlement_windows WHERE state = 'open';
    RETURN QUERY SELECT 'one open window'::text, n = 1, format('%s open windows', n);
END
$$;

-- The switch reads everything, inserts transfers, entries and boots, and
-- changes participants and windows only through the audited functions.
REVOKE INSERT, UPDATE ON participants FROM sikka_switch;
REVOKE INSERT, UPDATE ON settlement_windows FROM sikka_switch;
GRANT SELECT ON fee_schedule, audit_log, window_positions TO sikka_switch, sikka_reader;
GRANT EXECUTE ON FUNCTION participant_add, participant_set_status, participant_set_ndc,
    close_window, settle_window, reconcile TO sikka_switch;
GRANT EXECUTE ON FUNCTION reconcile TO sikka_reader;
