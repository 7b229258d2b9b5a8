-- 005: availability — the fence that lets one switch post at a time, and the
-- durable outbox of the payees' settlement reports.
--
-- Fence. Every switch process first takes PostgreSQL's session advisory lock
-- FENCE_KEY on a connection it keeps, then calls fence_acquire(), which bumps
-- switch_fence.epoch. The switch passes that epoch to every post_batch() call;
-- a call carrying an older epoch is refused (SQLSTATE SKF01): a switch that
-- lost its fence (its fence connection died, another took over) can no longer
-- post, whatever its posting connections still do. A standby waits for the
-- lock. Before it reads anything, a new active also waits until the posting
-- connections of the one before are gone: they hold POSTING_KEY shared, it
-- takes it exclusively once (switch/fence.c). The keys, bigint advisory locks:
--   FENCE_KEY   = 5353235353000001  (fence.c FENCE_KEY)
--   POSTING_KEY = 5353235353000002  (fence.c POSTING_KEY)
--
-- Outbox. A transfer forwarded to a payee gets a payee_outbox row in the
-- posting's own transaction; the row goes when the payee acknowledges the
-- report (ReportAck). Reports still in the outbox are sent again when the
-- payee's participant connects. A payee credits on ACSC only and deduplicates
-- by transfer id (the client library does it).
--
-- This migration runs as sikka_owner (deploy/migrate.sh); the grants of
-- PostgreSQL's own functions need the superuser: RESET ROLE below.

CREATE TABLE switch_fence (
    id           smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    epoch        bigint NOT NULL CHECK (epoch >= 0),
    boot_id      bigint,
    holder       text,
    acquired_at  timestamptz
);
INSERT INTO switch_fence (epoch) VALUES (0);

-- Bumps the fence for the caller, who must hold the session advisory lock
-- FENCE_KEY on this very connection. Returns the new epoch.
CREATE FUNCTION fence_acquire(p_boot bigint, p_holder text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    e bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_locks l
                    WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
                      AND l.mode = 'ExclusiveLock' AND l.objsubid = 1
                      AND ((l.classid::bigint << 32) | l.objid::bigint) = 5353235353000001) THEN
        RAISE EXCEPTION 'fence_acquire: the caller does not hold the fence lock'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE switch_fence SET epoch = epoch + 1, boot_id = p_boot, holder = left(p_holder, 255),
                            acquired_at = now()
     WHERE id = 1
    RETURNING epoch INTO e;
    RETURN e;
END
$$;

CREATE TABLE payee_outbox (
    transfer_id  bigint PRIMARY KEY,
    payee        text COLLATE "C" NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payee_outbox_payee ON payee_outbox (payee, transfer_id);

-- A payee acknowledged these reports: its own rows only go.
CREATE FUNCTION payee_outbox_ack(p_payee text, p_ids bigint[])
RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH d AS (DELETE FROM payee_outbox WHERE payee = p_payee AND transfer_id = ANY (p_ids)
               RETURNING 1)
    SELECT count(*) FROM d;
$$;

-- The switch's post_batch: the fence checked, then 004's post_batch, and an
-- outbox row for every transfer written that was forwarded to its payee
-- (t_notify). The result is 004's.
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
    t_received_ms       bigint[])
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
                                 t_received_ms)
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

GRANT SELECT ON switch_fence, payee_outbox TO sikka_switch, sikka_reader;
GRANT EXECUTE ON FUNCTION
    post_batch(bigint, boolean[], bigint[], text[], text[], text[], text[], text[], text[],
               text[], text[], bigint[], bigint[], text[], text[], text[], text[], integer[],
               text[], text[], bigint[], text[], text[], text[], text[], bigint[]),
    fence_acquire(bigint, text),
    payee_outbox_ack(text, bigint[])
    TO sikka_switch;
-- 004's post_batch is now the inner half: callable through the fenced one only
REVOKE EXECUTE ON FUNCTION
    post_batch(bigint[], text[], text[], text[], text[], text[], text[], text[], text[],
               bigint[], bigint[], text[], text[], text[], text[], integer[], text[], text[],
               bigint[], text[], text[], text[], text[], bigint[])
    FROM sikka_switch;

-- PostgreSQL's advisory locks (004 took them from PUBLIC): the switch's fence
-- and its posting connections' lock.
RESET ROLE;
GRANT EXECUTE ON FUNCTION
    pg_try_advisory_lock(bigint), pg_advisory_lock(bigint), pg_advisory_unlock(bigint),
    pg_advisory_lock_shared(bigint), pg_advisory_unlock_shared(bigint)
    TO sikka_switch;
