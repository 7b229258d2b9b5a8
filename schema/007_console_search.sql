-- 007: what the operators' console needs to find transfers (GET
-- /api/v1/transfers, switch/sql.c's search statements), and nothing more.
--
-- Every index on transfers is paid by every posting: the switch inserts tens
-- of thousands of rows a second in batches. So only searches that would
-- otherwise read the whole table get one, and only over the rows they search:
--
--   msg_id          no index: the search probes the existing (payer, msg_id)
--                   key once per participant (a few dozen probes).
--   ref             transfers_ref below: the loan id or invoice number
--                   (remittance is one or the other, never both), partial, so
--                   a P2P transfer costs nothing.
--   status = RJCT   transfers_rejected below: rejections are a small share of
--                   the traffic; the index holds their ids, newest last, so
--                   "the latest rejections" reads the index backwards.
--   anything else   (participant, purpose, end_to_end_id, from/to, ACSC) no
--                   index: the search walks the primary key backwards (ids
--                   grow with time) through at most 20,000 transfers per
--                   request and says where to continue, so one search never
--                   holds the switch's query connection for long.
--
-- Their cost, measured on the project machine: 1.2 million transfer rows
-- inserted in batches of 2,000 (two thirds with a loan or invoice
-- reference, 2 % rejected), alternating between a table with these two
-- indexes and one without: about 12 % more time for the transfers INSERT
-- alone (noisy: -10 % to +32 % per 200,000 rows), less of a whole posting
-- (entries, positions and the outbox are written too). transfers_ref took
-- 30 MB for 800,000 references, transfers_rejected 0.5 MB for 24,000
-- rejections.
--
-- Runs as sikka_owner (deploy/migrate.sh).

CREATE INDEX transfers_ref ON transfers ((coalesce(loan_id, invoice_number)))
    WHERE coalesce(loan_id, invoice_number) IS NOT NULL;

CREATE INDEX transfers_rejected ON transfers (id) WHERE status = 'RJCT';
