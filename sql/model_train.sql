SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
-- Model ids of this file start at 2000, so messages that show them do not
-- depend on which tests ran before.
SELECT setval('rec.models_model_id_seq', 2000, false) IS NOT NULL AS ids_from_2000;

-- Interactions with structure: users and items in three taste groups,
-- a user interacts with most items of its group and a few others.
CREATE TABLE train_src (user_id bigint, item_id integer, weight real, occurred_at timestamptz);
INSERT INTO train_src
SELECT u, i, 1 + ((u * 7 + i) % 3), timestamptz '2024-01-01' + (u * 31 + i * 17) % 1000 * interval '1 hour'
FROM generate_series(1, 40) u, generate_series(1, 24) i
WHERE (u % 3 = i % 3 AND (u + i) % 4 <> 0) OR (u * i) % 11 = 0;
-- a repeated pair: weights of repeats are summed
INSERT INTO train_src VALUES (1, 1, 2, '2023-06-01');

-- argument checks happen in rec.train, before anything is queued
SELECT rec.train(NULL);
SELECT rec.train('');
SELECT rec.train(repeat('x', 201));
SELECT rec.train('x', 'train_src', factors => 0);
SELECT rec.train('x', 'train_src', factors => 2000);
SELECT rec.train('x', 'train_src', iterations => 0);
SELECT rec.train('x', 'train_src', regularization => 0);
SELECT rec.train('x', 'train_src', regularization => 'infinity');
SELECT rec.train('x', 'train_src', alpha => -1);
-- training computes in single precision: these would become 0 or infinity
SELECT rec.train('x', 'train_src', regularization => 1e-300);
SELECT rec.train('x', 'train_src', regularization => 1e300);
SELECT rec.train('x', 'train_src', alpha => 1e300);
SELECT rec.train('x', 'train_src', solver => 'sgd');
SELECT rec.train('x', 'train_src', cg_steps => 0);
SELECT rec.train('x', 'train_src', threads => 0);
SELECT rec.train('x', 'no_such_table');
SELECT rec.train('x', 'SELECT user_id FROM train_src');
SELECT rec.train('x', 'SELECT user_id, item_id::text AS item_id FROM train_src');
SELECT rec.train('x', 'SELECT user_id, item_id, weight::text AS weight FROM train_src');
SELECT rec.train('x', 'SELECT user_id, item_id FROM train_src', holdout => true);
SELECT rec.train('x', 'SELECT user_id, item_id FROM train_src WHERE');
SELECT rec.train('x', 'DELETE FROM train_src RETURNING user_id, item_id');
SELECT rec.train('x', 'SELECT 1 AS user_id, 2 AS item_id; SELECT 1');
SELECT count(*) AS queued FROM rec.models WHERE name = 'x';

-- a job runs in the background; rec.wait() needs the queuing transaction committed
BEGIN;
SELECT rec.train('same xact', 'train_src') AS id \gset
SELECT rec.wait(:id);
ROLLBACK;

-- exact solver: train, wait, and check the result
SELECT rec.train('exact', 'train_src', factors => 6, iterations => 8,
				 regularization => 0.5, alpha => 3, solver => 'cholesky', seed => 7) AS exact \gset
SELECT rec.wait(:exact, '60 s');
SELECT name, algorithm, status, users, items, interactions, error IS NULL AS no_error,
	   size_bytes > 0 AS has_size, finished_at >= started_at AS timed,
	   params->>'solver' AS solver, params->>'factors' AS factors,
	   jsonb_array_length(metrics->'loss') AS losses,
	   jsonb_array_length(metrics->'iteration_seconds') AS timings,
	   (metrics->'seconds') ?& array['load', 'prepare', 'train', 'write', 'total'] AS phases,
	   (metrics->>'rows_read')::int = (SELECT count(*) FROM train_src) AS all_rows_read
