-- src/model: the model registry, training jobs and deployments.
--
-- Each trained version's factors live in two tables of their own,
-- rec.model_<id>_user_factors and rec.model_<id>_item_factors, written by
-- the training worker in the same transaction that marks the model ready,
-- so serving never sees half a model; rec.retire() drops them.

CREATE SEQUENCE @extschema@.models_model_id_seq;

CREATE TABLE @extschema@.models (
	model_id     bigint PRIMARY KEY DEFAULT pg_catalog.nextval('@extschema@.models_model_id_seq'),
	name         text NOT NULL,
	algorithm    text NOT NULL DEFAULT 'als',
	params       jsonb NOT NULL DEFAULT '{}',
	source       text NOT NULL,
	source_query text NOT NULL,
	status       text NOT NULL DEFAULT 'queued',
	-- the role, by OID: a job runs as the role that queued it even if it is
	-- renamed, and fails if it is dropped (a role created again under the
	-- same name is another role). pg_dump writes it as the role's name.
	requested_by regrole NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	started_at   timestamptz,
	finished_at  timestamptz,
	retired_at   timestamptz,
	users        bigint,
	items        bigint,
	interactions bigint,
	size_bytes   bigint,
	metrics      jsonb NOT NULL DEFAULT '{}',
	error        text,
	CONSTRAINT models_status_check
		CHECK (status IN ('queued', 'training', 'ready', 'failed', 'promoted', 'retired'))
);
ALTER SEQUENCE @extschema@.models_model_id_seq OWNED BY @extschema@.models.model_id;
CREATE INDEX models_active_idx ON @extschema@.models (model_id)
	WHERE status IN ('queued', 'training');

COMMENT ON TABLE @extschema@.models IS 'model registry: one row per trained version';

-- Each user's held-out interaction, when rec.train(..., holdout => true).
CREATE TABLE @extschema@.model_holdout (
	model_id bigint NOT NULL REFERENCES @extschema@.models ON DELETE CASCADE,
	user_id  bigint NOT NULL,
	item_id  bigint NOT NULL,
	PRIMARY KEY (model_id, user_id, item_id)
);

-- Which model serves which surface; changed only by promote and rollback.
CREATE TABLE @extschema@.deployments (
	surface     text PRIMARY KEY CHECK (surface <> ''),
	model_id    bigint NOT NULL REFERENCES @extschema@.models,
	deployed_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	deployed_by name NOT NULL DEFAULT SESSION_USER
);

CREATE SEQUENCE @extschema@.deployment_history_event_id_seq;

CREATE TABLE @extschema@.deployment_history (
	event_id          bigint PRIMARY KEY
		DEFAULT pg_catalog.nextval('@extschema@.deployment_history_event_id_seq'),
	surface           text NOT NULL,
	action            text NOT NULL CHECK (action IN ('promote', 'rollback', 'undeploy')),
	model_id          bigint,
	previous_model_id bigint,
	undone            boolean NOT NULL DEFAULT false,
	at                timestamptz NOT NULL DEFAULT pg_catalog.now(),
	by                name NOT NULL DEFAULT SESSION_USER
);
ALTER SEQUENCE @extschema@.deployment_history_event_id_seq
	OWNED BY @extschema@.deployment_history.event_id;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.models', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.models_model_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.model_holdout', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.deployment_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.deployment_history_event_id_seq', '');

-- training jobs

CREATE FUNCTION @extschema@.train(
	name           text,
	source         text DEFAULT NULL,
	factors        integer DEFAULT 64,
	iterations     integer DEFAULT 15,
	regularization double precision DEFAULT 20,
	alpha          double precision DEFAULT 2,
	solver         text DEFAULT 'cg',
	cg_steps       integer DEFAULT 3,
	seed           bigint DEFAULT 42,
	threads        integer DEFAULT NULL,
	holdout        boolean DEFAULT false)
RETURNS bigint
	AS 'MODULE_PATHNAME', 'rec_train' LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.train(text, text, integer, integer, double precision,
	double precision, text, integer, bigint, integer, boolean)
	IS 'queue an implicit-feedback ALS training job; returns its model id at once';

CREATE FUNCTION @extschema@.wait(model_id bigint, timeout interval DEFAULT NULL)
RETURNS text
	AS 'MODULE_PATHNAME', 'rec_train_wait' LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.wait(bigint, interval)
	IS 'wait until a training job ends (or the timeout passes); returns its status';

CREATE FUNCTION @extschema@.cancel(model_id bigint)
RETURNS boolean
	AS 'MODULE_PATHNAME', 'rec_train_cancel' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.cancel(bigint)
	IS 'cancel a queued or running training job';

