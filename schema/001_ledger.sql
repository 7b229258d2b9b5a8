-- 001: participants, accounts, settlement windows, transfers and the
-- append-only double-entry ledger.
--
-- Roles (created here when missing; deploy/ gives them LOGIN and passwords):
--   sikka_switch  the daemon: reads everything, inserts transfers and entries,
--                 never updates or deletes them.
--   sikka_reader  read-only access to every table (deploy/local.sh pguri).
--
-- Invariants the database enforces itself, whatever the client does:
--   * the entries of every posting inserted by one statement sum to zero;
--   * ledger entries and finished transfers are never updated or deleted;
--   * transfer entries go to an open settlement window only;
--   * account balances are maintained by the database from the entries, in
--     the same statement, and a position never goes below -ndc on a debit.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sikka_switch') THEN
        CREATE ROLE sikka_switch NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sikka_reader') THEN
        CREATE ROLE sikka_reader NOLOGIN;
    END IF;
END
$$;

-- A participant is a wallet, bank or lender connected to the switch. `code`
-- is the CN of its client certificate.
CREATE TABLE participants (
    code        text COLLATE "C" PRIMARY KEY CHECK (code ~ '^[A-Z]{4}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 140),
    kind        text NOT NULL CHECK (kind IN ('wallet', 'bank', 'bnpl')),
    status      text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'suspended')),
    -- net debit cap in paisa: the position may go down to -ndc
    ndc         bigint NOT NULL DEFAULT 0 CHECK (ndc >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Ledger accounts. Every participant has a position account (its claim on /
-- debt to the scheme since the last settlement) and a settlement account
-- (the mirror of its funds at the central bank). The scheme has one fee
-- account and one settlement account of its own (participant NULL).
CREATE TABLE accounts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    participant  text COLLATE "C" REFERENCES participants (code),
    kind         text NOT NULL
                 CHECK (kind IN ('position', 'settlement', 'fee', 'scheme_settlement')),
    balance      bigint NOT NULL DEFAULT 0,
    CHECK ((participant IS NULL) = (kind IN ('fee', 'scheme_settlement')))
);
CREATE UNIQUE INDEX accounts_owner_kind ON accounts (coalesce(participant, ''), kind);

INSERT INTO accounts (participant, kind) VALUES (NULL, 'fee'), (NULL, 'scheme_settlement');

CREATE FUNCTION participants_open_accounts() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO accounts (participant, kind)
    VALUES (NEW.code, 'position'), (NEW.code, 'settlement');
    RETURN NEW;
END
$$;
CREATE TRIGGER participants_open_accounts AFTER INSERT ON participants
    FOR EACH ROW EXECUTE FUNCTION participants_open_accounts();

-- Settlement windows: every transfer posting belongs to the one open window.
CREATE TABLE settlement_windows (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state       text NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'closed', 'settled')),
    opened_at   timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    settled_at  timestamptz,
    CHECK ((state = 'open') = (closed_at IS NULL)),
    CHECK ((state = 'settled') = (settled_at IS NOT NULL))
);
CREATE UNIQUE INDEX settlement_windows_one_open ON settlement_windows ((true))
    WHERE state = 'open';
INSERT INTO settlement_windows DEFAULT VALUES;

-- Windows move forward only: open -> closed -> settled.
CREATE FUNCTION settlement_windows_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'settlement window % cannot be deleted', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.id <> OLD.id OR NEW.opened_at <> OLD.opened_at
       OR NOT ((OLD.state = NEW.state)
               OR (OLD.state = 'open' AND NEW.state = 'closed')
               OR (OLD.state = 'closed' AND NEW.state = 'settled')) THEN
        RAISE EXCEPTION 'settlement window %: % -> % is not allowed',
            OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER settlement_windows_forward_only BEFORE UPDATE OR DELETE ON settlement_windows
    FOR EACH ROW EXECUTE FUNCTION settlement_windows_forward_only();

-- One row per start of the switch; its id is the high half of every transfer
-- id that process assigns, so ids stay unique across restarts without a
-- round trip per transfer.
CREATE TABLE switch_boots (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY
                CHECK (id < 2147483648),
    started_at  timestamptz NOT NULL DEFAULT now(),
    host        text NOT NULL DEFAULT '',
    pid         integer NOT NULL DEFAULT 0
);

