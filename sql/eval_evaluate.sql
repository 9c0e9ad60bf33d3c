SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
SELECT setval('rec.models_model_id_seq', 3000, false) IS NOT NULL AS ids_from_3000;

-- rec.evaluate against the same protocols computed in plain SQL
CREATE TABLE ee_src (user_id bigint, item_id bigint, occurred_at timestamptz);
INSERT INTO ee_src
SELECT u, i, timestamptz '2024-01-01' + ((u * 13 + i * 7) % 500) * interval '1 day'
FROM generate_series(1, 60) u, generate_series(1, 30) i
WHERE (u % 4 = i % 4 AND (u * i) % 3 <> 0) OR (u + i) % 13 = 0;

SELECT rec.train('eval', 'ee_src', factors => 8, iterations => 6, regularization => 1,
				 alpha => 4, holdout => true) AS m \gset
SELECT rec.wait(:m, '60 s');

-- the reference: top 10 of all items, known items (but the held-out one) excluded
CREATE TEMP TABLE ref_full AS
WITH h AS (SELECT user_id, item_id FROM rec.model_holdout WHERE model_id = :m),
	 s AS (SELECT x.user_id, y.item_id, rec.inner_product(x.factors, y.factors) AS score
		   FROM rec.user_factors(:m) x JOIN (SELECT DISTINCT user_id FROM h) hu USING (user_id)
		   CROSS JOIN rec.item_factors(:m) y
		   WHERE NOT EXISTS (SELECT 1 FROM ee_src e WHERE e.user_id = x.user_id AND e.item_id = y.item_id
							 AND (e.user_id, e.item_id) NOT IN (SELECT user_id, item_id FROM h))),
	 r AS (SELECT user_id, array_agg(item_id ORDER BY score DESC, item_id) FILTER (WHERE rn <= 10) AS ranked
		   FROM (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY score DESC, item_id) rn FROM s) z
		   GROUP BY user_id)
SELECT r.user_id, r.ranked, array_agg(h.item_id) AS relevant
FROM r JOIN h USING (user_id) GROUP BY r.user_id, r.ranked;

SELECT count(*) AS users,
	   avg(rec.hit_rate_at_k(ranked, relevant, 10)) AS hit_rate,
	   avg(rec.ndcg_at_k(ranked, relevant, 10)) AS ndcg,
	   avg(rec.average_precision_at_k(ranked, relevant, 10)) AS map
FROM ref_full \gset ref_

SELECT rec.evaluate(:m) AS full \gset
SELECT (:'full'::jsonb->>'users')::int = :ref_users AS same_users,
	   abs((:'full'::jsonb->>'hit_rate')::float8 - :ref_hit_rate) < 1e-9 AS same_hit_rate,
	   abs((:'full'::jsonb->>'ndcg')::float8 - :ref_ndcg) < 1e-9 AS same_ndcg,
	   abs((:'full'::jsonb->>'map')::float8 - :ref_map) < 1e-9 AS same_map,
	   abs((:'full'::jsonb->>'precision')::float8 * 10 - (:'full'::jsonb->>'hit_rate')::float8) < 1e-9 AS p_is_hr_over_k;
-- the worker's own evaluation of its holdout agrees
SELECT abs((metrics->'holdout'->>'ndcg')::float8 - (metrics->'full@10'->>'ndcg')::float8) < 1e-6 AS worker_ndcg_agrees,
	   abs((metrics->'holdout'->>'hit_rate')::float8 - (metrics->'full@10'->>'hit_rate')::float8) < 1e-6 AS worker_hr_agrees,
	   metrics->'full@10' ? 'evaluated_at' AS stamped
FROM rec.models WHERE model_id = :m;

-- sampled protocol: negatives per user; one negative repeats the held-out item
CREATE TABLE ee_neg AS
SELECT h.user_id, i.item_id FROM rec.model_holdout h
CROSS JOIN LATERAL (SELECT g.item_id FROM generate_series(1, 30) g(item_id)
					WHERE NOT EXISTS (SELECT 1 FROM ee_src e WHERE e.user_id = h.user_id AND e.item_id = g.item_id)
					ORDER BY (g.item_id * 7 + h.user_id) % 30 LIMIT 5) i
WHERE h.model_id = :m
UNION ALL SELECT user_id, item_id FROM rec.model_holdout WHERE model_id = :m AND user_id % 2 = 0;
-- every user has 5 negatives it never interacted with (and even users also
-- their held-out item again)
SELECT count(*) AS negatives, count(DISTINCT user_id) AS users,
	   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ee_src e WHERE e.user_id = n.user_id AND e.item_id = n.item_id)) AS seen
