-- vector type: the avg and sum aggregates, serial and parallel
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;
SET search_path = rec, public;

CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN others THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SELECT avg(v), sum(v) FROM (VALUES ('[1,2,3]'::vector), ('[3,4,5]'), ('[5,0,-2]')) t(v);
-- NULLs are skipped; no rows (or only NULLs) give NULL
SELECT avg(v), sum(v) FROM (VALUES ('[1,2]'::vector), (NULL), ('[3,4]')) t(v);
SELECT avg(v), sum(v) FROM (VALUES ('[1,2]'::vector)) t(v) WHERE false;
SELECT avg(v), sum(v) FROM (VALUES (NULL::vector), (NULL)) t(v);
-- GROUP BY, FILTER, window
SELECT g, avg(v), sum(v) FILTER (WHERE v <> '[0,0]')
FROM (VALUES (1, '[1,1]'::vector), (1, '[3,5]'), (2, '[0,0]'), (2, '[2,2]')) t(g, v) GROUP BY g ORDER BY g;
SELECT i, sum(v) OVER (ORDER BY i), avg(v) OVER (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
FROM (VALUES (1, '[1,10]'::vector), (2, '[2,20]'), (3, '[3,30]')) t(i, v) ORDER BY i;
-- errors: mixed dimensions; a sum too large for real
SELECT pg_temp.err($$SELECT avg(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v)$$);
SELECT pg_temp.err($$SELECT sum(v) FROM (VALUES ('[1,2]'::vector), ('[1]')) t(v)$$);
SELECT pg_temp.err($$SELECT sum(v) FROM (VALUES ('[1,3e38]'::vector), ('[1,3e38]')) t(v)$$);
SELECT pg_temp.err($$SELECT sum(v) FROM (VALUES ('[-3e38]'::vector), ('[-3e38]')) t(v)$$);
-- ... but a large running total that comes back in range is fine, and an
-- average of large values never overflows
SELECT sum(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]'), ('[-3e38]')) t(v);
SELECT avg(v) FROM (VALUES ('[3e38,-3e38]'::vector), ('[3e38,-3e38]')) t(v);
-- totals are kept in double precision: a million 0.1s add up to 100000
SELECT sum(v), avg(v) FROM (SELECT '[0.1,1]'::vector v FROM generate_series(1, 1000000)) t;

-- parallel: partial aggregates in workers, combined (and serialized) in the leader
CREATE TABLE public.agg_data AS
	SELECT i, i % 3 AS g, ARRAY[i % 100, (i % 7) - 3, 1]::vector AS v FROM generate_series(1, 100000) i;
ANALYZE public.agg_data;
SELECT proname, proparallel FROM pg_proc
WHERE oid IN (SELECT aggfnoid FROM pg_aggregate WHERE aggtranstype = 'internal'::regtype)
  AND pronamespace = 'rec'::regnamespace ORDER BY 1;
SELECT aggfnoid::regprocedure, aggcombinefn, aggserialfn, aggdeserialfn FROM pg_aggregate
WHERE aggfnoid IN ('rec.avg(rec.vector)'::regprocedure, 'rec.sum(rec.vector)'::regprocedure) ORDER BY 1::text;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM agg_data;
CREATE TEMP TABLE par AS SELECT avg(v), sum(v) FROM agg_data;
EXPLAIN (COSTS OFF) SELECT g, avg(v), sum(v) FROM agg_data GROUP BY g;
CREATE TEMP TABLE par_g AS SELECT g, avg(v), sum(v) FROM agg_data GROUP BY g;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE ser AS SELECT avg(v), sum(v) FROM agg_data;
CREATE TEMP TABLE ser_g AS SELECT g, avg(v), sum(v) FROM agg_data GROUP BY g;
RESET max_parallel_workers_per_gather;
SELECT * FROM par;
SELECT p.avg = s.avg AS avg_same, p.sum = s.sum AS sum_same FROM par p, ser s;
SELECT g, p.avg = s.avg AS avg_same, p.sum = s.sum AS sum_same FROM par_g p JOIN ser_g s USING (g) ORDER BY g;
-- mixed dimensions are caught when partial results are combined too
INSERT INTO agg_data VALUES (0, 0, '[1,2]');
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT pg_temp.err($$SELECT avg(v) FROM agg_data$$);
RESET ALL;
DROP TABLE public.agg_data;