CREATE FUNCTION @extschema@.train_progress(
	OUT model_id bigint, OUT pid integer, OUT phase text,
	OUT iteration integer, OUT iterations integer, OUT loss double precision,
	OUT loss_history double precision[], OUT iteration_seconds double precision[],
	OUT rows_read bigint, OUT users bigint, OUT items bigint, OUT interactions bigint,
	OUT started_at timestamptz, OUT elapsed interval)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'rec_train_progress' LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW @extschema@.training_progress AS
	SELECT p.model_id, m.name, p.phase, p.iteration, p.iterations, p.loss,
		   p.loss_history, p.iteration_seconds, p.rows_read, p.users, p.items,
		   p.interactions, p.started_at, p.elapsed, p.pid
	FROM @extschema@.train_progress() p
	JOIN @extschema@.models m ON m.model_id = p.model_id
	WHERE m.status = 'training';

COMMENT ON VIEW @extschema@.training_progress
	IS 'one row per training job running in this database that the current role queued (all of them for pg_read_all_stats)';

-- anyone may look; rec.train_progress() shows each role the jobs it queued
-- (members of pg_read_all_stats: all), as pg_stat_activity draws the line
GRANT SELECT ON @extschema@.training_progress TO PUBLIC;

-- reading a version's factors

CREATE FUNCTION @extschema@.user_factors(model_id bigint)
RETURNS TABLE (user_id bigint, factors @extschema@.vector)
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF to_regclass(format('@extschema@.%I', 'model_' || model_id || '_user_factors')) IS NULL THEN
		RAISE EXCEPTION 'model % has no factors', model_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'Only ready and promoted models have factors.';
	END IF;
	RETURN QUERY EXECUTE format('SELECT user_id, factors FROM @extschema@.%I',
								'model_' || model_id || '_user_factors');
END
$$;

CREATE FUNCTION @extschema@.item_factors(model_id bigint)
RETURNS TABLE (item_id bigint, factors @extschema@.vector)
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF to_regclass(format('@extschema@.%I', 'model_' || model_id || '_item_factors')) IS NULL THEN
		RAISE EXCEPTION 'model % has no factors', model_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'Only ready and promoted models have factors.';
	END IF;
	RETURN QUERY EXECUTE format('SELECT item_id, factors FROM @extschema@.%I',
								'model_' || model_id || '_item_factors');
END
$$;

-- deployment: promote, rollback, retire

CREATE FUNCTION @extschema@.promote(model_id bigint, surface text DEFAULT 'home')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	st text;
	cur bigint;
BEGIN
	IF model_id IS NULL OR surface IS NULL THEN
		RAISE EXCEPTION 'model_id and surface must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF surface = '' THEN
		RAISE EXCEPTION 'surface must not be empty' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- one writer at a time; readers (serving) are never blocked
	LOCK TABLE @extschema@.deployments IN SHARE ROW EXCLUSIVE MODE;
	SELECT m.status INTO st FROM @extschema@.models m WHERE m.model_id = model_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'model % does not exist', model_id USING ERRCODE = 'undefined_object';
	END IF;
	IF st NOT IN ('ready', 'promoted') THEN
		RAISE EXCEPTION 'model % has status %; only a ready model can be promoted', model_id, st
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	SELECT d.model_id INTO cur FROM @extschema@.deployments d WHERE d.surface = surface;
	IF cur = model_id THEN
		RETURN;
	END IF;
	INSERT INTO @extschema@.deployments AS d (surface, model_id, deployed_at, deployed_by)
		VALUES (surface, model_id, now(), session_user)
		ON CONFLICT ON CONSTRAINT deployments_pkey DO UPDATE
		SET model_id = excluded.model_id, deployed_at = excluded.deployed_at,
			deployed_by = excluded.deployed_by;
	INSERT INTO @extschema@.deployment_history (surface, action, model_id, previous_model_id)
		VALUES (surface, 'promote', model_id, cur);
	UPDATE @extschema@.models m SET status = 'promoted' WHERE m.model_id = model_id;
	UPDATE @extschema@.models m SET status = 'ready'
		WHERE m.model_id = cur AND m.status = 'promoted'
		  AND NOT EXISTS (SELECT 1 FROM @extschema@.deployments d WHERE d.model_id = cur);
END
$$;

COMMENT ON FUNCTION @extschema@.promote(bigint, text)
	IS 'serve a ready model on a surface (one atomic switch)';

CREATE FUNCTION @extschema@.rollback(surface text DEFAULT 'home')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cur bigint;
	ev bigint;
	target bigint;
	st text;
