-- loadtest/baseline_setup.sql — the benchmark's baseline: what it needs in a
-- database migrated from schema/ and seeded with the demo participants
-- (loadtest/bench.sh runs it as the superuser, then pgbench runs
-- loadtest/baseline_transfer.sql as the switch's role).
--
-- bench_mix holds 20,000 ready-made transfers drawn like `sikka-replay gen`
-- draws its default scenario: 60 % BNPL repayments from any participant but
-- the lender to KOKO (the hot payee), 25 % supplier payments (70 % paid by
-- MEZN, the rest by the wallets) to anyone but the lender, 15 % P2P between
-- the non-lenders; amounts log-uniform in whole rupees (BNPL 500..5,000,
-- supplier 10,000..2,000,000, P2P 100..50,000 PKR); the fee of
-- fee_schedule (supplier payments: 0.20 % charged to the payee, PKR 10..500).
-- A pgbench transaction picks one at random, so row-lock contention on the
-- position accounts is what the switch's traffic meets.
--
-- Amounts are bigint paisa. random() only shapes the distribution; setseed
-- makes the table the same on every run.

SELECT setseed(0.42);

CREATE TABLE bench_mix AS
WITH draw AS (
    SELECT g AS id, random() AS r_purpose, random() AS r_payer, random() AS r_payee,
           random() AS r_bank, random() AS r_amount, random() AS r_ref
      FROM generate_series(1, 20000) g
), purpose AS (
    SELECT d.*,
           CASE WHEN r_purpose < 0.60 THEN 'BNPL_REPAYMENT'
                WHEN r_purpose < 0.85 THEN 'SUPPLIER_PAYMENT'
                ELSE 'P2P' END AS purpose
      FROM draw d
), parties AS (
    SELECT p.*,
           CASE WHEN purpose = 'SUPPLIER_PAYMENT' AND r_bank < 0.70 THEN 'MEZN'
                WHEN purpose = 'SUPPLIER_PAYMENT'
                     THEN (ARRAY['JAZZ', 'EASY', 'SADA', 'NAYA'])[1 + floor(r_payer * 4)::int]
                ELSE (ARRAY['JAZZ', 'EASY', 'SADA', 'NAYA', 'MEZN'])[1 + floor(r_payer * 5)::int]
           END AS payer
      FROM purpose p
), pairs AS (
    SELECT p.*,
           CASE WHEN purpose = 'BNPL_REPAYMENT' THEN 'KOKO'
                ELSE (array_remove(ARRAY['JAZZ', 'EASY', 'SADA', 'NAYA', 'MEZN'], payer))
                     [1 + floor(r_payee * 4)::int]
           END AS payee,
           CASE purpose WHEN 'BNPL_REPAYMENT' THEN 50000::bigint
                        WHEN 'SUPPLIER_PAYMENT' THEN 1000000::bigint
                        ELSE 10000::bigint END AS lo,
           CASE purpose WHEN 'BNPL_REPAYMENT' THEN 500000::bigint
                        WHEN 'SUPPLIER_PAYMENT' THEN 200000000::bigint
                        ELSE 5000000::bigint END AS hi
      FROM parties p
), amounts AS (
    SELECT p.*,
           greatest(lo, least(hi, (floor(exp(ln(lo) + r_amount * (ln(hi) - ln(lo))) / 100)
                                   * 100)::bigint)) AS amount
      FROM pairs p
)
SELECT a.id, a.payer, a.payee, a.purpose, a.amount,
       CASE WHEN f.bps > 0 OR f.min_fee > 0
            THEN least(a.amount, greatest(f.min_fee, least(f.max_fee, a.amount * f.bps / 10000)))
            ELSE 0 END AS fee,
       pa.id AS payer_account, pb.id AS payee_account, fa.id AS fee_account,
       CASE WHEN f.charged_to = 'payer' THEN pa.id ELSE pb.id END AS fee_payer_account,
       CASE WHEN f.bps > 0 OR f.min_fee > 0
            THEN CASE WHEN f.charged_to = 'payer' THEN a.payer ELSE a.payee END END AS fee_payer,
       '03' || lpad((a.id % 10000000)::text, 9, '0') AS debtor_account,
       '03' || lpad(((a.id * 7919) % 10000000)::text, 9, '0') AS creditor_account,
       CASE WHEN a.purpose = 'BNPL_REPAYMENT' THEN 'KOKO-LN-' || lpad(a.id::text, 7, '0') END
           AS loan_id,
       CASE WHEN a.purpose = 'BNPL_REPAYMENT' THEN 1 + floor(a.r_ref * 12)::int END AS instalment,
       CASE WHEN a.purpose = 'SUPPLIER_PAYMENT'
            THEN 'INV-' || a.payee || '-' || lpad(floor(a.r_ref * 1e8)::bigint::text, 8, '0')
       END AS invoice_number,
       sha256(convert_to(a.payer || a.payee || a.amount || a.purpose || a.id, 'UTF8'))
           AS fingerprint
  FROM amounts a
  JOIN fee_schedule f ON f.purpose = a.purpose
  JOIN accounts pa ON pa.participant = a.payer AND pa.kind = 'position'
  JOIN accounts pb ON pb.participant = a.payee AND pb.kind = 'position'
  JOIN accounts fa ON fa.participant IS NULL AND fa.kind = 'fee';

ALTER TABLE bench_mix ADD PRIMARY KEY (id);
ANALYZE bench_mix;

-- Transfer ids far above the switch's (boot id << 32 | n), msg_ids "PGB-<id>".
CREATE SEQUENCE bench_transfer_id START 4611686018427387904;

GRANT SELECT ON bench_mix TO sikka_switch;
GRANT USAGE ON SEQUENCE bench_transfer_id TO sikka_switch;

-- The plain ledger writes its rows directly: in this database only (the
-- baseline's own, sikka_base), the switch's role may insert them. The
-- schema's triggers still check every posting as they do the switch's.
GRANT INSERT ON transfers, ledger_entries TO sikka_switch;
-- the WHEN of the entries' and the transfers' triggers (schema/015, 017)
-- runs as whoever inserts
GRANT EXECUTE ON FUNCTION posting_checks_needed() TO sikka_switch;
