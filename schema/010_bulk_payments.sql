-- 010: bulk supplier payments — the batches' own idempotency.
--
-- A bulk (switch/bulk.c, proto BulkCreditTransfer) is up to 1,000 ordinary
-- credit transfers of one payer; each item is a row of transfers with its
-- own (payer, msg_id) key, posted and reported like any transfer. What the
-- items' rows cannot say is which items a batch id stood for: this table
-- keeps, per (payer, batch_id), the SHA-256 fingerprint of the batch's items
-- and their count, so the same batch id with other items is refused (AM05)
-- after a restart of the switch too. Rows are written once, through
-- bulk_register(), and never change.
--
-- This migration runs as sikka_owner (deploy/migrate.sh).

CREATE TABLE bulk_batches (
    payer        text COLLATE "C" NOT NULL REFERENCES participants (code),
    batch_id     text COLLATE "C" NOT NULL CHECK (octet_length(batch_id) BETWEEN 1 AND 35),
    fingerprint  bytea NOT NULL CHECK (length(fingerprint) = 32),
    items        integer NOT NULL CHECK (items BETWEEN 1 AND 1000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (payer, batch_id)
);

-- A batch's record never changes: a batch id is its items for good
-- (refuse_change(), schema/001, as for the ledger's entries).
CREATE TRIGGER bulk_batches_append_only BEFORE UPDATE OR DELETE ON bulk_batches
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER bulk_batches_no_truncate BEFORE TRUNCATE ON bulk_batches
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Registers a batch before its items are routed. Returns 'new' (first
-- time), 'same' (registered before with the same items: a retry) or 'other'
-- (the batch id stands for other items: refuse it).
CREATE FUNCTION bulk_register(p_payer text, p_batch_id text, p_fingerprint bytea,
                              p_items integer)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    fp bytea;
BEGIN
    INSERT INTO bulk_batches (payer, batch_id, fingerprint, items)
    VALUES (p_payer, p_batch_id, p_fingerprint, p_items)
    ON CONFLICT (payer, batch_id) DO NOTHING;
    IF FOUND THEN
        RETURN 'new';
    END IF;
    SELECT b.fingerprint INTO fp FROM bulk_batches b
     WHERE b.payer = p_payer AND b.batch_id = p_batch_id;
    RETURN CASE WHEN fp = p_fingerprint THEN 'same' ELSE 'other' END;
END
$$;

REVOKE ALL ON bulk_batches FROM PUBLIC;
GRANT SELECT ON bulk_batches TO sikka_switch, sikka_reader;
REVOKE EXECUTE ON FUNCTION bulk_register(text, text, bytea, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bulk_register(text, text, bytea, integer) TO sikka_switch;