BEGIN
	IF surface IS NULL THEN
		RAISE EXCEPTION 'surface must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	LOCK TABLE @extschema@.deployments IN SHARE ROW EXCLUSIVE MODE;
	SELECT d.model_id INTO cur FROM @extschema@.deployments d WHERE d.surface = surface;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no model is deployed on surface "%"', surface
			USING ERRCODE = 'undefined_object';
	END IF;
	SELECT h.event_id, h.previous_model_id INTO ev, target
		FROM @extschema@.deployment_history h
		WHERE h.surface = surface AND h.action = 'promote' AND h.model_id = cur AND NOT h.undone
		ORDER BY h.event_id DESC LIMIT 1;
	IF target IS NULL THEN
		RAISE EXCEPTION 'surface "%" has no earlier model to roll back to', surface
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	SELECT m.status INTO st FROM @extschema@.models m WHERE m.model_id = target FOR UPDATE;
	IF st NOT IN ('ready', 'promoted') THEN
		RAISE EXCEPTION 'cannot roll back surface "%" to model %: it has status %', surface, target, st
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	UPDATE @extschema@.deployments d
		SET model_id = target, deployed_at = now(), deployed_by = session_user
		WHERE d.surface = surface;
	UPDATE @extschema@.deployment_history h SET undone = true WHERE h.event_id = ev;
	INSERT INTO @extschema@.deployment_history (surface, action, model_id, previous_model_id)
		VALUES (surface, 'rollback', target, cur);
	UPDATE @extschema@.models m SET status = 'promoted' WHERE m.model_id = target;
	UPDATE @extschema@.models m SET status = 'ready'
		WHERE m.model_id = cur AND m.status = 'promoted'
		  AND NOT EXISTS (SELECT 1 FROM @extschema@.deployments d WHERE d.model_id = cur);
	RETURN target;
END
$$;

COMMENT ON FUNCTION @extschema@.rollback(text)
	IS 'serve a surface''s previous model again (one atomic switch); returns its id';

CREATE FUNCTION @extschema@.undeploy(surface text DEFAULT 'home')
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	cur bigint;
BEGIN
	LOCK TABLE @extschema@.deployments IN SHARE ROW EXCLUSIVE MODE;
	DELETE FROM @extschema@.deployments d WHERE d.surface = surface RETURNING d.model_id INTO cur;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no model is deployed on surface "%"', surface
			USING ERRCODE = 'undefined_object';
	END IF;
	-- what was promoted before is not rolled back to any more
	UPDATE @extschema@.deployment_history h SET undone = true
		WHERE h.surface = surface AND h.action = 'promote';
	INSERT INTO @extschema@.deployment_history (surface, action, model_id, previous_model_id)
		VALUES (surface, 'undeploy', NULL, cur);
	UPDATE @extschema@.models m SET status = 'ready'
		WHERE m.model_id = cur AND m.status = 'promoted'
		  AND NOT EXISTS (SELECT 1 FROM @extschema@.deployments d WHERE d.model_id = cur);
	RETURN cur;
END
$$;

COMMENT ON FUNCTION @extschema@.undeploy(text)
	IS 'stop serving a model on a surface (it falls back to popular items); returns the model''s id';

CREATE FUNCTION @extschema@.retire(model_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	st text;
	surfaces text;
BEGIN
	SELECT m.status INTO st FROM @extschema@.models m WHERE m.model_id = model_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'model % does not exist', model_id USING ERRCODE = 'undefined_object';
	END IF;
	IF st = 'promoted' THEN
		SELECT string_agg(format('"%s"', d.surface), ', ' ORDER BY d.surface) INTO surfaces
			FROM @extschema@.deployments d WHERE d.model_id = model_id;
		RAISE EXCEPTION 'model % is promoted and cannot be retired', model_id
			USING ERRCODE = 'object_in_use',
				  DETAIL = format('It serves surface(s) %s.', surfaces),
				  HINT = 'Promote another model or roll back first.';
	END IF;
	IF st IN ('queued', 'training') THEN
		RAISE EXCEPTION 'model % is still %; cancel it with rec.cancel() instead', model_id, st
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF st = 'retired' THEN
		RETURN;
	END IF;
	IF st = 'ready' THEN
		EXECUTE format('DROP TABLE @extschema@.%I, @extschema@.%I',
					   'model_' || model_id || '_user_factors',
					   'model_' || model_id || '_item_factors');
	END IF;
	DELETE FROM @extschema@.model_holdout h WHERE h.model_id = model_id;
	UPDATE @extschema@.models m SET status = 'retired', retired_at = now()
		WHERE m.model_id = model_id;
END
$$;

COMMENT ON FUNCTION @extschema@.retire(bigint)
	IS 'drop a model version''s factors; a promoted model cannot be retired';

REVOKE ALL ON FUNCTION @extschema@.train(text, text, integer, integer, double precision,
	double precision, text, integer, bigint, integer, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.wait(bigint, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.cancel(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.promote(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.rollback(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.retire(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.undeploy(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.user_factors(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.item_factors(bigint) FROM PUBLIC;