FROM ee_neg n;

CREATE TEMP TABLE ref_sampled AS
WITH h AS (SELECT user_id, item_id FROM rec.model_holdout WHERE model_id = :m),
	 c AS (SELECT user_id, item_id FROM h UNION SELECT user_id, item_id FROM ee_neg),
	 s AS (SELECT c.user_id, c.item_id, coalesce(rec.inner_product(x.factors, y.factors), 0) AS score
		   FROM c JOIN rec.user_factors(:m) x USING (user_id)
		   LEFT JOIN rec.item_factors(:m) y USING (item_id))
SELECT user_id, (array_agg(item_id ORDER BY score DESC, item_id))[1:3] AS ranked,
	   (SELECT array_agg(item_id) FROM h WHERE h.user_id = s.user_id) AS relevant
FROM s GROUP BY user_id;

SELECT count(*) AS users, avg(rec.hit_rate_at_k(ranked, relevant, 3)) AS hit_rate,
	   avg(rec.ndcg_at_k(ranked, relevant, 3)) AS ndcg
FROM ref_sampled \gset ref_
-- (not every user a hit: the comparison below can tell rankings apart)
SELECT :ref_hit_rate < 1 AS some_misses, :ref_ndcg < :ref_hit_rate AS some_below_first;

SELECT rec.evaluate(:m, k => 3, negatives => 'ee_neg', label => 'sampled') AS sampled \gset
SELECT :'sampled'::jsonb->>'protocol' AS protocol,
	   (:'sampled'::jsonb->>'users')::int = :ref_users AS same_users,
	   abs((:'sampled'::jsonb->>'hit_rate')::float8 - :ref_hit_rate) < 1e-9 AS same_hit_rate,
	   abs((:'sampled'::jsonb->>'ndcg')::float8 - :ref_ndcg) < 1e-9 AS same_ndcg;
SELECT metrics ? 'sampled' AS stored_under_label FROM rec.models WHERE model_id = :m;
-- a user without negatives is counted, not evaluated: alone, its held-out
-- item would rank first by construction
SELECT r->>'users' AS users, r->>'users_without_negatives' AS without_negatives,
	   abs((r->>'hit_rate')::float8 - (SELECT avg(rec.hit_rate_at_k(ranked, relevant, 3))
									   FROM ref_sampled WHERE user_id > 10)) < 1e-9 AS same_hit_rate,
	   abs((r->>'ndcg')::float8 - (SELECT avg(rec.ndcg_at_k(ranked, relevant, 3))
								   FROM ref_sampled WHERE user_id > 10)) < 1e-9 AS same_ndcg
FROM rec.evaluate(:m, k => 3, negatives => 'SELECT * FROM ee_neg WHERE user_id > 10',
				  label => 'some negatives') r;

-- any holdout table; users the model does not know are skipped
CREATE TABLE ee_hold AS SELECT user_id, item_id FROM rec.model_holdout WHERE model_id = :m
	UNION ALL SELECT 1000, 1;
SELECT r->>'users' AS users, r->>'users_skipped' AS skipped, r->>'protocol' AS protocol
FROM rec.evaluate(:m, 'ee_hold', 5, exclude => 'SELECT user_id, item_id FROM ee_src') r;

-- inputs may end in a line comment
SELECT r->>'users' AS users, r->>'users_skipped' AS skipped
FROM rec.evaluate(:m, 'SELECT * FROM ee_hold -- all of it', 5,
				  exclude => 'SELECT user_id, item_id FROM ee_src -- all of it') r;
SELECT r->>'users' AS users
FROM rec.evaluate(:m, k => 3, negatives => 'SELECT * FROM ee_neg -- all of them') r;

-- errors
SELECT rec.evaluate(-1);
SELECT rec.evaluate(:m, k => 0);
SELECT rec.evaluate(:m, negatives => 'ee_neg', exclude => 'ee_src');
SELECT rec.evaluate(:m, 'SELECT user_id FROM ee_src');
SELECT rec.train('no holdout', 'ee_src', factors => 4, iterations => 2) AS nh \gset
SELECT rec.wait(:nh, '60 s');
SELECT rec.evaluate(:nh);
BEGIN;
SELECT rec.train('queued', 'ee_src') AS q \gset
SELECT rec.evaluate(:q);
ROLLBACK;
