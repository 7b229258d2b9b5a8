-- loadtest/baseline_transfer.sql — one pgbench transaction of the baseline:
-- the ledger effects of one settled transfer done the plain way, one
-- PostgreSQL transaction per transfer, as the switch's role:
--   1. the transfers row with its idempotency key (payer, msg_id) and the
--      request's fingerprint (the unique key is checked by the insert);
--   2. its balanced entries in one statement (2 principal legs, plus 2 fee
--      legs when it carries a fee): the schema's statement trigger checks the
--      posting and updates the position balances under row locks (KOKO's is
--      the hot one) and checks the net debit cap;
--   3. COMMIT (fsync and synchronous_commit on).
-- pgbench -M prepared -D window=<open window id>; see loadtest/bench.sh.
\set k random(1, 20000)
BEGIN;
INSERT INTO transfers (id, kind, payer, msg_id, fingerprint, end_to_end_id, payee,
                       debtor_account, creditor_account, amount, fee, fee_payer, currency,
                       purpose, loan_id, instalment, invoice_number, status, window_id,
                       received_at)
SELECT s.id, 'transfer', m.payer, 'PGB-' || s.id, m.fingerprint, 'PGB-' || s.id, m.payee,
       m.debtor_account, m.creditor_account, m.amount, m.fee, m.fee_payer, 'PKR', m.purpose,
       m.loan_id, m.instalment, m.invoice_number, 'ACSC', :window, now()
  FROM (SELECT nextval('bench_transfer_id') AS id) s, bench_mix m
 WHERE m.id = :k;
INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg)
SELECT currval('bench_transfer_id'), :window, e.account, e.amount, e.leg
  FROM bench_mix m,
       LATERAL (VALUES (m.payer_account, -m.amount, 'principal'),
                       (m.payee_account, m.amount, 'principal'),
                       (m.fee_payer_account, -m.fee, 'fee'),
                       (m.fee_account, m.fee, 'fee')) AS e(account, amount, leg)
 WHERE m.id = :k AND e.amount <> 0;
COMMIT;
