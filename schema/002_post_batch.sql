-- 002: post_batch(), the one call the switch makes per posting batch.
--
-- A batch is many finished transfers (ACSC with their ledger entries, RJCT
-- without) written in one statement each for transfers and entries, so the
-- database sees one round trip and one balance update per account per batch.
--
-- Idempotency: the unique key (payer, msg_id) is the final word. A transfer
-- whose key already exists is not written (nor are its entries); it comes
-- back in the result with the stored outcome, and whether the stored request
-- had the same fingerprint, so the switch can answer with the stored outcome
-- or AM05. A batch re-sent after a lost COMMIT therefore posts nothing twice:
-- its transfers come back as conflicts with their own ids.

CREATE FUNCTION post_batch(
    p_window            bigint,
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
    e_transfer_id       bigint[],
    e_account_id        bigint[],
    e_amount            bigint[],
    e_leg               text[])
RETURNS TABLE (id bigint, stored_id bigint, stored_status text, stored_reason text,
               stored_reason_text text, same_request boolean)
LANGUAGE plpgsql AS $$
DECLARE
    inserted bigint[];
BEGIN
    WITH ins AS (
        INSERT INTO transfers AS t (
            id, kind, payer, msg_id, fingerprint, end_to_end_id, payee,
            debtor_account, creditor_account, amount, fee, currency, purpose,
            loan_id, instalment, invoice_number, remittance_text, original_id,
            return_reason, status, reason, reason_text, window_id, received_at)
        SELECT u.id, u.kind, u.payer, u.msg_id, decode(u.fp, 'hex'), u.e2e, u.payee,
               u.dacc, u.cacc, u.amount, u.fee, u.currency, u.purpose,
               u.loan_id, u.instalment, u.invoice, u.rmt, u.original_id,
               u.return_reason, u.status, u.reason, u.reason_text,
               CASE WHEN u.status = 'ACSC' THEN p_window END,
               timestamptz 'epoch' + u.received_ms * interval '1 millisecond'
          FROM unnest(t_id, t_kind, t_payer, t_msg_id, t_fingerprint_hex, t_end_to_end_id,
                      t_payee, t_debtor_account, t_creditor_account, t_amount, t_fee,
                      t_currency, t_purpose, t_loan_id, t_instalment, t_invoice_number,
                      t_remittance_text, t_original_id, t_return_reason, t_status, t_reason,
                      t_reason_text, t_received_ms)
               AS u(id, kind, payer, msg_id, fp, e2e, payee, dacc, cacc, amount, fee,
                    currency, purpose, loan_id, instalment, invoice, rmt, original_id,
                    return_reason, status, reason, reason_text, received_ms)
        ON CONFLICT DO NOTHING
        RETURNING t.id
    )
    SELECT coalesce(array_agg(ins.id), '{}') INTO inserted FROM ins;

    IF coalesce(array_length(e_transfer_id, 1), 0) > 0 THEN
        INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg)
        SELECT e.transfer_id, p_window, e.account_id, e.amount, e.leg
          FROM unnest(e_transfer_id, e_account_id, e_amount, e_leg)
               AS e(transfer_id, account_id, amount, leg)
          JOIN unnest(inserted) AS i(id) ON i.id = e.transfer_id;
    END IF;

    -- Transfers not inserted: their key was taken. Report the stored outcome.
    -- (The common case, every transfer inserted, needs no lookup at all.)
    IF coalesce(array_length(inserted, 1), 0) = coalesce(array_length(t_id, 1), 0) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT u.id, t.id, t.status, t.reason, t.reason_text,
           t.fingerprint = decode(u.fp, 'hex')
      FROM unnest(t_id, t_payer, t_msg_id, t_fingerprint_hex) AS u(id, payer, msg_id, fp)
      LEFT JOIN unnest(inserted) AS i(id) ON i.id = u.id
      JOIN transfers t ON t.payer = u.payer AND t.msg_id = u.msg_id
     WHERE i.id IS NULL;
END
$$;

GRANT EXECUTE ON FUNCTION post_batch TO sikka_switch;
