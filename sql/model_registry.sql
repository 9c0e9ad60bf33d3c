SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;

-- Model registry: promote, rollback, retire.
-- Model ids of this file start at 1000, so messages that show them do not
-- depend on which tests ran before.
SELECT setval('rec.models_model_id_seq', 1000, false) IS NOT NULL AS ids_from_1000;
CREATE TABLE reg_src AS
SELECT u AS user_id, i AS item_id FROM generate_series(1, 20) u, generate_series(1, 10) i
WHERE (u + i) % 3 = 0;

SELECT rec.train('first', 'reg_src', factors => 4, iterations => 3) AS m1 \gset
SELECT rec.train('second', 'reg_src', factors => 4, iterations => 4) AS m2 \gset
SELECT rec.train('third', 'reg_src', factors => 4, iterations => 5) AS m3 \gset
SELECT rec.train('broken', 'SELECT user_id, item_id FROM reg_src WHERE false') AS bad \gset
SELECT rec.wait(:m1, '60 s'), rec.wait(:m2, '60 s'), rec.wait(:m3, '60 s'), rec.wait(:bad, '60 s');

CREATE VIEW reg AS
SELECT m.name, m.status, coalesce(string_agg(d.surface, ',' ORDER BY d.surface), '') AS surfaces
FROM rec.models m LEFT JOIN rec.deployments d USING (model_id)
WHERE m.model_id BETWEEN 1000 AND 1999
GROUP BY m.model_id, m.name, m.status ORDER BY m.model_id;

SELECT rec.promote(:m1);
SELECT * FROM reg;
SELECT rec.promote(:m2);
SELECT rec.promote(:m2);		-- already serving: nothing changes
SELECT rec.promote(:m3, 'email');
SELECT * FROM reg;
SELECT rec.rollback() = :m1 AS back_to_first;
SELECT * FROM reg;
SELECT rec.rollback();			-- nothing before the first
SELECT rec.rollback('nowhere');
SELECT rec.promote(:m2);
SELECT rec.rollback() = :m1 AS back_to_first_again;
SELECT surface, action, model_id = :m1 AS to_first, undone FROM rec.deployment_history
WHERE model_id BETWEEN 1000 AND 1999 ORDER BY event_id;

-- what cannot be promoted or retired
SELECT rec.promote(:bad);
SELECT rec.promote(-1);
SELECT rec.promote(:m2, '');
SELECT rec.retire(:m1);
SELECT rec.retire(:m3);

-- retiring drops the factors; a retired model cannot come back
SELECT to_regclass('rec.model_' || :m2 || '_item_factors') IS NOT NULL AS has_factors;
SELECT rec.retire(:m2);
SELECT rec.retire(:m2);			-- again: nothing to do
SELECT to_regclass('rec.model_' || :m2 || '_user_factors') IS NULL AS users_dropped,
	   to_regclass('rec.model_' || :m2 || '_item_factors') IS NULL AS items_dropped;
SELECT status, retired_at IS NOT NULL AS retired_at FROM rec.models WHERE model_id = :m2;
SELECT rec.promote(:m2);
SELECT * FROM rec.item_factors(:m2);
SELECT rec.retire(:bad);
SELECT * FROM reg;

-- the deployment history outlives retired models, and rollback refuses them
SELECT rec.promote(:m3);
SELECT rec.retire(:m1);
SELECT rec.promote(:m1);
SELECT * FROM reg;
SELECT rec.rollback();

-- undeploy: the surface falls back to popular items, and rollback starts afresh
SELECT rec.undeploy('email') = :m3 AS undeployed_email;
SELECT rec.undeploy('home') = :m3 AS undeployed_home;
SELECT rec.undeploy('home');
SELECT * FROM reg;
SELECT count(*) AS deployments FROM rec.deployments;
SELECT rec.rollback();
