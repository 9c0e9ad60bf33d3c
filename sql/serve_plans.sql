-- src/serve keeps SPI plans for the whole session. They must stay right
-- when the objects they name are dropped and made again in that session.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS rec CASCADE;
CREATE EXTENSION rec;
RESET client_min_messages;

-- a model deployed and served: the session keeps the plans of model 1
INSERT INTO rec.items (item_id) SELECT generate_series(1, 30);
INSERT INTO rec.events (user_id, item_id, kind)
SELECT u, i, 'view' FROM generate_series(1, 60) u, generate_series(1, 30) i
WHERE (u % 3 = i % 3 AND (u + i) % 5 <> 0) OR (u * i) % 17 = 0;
SELECT rec.train('plans', factors => 4, iterations => 3, seed => 1) AS m \gset
SELECT :m AS model_id, rec.wait(:m, '60 s');
SELECT rec.promote(:m);
SELECT DISTINCT source FROM rec.recommend(1, 5);
SELECT count(*) FROM rec.similar_items(1, 5);

-- the extension dropped and created again: model ids start at 1 again, and
-- the new model 1 has new tables and a new rec.vector type. The plans kept
-- for the old model 1 named the old type ("cache lookup failed for type").
SET client_min_messages = warning;
DROP EXTENSION rec CASCADE;
CREATE EXTENSION rec;
RESET client_min_messages;
INSERT INTO rec.items (item_id) SELECT generate_series(1, 30);
INSERT INTO rec.events (user_id, item_id, kind)
SELECT u, i, 'view' FROM generate_series(1, 60) u, generate_series(1, 30) i
WHERE (u % 3 = i % 3 AND (u + i) % 5 <> 0) OR (u * i) % 17 = 0;
SELECT rec.train('plans again', factors => 4, iterations => 3, seed => 1) AS m \gset
SELECT :m AS model_id, rec.wait(:m, '60 s');
SELECT rec.promote(:m);
SELECT source, count(*) FROM rec.recommend(1, 5) GROUP BY source;
SELECT count(*) FROM rec.similar_items(1, 5);
SELECT rec.track(1, 2, 'purchase');
SELECT count(*) AS purchased_shown FROM rec.recommend(1, 30) WHERE item_id = 2;

-- the version serving changes in the session: its own plans serve it
SELECT rec.train('plans 2', factors => 4, iterations => 3, seed => 2) AS m2 \gset
SELECT rec.wait(:m2, '60 s');
SELECT rec.promote(:m2);
SELECT source, count(*) FROM rec.recommend(1, 5) GROUP BY source;
SELECT rec.rollback() = :m AS rolled_back;
SELECT rec.retire(:m2);
SELECT source, count(*) FROM rec.recommend(1, 5) GROUP BY source;

-- leave an empty catalogue behind
SELECT rec.undeploy();
TRUNCATE rec.events;
DELETE FROM rec.items;
