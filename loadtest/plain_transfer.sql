-- loadtest/plain_transfer.sql — one pgbench transaction of the plain
-- ledger (loadtest/plain_ledger.sql): one function call, one round trip, in
-- autocommit (fsync and synchronous_commit on), with a fresh msg_id and a
-- transfer drawn from the same mix as the switch's traffic.
-- pgbench -M prepared; see loadtest/bench.sh.
\set k random(1, 20000)
SELECT plain.transfer(m.payer, 'PGP-' || nextval('plain.msg_seq'), m.fingerprint, m.payee,
                      m.amount, m.fee, m.payer_account, m.payee_account, m.fee_payer_account,
                      m.fee_account, m.purpose, m.loan_id, m.instalment, m.invoice_number)
  FROM bench_mix m
 WHERE m.id = :k;
