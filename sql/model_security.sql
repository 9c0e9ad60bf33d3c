SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS rec; RESET client_min_messages;
-- Model ids of this file start at 5000, so messages that show them do not
-- depend on which tests ran before.
SELECT setval('rec.models_model_id_seq', 5000, false) IS NOT NULL AS ids_from_5000;

-- rec.train/wait/cancel read and write the registry as its owner (a
-- superuser here). A role allowed to call them must not be able to make
-- its own code run as that owner, e.g. with an "=" operator of its own
-- ahead of pg_catalog in its search_path. The trap below refuses to run as
-- anyone but its author, so any call of it by another role is an error.
CREATE ROLE regress_rec_mallory;
CREATE SCHEMA regress_rec_trap AUTHORIZATION regress_rec_mallory;
CREATE TABLE sec_src AS
SELECT u AS user_id, i AS item_id, timestamptz '2024-01-01' + (u * 7 + i) * interval '1 hour' AS occurred_at
FROM generate_series(1, 30) u, generate_series(1, 12) i
WHERE (u + i) % 3 = 0;
GRANT SELECT ON sec_src TO regress_rec_mallory;
GRANT EXECUTE ON FUNCTION rec.train(text, text, integer, integer, double precision,
	double precision, text, integer, bigint, integer, boolean) TO regress_rec_mallory;
GRANT EXECUTE ON FUNCTION rec.wait(bigint, interval), rec.cancel(bigint) TO regress_rec_mallory;

SET ROLE regress_rec_mallory;
CREATE FUNCTION regress_rec_trap.eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF current_user <> 'regress_rec_mallory' THEN
		RAISE EXCEPTION 'trap operator ran as %', current_user;
	END IF;
	RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR regress_rec_trap.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_rec_trap.eq);
CREATE FUNCTION regress_rec_trap.teq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF current_user <> 'regress_rec_mallory' THEN
		RAISE EXCEPTION 'trap operator ran as %', current_user;
	END IF;
	RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR regress_rec_trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_rec_trap.teq);
CREATE FUNCTION regress_rec_trap.only_mallory() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF current_user <> 'regress_rec_mallory' THEN
		RAISE EXCEPTION 'trap function ran as %', current_user;
	END IF;
	RETURN true;
END $$;
RESET ROLE;

SELECT rec.train('one', 'sec_src', factors => 4, iterations => 2) AS m1 \gset
SELECT rec.wait(:m1, '60 s');

SET ROLE regress_rec_mallory;
SET search_path = regress_rec_trap, pg_catalog;
SELECT rec.train('by mallory', 'public.sec_src', factors => 4, iterations => 2) AS m2 \gset
SELECT rec.wait(:m2, '60 s');
SELECT rec.wait(:m1 + 100);
SELECT rec.cancel(:m1 + 100);
SELECT rec.cancel(:m1);
-- the caller's own search_path is back after each call
SHOW search_path;
RESET search_path;
RESET ROLE;
SELECT status, requested_by FROM rec.models WHERE model_id = :m2;

-- rec.evaluate() excludes what each user was trained on by running the
-- model's training source again. That query is the requester's text: it
-- runs as the requester (as in the worker), never as whoever evaluates.
SET ROLE regress_rec_mallory;
SELECT rec.train('source with a trap',
				 'SELECT * FROM public.sec_src WHERE regress_rec_trap.only_mallory()',
				 factors => 4, iterations => 2, holdout => true) AS m4 \gset
RESET ROLE;
SELECT rec.wait(:m4, '60 s');
SELECT r->>'protocol' AS protocol, r->>'users' AS users, r->>'exclude' AS exclude
FROM rec.evaluate(:m4) r;

-- rec.training_progress shows a job to the role that queued it (and whoever
-- has its privileges) and to pg_read_all_stats, not to everyone
CREATE ROLE regress_rec_watcher;
CREATE ROLE regress_rec_stats IN ROLE pg_read_all_stats;
SET ROLE regress_rec_mallory;
SELECT rec.train('slow source', 'SELECT user_id, item_id FROM public.sec_src, pg_sleep(30)') AS slow \gset
RESET ROLE;
DO $$ BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN EXISTS (SELECT FROM rec.training_progress WHERE phase = 'loading');
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT name, phase FROM rec.training_progress;
SET ROLE regress_rec_mallory;
SELECT name, phase FROM rec.training_progress;
SET ROLE regress_rec_stats;
SELECT name, phase FROM rec.training_progress;
SET ROLE regress_rec_watcher;
SELECT count(*) AS jobs_seen FROM rec.training_progress;
SELECT count(*) AS jobs_seen FROM rec.train_progress();
RESET ROLE;
SELECT rec.cancel(:slow);
SELECT rec.wait(:slow, '60 s');
DROP ROLE regress_rec_watcher, regress_rec_stats;

-- The training worker runs as the bootstrap superuser. A search_path set
-- for the database (by its owner, say) must not reach its own queries.
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I SET search_path = regress_rec_trap, pg_catalog', current_database());
END $$;
-- (a worker still connected from the jobs above would not see the setting)
DO $$ BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity
							  WHERE backend_type = 'rec training worker' AND datname = current_database());
		PERFORM pg_sleep(0.05);
	END LOOP;
END $$;
SELECT rec.train('database search_path', 'public.sec_src', factors => 4, iterations => 2) AS m3 \gset
SELECT rec.wait(:m3, '60 s');
DO $$ BEGIN
	EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END $$;

SET client_min_messages = warning;
DROP SCHEMA regress_rec_trap CASCADE;
RESET client_min_messages;
REVOKE ALL ON FUNCTION rec.train(text, text, integer, integer, double precision,
	double precision, text, integer, bigint, integer, boolean) FROM regress_rec_mallory;
REVOKE ALL ON FUNCTION rec.wait(bigint, interval), rec.cancel(bigint) FROM regress_rec_mallory;
REVOKE ALL ON sec_src FROM regress_rec_mallory;
DROP ROLE regress_rec_mallory;
