-- 009: request to pay (ISO 20022 pain.013 / pain.014), RTP Now and RTP
-- Later, with the scheme's consumer guards.
--
-- requests         one row per request a creditor's participant sent, with
--                  its state; the switch moves it only through the functions
--                  below, and requests_transition allows only the legal
--                  moves (README, "Request to pay and consumer guards").
--                  Requests the guards refused are kept too (state
--                  'rejected', reason RQ01..RQ04): they are collection
--                  attempts operators see per loan.
-- request_rules    the guards' limits per purpose (read by the switch at
--                  start; the counting guards are decided here, in
--                  request_create, under a lock of the purpose's row).
-- request_blocks   opt-outs: a debtor's participant blocked a creditor's
--                  requests for one of its accounts.
--
-- Paid at most once: a payment names its request (CreditTransfer.request_id);
-- before routing it the switch binds the payment's key (payer, msg_id) to the
-- accepted request (request_bind_payment: one binding at a time, only for
-- the request's debtor agent, only when amount, purpose, payee and reference
-- match). The posting of that transfer (post_batch's INSERT) marks the
-- request paid in the same transaction (transfers_pay_requests); a rejected
-- one frees the binding. 'paid' is final and paid_transfer_id unique, so no
-- retry, concurrent payment or restart can pay a request twice.
--
-- Runs as sikka_owner (deploy/migrate.sh).

CREATE TABLE request_rules (
    purpose            text PRIMARY KEY
                       CHECK (purpose IN ('BNPL_REPAYMENT', 'SUPPLIER_PAYMENT', 'P2P')),
    -- open (pending, delivered, accepted) requests per creditor agent and
    -- debtor account (RQ01)
    max_open_per_pair  integer NOT NULL CHECK (max_open_per_pair >= 1),
    -- requests ever sent for one loan instalment or invoice of a creditor,
    -- refused ones not counted (RQ02)
    max_per_reference  integer NOT NULL CHECK (max_per_reference >= 1),
    -- quiet hours in Pakistan time (UTC+5, no daylight saving), seconds
    -- after midnight; start = end: none. A window may wrap past midnight.
    quiet_start_s      integer NOT NULL CHECK (quiet_start_s BETWEEN 0 AND 86399),
    quiet_end_s        integer NOT NULL CHECK (quiet_end_s BETWEEN 0 AND 86399),
    default_expiry_s   integer NOT NULL CHECK (default_expiry_s >= 1),
    max_expiry_s       integer NOT NULL,
    CHECK (max_expiry_s >= default_expiry_s)
);
INSERT INTO request_rules VALUES
    ('BNPL_REPAYMENT', 2, 3, 21 * 3600, 8 * 3600, 86400, 7 * 86400),
    ('SUPPLIER_PAYMENT', 5, 5, 22 * 3600, 7 * 3600, 3 * 86400, 30 * 86400),
    ('P2P', 3, 3, 22 * 3600, 7 * 3600, 86400, 7 * 86400);

CREATE TABLE requests (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    creditor_agent    text COLLATE "C" NOT NULL REFERENCES participants (code),
    msg_id            text COLLATE "C" NOT NULL CHECK (length(msg_id) BETWEEN 1 AND 35),
    creditor_account  text NOT NULL CHECK (length(creditor_account) BETWEEN 1 AND 34),
    creditor_name     text NOT NULL DEFAULT '',
    debtor_agent      text COLLATE "C" NOT NULL REFERENCES participants (code),
    debtor_account    text NOT NULL CHECK (length(debtor_account) BETWEEN 1 AND 34),
    amount            bigint NOT NULL CHECK (amount > 0),
    purpose           text NOT NULL REFERENCES request_rules (purpose),
    loan_id           text CHECK (length(loan_id) BETWEEN 1 AND 35),
    instalment        integer CHECK (instalment >= 1),
    invoice_number    text CHECK (length(invoice_number) BETWEEN 1 AND 35),
    due_date          date,                 -- RTP Later; NULL for RTP Now
    deliver_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    state             text NOT NULL CHECK (state IN ('pending', 'delivered', 'accepted',
                          'declined', 'expired', 'cancelled', 'paid', 'rejected')),
    reason            text CHECK (reason ~ '^[A-Z0-9]{4}$'),
    reason_text       text,
    -- the payment being made: its key (debtor_agent, pay_msg_id) and the
    -- boot of the switch that bound it
    pay_msg_id        text COLLATE "C",
    pay_boot          bigint,
    paid_transfer_id  bigint UNIQUE REFERENCES transfers (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (creditor_agent, msg_id),
    CHECK (expires_at > deliver_at),
    CHECK ((state = 'paid') = (paid_transfer_id IS NOT NULL)),
    CHECK (state NOT IN ('declined', 'rejected') OR reason IS NOT NULL),
    CHECK ((pay_msg_id IS NULL) = (pay_boot IS NULL)),
    CHECK (pay_msg_id IS NULL OR state IN ('accepted', 'paid')),
    CHECK ((loan_id IS NULL) = (instalment IS NULL)),
    CHECK (loan_id IS NULL OR invoice_number IS NULL)
);
CREATE INDEX requests_open_pair ON requests (creditor_agent, debtor_agent, debtor_account)
    WHERE state IN ('pending', 'delivered', 'accepted');
CREATE INDEX requests_loan ON requests (creditor_agent, loan_id, instalment)
    WHERE loan_id IS NOT NULL;
CREATE INDEX requests_invoice ON requests (creditor_agent, invoice_number)
    WHERE invoice_number IS NOT NULL;
CREATE INDEX requests_debtor ON requests (debtor_agent, id);
CREATE UNIQUE INDEX requests_paying ON requests (debtor_agent, pay_msg_id)
    WHERE pay_msg_id IS NOT NULL AND state = 'accepted';

CREATE TABLE request_blocks (
    debtor_agent    text COLLATE "C" NOT NULL REFERENCES participants (code),
    debtor_account  text NOT NULL CHECK (length(debtor_account) BETWEEN 1 AND 34),
    creditor_agent  text COLLATE "C" NOT NULL REFERENCES participants (code),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (debtor_agent, debtor_account, creditor_agent)
);

-- The legal moves of a request; nothing but its state, reason, binding and
-- payment ever changes, and a finished request not at all.
CREATE FUNCTION requests_transition() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT ((OLD.state, NEW.state) IN (('pending', 'delivered'), ('pending', 'expired'),
            ('pending', 'cancelled'), ('delivered', 'accepted'), ('delivered', 'declined'),
            ('delivered', 'expired'), ('delivered', 'cancelled'), ('accepted', 'accepted'),
            ('accepted', 'paid'), ('accepted', 'expired'), ('accepted', 'cancelled'))) THEN
        RAISE EXCEPTION 'request %: % -> % is not a legal move', OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation';
    END IF;
    -- a payment in flight holds its request: only its outcome moves it
    IF OLD.pay_msg_id IS NOT NULL AND NEW.state IN ('expired', 'cancelled') THEN
        RAISE EXCEPTION 'request % is being paid (msg_id %): it cannot be %', OLD.id,
            OLD.pay_msg_id, NEW.state
            USING ERRCODE = 'check_violation';
    END IF;
    IF (NEW.id, NEW.creditor_agent, NEW.msg_id, NEW.creditor_account, NEW.creditor_name,
        NEW.debtor_agent, NEW.debtor_account, NEW.amount, NEW.purpose, NEW.loan_id,
        NEW.instalment, NEW.invoice_number, NEW.due_date, NEW.deliver_at, NEW.expires_at,
        NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.creditor_agent, OLD.msg_id, OLD.creditor_account, OLD.creditor_name,
        OLD.debtor_agent, OLD.debtor_account, OLD.amount, OLD.purpose, OLD.loan_id,
        OLD.instalment, OLD.invoice_number, OLD.due_date, OLD.deliver_at, OLD.expires_at,
        OLD.created_at) THEN
        RAISE EXCEPTION 'request %: only its state may change', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER requests_transition BEFORE UPDATE ON requests
    FOR EACH ROW EXECUTE FUNCTION requests_transition();
CREATE TRIGGER requests_no_delete BEFORE DELETE ON requests
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER requests_no_truncate BEFORE TRUNCATE ON requests
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- A posting batch settled or rejected transfers: the ones bound to an
-- accepted request pay it (ACSC) or free it (RJCT). One statement per batch.
CREATE FUNCTION transfers_pay_requests() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE requests r
       SET state = CASE WHEN n.status = 'ACSC' THEN 'paid' ELSE 'accepted' END,
           paid_transfer_id = CASE WHEN n.status = 'ACSC' THEN n.id END,
           pay_msg_id = CASE WHEN n.status = 'ACSC' THEN r.pay_msg_id END,
           pay_boot = CASE WHEN n.status = 'ACSC' THEN r.pay_boot END
      FROM new_transfers n
     WHERE r.pay_msg_id IS NOT NULL AND r.state = 'accepted'
       AND r.debtor_agent = n.payer AND r.pay_msg_id = n.msg_id AND n.kind = 'transfer';
    RETURN NULL;
END
$$;
CREATE TRIGGER transfers_pay_requests AFTER INSERT ON transfers
    REFERENCING NEW TABLE AS new_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION transfers_pay_requests();

-- A new request, or what became of the one with this key. The switch has
-- checked the format, the participants, the amount and the quiet hours
-- (p_refuse: 'RQ03' with its text, or ''); the guards that count are decided
-- here under the purpose's lock, in this order: opt-out (RQ04), quiet hours
-- (RQ03), open requests per creditor and debtor (RQ01), requests per
-- instalment or invoice (RQ02). A refused request is stored as 'rejected'.
-- same_request: the stored request has the same business fields.
CREATE FUNCTION request_create(p_creditor text, p_msg_id text, p_creditor_account text,
                               p_creditor_name text, p_debtor_agent text, p_debtor_account text,
                               p_amount bigint, p_purpose text, p_loan_id text,
                               p_instalment integer, p_invoice text, p_due_date date,
                               p_deliver_ms bigint, p_expires_ms bigint, p_state text,
                               p_refuse text, p_refuse_text text)
RETURNS TABLE (id bigint, state text, reason text, reason_text text, existed boolean,
               same_request boolean, deliver_ms bigint, expires_ms bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    rule request_rules;
    r requests;
    n integer;
    v_reason text := NULLIF(p_refuse, '');
    v_text text := NULLIF(p_refuse_text, '');
BEGIN
    IF p_state NOT IN ('pending', 'delivered') THEN
        RAISE EXCEPTION 'a new request is pending or delivered, not %', p_state
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT * INTO rule FROM request_rules WHERE purpose = p_purpose FOR UPDATE;
    SELECT * INTO r FROM requests q WHERE q.creditor_agent = p_creditor AND q.msg_id = p_msg_id;
    IF FOUND THEN
        RETURN QUERY SELECT r.id, r.state, r.reason, r.reason_text, true,
            (r.debtor_agent, r.debtor_account, r.amount, r.purpose, r.loan_id, r.instalment,
             r.invoice_number, r.due_date, r.creditor_account)
            IS NOT DISTINCT FROM
            (p_debtor_agent, p_debtor_account, p_amount, p_purpose, p_loan_id, p_instalment,
             p_invoice, p_due_date, p_creditor_account),
            (extract(epoch FROM r.deliver_at) * 1000)::bigint,
            (extract(epoch FROM r.expires_at) * 1000)::bigint;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM request_blocks b WHERE b.debtor_agent = p_debtor_agent
                  AND b.debtor_account = p_debtor_account AND b.creditor_agent = p_creditor) THEN
        v_reason := 'RQ04';
        v_text := format('the debtor''s participant %s blocked requests from %s for this account',
                         p_debtor_agent, p_creditor);
    END IF;
    IF v_reason IS NULL THEN
        SELECT count(*) INTO n FROM requests q
         WHERE q.creditor_agent = p_creditor AND q.debtor_agent = p_debtor_agent
           AND q.debtor_account = p_debtor_account
           AND q.state IN ('pending', 'delivered', 'accepted');
        IF n >= rule.max_open_per_pair THEN
            v_reason := 'RQ01';
            v_text := format('%s open requests from %s to this debtor already: at most %s for %s',
                             n, p_creditor, rule.max_open_per_pair, p_purpose);
        END IF;
    END IF;
    IF v_reason IS NULL AND (p_loan_id IS NOT NULL OR p_invoice IS NOT NULL) THEN
        SELECT count(*) INTO n FROM requests q
         WHERE q.creditor_agent = p_creditor AND q.state <> 'rejected'
           AND ((p_loan_id IS NOT NULL AND q.loan_id = p_loan_id AND q.instalment = p_instalment)
             OR (p_invoice IS NOT NULL AND q.invoice_number = p_invoice));
        IF n >= rule.max_per_reference THEN
            v_reason := 'RQ02';
            v_text := format('%s requests for this %s already: at most %s for %s', n,
                             CASE WHEN p_loan_id IS NOT NULL THEN 'instalment' ELSE 'invoice' END,
                             rule.max_per_reference, p_purpose);
        END IF;
    END IF;
    INSERT INTO requests AS q (creditor_agent, msg_id, creditor_account, creditor_name,
                               debtor_agent, debtor_account, amount, purpose, loan_id, instalment,
                               invoice_number, due_date, deliver_at, expires_at, state, reason,
                               reason_text)
    VALUES (p_creditor, p_msg_id, p_creditor_account, coalesce(p_creditor_name, ''),
            p_debtor_agent, p_debtor_account, p_amount, p_purpose, p_loan_id, p_instalment,
            p_invoice, p_due_date, timestamptz 'epoch' + p_deliver_ms * interval '1 millisecond',
            timestamptz 'epoch' + p_expires_ms * interval '1 millisecond',
            CASE WHEN v_reason IS NULL THEN p_state ELSE 'rejected' END, v_reason, v_text)
    RETURNING * INTO r;
    RETURN QUERY SELECT r.id, r.state, r.reason, r.reason_text, false, true, p_deliver_ms,
                        p_expires_ms;
END
$$;

-- A move of a request by the switch: 'delivered' (its time came),
-- 'accepted' or 'declined' (by its debtor agent p_by), 'cancelled' (by its
-- creditor agent p_by), 'expired'. Returns the state it is in afterwards
-- and whether this call moved it; a request that is not p_by's to move
-- looks like one that does not exist (no row).
CREATE FUNCTION request_move(p_id bigint, p_to text, p_by text, p_reason text, p_text text)
RETURNS TABLE (state text, moved boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r requests;
BEGIN
    SELECT * INTO r FROM requests q WHERE q.id = p_id FOR UPDATE;
    IF NOT FOUND
       OR (p_to IN ('accepted', 'declined') AND r.debtor_agent IS DISTINCT FROM p_by)
       OR (p_to = 'cancelled' AND r.creditor_agent IS DISTINCT FROM p_by) THEN
        RETURN;
    END IF;
    IF NOT ((r.state = 'pending' AND p_to IN ('delivered', 'expired', 'cancelled'))
         OR (r.state = 'delivered' AND p_to IN ('accepted', 'declined', 'expired', 'cancelled'))
         OR (r.state = 'accepted' AND p_to IN ('expired', 'cancelled') AND r.pay_msg_id IS NULL))
    THEN
        RETURN QUERY SELECT r.state, false;
        RETURN;
    END IF;
    UPDATE requests q SET state = p_to, reason = NULLIF(p_reason, ''),
                          reason_text = NULLIF(p_text, '')
     WHERE q.id = p_id;
    RETURN QUERY SELECT p_to, true;
END
$$;

-- Binds a payment (the debtor agent's key p_payer, p_msg_id) to an accepted
-- request before the switch routes it. Returns '' or the reason it may not
-- pay the request: RQ05 not payable (unknown, another's, not accepted,
-- finished), RQ06 not what was requested, DUPL paid or being paid by
-- another payment of this switch's boot (a binding of an earlier boot is
-- void: its payment died with that process, whose fence has moved).
CREATE FUNCTION request_bind_payment(p_id bigint, p_boot bigint, p_payer text, p_msg_id text,
                                     p_payee text, p_creditor_account text, p_amount bigint,
                                     p_purpose text, p_loan_id text, p_instalment integer,
                                     p_invoice text)
RETURNS TABLE (reason text, reason_text text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r requests;
BEGIN
    SELECT * INTO r FROM requests q WHERE q.id = p_id FOR UPDATE;
    IF NOT FOUND OR r.debtor_agent IS DISTINCT FROM p_payer THEN
        RETURN QUERY SELECT 'RQ05', format('request %s is not open for payment by %s', p_id,
                                            p_payer);
        RETURN;
    END IF;
    IF r.state = 'paid' THEN
        RETURN QUERY SELECT 'DUPL', format('request %s is already paid by transfer %s', p_id,
                                            r.paid_transfer_id);
        RETURN;
    END IF;
    IF r.state <> 'accepted' THEN
        RETURN QUERY SELECT 'RQ05', format('request %s is %s, not accepted', p_id, r.state);
        RETURN;
    END IF;
    IF (r.creditor_agent, r.creditor_account, r.amount, r.purpose, r.loan_id, r.instalment,
        r.invoice_number)
       IS DISTINCT FROM
       (p_payee, p_creditor_account, p_amount, p_purpose, p_loan_id, p_instalment, p_invoice) THEN
        RETURN QUERY SELECT 'RQ06',
            format('the transfer does not match request %s (creditor, account, amount, purpose '
                   'or reference)', p_id);
        RETURN;
    END IF;
    IF r.pay_msg_id IS NOT NULL AND r.pay_msg_id <> p_msg_id AND r.pay_boot = p_boot THEN
        RETURN QUERY SELECT 'DUPL', format('request %s is being paid by msg_id %s', p_id,
                                            r.pay_msg_id);
        RETURN;
    END IF;
    UPDATE requests q SET pay_msg_id = p_msg_id, pay_boot = p_boot WHERE q.id = p_id;
    RETURN QUERY SELECT '', '';
END
$$;

-- The consumer's opt-out: the debtor's participant p_debtor_agent blocks
-- (or unblocks) p_creditor's requests for its account. Returns true.
CREATE FUNCTION request_block(p_debtor_agent text, p_debtor_account text, p_creditor text,
                              p_block boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_block THEN
        INSERT INTO request_blocks (debtor_agent, debtor_account, creditor_agent)
        VALUES (p_debtor_agent, p_debtor_account, p_creditor) ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM request_blocks
         WHERE debtor_agent = p_debtor_agent AND debtor_account = p_debtor_account
           AND creditor_agent = p_creditor;
    END IF;
    RETURN true;
END
$$;

REVOKE EXECUTE ON FUNCTION
    requests_transition(), transfers_pay_requests(),
    request_create(text, text, text, text, text, text, bigint, text, text, integer, text, date,
                   bigint, bigint, text, text, text),
    request_move(bigint, text, text, text, text),
    request_bind_payment(bigint, bigint, text, text, text, text, bigint, text, text, integer,
                         text),
    request_block(text, text, text, boolean)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    request_create(text, text, text, text, text, text, bigint, text, text, integer, text, date,
                   bigint, bigint, text, text, text),
    request_move(bigint, text, text, text, text),
    request_bind_payment(bigint, bigint, text, text, text, text, bigint, text, text, integer,
                         text),
    request_block(text, text, text, boolean)
    TO sikka_switch;
GRANT SELECT ON requests, request_rules, request_blocks TO sikka_switch, sikka_reader;
