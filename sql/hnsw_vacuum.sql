SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
-- rec_hnsw: inserts, updates, deletes and VACUUM.
SET search_path = rec, public;
SELECT setseed(0.25);

CREATE FUNCTION pg_temp.rv() RETURNS vector LANGUAGE sql VOLATILE AS
$$ SELECT ('[' || array_to_string(ARRAY(SELECT round((random() * 2 - 1)::numeric, 3) FROM generate_series(1, 8)), ',') || ']')::vector $$;

CREATE TABLE hv (id serial PRIMARY KEY, v vector(8)) WITH (autovacuum_enabled = off);
INSERT INTO hv (v) SELECT pg_temp.rv() FROM generate_series(1, 2000);
CREATE INDEX hv_idx ON hv USING rec_hnsw (v vector_l2_ops) WITH (m = 8, ef_construction = 32);
CREATE TABLE hq AS SELECT i AS id, pg_temp.rv() AS v FROM generate_series(1, 40) i;

CREATE FUNCTION pg_temp.recall() RETURNS numeric LANGUAGE sql AS $$
  SELECT avg(cardinality(ARRAY(
           SELECT unnest(ARRAY(SELECT h.id FROM hv h ORDER BY h.v <-> q.v LIMIT 10))
           INTERSECT
           SELECT unnest(ARRAY(SELECT h.id FROM hv h ORDER BY l2_distance(h.v, q.v), h.id LIMIT 10)))) / 10.0)
  FROM hq q $$;

SET enable_seqscan = off;
SELECT pg_temp.recall() >= 0.95 AS fresh_ok;

-- inserts and updates after the build
INSERT INTO hv (v) SELECT pg_temp.rv() FROM generate_series(1, 500);
UPDATE hv SET v = pg_temp.rv() WHERE id % 10 = 0;
SELECT hnsw_check('hv_idx');
SELECT pg_temp.recall() >= 0.95 AS after_inserts_ok;

-- delete half, vacuum, insert as many: recall holds, space is reused
DELETE FROM hv WHERE id % 2 = 0;
VACUUM hv;
SELECT hnsw_check('hv_idx');
SELECT pg_temp.recall() >= 0.95 AS after_vacuum_ok;
-- deleted rows never come back
SELECT count(*) FROM (SELECT id FROM hv ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 5000) s;
INSERT INTO hv (v) SELECT pg_temp.rv() FROM generate_series(1, 1250);
SELECT hnsw_check('hv_idx');
SELECT pg_temp.recall() >= 0.95 AS after_reinsert_ok;

-- churn: the index does not keep growing
CREATE TEMP TABLE sizes (round int, pages bigint);
DELETE FROM hv WHERE id IN (SELECT id FROM hv ORDER BY id LIMIT 1000);
VACUUM hv;
INSERT INTO hv (v) SELECT pg_temp.rv() FROM generate_series(1, 1000);
INSERT INTO sizes SELECT 1, pg_relation_size('hv_idx') / 8192;
DELETE FROM hv WHERE id IN (SELECT id FROM hv ORDER BY id LIMIT 1000);
VACUUM hv;
INSERT INTO hv (v) SELECT pg_temp.rv() FROM generate_series(1, 1000);
INSERT INTO sizes SELECT 2, pg_relation_size('hv_idx') / 8192;
DELETE FROM hv WHERE id IN (SELECT id FROM hv ORDER BY id LIMIT 1000);
VACUUM hv;
INSERT INTO hv (v) SELECT pg_temp.rv() FROM generate_series(1, 1000);
INSERT INTO sizes SELECT 3, pg_relation_size('hv_idx') / 8192;
DELETE FROM hv WHERE id IN (SELECT id FROM hv ORDER BY id LIMIT 1000);
VACUUM hv;
INSERT INTO hv (v) SELECT pg_temp.rv() FROM generate_series(1, 1000);
INSERT INTO sizes SELECT 4, pg_relation_size('hv_idx') / 8192;
SELECT max(pages) - min(pages) <= 2 AS stable FROM sizes;
SELECT hnsw_check('hv_idx');
SELECT pg_temp.recall() >= 0.95 AS after_churn_ok;

-- everything deleted
DELETE FROM hv;
VACUUM hv;
SELECT hnsw_check('hv_idx');
SELECT count(*) FROM (SELECT id FROM hv ORDER BY v <-> '[0,0,0,0,0,0,0,0]' LIMIT 10) s;
INSERT INTO hv (v) VALUES ('[1,1,1,1,1,1,1,1]'), ('[0,0,0,0,0,0,0,0]');
SELECT v FROM hv ORDER BY v <-> '[0.1,0,0,0,0,0,0,0]' LIMIT 1;
SELECT hnsw_check('hv_idx');
RESET enable_seqscan;

DROP TABLE hv, hq;
