-- src/serve: memory of one query that calls rec.recommend and
-- rec.similar_items many times (a campaign over all users) stays flat.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;

INSERT INTO rec.items (item_id) SELECT generate_series(1, 50);
INSERT INTO rec.events (user_id, item_id, kind)
SELECT u, (u * 7 + k) % 50 + 1, 'view' FROM generate_series(1, 200) u, generate_series(1, 5) k;

-- The backend's memory at the end of a query with 200 calls and of one with
-- 3200: the result sets are freed after each call, so they are about the
-- same. (Each call used to leave about 850 bytes in the query's memory: the
-- function's row type, rebuilt from pg_proc at every call.)
SELECT count(*) AS rows_200, (SELECT sum(total_bytes) FROM pg_backend_memory_contexts) AS mem_200
  FROM generate_series(1, 200) u, LATERAL rec.recommend(u, 5) r \gset
SELECT count(*) AS rows_3200, (SELECT sum(total_bytes) FROM pg_backend_memory_contexts) AS mem_3200
  FROM generate_series(1, 3200) u, LATERAL rec.recommend(u, 5) r \gset
SELECT :rows_200 AS rows_200, :rows_3200 AS rows_3200,
	   :mem_3200 - :mem_200 < 512 * 1024 AS recommend_memory_flat;

SELECT count(*) AS rows_200, (SELECT sum(total_bytes) FROM pg_backend_memory_contexts) AS mem_200
  FROM generate_series(1, 200) u, LATERAL rec.similar_items(u % 50 + 1, 5) r \gset
SELECT count(*) AS rows_3200, (SELECT sum(total_bytes) FROM pg_backend_memory_contexts) AS mem_3200
  FROM generate_series(1, 3200) u, LATERAL rec.similar_items(u % 50 + 1, 5) r \gset
SELECT :rows_200 AS rows_200, :rows_3200 AS rows_3200,
	   :mem_3200 - :mem_200 < 512 * 1024 AS similar_memory_flat;

-- in a select list too
SELECT count(*) FROM (SELECT rec.recommend(u, 5) FROM generate_series(1, 10) u) s;

TRUNCATE rec.events;
DELETE FROM rec.items;
