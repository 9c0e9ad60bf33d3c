SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
-- rec_hnsw: filtered scans the graph search cannot finish. The rows that
-- match lie far from the queries and the graph budget is tiny; the exact
-- fallback must still return LIMIT rows, and exactly the nearest ones.
SET search_path = rec, public;
SELECT setseed(0.25);

-- 6,000 rows: every 50th ('far', 120 rows) around -4 e1, the others around
-- +4 e1. Coordinates lie on a 1/64 grid, so every distance and inner
-- product is exact in float and in double: the index and the exact answer
-- rank alike, ties included.
CREATE FUNCTION pg_temp.gridvec(centre float8) RETURNS vector LANGUAGE sql VOLATILE AS $$
  SELECT ('[' || array_to_string(ARRAY(
    SELECT round(((CASE WHEN d = 1 THEN centre ELSE 0 END) + random() * 2 - 1) * 64) / 64
    FROM generate_series(1, 8) d), ',') || ']')::vector $$;
CREATE TABLE hf (id int PRIMARY KEY, cat text, v vector(8));
INSERT INTO hf SELECT i, CASE WHEN i % 50 = 0 THEN 'far' ELSE 'near' END,
  pg_temp.gridvec(CASE WHEN i % 50 = 0 THEN -4 ELSE 4 END)
FROM generate_series(1, 6000) i;
CREATE TABLE hfq (qid int PRIMARY KEY, v vector(8));
INSERT INTO hfq SELECT i, pg_temp.gridvec(4) FROM generate_series(1, 10) i;
CREATE INDEX hf_l2 ON hf USING rec_hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
CREATE INDEX hf_ip ON hf USING rec_hnsw (v vector_ip_ops) WITH (m = 8, ef_construction = 32);

-- exact answers, and the per-query comparison of an index answer with them
CREATE FUNCTION pg_temp.exact_l2(q vector, n int) RETURNS int[] LANGUAGE sql STABLE
  SET enable_indexscan = off AS
  $$ SELECT ARRAY(SELECT id FROM hf WHERE cat = 'far' ORDER BY v <-> q, id LIMIT n) $$;