FROM rec.models WHERE model_id = :exact;
SELECT count(*) AS user_rows, min(rec.vector_dims(factors)) AS dims FROM rec.user_factors(:exact);
SELECT count(*) AS item_rows FROM rec.item_factors(:exact);
-- the item side is indexed for serving
SELECT (metrics->>'indexed')::boolean AS indexed,
	   (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
		WHERE i.indrelid = format('rec.model_%s_item_factors', :exact)::regclass AND a.amname = 'rec_hnsw') AS hnsw_indexes
FROM rec.models WHERE model_id = :exact;

-- the loss of exact ALS never goes up
SELECT bool_and(l.v::float8 <= prev.v::float8 * (1 + 1e-5)) AS loss_non_increasing
FROM jsonb_array_elements_text((SELECT metrics->'loss' FROM rec.models WHERE model_id = :exact))
	 WITH ORDINALITY l(v, n)
JOIN jsonb_array_elements_text((SELECT metrics->'loss' FROM rec.models WHERE model_id = :exact))
	 WITH ORDINALITY prev(v, n) ON prev.n = l.n - 1;

-- The last half step solved every item exactly given the user factors:
-- (X'X + lambda I + sum_u a_ui x_u x_u') y_i = sum_u (1 + a_ui) x_u,
-- a_ui = alpha * (summed weight). Check the residual in SQL.
CREATE FUNCTION arr(v rec.vector) RETURNS real[] LANGUAGE sql IMMUTABLE
	AS $$ SELECT string_to_array(btrim(v::text, '[]'), ',')::real[] $$;
CREATE FUNCTION normal_equation_residual(model bigint, lambda float8, alpha float8)
RETURNS float8 LANGUAGE sql AS $$
	WITH r AS (SELECT user_id, item_id::bigint AS item_id, sum(weight) AS w
			   FROM train_src GROUP BY 1, 2),
		 x AS (SELECT user_id, factors, arr(factors) AS xa FROM rec.user_factors(model)),
		 y AS (SELECT item_id, factors, arr(factors) AS ya FROM rec.item_factors(model)),
		 d AS (SELECT y.item_id, x.xa, rec.inner_product(x.factors, y.factors) AS dot,
					  coalesce(alpha * r.w, 0) AS a, r.w IS NOT NULL AS observed
			   FROM x CROSS JOIN y LEFT JOIN r ON r.user_id = x.user_id AND r.item_id = y.item_id),
		 res AS (SELECT d.item_id, j,
						sum(d.xa[j] * d.dot * (1 + d.a))
						- sum(CASE WHEN d.observed THEN (1 + d.a) * d.xa[j] ELSE 0 END) AS lhs_minus_rhs,
						sum(CASE WHEN d.observed THEN (1 + d.a) * d.xa[j] ELSE 0 END) AS rhs
				 FROM d, generate_series(1, array_length(d.xa, 1)) j GROUP BY 1, 2)
	SELECT max(abs(res.lhs_minus_rhs + lambda * y.ya[res.j])) / max(abs(res.rhs))
	FROM res JOIN y USING (item_id)
$$;
SELECT normal_equation_residual(:exact, 0.5, 3) < 1e-5 AS exact_solves_normal_equations;

-- the default source: rec.events, each event weighted by its kind's weight
-- times its value, repeats summed (here views, weight 1, and purchases, 8)
INSERT INTO rec.events (user_id, item_id, kind, value, occurred_at)
SELECT user_id, item_id, CASE WHEN weight = 3 THEN 'purchase' ELSE 'view' END, weight, occurred_at
FROM train_src;
SELECT rec.train('events', factors => 6, iterations => 8, regularization => 0.5, alpha => 3,
				 solver => 'cholesky', seed => 7) AS ev \gset
SELECT rec.wait(:ev, '60 s');
SELECT source, source_query FROM rec.models WHERE model_id = :ev;
ALTER TABLE train_src RENAME TO train_src_table;
CREATE VIEW train_src AS
	SELECT e.user_id, e.item_id, k.weight * e.value AS weight
	FROM rec.events e JOIN rec.event_kinds k USING (kind);
SELECT normal_equation_residual(:ev, 0.5, 3) < 1e-5 AS events_weighted_by_kind;
DROP VIEW train_src;
ALTER TABLE train_src_table RENAME TO train_src;
TRUNCATE rec.events;

