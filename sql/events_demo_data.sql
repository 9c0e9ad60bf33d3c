-- src/events: the synthetic data set
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;

-- deterministic for the arguments
SELECT (SELECT md5(string_agg(i::text, ',')) FROM rec.demo_items(100, 7, '2025-01-01') i)
	 = (SELECT md5(string_agg(i::text, ',')) FROM rec.demo_items(100, 7, '2025-01-01') i) AS same_items,
	   (SELECT md5(string_agg(i::text, ',')) FROM rec.demo_items(100, 7, '2025-01-01') i)
	 = (SELECT md5(string_agg(i::text, ',')) FROM rec.demo_items(100, 8, '2025-01-01') i) AS same_for_other_seed;
SELECT (SELECT md5(string_agg(e::text, ',')) FROM rec.demo_events(50, 100, 2000, 7, '2025-01-01') e)
	 = (SELECT md5(string_agg(e::text, ',')) FROM rec.demo_events(50, 100, 2000, 7, '2025-01-01') e) AS same_events,
	   (SELECT md5(string_agg(e::text, ',')) FROM rec.demo_events(50, 100, 2000, 7, '2025-01-01') e)
	 = (SELECT md5(string_agg(e::text, ',')) FROM rec.demo_events(50, 100, 2000, 8, '2025-01-01') e) AS same_for_other_seed;
-- the first rows, pinned: the generator is the same on every machine
SELECT * FROM rec.demo_items(3, 1, '2025-01-01 00:00+00');
SELECT * FROM rec.demo_events(3, 3, 5, 1, '2025-01-01 00:00+00');

-- shape of a small world
CREATE TEMP TABLE i AS SELECT * FROM rec.demo_items(2000, 42, '2025-01-01');
CREATE TEMP TABLE e AS SELECT * FROM rec.demo_events(1000, 2000, 50000, 42, '2025-01-01');
SELECT count(DISTINCT category) AS categories, count(*) FILTER (WHERE NOT available) BETWEEN 30 AND 100 AS some_unavailable,
	   count(*) FILTER (WHERE created_at > '2024-10-03') BETWEEN 200 AND 400 AS some_new,
	   bool_and(cardinality(tags) = 2) AS two_tags,
	   bool_and((attributes->>'price')::numeric > 0) AS priced
  FROM i;
SELECT min(occurred_at) >= '2025-01-01'::timestamptz - interval '90 days' AS in_window,
	   max(occurred_at) <= '2025-01-01' AS before_end,
	   bool_and(occurred_at >= i.created_at) AS after_item_creation,
	   min(user_id) >= 1 AND max(user_id) <= 1000 AS user_ids, min(e.item_id) >= 1 AND max(e.item_id) <= 2000 AS item_ids
  FROM e JOIN i USING (item_id);
SELECT kind, count(*) > 0 AS present FROM e GROUP BY kind ORDER BY kind;
SELECT bool_and(value BETWEEN 1 AND 5 AND value = round(value)) AS stars FROM e WHERE kind = 'rating';
SELECT bool_and(value = 1) AS ones FROM e WHERE kind <> 'rating';

-- popularity skew: the top 1% of items get far more than 1% of the events
SELECT sum(n) FILTER (WHERE r <= 20)::float8 / sum(n) > 0.15 AS skewed
  FROM (SELECT count(*) n, row_number() OVER (ORDER BY count(*) DESC) r FROM e GROUP BY item_id) x;
-- taste: a user's favourite category holds far more of their events than
-- its share of all events
WITH uc AS (SELECT e.user_id, i.category, count(*) n FROM e JOIN i USING (item_id) GROUP BY 1, 2),
	 top AS (SELECT user_id, max(n)::float8 / sum(n) share FROM uc GROUP BY user_id HAVING sum(n) >= 30)
SELECT avg(share) > 0.4 AS concentrated FROM top;
-- and a user's own taste, beyond category and popularity: the items of the
-- later half of a user's events overlap the earlier half of the same user
-- more (by half, at these sizes) than the earlier half of another user with
-- the same favourite category
WITH ue AS (SELECT e.user_id, e.item_id, i.category,
				   ntile(2) OVER (PARTITION BY e.user_id ORDER BY e.occurred_at) AS half
			  FROM e JOIN i USING (item_id)),
	 active AS (SELECT user_id FROM ue GROUP BY user_id HAVING count(*) >= 60),
	 fav AS (SELECT DISTINCT ON (user_id) user_id, category FROM ue JOIN active USING (user_id)
			  GROUP BY user_id, category ORDER BY user_id, count(*) DESC, category),
	 pair AS (SELECT user_id, lead(user_id) OVER (PARTITION BY category ORDER BY user_id) AS other FROM fav),
	 early AS (SELECT DISTINCT user_id, item_id FROM ue WHERE half = 1),
	 late AS (SELECT DISTINCT user_id, item_id FROM ue WHERE half = 2)
SELECT count(*) > 20 AS enough_pairs,
	   avg((SELECT count(*) FROM late l JOIN early x USING (item_id) WHERE l.user_id = p.user_id AND x.user_id = p.user_id))
	 > 1.3 * avg((SELECT count(*) FROM late l JOIN early x USING (item_id) WHERE l.user_id = p.user_id AND x.user_id = p.other))
	   AS own_taste
  FROM pair p WHERE other IS NOT NULL;

-- rec.generate_demo_data fills empty tables
SELECT rec.generate_demo_data(200, 300, 5000, 3, '2025-01-01');
SELECT (SELECT count(*) FROM rec.items) AS items, (SELECT count(*) FROM rec.events) AS events,
	   (SELECT count(*) FROM rec.item_popularity) > 0 AS popularity_maintained;
SELECT rec.generate_demo_data(200, 300, 5000, 3, '2025-01-01');

-- argument checks
SELECT count(*) FROM rec.demo_items(0);
SELECT count(*) FROM rec.demo_items(5000001);
SELECT count(*) FROM rec.demo_events(0, 10, 10);
SELECT count(*) FROM rec.demo_events(10, 10, -1);
SELECT count(*) FROM rec.demo_events(10, 10, 0);
SELECT count(*) FROM rec.demo_events(10, 10, 10, 1, 'infinity');
SELECT count(*) FROM rec.demo_items(1, 1, 'infinity');
-- an end_at so early that the oldest items would be created before the
-- earliest timestamp PostgreSQL has: an error, not invalid timestamps
SELECT count(*) FROM rec.demo_items(100, 1, '4714-12-01 00:00+00 BC');
SELECT count(*) FROM rec.demo_events(10, 100, 10, 1, '4714-12-01 00:00+00 BC');
SELECT min(created_at) >= '4714-11-24 00:00+00 BC' AS valid FROM rec.demo_items(100, 1, '4711-03-01 00:00+00 BC');

TRUNCATE rec.events;
DELETE FROM rec.items;
