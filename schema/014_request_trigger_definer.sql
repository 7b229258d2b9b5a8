-- 014: the request-to-pay trigger on transfers (009) runs as the owner and
-- costs nothing when no request is being paid.
--
-- transfers_pay_requests() marks a request paid (or frees it) in the
-- transaction that records its payment. Like the ledger's own statement
-- trigger (ledger_entries_apply), it runs with the owner's rights: whoever
-- may record a transfer (post_batch, itself the owner's) must not need the
-- right to change requests. It also looks first whether any request is
-- being paid at all (requests_paying, a partial index of the few accepted
-- requests with a payment bound): every posting batch fires it, and most
-- carry no payment of a request.
CREATE OR REPLACE FUNCTION transfers_pay_requests() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM requests WHERE pay_msg_id IS NOT NULL AND state = 'accepted') THEN
        RETURN NULL;
    END IF;
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
REVOKE EXECUTE ON FUNCTION transfers_pay_requests() FROM PUBLIC;