-- conjugate gradient with as many steps as factors solves them too
SELECT rec.train('cg', 'train_src', factors => 6, iterations => 8, regularization => 0.5,
				 alpha => 3, solver => 'cg', cg_steps => 6, seed => 7) AS cg \gset
SELECT rec.wait(:cg, '60 s');
SELECT normal_equation_residual(:cg, 0.5, 3) < 1e-3 AS cg_solves_normal_equations;
-- and the two solvers agree
SELECT max(abs(rec.inner_product(xa.factors, ya.factors) - rec.inner_product(xb.factors, yb.factors))) < 0.1
	AS solvers_agree
FROM rec.user_factors(:exact) xa JOIN rec.user_factors(:cg) xb USING (user_id)
CROSS JOIN (rec.item_factors(:exact) ya JOIN rec.item_factors(:cg) yb USING (item_id));

-- deterministic: same seed, other thread count, rows in another order
SELECT rec.train('cg again', 'SELECT * FROM train_src ORDER BY item_id DESC, user_id', factors => 6,
				 iterations => 8, regularization => 0.5, alpha => 3, solver => 'cg', cg_steps => 6,
				 seed => 7, threads => 1) AS cg2 \gset
SELECT rec.wait(:cg2, '60 s');
SELECT count(*) AS differing_users FROM rec.user_factors(:cg) a
	FULL JOIN rec.user_factors(:cg2) b USING (user_id) WHERE a.factors::text IS DISTINCT FROM b.factors::text;
SELECT count(*) AS differing_items FROM rec.item_factors(:cg) a
	FULL JOIN rec.item_factors(:cg2) b USING (item_id) WHERE a.factors::text IS DISTINCT FROM b.factors::text;
SELECT (metrics->>'threads')::int AS threads FROM rec.models WHERE model_id IN (:cg, :cg2) ORDER BY model_id;

-- holdout: each user's latest interaction is kept aside and evaluated
SELECT rec.train('holdout', 'train_src', factors => 6, iterations => 5, holdout => true) AS ho \gset
SELECT rec.wait(:ho, '60 s');
SELECT count(*) AS held_out,
	   count(*) = (SELECT count(DISTINCT user_id) FROM train_src) AS one_per_user
FROM rec.model_holdout WHERE model_id = :ho;
-- the held-out pair is each user's latest event
SELECT count(*) AS not_latest FROM rec.model_holdout h
WHERE h.model_id = :ho AND h.item_id <> (SELECT item_id FROM train_src s WHERE s.user_id = h.user_id
										 ORDER BY occurred_at DESC, item_id DESC LIMIT 1);
-- and it is not part of the training data
SELECT interactions = (SELECT count(DISTINCT (user_id, item_id)) FROM train_src)
					  - (SELECT count(*) FROM rec.model_holdout WHERE model_id = :ho) AS pairs_left_out
FROM rec.models WHERE model_id = :ho;
SELECT metrics->'holdout'->>'k' AS k, (metrics->'holdout'->>'users')::int AS users,
	   (metrics->'holdout'->>'hit_rate')::float8 BETWEEN 0 AND 1 AS hr_ok,
	   (metrics->'holdout'->>'ndcg')::float8 <= (metrics->'holdout'->>'hit_rate')::float8 AS ndcg_le_hr,
	   (metrics->'holdout'->>'precision')::float8 * 10 = (metrics->'holdout'->>'hit_rate')::float8 AS p_is_hr_over_k
FROM rec.models WHERE model_id = :ho;

-- failures end as failed, with the reason, and leave no factor tables
SELECT rec.train('empty', 'SELECT user_id, item_id FROM train_src WHERE false') AS empty \gset
SELECT rec.wait(:empty, '60 s');
SELECT status, error FROM rec.models WHERE model_id = :empty;
SELECT to_regclass('rec.model_' || :empty || '_user_factors') AS no_table;
SELECT rec.train('negative', 'SELECT user_id, item_id, -1 AS weight FROM train_src') AS neg \gset
SELECT rec.wait(:neg, '60 s');
SELECT status, error FROM rec.models WHERE model_id = :neg;
SELECT rec.train('error', 'SELECT user_id, item_id, 1 / (user_id - 5) AS weight FROM train_src') AS err \gset
SELECT rec.wait(:err, '60 s');
SELECT status, error FROM rec.models WHERE model_id = :err;

