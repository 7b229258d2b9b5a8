-- loadtest/plain_ledger.sql — the benchmark's second baseline: a plain
-- PostgreSQL ledger as a competent team would write it without a switch,
-- in schema `plain` of the baseline's database (loadtest/bench.sh runs this
-- as the superuser after loadtest/baseline_setup.sql, whose bench_mix it
-- shares, then pgbench runs loadtest/plain_transfer.sql as the switch's
-- role).
--
-- One function call per transfer, one round trip, one transaction:
--   * the transfer row with its idempotency key, UNIQUE (payer, msg_id),
--     inserted first: a retry finds the row and gets the first transfer's
--     id back (or an error when its content differs), nothing is posted
--     twice;
--   * the balances of the two or three accounts involved updated in a
--     fixed order (ascending account id), so that concurrent transfers
--     never deadlock; a CHECK keeps each balance above its floor (the net
--     debit cap);
--   * two entries (principal), four when the transfer carries a fee, which
--     sum to zero by construction.
-- No triggers, no window row, no status history: nothing a plain ledger
-- does not need. Same accounts (ids), same transfer mix and same hot payee
-- (KOKO) as the switch and the first baseline.

CREATE SCHEMA plain;

CREATE TABLE plain.accounts (
    id          bigint PRIMARY KEY,
    participant text,
    balance     bigint NOT NULL DEFAULT 0,
    floor       bigint NOT NULL,
    CHECK (balance >= floor)
);

CREATE TABLE plain.transfers (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payer          text NOT NULL,
    msg_id         text NOT NULL,
    fingerprint    bytea NOT NULL,
    payee          text NOT NULL,
    amount         bigint NOT NULL CHECK (amount > 0),
    fee            bigint NOT NULL CHECK (fee >= 0 AND fee <= amount),
    purpose        text NOT NULL,
    loan_id        text,
    instalment     integer,
    invoice_number text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payer, msg_id)
);

CREATE TABLE plain.entries (
    transfer_id bigint NOT NULL,
    leg         smallint NOT NULL,
    account_id  bigint NOT NULL,
    amount      bigint NOT NULL,
    PRIMARY KEY (transfer_id, leg)
);

-- every position and the scheme's fee account, with the ids of the
-- switch's schema; caps far beyond any run, as the benchmark sets them for
-- the switch
INSERT INTO plain.accounts (id, participant, floor)
SELECT id, participant, CASE WHEN kind = 'position' THEN -1000000000000000 ELSE 0 END
  FROM accounts
 WHERE kind IN ('position', 'fee');

-- plain.transfer(...): posts one transfer and returns its id; a retry (same
-- payer and msg_id, same fingerprint) returns the first one's id and posts
-- nothing.
CREATE FUNCTION plain.transfer(p_payer text, p_msg_id text, p_fingerprint bytea, p_payee text,
                               p_amount bigint, p_fee bigint, p_payer_account bigint,
                               p_payee_account bigint, p_fee_payer_account bigint,
                               p_fee_account bigint, p_purpose text, p_loan_id text,
                               p_instalment integer, p_invoice_number text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = plain, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_fingerprint bytea;
    r record;
BEGIN
    INSERT INTO transfers (payer, msg_id, fingerprint, payee, amount, fee, purpose, loan_id,
                           instalment, invoice_number)
    VALUES (p_payer, p_msg_id, p_fingerprint, p_payee, p_amount, p_fee, p_purpose, p_loan_id,
            p_instalment, p_invoice_number)
    ON CONFLICT (payer, msg_id) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT id, fingerprint INTO v_id, v_fingerprint
          FROM transfers WHERE payer = p_payer AND msg_id = p_msg_id;
        IF v_fingerprint IS DISTINCT FROM p_fingerprint THEN
            RAISE EXCEPTION 'msg_id % of % was used for another transfer', p_msg_id, p_payer
                USING ERRCODE = 'unique_violation';
        END IF;
        RETURN v_id;
    END IF;

    FOR r IN
        SELECT d.account, sum(d.delta) AS delta
          FROM (VALUES (p_payer_account, -p_amount), (p_payee_account, p_amount),
                       (p_fee_payer_account, -p_fee), (p_fee_account, p_fee)) d(account, delta)
         WHERE d.delta <> 0
         GROUP BY d.account
         ORDER BY d.account
    LOOP
        UPDATE accounts SET balance = balance + r.delta WHERE id = r.account;
    END LOOP;

    IF p_fee > 0 THEN
        INSERT INTO entries (transfer_id, leg, account_id, amount)
        VALUES (v_id, 1, p_payer_account, -p_amount), (v_id, 2, p_payee_account, p_amount),
               (v_id, 3, p_fee_payer_account, -p_fee), (v_id, 4, p_fee_account, p_fee);
    ELSE
        INSERT INTO entries (transfer_id, leg, account_id, amount)
        VALUES (v_id, 1, p_payer_account, -p_amount), (v_id, 2, p_payee_account, p_amount);
    END IF;
    RETURN v_id;
END
$$;

CREATE SEQUENCE plain.msg_seq;

GRANT USAGE ON SCHEMA plain TO sikka_switch;
GRANT SELECT, INSERT, UPDATE ON plain.accounts, plain.transfers, plain.entries TO sikka_switch;
GRANT USAGE ON SEQUENCE plain.msg_seq TO sikka_switch;
GRANT EXECUTE ON FUNCTION plain.transfer TO sikka_switch;
ANALYZE plain.accounts;
