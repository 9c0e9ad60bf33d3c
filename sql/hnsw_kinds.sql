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

DROP TABLE kt, ku, kp;
