SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
-- rec_hnsw: build, scan, opclasses, settings, bad input.
SET search_path = rec, public;
SELECT setseed(0.5);

CREATE TABLE hb (id int PRIMARY KEY, v vector(8), cat int);
INSERT INTO hb
SELECT i, ('[' || array_to_string(ARRAY(SELECT round((random() * 2 - 1)::numeric, 3) FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector, i % 10
FROM generate_series(1, 3000) i;
CREATE TABLE hq (id int PRIMARY KEY, v vector(8));
INSERT INTO hq
SELECT i, ('[' || array_to_string(ARRAY(SELECT round((random() * 2 - 1)::numeric, 3) FROM generate_series(1, 8) WHERE i > 0), ',') || ']')::vector
FROM generate_series(1, 50) i;

-- exact answers (no index yet)
CREATE TABLE gt AS
SELECT q.id,
       ARRAY(SELECT h.id FROM hb h ORDER BY h.v <-> q.v, h.id LIMIT 10) AS l2,
       ARRAY(SELECT h.id FROM hb h ORDER BY h.v <#> q.v, h.id LIMIT 10) AS ip,
       ARRAY(SELECT h.id FROM hb h ORDER BY h.v <=> q.v, h.id LIMIT 10) AS cos,
       ARRAY(SELECT h.id FROM hb h WHERE h.cat = 3 ORDER BY h.v <-> q.v, h.id LIMIT 10) AS l2cat
FROM hq q;

CREATE INDEX hb_l2 ON hb USING rec_hnsw (v vector_l2_ops);
CREATE INDEX hb_ip ON hb USING rec_hnsw (v vector_ip_ops) WITH (m = 8, ef_construction = 32);
CREATE INDEX hb_cos ON hb USING rec_hnsw (v vector_cosine_ops);
SELECT hnsw_check('hb_l2'), hnsw_check('hb_ip'), hnsw_check('hb_cos');

-- the planner picks the index for ORDER BY ... LIMIT
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hb ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM hb ORDER BY v <#> '[0,0,0,0,0,0,0,0]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM hb ORDER BY v <=> '[1,0,0,0,0,0,0,0]' LIMIT 5;
RESET enable_seqscan;
-- ... but not without an ORDER BY on its operator, nor without a LIMIT
EXPLAIN (COSTS OFF) SELECT id FROM hb WHERE v <-> '[0,0,0,0,0,0,0,0]' < 0.5;
EXPLAIN (COSTS OFF) SELECT id FROM hb ORDER BY v <-> '[0,0,0,0,0,0,0,0]';
EXPLAIN (COSTS OFF) SELECT id FROM hb ORDER BY v <+> '[0,0,0,0,0,0,0,0]' LIMIT 5;

-- recall@10 against the exact answers, each operator
SET enable_seqscan = off;
SELECT 'l2' AS op, avg(cardinality(ARRAY(SELECT unnest(g.l2) INTERSECT
         SELECT unnest(ARRAY(SELECT h.id FROM hb h ORDER BY h.v <-> q.v LIMIT 10)))) / 10.0) >= 0.95 AS ok
FROM hq q JOIN gt g USING (id)
UNION ALL
SELECT 'ip', avg(cardinality(ARRAY(SELECT unnest(g.ip) INTERSECT
         SELECT unnest(ARRAY(SELECT h.id FROM hb h ORDER BY h.v <#> q.v LIMIT 10)))) / 10.0) >= 0.95
FROM hq q JOIN gt g USING (id)
UNION ALL
SELECT 'cosine', avg(cardinality(ARRAY(SELECT unnest(g.cos) INTERSECT
         SELECT unnest(ARRAY(SELECT h.id FROM hb h ORDER BY h.v <=> q.v LIMIT 10)))) / 10.0) >= 0.95
FROM hq q JOIN gt g USING (id);

-- results come closest first
SELECT bool_and(d >= lag) AS ordered FROM (
  SELECT d, lag(d, 1, '-infinity') OVER (ORDER BY n) AS lag FROM (
    SELECT row_number() OVER () AS n, v <-> '[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]' AS d
    FROM (SELECT v FROM hb ORDER BY v <-> '[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]' LIMIT 50) s) s2) s3;

-- a LIMIT larger than ef_search still returns LIMIT rows
SET rec.hnsw_ef_search = 10;
SELECT count(*) FROM (SELECT id FROM hb ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 500) s;
RESET rec.hnsw_ef_search;

-- a filter that keeps 10% of the rows: LIMIT rows, and the right ones
SELECT avg(cardinality(ARRAY(SELECT unnest(g.l2cat) INTERSECT
         SELECT unnest(ARRAY(SELECT h.id FROM hb h WHERE h.cat = 3 ORDER BY h.v <-> q.v LIMIT 10)))) / 10.0) >= 0.95 AS filtered_ok,
       min(cardinality(ARRAY(SELECT h.id FROM hb h WHERE h.cat = 3 ORDER BY h.v <-> q.v LIMIT 10))) AS min_rows
FROM hq q JOIN gt g USING (id);
-- bounded by rec.hnsw_max_scan_tuples: without the exact fallback a tiny
-- bound returns fewer rows; with it (the default) the scan finishes exactly
SET rec.hnsw_max_scan_tuples = 50;
SET rec.hnsw_exact_fallback = off;
SELECT count(*) < 10 AS bounded FROM (SELECT id FROM hb WHERE cat = 3 AND id > 2990 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
RESET rec.hnsw_exact_fallback;
SELECT count(*) FROM (SELECT id FROM hb WHERE cat = 3 AND id > 2990 ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
RESET rec.hnsw_max_scan_tuples;

-- a NULL query vector: every row, in no particular order
SELECT count(*) FROM (SELECT id FROM hb ORDER BY v <-> NULL LIMIT 5000) s;
RESET enable_seqscan;

-- NULL vectors and (under cosine) zero vectors are not indexed
CREATE TABLE hn (id int, v vector(2));
INSERT INTO hn VALUES (1, '[1,0]'), (2, NULL), (3, '[0,0]'), (4, '[0,1]');
CREATE INDEX hn_cos ON hn USING rec_hnsw (v vector_cosine_ops);
INSERT INTO hn VALUES (5, NULL), (6, '[0,0]'), (7, '[1,1]');
SET enable_seqscan = off;
SELECT id FROM hn ORDER BY v <=> '[1,0.1]' LIMIT 10;
-- a zero query vector under cosine: every indexed row, any order
SELECT count(*) FROM hn WHERE id IN (SELECT id FROM hn ORDER BY v <=> '[0,0]' LIMIT 10);
RESET enable_seqscan;
SELECT hnsw_check('hn_cos');

-- built empty, without a declared dimension: learns it from the first row
CREATE TABLE he (id int, v vector);
CREATE INDEX he_l2 ON he USING rec_hnsw (v vector_l2_ops);
INSERT INTO he VALUES (1, '[1,2,3]'), (2, '[2,3,4]'), (3, '[10,10,10]');
SET enable_seqscan = off;
SELECT id FROM he ORDER BY v <-> '[2,3,5]' LIMIT 2;
RESET enable_seqscan;
-- dimension mismatch with the index
INSERT INTO he VALUES (4, '[1,2]');
SET enable_seqscan = off;
SELECT id FROM he ORDER BY v <-> '[1,2]' LIMIT 1;
RESET enable_seqscan;
SELECT hnsw_check('he_l2');

-- bad reloptions
CREATE INDEX ON hb USING rec_hnsw (v vector_l2_ops) WITH (m = 1);
CREATE INDEX ON hb USING rec_hnsw (v vector_l2_ops) WITH (m = 101);
CREATE INDEX ON hb USING rec_hnsw (v vector_l2_ops) WITH (ef_construction = 3);
CREATE INDEX ON hb USING rec_hnsw (v vector_l2_ops) WITH (m = 32, ef_construction = 40);
CREATE INDEX ON hb USING rec_hnsw (v vector_l2_ops) WITH (efsearch = 10);
-- one column only; an operator class is required
CREATE INDEX ON hb USING rec_hnsw (v vector_l2_ops, v vector_l2_ops);
CREATE INDEX ON hb USING rec_hnsw (v);
SET rec.hnsw_ef_search = -1;
SET rec.hnsw_max_scan_tuples = 0;
-- not a rec_hnsw index
SELECT hnsw_check('hb_pkey');
SELECT hnsw_check('hb');

DROP TABLE hb, hq, gt, hn, he;