-- weights, and alpha times summed weights, must fit in single precision
SELECT rec.train('huge weight', 'SELECT user_id, item_id, 1e300::float8 AS weight FROM train_src') AS huge \gset
SELECT rec.wait(:huge, '60 s');
SELECT status, error FROM rec.models WHERE model_id = :huge;
SELECT rec.train('huge confidence', 'SELECT user_id, item_id, 1e37::float8 AS weight FROM train_src',
				 alpha => 100) AS huge \gset
SELECT rec.wait(:huge, '60 s');
SELECT status, error FROM rec.models WHERE model_id = :huge;

-- rec.models is a table: a job queued by hand, with parameters rec.train()
-- would have refused (here none at all), fails cleanly
INSERT INTO rec.models (name, source, source_query, requested_by)
VALUES ('by hand', 'train_src', 'SELECT * FROM public.train_src', current_user::regrole)
RETURNING model_id AS by_hand \gset
SELECT rec.train('after one by hand', 'train_src', factors => 4, iterations => 2) AS after_hand \gset
SELECT rec.wait(:by_hand, '60 s') AS by_hand, rec.wait(:after_hand, '60 s') AS after_it;
SELECT status, error FROM rec.models WHERE model_id = :by_hand;

-- holdout by date: dates beyond the timestamp range, and infinity, are
-- still the latest
CREATE TABLE date_src AS SELECT user_id, item_id, date '2020-01-01' + item_id AS occurred_at FROM train_src;
UPDATE date_src SET occurred_at = CASE WHEN user_id % 2 = 0 THEN date '900000-01-01' ELSE 'infinity' END
WHERE item_id = (SELECT min(item_id) FROM date_src d WHERE d.user_id = date_src.user_id);
SELECT rec.train('dates', 'date_src', factors => 4, iterations => 2, holdout => true) AS dates \gset
SELECT rec.wait(:dates, '60 s');
SELECT count(*) AS held_out,
	   count(*) FILTER (WHERE h.item_id <> (SELECT item_id FROM date_src s WHERE s.user_id = h.user_id
											ORDER BY occurred_at DESC, item_id DESC LIMIT 1)) AS not_latest
FROM rec.model_holdout h WHERE h.model_id = :dates;

-- cancelling a job that has not started
BEGIN;
SELECT rec.train('never', 'train_src') AS never \gset
SELECT rec.cancel(:never);
COMMIT;
SELECT status, error FROM rec.models WHERE model_id = :never;
SELECT rec.cancel(:never) AS cancel_finished;
SELECT rec.cancel(-1);
SELECT rec.wait(-1);

-- the progress view is empty when nothing trains
SELECT count(*) FROM rec.training_progress;

-- permissions: the management functions are not public
CREATE ROLE rec_test_analyst;
SET ROLE rec_test_analyst;
SELECT rec.train('x', 'train_src');
RESET ROLE;
GRANT EXECUTE ON FUNCTION rec.train(text, text, integer, integer, double precision,
	double precision, text, integer, bigint, integer, boolean) TO rec_test_analyst;
SET ROLE rec_test_analyst;
-- the source is checked with the caller's privileges
SELECT rec.train('x', 'train_src');
RESET ROLE;
GRANT SELECT ON train_src TO rec_test_analyst;
SET ROLE rec_test_analyst;
SELECT rec.train('by analyst', 'train_src', factors => 4, iterations => 2) AS by_analyst \gset
RESET ROLE;
SELECT rec.wait(:by_analyst, '60 s');
SELECT requested_by, status FROM rec.models WHERE model_id = :by_analyst;
-- the worker reads the source as the role that queued the job
BEGIN;
SET LOCAL ROLE rec_test_analyst;
SELECT rec.train('revoked later', 'train_src') AS revoked \gset
RESET ROLE;
REVOKE SELECT ON train_src FROM rec_test_analyst;
COMMIT;
SELECT rec.wait(:revoked, '60 s');
SELECT status, error FROM rec.models WHERE model_id = :revoked;
REVOKE ALL ON FUNCTION rec.train(text, text, integer, integer, double precision,
	double precision, text, integer, bigint, integer, boolean) FROM rec_test_analyst;
