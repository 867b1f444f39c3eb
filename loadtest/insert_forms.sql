-- The two forms of a small group commit's insert, timed inside Postgres (issue 14):
--   1. the full statement: INSERT … SELECT FROM UNNEST … ON CONFLICT DO NOTHING
--      RETURNING, the legs summed from the returned rows and upserted (as
--      INSERT_TRANSFERS does for new transfers);
--   2. a plain INSERT … SELECT FROM UNNEST and the legs, summed beforehand, upserted
--      in the same statement (as INSERT_NEW_TRANSFERS does).
-- Each on copies of the engine's tables (their indexes and checks), 2,000 statements of
-- 50 rows per round, three rounds alternating; the time of the statements alone.
-- Run against an engine's embedded cluster (or any database the engine migrated):
--   psql -h "$(sed -n 5p DATA_DIR/pg/postmaster.pid)" -U deltran -d deltran -f loadtest/insert_forms.sql
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_ta, bench_tb, bench_lba, bench_lbb, bench_lca, bench_lcb;
CREATE TABLE bench_ta (LIKE transfers INCLUDING ALL);
CREATE TABLE bench_tb (LIKE transfers INCLUDING ALL);
CREATE TABLE bench_lba (LIKE window_bank_legs INCLUDING ALL);
CREATE TABLE bench_lbb (LIKE window_bank_legs INCLUDING ALL);
CREATE TABLE bench_lca (LIKE window_corridor_legs INCLUDING ALL);
CREATE TABLE bench_lcb (LIKE window_corridor_legs INCLUDING ALL);
CREATE OR REPLACE FUNCTION bench(form int, n int, iters int) RETURNS interval LANGUAGE plpgsql AS $$
DECLARE ids uuid[]; s text[]; r text[]; a numeric[]; fc text[]; ca numeric[]; tc text[]; fx numeric[];
  st text[]; w int8[]; k text[]; t timestamptz[]; t0 timestamptz; total interval := '0'; c int8;
