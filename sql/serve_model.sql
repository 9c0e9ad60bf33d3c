SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
SELECT setval('rec.models_model_id_seq', 4000, false) IS NOT NULL AS ids_from_4000;

-- rec.recommend with a deployed model: the model's users get the "als"
-- source (their factors against the item index), everyone else "popular";
-- the same filters apply to both.
INSERT INTO rec.items (item_id, category) SELECT i, 'c' || (i % 3) FROM generate_series(1, 30) i;
UPDATE rec.items SET available = false WHERE item_id = 30;
INSERT INTO rec.events (user_id, item_id, kind, occurred_at)
SELECT u, i, 'view', now() - interval '1 day'
FROM generate_series(1, 60) u, generate_series(1, 30) i
WHERE (u % 3 = i % 3 AND (u + i) % 5 <> 0) OR (u * i) % 17 = 0;

-- no model deployed
SELECT DISTINCT source FROM rec.recommend(1, 5);

SELECT rec.train('serving', factors => 8, iterations => 10, seed => 1) AS m \gset
SELECT rec.wait(:m, '60 s');
SELECT rec.promote(:m);

-- a user the model knows: scores are inner products of the factors, best
-- first, over available catalogue items (the same as ranking them in SQL)
SELECT source, count(*) FROM rec.recommend(1, 10) GROUP BY source;
CREATE TEMP TABLE exact AS
SELECT y.item_id, rec.inner_product(x.factors, y.factors) AS score
FROM rec.user_factors(:m) x CROSS JOIN rec.item_factors(:m) y JOIN rec.items i USING (item_id)
WHERE x.user_id = 1 AND i.available;
SELECT (SELECT array_agg(item_id ORDER BY rank) FROM rec.recommend(1, 10)) =
	   (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (SELECT * FROM exact ORDER BY score DESC, item_id LIMIT 10) t)
	   AS same_as_exact_ranking;
SELECT bool_and(abs(r.score - e.score) < 1e-6) AS scores_are_inner_products
FROM rec.recommend(1, 10) r JOIN exact e USING (item_id);

-- a user the model does not know gets popular items
SELECT DISTINCT source FROM rec.recommend(999, 5);

-- filters: a purchased item is gone at once; unavailable items never come
SELECT item_id AS top FROM rec.recommend(2, 1) \gset
SELECT rec.track(2, :top, 'purchase');
SELECT count(*) AS purchased_shown FROM rec.recommend(2, 50) WHERE item_id = :top;
SELECT count(*) AS unavailable_shown FROM rec.recommend(2, 50) WHERE item_id = 30;
SELECT count(*) AS all_left, min(source) AS source FROM rec.recommend(2, 100);
UPDATE rec.items SET available = false WHERE item_id IN (SELECT item_id FROM rec.recommend(3, 2));
SELECT count(*) AS newly_unavailable_shown FROM rec.recommend(3, 50) r JOIN rec.items i USING (item_id)
WHERE NOT i.available;
UPDATE rec.items SET available = true WHERE item_id < 30;

-- a model whose tables are gone is not used (serving falls back, no error)
BEGIN;
DROP TABLE rec.model_4000_item_factors;
SELECT DISTINCT source FROM rec.recommend(1, 5);
ROLLBACK;

-- an application role holding the grants docs/installation.md lists can
-- read the factors of every version trained after them (each new version's
-- tables get SELECT for the roles that may read rec.deployments)
CREATE ROLE regress_rec_serving;
GRANT SELECT ON rec.items, rec.events, rec.event_kinds, rec.item_popularity,
			 rec.popularity_state, rec.deployments TO regress_rec_serving;

-- rollback and undeploy switch what serves, at once
SELECT rec.train('serving 2', factors => 8, iterations => 10, seed => 2) AS m2 \gset
SELECT rec.wait(:m2, '60 s');
SELECT array_agg(item_id ORDER BY rank) AS by_first FROM rec.recommend(1, 5) \gset
SELECT rec.promote(:m2);
SELECT array_agg(item_id ORDER BY rank) AS by_second FROM rec.recommend(1, 5) \gset
SELECT :'by_first' <> :'by_second' AS models_differ;
SET ROLE regress_rec_serving;
SELECT DISTINCT source FROM rec.recommend(1, 5);
RESET ROLE;

-- surfaces: each serves its own deployment; one with none serves popular items
SELECT rec.promote(:m2, 'email');
SELECT array_agg(item_id ORDER BY rank) = :'by_second' AS email_serves_second
FROM rec.recommend(1, 5, 'email');
SELECT DISTINCT source FROM rec.recommend(1, 5, 'no deployment here');
SELECT rec.recommend(1, 5, NULL);
SELECT rec.rollback() = :m AS rolled_back;
SELECT array_agg(item_id ORDER BY rank) = :'by_first' AS first_again FROM rec.recommend(1, 5);
SELECT array_agg(item_id ORDER BY rank) = :'by_second' AS email_still_second
FROM rec.recommend(1, 5, 'email');
SELECT rec.undeploy() = :m AS undeployed;
SELECT DISTINCT source FROM rec.recommend(1, 5);
SELECT rec.undeploy('email') = :m2 AS undeployed_email;
DROP OWNED BY regress_rec_serving;
DROP ROLE regress_rec_serving;

-- leave the catalogue empty for other tests
TRUNCATE rec.events;
DELETE FROM rec.items;