-- Finished transfers: one row per idempotency key (payer, msg_id), written
-- once with its outcome (ACSC with its posting, or RJCT with its reason) in
-- the same transaction as the ledger entries. In-flight transfers live only
-- in the switch's memory: nothing is acknowledged before this row commits.
CREATE TABLE transfers (
    id                bigint PRIMARY KEY CHECK (id > 0),
    kind              text NOT NULL DEFAULT 'transfer' CHECK (kind IN ('transfer', 'return')),
    -- COLLATE "C": keys compare as bytes, not by locale (cheaper index inserts)
    payer             text COLLATE "C" NOT NULL,
    msg_id            text COLLATE "C" NOT NULL CHECK (length(msg_id) BETWEEN 1 AND 35),
    -- SHA-256 of the request's business fields (see switch/router.c)
    fingerprint       bytea NOT NULL CHECK (length(fingerprint) = 32),
    end_to_end_id     text NOT NULL DEFAULT '',
    payee             text COLLATE "C" NOT NULL DEFAULT '',
    debtor_account    text NOT NULL DEFAULT '',
    creditor_account  text NOT NULL DEFAULT '',
    amount            bigint NOT NULL,
    fee               bigint NOT NULL DEFAULT 0 CHECK (fee >= 0),
    currency          text NOT NULL DEFAULT '',
    purpose           text NOT NULL DEFAULT '',
    loan_id           text,
    instalment        integer,
    invoice_number    text,
    remittance_text   text,
    original_id       bigint REFERENCES transfers (id),
    return_reason     text,             -- returns: the returner's ISO 20022 reason
    status            text NOT NULL CHECK (status IN ('ACSC', 'RJCT')),
    reason            text,
    reason_text       text,
    window_id         bigint REFERENCES settlement_windows (id),
    received_at       timestamptz NOT NULL,
    finished_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payer, msg_id),
    CHECK (status = 'RJCT' OR (amount > 0 AND window_id IS NOT NULL AND reason IS NULL)),
    CHECK (status = 'ACSC' OR (reason IS NOT NULL AND window_id IS NULL)),
    CHECK ((kind = 'return') = (original_id IS NOT NULL)),
    CHECK ((kind = 'return') = (return_reason IS NOT NULL))
);
-- Ids grow with time (boot id << 32 | sequence), so the primary key also
-- serves "the most recent transfers"; only returns need another index.
CREATE INDEX transfers_original ON transfers (original_id) WHERE original_id IS NOT NULL;

-- The ledger. A posting is the set of entries of one transfer (transfer_id)
-- or the settlement of one window (transfer_id NULL, leg 'settlement').
-- Debits are negative, credits positive; each posting sums to zero.
CREATE TABLE ledger_entries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id  bigint,
    window_id    bigint NOT NULL,
    account_id   bigint NOT NULL,
    amount       bigint NOT NULL CHECK (amount <> 0),
    leg          text NOT NULL CHECK (leg IN ('principal', 'fee', 'settlement')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((transfer_id IS NULL) = (leg = 'settlement'))
);
CREATE INDEX ledger_entries_transfer ON ledger_entries (transfer_id);
-- entries are appended window after window: a BRIN index finds a window's
-- block ranges at almost no cost per insert
CREATE INDEX ledger_entries_window ON ledger_entries USING brin (window_id);

-- Append-only: no UPDATE, DELETE or TRUNCATE, for anyone.
CREATE FUNCTION refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Checks every statement's new entries as a whole (one pass over the
-- transition table, not a query per row) and applies them to the balances.
-- SECURITY DEFINER: the switch cannot update balances directly.
CREATE FUNCTION ledger_entries_apply() RETURNS trigger
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

    -- one lookup per posting, not per entry
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT transfer_id, window_id FROM new_entries
                               WHERE transfer_id IS NOT NULL) e
                 LEFT JOIN transfers t ON t.id = e.transfer_id
                WHERE t.id IS NULL OR t.status <> 'ACSC' OR t.window_id <> e.window_id) THEN
        RAISE EXCEPTION 'ledger entries must belong to a settled (ACSC) transfer of the same window'
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    -- Lock the windows touched (shared: postings run concurrently, a close
    -- waits for them) and check their state.
    PERFORM 1 FROM settlement_windows w
     WHERE w.id IN (SELECT window_id FROM new_entries) FOR SHARE;
    IF EXISTS (SELECT 1 FROM new_entries e
                 LEFT JOIN settlement_windows w ON w.id = e.window_id
                WHERE w.id IS NULL
                   OR (e.leg <> 'settlement' AND w.state <> 'open')
                   OR (e.leg = 'settlement' AND w.state <> 'closed')) THEN
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

    -- Net debit cap: a position that was debited may not end below -ndc.
    SELECT a.id, a.participant, a.balance, p.ndc INTO bad
      FROM accounts a JOIN participants p ON p.code = a.participant
     WHERE a.kind = 'position'
       AND a.id IN (SELECT account_id FROM new_entries WHERE amount < 0 AND leg <> 'settlement')
       AND a.balance < -p.ndc
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'net debit cap exceeded: % position % below -%',
            bad.participant, bad.balance, bad.ndc
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_apply();

GRANT SELECT ON ALL TABLES IN SCHEMA public TO sikka_reader, sikka_switch;
GRANT INSERT ON transfers, ledger_entries, switch_boots TO sikka_switch;
GRANT UPDATE (status, ndc) ON participants TO sikka_switch;
GRANT INSERT ON participants TO sikka_switch;
GRANT INSERT, UPDATE (state, closed_at, settled_at) ON settlement_windows TO sikka_switch;
REVOKE UPDATE, DELETE, TRUNCATE ON transfers, ledger_entries FROM PUBLIC;
