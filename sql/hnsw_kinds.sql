SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
-- rec_hnsw on temporary and unlogged tables, partial and expression
-- indexes, CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY.
SET search_path = rec, public;
SELECT setseed(0.75);
CREATE FUNCTION pg_temp.rv() RETURNS vector LANGUAGE sql VOLATILE AS
$$ SELECT ('[' || array_to_string(ARRAY(SELECT round(random()::numeric, 3) FROM generate_series(1, 4)), ',') || ']')::vector $$;

CREATE TEMP TABLE kt (id int, v vector(4));
INSERT INTO kt SELECT i, pg_temp.rv() FROM generate_series(1, 2000) i;
CREATE INDEX kt_idx ON kt USING rec_hnsw (v vector_l2_ops);
INSERT INTO kt SELECT i, pg_temp.rv() FROM generate_series(2001, 2500) i;
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM kt ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 100) s;
RESET enable_seqscan;
SELECT hnsw_check('kt_idx');

CREATE UNLOGGED TABLE ku (id int, v vector(4));
INSERT INTO ku SELECT i, pg_temp.rv() FROM generate_series(1, 2000) i;
CREATE INDEX ku_idx ON ku USING rec_hnsw (v vector_cosine_ops);
INSERT INTO ku SELECT i, pg_temp.rv() FROM generate_series(2001, 2500) i;
DELETE FROM ku WHERE id % 3 = 0;
VACUUM ku;
SELECT hnsw_check('ku_idx');
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM ku ORDER BY v <=> '[0.5,0.5,0.5,0.5]' LIMIT 100) s;
RESET enable_seqscan;

CREATE INDEX CONCURRENTLY ku_l2 ON ku USING rec_hnsw (v vector_l2_ops);
REINDEX INDEX CONCURRENTLY ku_l2;
SELECT hnsw_check('ku_l2');

-- partial index over an expression
CREATE TABLE kp (id int, v vector(3));
INSERT INTO kp SELECT i, ('[' || i || ',1,1]')::vector FROM generate_series(1, 100) i;
CREATE INDEX kp_idx ON kp USING rec_hnsw ((v) vector_l2_ops) WHERE id > 50;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM kp WHERE id > 50 ORDER BY v <-> '[60.2,1,1]' LIMIT 3;
SELECT id FROM kp WHERE id > 50 ORDER BY v <-> '[60.2,1,1]' LIMIT 3;
RESET enable_seqscan;
SELECT hnsw_check('kp_idx');

-- many copies of one vector: every row stays reachable
CREATE TABLE kd (id int, v vector(4)) WITH (autovacuum_enabled = off);
INSERT INTO kd SELECT i, '[1,2,3,4]' FROM generate_series(1, 3000) i;
CREATE INDEX kd_idx ON kd USING rec_hnsw (v vector_ip_ops);
SELECT hnsw_check('kd_idx');
INSERT INTO kd SELECT i, '[1,2,3,4]' FROM generate_series(3001, 3500) i;
SELECT hnsw_check('kd_idx');
DELETE FROM kd WHERE id % 2 = 0;
VACUUM kd;
SELECT hnsw_check('kd_idx');
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT id FROM kd ORDER BY v <#> '[1,1,1,1]' LIMIT 5000) s;
RESET enable_seqscan;

DROP TABLE kt, ku, kp, kd;