BEGIN
  FOR i IN 1..iters LOOP
    SELECT array_agg(gen_random_uuid()), array_agg((array['ICICI','HDFC','AXIS','ENBD','ADCB'])[1 + g % 5]),
           array_agg((array['ENBD','ADCB','ICICI','HDFC','AXIS'])[1 + g % 5]), array_agg(100.000 + g),
           array_agg('INR'::text), array_agg(4.400), array_agg('AED'::text), array_agg(0.04400000),
           array_agg('accepted'::text), array_agg(1::int8), array_agg(md5(random()::text)), array_agg(now())
      INTO ids, s, r, a, fc, ca, tc, fx, st, w, k, t FROM generate_series(1, n) g;
    t0 := clock_timestamp();
    IF form = 1 THEN
      WITH inserted AS (INSERT INTO bench_ta (id, sender_bank, receiver_bank, amount, from_currency, converted_amount,
          to_currency, fx_rate, status, window_id, idempotency_key, created_at)
        SELECT * FROM UNNEST(ids, s, r, a, fc, ca, tc, fx, st, w, k, t)
        ON CONFLICT (sender_bank, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING window_id, sender_bank, receiver_bank, amount, from_currency, converted_amount, to_currency, status),
      legs AS (SELECT window_id, sender_bank, receiver_bank, amount, from_currency, converted_amount, to_currency,
          1::int8 AS sign FROM inserted WHERE status = 'accepted'),
      bank_legs AS (INSERT INTO bench_lba AS l (window_id, slot, bank, currency, debits, credits, debit_count, credit_count)
        SELECT window_id, 0::int2, bank, currency, sum(debit), sum(credit), sum(debit_n), sum(credit_n) FROM (
          SELECT window_id, sender_bank AS bank, from_currency AS currency, sign * amount AS debit, 0::numeric AS credit,
            sign AS debit_n, 0::int8 AS credit_n FROM legs
          UNION ALL SELECT window_id, receiver_bank, to_currency, 0, sign * converted_amount, 0, sign FROM legs) sides
        GROUP BY window_id, bank, currency ORDER BY window_id, bank, currency
        ON CONFLICT (window_id, slot, bank, currency) DO UPDATE SET debits = l.debits + excluded.debits,
          credits = l.credits + excluded.credits, debit_count = l.debit_count + excluded.debit_count,
          credit_count = l.credit_count + excluded.credit_count),
      corridor_legs AS (INSERT INTO bench_lca AS l (window_id, slot, from_currency, to_currency, source_amount,
          destination_amount, transfer_count)
        SELECT window_id, 0::int2, from_currency, to_currency, sum(sign * amount), sum(sign * converted_amount), sum(sign)
        FROM legs GROUP BY window_id, from_currency, to_currency ORDER BY window_id, from_currency, to_currency
        ON CONFLICT (window_id, slot, from_currency, to_currency) DO UPDATE SET
          source_amount = l.source_amount + excluded.source_amount,
          destination_amount = l.destination_amount + excluded.destination_amount,
          transfer_count = l.transfer_count + excluded.transfer_count)
      SELECT count(*) INTO c FROM inserted;
    ELSIF form = 2 THEN
      WITH ins AS (INSERT INTO bench_tb (id, sender_bank, receiver_bank, amount, from_currency, converted_amount,
          to_currency, fx_rate, status, window_id, idempotency_key, created_at)
        SELECT * FROM UNNEST(ids, s, r, a, fc, ca, tc, fx, st, w, k, t)),
      bank_legs AS (INSERT INTO bench_lbb AS l (window_id, slot, bank, currency, debits, credits, debit_count, credit_count)
        SELECT x, 0::int2, b, cu, d, cr, dn, cn FROM UNNEST(array[1,1,1,1,1,1]::int8[],
          array['ADCB','AXIS','ENBD','HDFC','ICICI','ICICI']::text[], array['AED','INR','AED','INR','INR','AED']::text[],
          array[1,2,3,4,5,6]::numeric[], array[1,2,3,4,5,6]::numeric[], array[1,2,3,4,5,6]::int8[],
          array[1,2,3,4,5,6]::int8[]) AS u(x, b, cu, d, cr, dn, cn) ORDER BY x, b, cu
        ON CONFLICT (window_id, slot, bank, currency) DO UPDATE SET debits = l.debits + excluded.debits,
          credits = l.credits + excluded.credits, debit_count = l.debit_count + excluded.debit_count,
          credit_count = l.credit_count + excluded.credit_count)
      INSERT INTO bench_lcb AS l (window_id, slot, from_currency, to_currency, source_amount, destination_amount, transfer_count)
        VALUES (1, 0, 'INR', 'AED', 1, 1, 1)
        ON CONFLICT (window_id, slot, from_currency, to_currency) DO UPDATE SET
          source_amount = l.source_amount + excluded.source_amount,
          destination_amount = l.destination_amount + excluded.destination_amount,
          transfer_count = l.transfer_count + excluded.transfer_count;
    END IF;
    total := total + (clock_timestamp() - t0);
  END LOOP;
  RETURN total;
END $$;
-- One transaction per round and form.
SELECT 1 AS round, 1 AS form, bench(1, 50, 2000) AS statements_time;
SELECT 1 AS round, 2 AS form, bench(2, 50, 2000) AS statements_time;
SELECT 2 AS round, 1 AS form, bench(1, 50, 2000) AS statements_time;
SELECT 2 AS round, 2 AS form, bench(2, 50, 2000) AS statements_time;
SELECT 3 AS round, 1 AS form, bench(1, 50, 2000) AS statements_time;
SELECT 3 AS round, 2 AS form, bench(2, 50, 2000) AS statements_time;
DROP FUNCTION bench(int, int, int);
DROP TABLE bench_ta, bench_tb, bench_lba, bench_lbb, bench_lca, bench_lcb;
