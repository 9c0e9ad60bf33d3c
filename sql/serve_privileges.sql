-- the privileges docs/installation.md lists are enough for an application role
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;

INSERT INTO rec.items (item_id) VALUES (1), (2), (3);
SELECT rec.track(1, 1, 'view', 1, now() - interval '1 hour');
SELECT rec.track(1, 2, 'view', 1, now() - interval '1 hour');
SELECT rec.track(2, 2, 'view', 1, now() - interval '1 hour');

CREATE ROLE regress_rec_app;
SET ROLE regress_rec_app;
SELECT count(*) FROM rec.recommend(1, 5);        -- no table privileges yet
RESET ROLE;

GRANT SELECT ON rec.items, rec.events, rec.event_kinds,
			 rec.item_popularity, rec.popularity_state, rec.deployments TO regress_rec_app;
GRANT INSERT ON rec.events TO regress_rec_app;

SET ROLE regress_rec_app;
SELECT rec.track(3, 3, 'purchase');
SELECT item_id, rank FROM rec.recommend(3, 5);
SELECT item_id, rank FROM rec.similar_items(1, 5);
-- the popularity trigger did its work with the owner's rights
SELECT events FROM rec.item_popularity WHERE item_id = 3;
-- but not the catalogue, nor the derived popularity, nor maintenance
UPDATE rec.item_popularity SET events = 0;
INSERT INTO rec.items (item_id) VALUES (4);
SELECT rec.refresh_popularity();
SELECT rec.generate_demo_data(10, 10, 10);
RESET ROLE;

DROP OWNED BY regress_rec_app;
DROP ROLE regress_rec_app;
TRUNCATE rec.events;
DELETE FROM rec.items;
