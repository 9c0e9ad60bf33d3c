-- src/serve: rec.similar_items
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;

INSERT INTO rec.items (item_id) SELECT generate_series(1, 9);
-- Users 1-4 have item 1. Item 2: users 1, 2, 3 (and 5). Item 3: user 1 (and
-- 6, 7, 8). Item 4: user 4 only. Item 5: users 1, 2, unavailable. Item 6:
-- users 2, 3, but user 3 hid it. Item 7: nobody with item 1.
INSERT INTO rec.events (user_id, item_id, kind, occurred_at)
SELECT u, i, 'view', '2025-01-01'::timestamptz + (u * 10 + i) * interval '1 minute'
  FROM (VALUES (1, 1), (2, 1), (3, 1), (4, 1),
			   (1, 2), (2, 2), (3, 2), (5, 2),
			   (1, 3), (6, 3), (7, 3), (8, 3),
			   (4, 4),
			   (1, 5), (2, 5),
			   (2, 6),
			   (9, 7)) v(u, i);
INSERT INTO rec.events (user_id, item_id, kind, occurred_at) VALUES (3, 6, 'hide', '2025-01-02');
UPDATE rec.items SET available = false WHERE item_id = 5;

-- s = 4 sampled users; score = c/(c+lambda) * c / sqrt(s * m)
SET rec.similar_shrinkage = 0;
-- item 2: c = 3, m = 4: 3/sqrt(16) = 0.75; item 4: c = 1, m = 1: 0.5;
-- item 3: c = 1, m = 4: 0.25; item 6: c = 1 (the hide does not count), m = 1: 0.5
SELECT item_id, round(score::numeric, 6) AS score, rank, source FROM rec.similar_items(1);
SET rec.similar_shrinkage = 1;
-- item 2: 3/4 * 0.75 = 0.5625; items 4, 6: 1/2 * 0.5 = 0.25; item 3: 0.125
SELECT item_id, round(score::numeric, 6) AS score, rank FROM rec.similar_items(1);
SELECT item_id, rank FROM rec.similar_items(1, 2);
SHOW rec.similar_shrinkage;
RESET rec.similar_shrinkage;
SHOW rec.similar_shrinkage;

-- the sample: the users of the item's most recent events, and of each only
-- the most recent events
SET rec.similar_audience = 1;		-- only user 4 (the latest event on item 1)
SELECT item_id, rank FROM rec.similar_items(1);
RESET rec.similar_audience;
SET rec.similar_history = 1;		-- each user's latest event only
SELECT item_id, rank FROM rec.similar_items(1);
RESET rec.similar_history;
SET rec.similar_audience = 0;
SET rec.similar_history = 0;
SET rec.similar_shrinkage = -1;

-- many candidates: the early stop keeps the exact answer
INSERT INTO rec.items (item_id) SELECT generate_series(100, 1099);
INSERT INTO rec.events (user_id, item_id, kind, occurred_at)
SELECT 100 + u, 100 + (u * 7 + k * 13) % 1000, 'view', '2025-02-01'::timestamptz + k * interval '1 second'
  FROM generate_series(0, 199) u, generate_series(0, 29) k;
INSERT INTO rec.events (user_id, item_id, kind, occurred_at)
SELECT 100 + u, 100, 'view', '2025-03-01' FROM generate_series(0, 199) u;
CREATE TEMP TABLE exact AS
WITH aud AS (SELECT DISTINCT user_id FROM rec.events WHERE item_id = 100),
	 pairs AS (SELECT DISTINCT e.user_id, e.item_id FROM rec.events e JOIN aud USING (user_id) WHERE e.item_id <> 100),
	 co AS (SELECT item_id, count(*) AS c FROM pairs GROUP BY item_id)
SELECT co.item_id, co.c, (co.c::float8 / (co.c + 100)) * co.c / sqrt((SELECT count(*) FROM aud)::float8 * greatest(p.events, co.c)) AS score
  FROM co JOIN rec.item_popularity p USING (item_id);
SELECT count(*) AS candidates FROM exact;
SELECT count(*) AS same_top_20
  FROM (SELECT item_id, score AS exact_score, row_number() OVER (ORDER BY score DESC, item_id) AS rank FROM exact) x
  JOIN rec.similar_items(100, 20) s USING (item_id, rank)
 WHERE abs(x.exact_score - s.score) < 1e-12;

-- at most rec.similar_max_candidates are scored: those with the highest
-- co-counts (ties: lower item id)
SET rec.similar_max_candidates = 1;
SELECT s.item_id = (SELECT item_id FROM exact ORDER BY c DESC, item_id LIMIT 1) AS highest_count, s.rank
  FROM rec.similar_items(100, 20) s;
RESET rec.similar_max_candidates;
SET rec.similar_max_candidates = 0;

-- the item itself never, unknown items: no rows
SELECT count(*) FROM rec.similar_items(1, 100) WHERE item_id = 1;
SELECT count(*) FROM rec.similar_items(424242);
SELECT count(*) FROM rec.similar_items(7);
-- n out of range; NULL arguments give no rows
SELECT * FROM rec.similar_items(1, 0);
SELECT * FROM rec.similar_items(1, 10001);
SELECT count(*) FROM rec.similar_items(NULL);
SELECT count(*) FROM rec.similar_items(1, NULL);

TRUNCATE rec.events;
DELETE FROM rec.items;