CREATE FUNCTION pg_temp.exact_ip(q vector, n int) RETURNS int[] LANGUAGE sql STABLE
  SET enable_indexscan = off AS
  $$ SELECT ARRAY(SELECT id FROM hf WHERE cat = 'far' ORDER BY v <#> q, id LIMIT n) $$;
CREATE FUNCTION pg_temp.idx_l2(q vector, n int) RETURNS int[] LANGUAGE sql STABLE
  SET enable_seqscan = off AS
  $$ SELECT ARRAY(SELECT id FROM hf WHERE cat = 'far' ORDER BY v <-> q LIMIT n) $$;
CREATE FUNCTION pg_temp.idx_ip(q vector, n int) RETURNS int[] LANGUAGE sql STABLE
  SET enable_seqscan = off AS
  $$ SELECT ARRAY(SELECT id FROM hf WHERE cat = 'far' ORDER BY v <#> q LIMIT n) $$;
-- the distances of a list of ids, in list order
CREATE FUNCTION pg_temp.dists(ids int[], q vector, op text) RETURNS float8[] LANGUAGE sql STABLE AS
  $$ SELECT ARRAY(SELECT CASE op WHEN 'l2' THEN h.v <-> q ELSE h.v <#> q END
                  FROM unnest(ids) WITH ORDINALITY u(id, o) JOIN hf h USING (id) ORDER BY o) $$;
-- per query: rows returned, same distances in the same order as the exact
-- answer, same ids
CREATE FUNCTION pg_temp.compare(n int) RETURNS TABLE (op text, min_rows int, max_rows int,
    same_distances bool, same_ids bool) LANGUAGE sql STABLE AS $$
  SELECT 'l2', min(cardinality(i)), max(cardinality(i)),
         bool_and(pg_temp.dists(i, q.v, 'l2') = pg_temp.dists(e, q.v, 'l2')),
         bool_and(ARRAY(SELECT unnest(i) ORDER BY 1) = ARRAY(SELECT unnest(e) ORDER BY 1))
  FROM hfq q, LATERAL (SELECT pg_temp.idx_l2(q.v, n) AS i, pg_temp.exact_l2(q.v, n) AS e) r
  UNION ALL
  SELECT 'ip', min(cardinality(i)), max(cardinality(i)),
         bool_and(pg_temp.dists(i, q.v, 'ip') = pg_temp.dists(e, q.v, 'ip')),
         bool_and(ARRAY(SELECT unnest(i) ORDER BY 1) = ARRAY(SELECT unnest(e) ORDER BY 1))
  FROM hfq q, LATERAL (SELECT pg_temp.idx_ip(q.v, n) AS i, pg_temp.exact_ip(q.v, n) AS e) r $$;

-- the plan is the index scan with the filter on top
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hf WHERE cat = 'far' ORDER BY v <-> '[4,0,0,0,0,0,0,0]' LIMIT 20;
RESET enable_seqscan;

SET rec.hnsw_max_scan_tuples = 20;
-- without the fallback the graph budget runs out among the near rows
SET rec.hnsw_exact_fallback = off;
SELECT op, max_rows < 20 AS fewer_rows FROM pg_temp.compare(20);
-- with it (the default): LIMIT rows, the exact nearest ones
RESET rec.hnsw_exact_fallback;
SELECT * FROM pg_temp.compare(20);
-- a LIMIT above the number of matching rows returns all of them
SELECT op, min_rows, max_rows, same_distances FROM pg_temp.compare(500);

-- the whole index in one scan: every row once, though the graph search
-- returns the first ones and the exact pass the rest. work_mem = 64kB
-- holds 4,096 candidates, so the exact phase needs two passes.
SET work_mem = '64kB';
SET enable_seqscan = off;
SET rec.hnsw_max_scan_tuples = 2000;
CREATE TEMP TABLE whole AS
SELECT row_number() OVER () AS n, id, v <-> '[4,0,0,0,0,0,0,0]' AS d
FROM (SELECT id, v FROM hf ORDER BY v <-> '[4,0,0,0,0,0,0,0]' LIMIT 100000) s;
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_rows FROM whole;
-- a budget of one element switches at once: the whole order is exact, for
-- every query
SET rec.hnsw_max_scan_tuples = 1;
CREATE TEMP TABLE whole1 AS
SELECT q.qid, s.n, s.id, s.d
FROM hfq q, LATERAL (SELECT row_number() OVER () AS n, id, v <-> q.v AS d
                     FROM (SELECT id, v FROM hf ORDER BY v <-> q.v LIMIT 100000) s0) s;
SELECT count(DISTINCT qid) AS queries, min(rows) AS min_rows, min(distinct_rows) AS min_distinct,
       max(rows) AS max_rows, bool_and(ordered) AS ordered
FROM (SELECT qid, count(*) AS rows, count(DISTINCT id) AS distinct_rows, bool_and(d >= prev) AS ordered
      FROM (SELECT qid, id, d, lag(d, 1, '-infinity') OVER (PARTITION BY qid ORDER BY n) AS prev
            FROM whole1) s1
      GROUP BY qid) s2;
RESET enable_seqscan;
RESET work_mem;
SET rec.hnsw_max_scan_tuples = 20;

-- deleted rows (not vacuumed yet: their elements are still in the graph)
DELETE FROM hf WHERE cat = 'far' AND id % 100 = 0;
SELECT * FROM pg_temp.compare(20);
-- after VACUUM (elements flagged, slots freed) ...
VACUUM hf;
SELECT * FROM pg_temp.compare(20);
-- ... and new rows in the freed slots, some of them nearer than all others
INSERT INTO hf SELECT 10000 + i, 'far', pg_temp.gridvec(CASE WHEN i % 2 = 0 THEN -4 ELSE 0 END)
FROM generate_series(1, 60) i;
SELECT * FROM pg_temp.compare(20);
SELECT hnsw_check('hf_l2'), hnsw_check('hf_ip');

-- cosine: the stored vectors are normalised, so compare rows only
CREATE INDEX hf_cos ON hf USING rec_hnsw (v vector_cosine_ops) WITH (m = 8, ef_construction = 32);
SET enable_seqscan = off;
SELECT min(cardinality(ARRAY(SELECT id FROM hf WHERE cat = 'far' ORDER BY v <=> q.v LIMIT 20))) AS min_rows
FROM hfq q;
RESET enable_seqscan;

SELECT name, setting, context, vartype FROM pg_settings
WHERE name IN ('rec.hnsw_exact_fallback', 'rec.hnsw_max_scan_tuples') ORDER BY name;

RESET rec.hnsw_max_scan_tuples;
DROP TABLE hf, hfq;
