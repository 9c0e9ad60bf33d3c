-- src/serve: rec.recommend
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;

-- Ten items; item i has i views at the same moment, so popularity follows
-- the item id. Item 9 is unavailable; item 11 has events but is not in the
-- catalogue.
INSERT INTO rec.items (item_id, category)
SELECT i, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END FROM generate_series(1, 10) i;
UPDATE rec.items SET available = false WHERE item_id = 9;
INSERT INTO rec.events (user_id, item_id, kind, occurred_at)
SELECT 1000 + v, i, 'view', now() - interval '1 day'
  FROM generate_series(1, 11) i, generate_series(1, i) v;

-- an unknown user gets the popular items; scores are decayed event counts
-- (shown relative to the best, which does not depend on the clock)
SELECT item_id, round((score / first_value(score) OVER (ORDER BY rank))::numeric, 6) AS relative_score,
	   rank, source
  FROM rec.recommend(42, 5);
SELECT count(*) AS default_n FROM rec.recommend(42);
-- fewer candidates than n: all of them (9 catalogued and available)
SELECT count(*) FROM rec.recommend(42, 100);

-- a purchase is gone at once, a hide too; views are not
SELECT rec.track(7, 10, 'purchase');
SELECT rec.track(7, 8, 'hide');
SELECT rec.track(7, 7, 'view');
SELECT item_id, rank FROM rec.recommend(7, 4);
-- the purchase made item 10 more popular for everyone else
SELECT item_id, rank FROM rec.recommend(8, 2);

-- a new suppressing kind works at once
INSERT INTO rec.event_kinds VALUES ('returned', 0, true);
SELECT rec.track(7, 7, 'returned');
SELECT item_id, rank FROM rec.recommend(7, 3);

-- availability and the catalogue are read at every call
UPDATE rec.items SET available = false WHERE item_id = 6;
UPDATE rec.items SET available = true WHERE item_id = 9;
SELECT item_id, rank FROM rec.recommend(42, 4);
INSERT INTO rec.items (item_id) VALUES (11);
SELECT item_id, rank FROM rec.recommend(42, 2);

-- ties in popularity: lower item id first
INSERT INTO rec.items (item_id) VALUES (21), (22);
INSERT INTO rec.events (user_id, item_id, kind, occurred_at) VALUES
	(5, 22, 'purchase', '2025-03-01 00:00+00'), (5, 21, 'purchase', '2025-03-01 00:00+00');
SELECT item_id, rank FROM rec.recommend(42, 20) WHERE item_id IN (21, 22);

-- a user who has purchased everything gets nothing, not an error
SELECT count(rec.track(9, item_id, 'purchase')) FROM rec.items;
SELECT count(*) FROM rec.recommend(9, 20);

-- n out of range; NULL arguments give no rows
SELECT * FROM rec.recommend(1, 0);
SELECT * FROM rec.recommend(1, -5);
SELECT * FROM rec.recommend(1, 10001);
SELECT count(*) FROM rec.recommend(1, 10000);
SELECT count(*) FROM rec.recommend(NULL, 5);
SELECT count(*) FROM rec.recommend(1, NULL);

-- works as a lateral call for many users, and in parallel workers
SELECT u, array_agg(r.item_id ORDER BY r.rank) AS items
  FROM (VALUES (7), (9), (42)) v(u), LATERAL rec.recommend(u, 3) r
 GROUP BY u ORDER BY u;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET force_parallel_mode = on;
EXPLAIN (COSTS OFF) SELECT * FROM rec.recommend(8, 3);
SELECT item_id, rank FROM rec.recommend(8, 3);
RESET ALL;

-- the popularity state row is needed (refresh_popularity writes it)
BEGIN;
DELETE FROM rec.popularity_state;
SELECT * FROM rec.recommend(1, 5);
ROLLBACK;

-- an empty database: no rows, no error
TRUNCATE rec.events;
SELECT count(*) FROM rec.recommend(1, 5);
DELETE FROM rec.items;
DELETE FROM rec.event_kinds WHERE kind = 'returned';