REVOKE ALL ON train_src FROM rec_test_analyst;
DROP ROLE rec_test_analyst;

-- the requesting role is recorded by OID: renamed before its job runs, it
-- is still the role the job runs as; dropped and created again under the
-- same name, it is another role, and the job fails rather than run as it
CREATE ROLE rec_test_trainers;
GRANT EXECUTE ON FUNCTION rec.train(text, text, integer, integer, double precision,
	double precision, text, integer, bigint, integer, boolean), rec.cancel(bigint) TO rec_test_trainers;
GRANT SELECT ON train_src TO rec_test_trainers;
CREATE ROLE rec_test_renamed IN ROLE rec_test_trainers;
CREATE ROLE rec_test_recreated IN ROLE rec_test_trainers;
BEGIN;
SET LOCAL ROLE rec_test_renamed;
SELECT rec.train('renamed', 'train_src', factors => 4, iterations => 2) AS renamed \gset
RESET ROLE;
ALTER ROLE rec_test_renamed RENAME TO rec_test_renamed_now;
CREATE ROLE rec_test_renamed;	-- the old name, but no right to read the source
COMMIT;
SELECT rec.wait(:renamed, '60 s');
SELECT status, error, requested_by FROM rec.models WHERE model_id = :renamed;
BEGIN;
SET LOCAL ROLE rec_test_recreated;
SELECT rec.train('recreated', 'train_src', factors => 4, iterations => 2) AS recreated \gset
RESET ROLE;
DROP ROLE rec_test_recreated;
CREATE ROLE rec_test_recreated IN ROLE rec_test_trainers;	-- may read the source
COMMIT;
SELECT rec.wait(:recreated, '60 s');
SELECT status, regexp_replace(error, 'OID [0-9]+', 'OID n') AS error,
	   requested_by = 'rec_test_recreated'::regrole AS as_new_role
FROM rec.models WHERE model_id = :recreated;
-- a role may still cancel its own jobs after a rename; nobody but a
-- superuser may cancel those of a dropped role
SET ROLE rec_test_renamed_now;
SELECT rec.cancel(:renamed);
RESET ROLE;
SET ROLE rec_test_recreated;
SELECT rec.cancel(:recreated);
RESET ROLE;
REVOKE ALL ON FUNCTION rec.train(text, text, integer, integer, double precision,
	double precision, text, integer, bigint, integer, boolean), rec.cancel(bigint) FROM rec_test_trainers;
REVOKE ALL ON train_src FROM rec_test_trainers;
DROP ROLE rec_test_renamed, rec_test_renamed_now, rec_test_recreated, rec_test_trainers;

-- a source may end in a line comment (rec.train wraps it to check it)
SELECT rec.train('trailing comment', 'SELECT user_id, item_id FROM train_src -- all of it',
				 factors => 4, iterations => 2) AS tc \gset
SELECT rec.wait(:tc, '60 s');

-- rec.cancel() locks the model's row until its transaction ends, and the
-- job cannot end before: waiting in the same transaction is an error, not
-- a wait that never ends (a job in its loading phase for 30 s here)
SELECT rec.train('slow', 'SELECT user_id, item_id FROM train_src, pg_sleep(30)') AS slow \gset
DO $$ BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN EXISTS (SELECT FROM rec.models WHERE name = 'slow' AND status = 'training');
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
BEGIN;
SELECT rec.cancel(:slow);
SET LOCAL statement_timeout = '20s';
SELECT rec.wait(:slow);
ROLLBACK;
SELECT rec.wait(:slow, '60 s');
SELECT error FROM rec.models WHERE model_id = :slow;
