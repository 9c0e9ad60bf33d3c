SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
-- rec_hnsw: angular links in inner-product indexes over vectors whose norms
-- differ (like ALS factors). By inner product alone every element links to
-- the vectors of the largest norms, and a filtered scan, which must reach
-- far below the top few results, misses most of the rows it should
-- return. Angular links keep every direction reachable. The exact fallback
-- is off here: the figures are the graph search's alone: 0.905 after the
-- build and after the inserts, 0.965 after the churn (levels come from the
-- heap TIDs, so the graphs are the same in every run); without angular
-- links they were 0.69, 0.71-0.75 and 0.78-0.80.
SET search_path = rec, public;
SELECT setseed(0.25);

-- 30 directions; norms spread by a factor of up to e^1.2; a 5% category.
CREATE TABLE ang_c AS
  SELECT c, array_agg(random() - 0.5) AS a
  FROM generate_series(0, 29) c, generate_series(1, 16) k GROUP BY c;
CREATE TABLE ang_rows AS
  SELECT i AS id, i % 20 AS cat,
         (SELECT array_agg((x + 0.3 * (random() - 0.5)) * s)::real[]::vector(16)
          FROM unnest(c.a) x) AS v
  FROM generate_series(1, 8000) i
  JOIN ang_c c ON c.c = (i * 7) % 30
  CROSS JOIN LATERAL (SELECT exp(1.2 * (random() - 0.5) + 0 * i) AS s) n;
CREATE TABLE ang_q AS
  SELECT q, (SELECT array_agg(x + 0.3 * (random() - 0.5))::real[]::vector(16) FROM unnest(c.a) x) AS v
  FROM generate_series(1, 40) q JOIN ang_c c ON c.c = q % 30;
CREATE TABLE ang_want AS
  SELECT q.q, ARRAY(SELECT r.id FROM ang_rows r WHERE r.cat = 3
                    ORDER BY r.v <#> q.v, r.id LIMIT 10) AS ids
  FROM ang_q q;

CREATE FUNCTION pg_temp.recall(tab regclass) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE r numeric;
BEGIN
  EXECUTE format($q$
    SELECT avg(cardinality(ARRAY(SELECT unnest(w.ids) INTERSECT SELECT unnest(g.ids))) / 10.0)
    FROM ang_want w JOIN ang_q q USING (q),
         LATERAL (SELECT ARRAY(SELECT t.id FROM %s t WHERE t.cat = 3
                               ORDER BY t.v <#> q.v LIMIT 10) AS ids) g $q$, tab) INTO r;
  RETURN r;
END $$;

SET enable_seqscan = off;
SET rec.hnsw_exact_fallback = off;

-- built over the rows
CREATE TABLE ang_built AS SELECT * FROM ang_rows;
CREATE INDEX ang_built_idx ON ang_built USING rec_hnsw (v vector_ip_ops);
SELECT pg_temp.recall('ang_built') >= 0.85 AS built_recall_ok;
EXPLAIN (COSTS OFF)
  SELECT id FROM ang_built t WHERE t.cat = 3 ORDER BY t.v <#> '[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]' LIMIT 10;

-- angular_links = off: inner-product links only (what the figures above
-- compare with)
CREATE TABLE ang_off AS SELECT * FROM ang_rows;
CREATE INDEX ang_off_idx ON ang_off USING rec_hnsw (v vector_ip_ops) WITH (angular_links = off);
SELECT pg_temp.recall('ang_off') < 0.8 AS ip_links_only_recall_lower;
CREATE INDEX ON ang_off USING rec_hnsw (v vector_ip_ops) WITH (angular_links = 'sometimes');

-- built empty, rows inserted one statement at a time
CREATE TABLE ang_inserted (LIKE ang_rows);
CREATE INDEX ang_inserted_idx ON ang_inserted USING rec_hnsw (v vector_ip_ops);
INSERT INTO ang_inserted SELECT * FROM ang_rows;
SELECT pg_temp.recall('ang_inserted') >= 0.85 AS inserted_recall_ok;

-- half deleted, vacuumed, inserted again: the repaired lists keep them
DELETE FROM ang_inserted WHERE id % 2 = 0;
VACUUM ang_inserted;
INSERT INTO ang_inserted SELECT * FROM ang_rows WHERE id % 2 = 0;
SELECT pg_temp.recall('ang_inserted') >= 0.85 AS churned_recall_ok;

-- zero vectors have no direction: indexed, found, no error
INSERT INTO ang_inserted VALUES (0, 3, array_fill(0, ARRAY[16])::real[]::vector(16));
SELECT count(*) AS zero_found FROM (
  SELECT id FROM ang_inserted t WHERE t.cat = 3 ORDER BY t.v <#> (SELECT v FROM ang_q WHERE q = 1) LIMIT 1000) s
WHERE id = 0;

SELECT hnsw_check('ang_built_idx'), hnsw_check('ang_inserted_idx');

RESET rec.hnsw_exact_fallback;
RESET enable_seqscan;
DROP TABLE ang_c, ang_rows, ang_q, ang_want, ang_built, ang_off, ang_inserted;
