-- loadtest/batchcost.sql — what one posting batch costs the database, alone.
--
-- Loaded by loadtest/batchcost.sh into the benchmark's database (a
-- superuser session): batchcost(n) calls post_batch with n supplier
-- payments from MEZN to KOKO or JAZZ (4 entries each, the fee the schedule
-- gives), under the current fence, with no payee notice, exactly as the
-- switch would send them (text arrays). Ids start far above the switch's
-- (boot id << 32 | n) and msg_ids are "BC<id>", so the rows never collide
-- with a run's. The rows stay: the benchmark's database is rebuilt by every
-- bench.sh run.
SET client_min_messages = warning; -- loaded again on every run
CREATE SEQUENCE IF NOT EXISTS batchcost_id START 8000000000000000000;

CREATE OR REPLACE FUNCTION batchcost(n integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    payees text[];
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    fee bigint := (SELECT least(150000, f.max_fee, greatest(f.min_fee, 150000 * f.bps / 10000))
                     FROM fee_schedule f WHERE f.purpose = 'SUPPLIER_PAYMENT');
    rows bigint;
BEGIN
    SELECT array_agg(nextval('batchcost_id')),
           array_agg(CASE WHEN i % 3 = 0 THEN 'KOKO' ELSE 'JAZZ' END)
      INTO ids, payees
      FROM generate_series(1, n) i;
    SELECT count(*) INTO rows
      FROM post_batch((SELECT epoch FROM switch_fence), array_fill(false, ARRAY[n]), ids,
                      array_fill('transfer'::text, ARRAY[n]), array_fill('MEZN'::text, ARRAY[n]),
                      (SELECT array_agg('BC' || x) FROM unnest(ids) x),
                      array_fill(repeat('ab', 32), ARRAY[n]), array_fill('E2E'::text, ARRAY[n]),
                      payees, array_fill('PK36MEZN0000009876543210'::text, ARRAY[n]),
                      array_fill('03001234567'::text, ARRAY[n]),
                      array_fill(150000::bigint, ARRAY[n]), array_fill(fee, ARRAY[n]), payees,
                      array_fill('PKR'::text, ARRAY[n]),
                      array_fill('SUPPLIER_PAYMENT'::text, ARRAY[n]),
                      array_fill(NULL::text, ARRAY[n]), array_fill(NULL::integer, ARRAY[n]),
                      array_fill('INV-1'::text, ARRAY[n]), array_fill(NULL::text, ARRAY[n]),
                      array_fill(NULL::bigint, ARRAY[n]), array_fill(NULL::text, ARRAY[n]),
                      array_fill('ACSC'::text, ARRAY[n]), array_fill(NULL::text, ARRAY[n]),
                      array_fill(NULL::text, ARRAY[n]), array_fill(now_ms, ARRAY[n]),
                      array_fill(now_ms, ARRAY[n]), array_fill(now_ms, ARRAY[n]));
    RETURN rows;
END
$$;
