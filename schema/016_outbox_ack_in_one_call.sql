-- 016: a payee's acknowledgements, every payee's at once.
--
-- The switch gathers the payees' ReportAcks for up to 50 ms (or 500 of
-- them) and used to apply them with one payee_outbox_ack() per payee: at a
-- few thousand transfers a second, six calls every flush, each its own
-- transaction and commit, and each planned afresh (a SQL-language function
-- is planned on every call). pg_stat_statements at 7,800 transfers/s: 132
-- calls a second, about a tenth of the database's CPU.
--
-- payee_outbox_ack_all() takes every payee's acknowledgements of a flush in
-- one call: two arrays of the same length, element i saying that p_payee[i]
-- acknowledged the notice of transfer p_ids[i]. A payee still deletes only
-- its own rows (the primary key is (payee, transfer_id), 015); an id named
-- for another payee, or already gone, deletes nothing. PL/pgSQL, so its
-- plan is made once per connection; pinned to the primary key as 011 pins
-- payee_outbox_ack (the outbox churns: a generic plan must not scan it).
-- payee_outbox_ack() stays for a switch of the previous version still
-- running beside this one (a switch pair is upgraded one at a time).
CREATE FUNCTION payee_outbox_ack_all(p_payee text[], p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET enable_seqscan = off
AS $$
DECLARE
    n bigint;
BEGIN
    IF cardinality(p_payee) IS DISTINCT FROM cardinality(p_ids) THEN
        RAISE EXCEPTION 'payee_outbox_ack_all: % payees for % ids',
            cardinality(p_payee), cardinality(p_ids)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM payee_outbox o
     USING unnest(p_payee, p_ids) AS a(payee, id)
     WHERE o.payee = a.payee AND o.transfer_id = a.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION payee_outbox_ack_all(text[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payee_outbox_ack_all(text[], bigint[]) TO sikka_switch;
