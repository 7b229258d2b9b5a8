-- deploy/seed.sql — the demo participants of the local stack.
--
-- Usage: deploy/pg.sh psql DATADIR -d DBNAME -v ON_ERROR_STOP=1 -f deploy/seed.sql
-- (as the superuser, after the migrations; deploy/local.sh up does this).
-- Idempotent: participants that exist are left as they are. Inserting a
-- participant opens its position and settlement accounts (a trigger).
--
-- Net debit caps (ndc) are bigint paisa: 500000000 = PKR 5,000,000.00 for the
-- wallets and the BNPL lender, 5000000000 = PKR 50,000,000.00 for the bank.

INSERT INTO participants (code, name, kind, ndc) VALUES
    ('JAZZ', 'JazzCash',    'wallet', 500000000),
    ('EASY', 'Easypaisa',   'wallet', 500000000),
    ('SADA', 'SadaPay',     'wallet', 500000000),
    ('NAYA', 'NayaPay',     'wallet', 500000000),
    ('KOKO', 'Koko BNPL',   'bnpl',   500000000),
    ('MEZN', 'Meezan Bank', 'bank',   5000000000)
ON CONFLICT (code) DO NOTHING;
