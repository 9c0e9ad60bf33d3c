-- src/events: the item catalogue, interaction events, event kinds, rec.track,
-- and the maintained popularity table that serving reads.
-- Reference: docs/events.md.

-- ------------------------------------------------------------ catalogue

CREATE TABLE @extschema@.items (
	item_id		bigint PRIMARY KEY,
	category	text,
	tags		text[] DEFAULT '{}',
	attributes	jsonb DEFAULT '{}',
	available	boolean NOT NULL DEFAULT true,
	boost		real NOT NULL DEFAULT 0
				CHECK (boost > '-Infinity' AND boost < 'Infinity'),
	created_at	timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE @extschema@.items IS
	'item catalogue: only items listed here and available are recommended';

-- Serving asks "is this item in the catalogue and available?" for many
-- candidates at a time: an index-only scan of this answers it.
CREATE INDEX items_available_idx ON @extschema@.items (item_id) WHERE available;

-- ------------------------------------------------------------ event kinds

-- The kinds CREATE EXTENSION seeds, in one place: the seed below, the dump
-- filter and the triggers on rec.event_kinds all read this function.
CREATE FUNCTION @extschema@.default_event_kinds(OUT kind text, OUT weight real, OUT suppresses boolean)
	RETURNS SETOF record
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$
	VALUES ('view',        1::real, false),
	       ('click',       2::real, false),
	       ('add_to_cart', 4::real, false),
	       ('purchase',    8::real, true),
	       ('rating',      1::real, true),
	       ('like',        4::real, false),
	       ('hide',        0::real, true)
	$$;

COMMENT ON FUNCTION @extschema@.default_event_kinds() IS
	'the event kinds CREATE EXTENSION creates, with their default weights';

CREATE TABLE @extschema@.event_kinds (
	kind		text PRIMARY KEY CHECK (kind <> ''),
	weight		real NOT NULL DEFAULT 1 CHECK (weight >= 0 AND weight < 'Infinity'),
	suppresses	boolean NOT NULL DEFAULT false
);

COMMENT ON TABLE @extschema@.event_kinds IS
	'event kinds: weight in popularity and training; whether an event of the kind hides the item from that user';

INSERT INTO @extschema@.event_kinds SELECT * FROM @extschema@.default_event_kinds();

-- pg_restore reloads the rows of rec.event_kinds that differ from the seed
-- after CREATE EXTENSION has seeded it again. A built-in kind that still has
-- its default values is therefore updated in place by an INSERT of the same
-- kind instead of failing on the primary key.
CREATE FUNCTION @extschema@.event_kinds_before_insert() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	UPDATE @extschema@.event_kinds k
	   SET weight = NEW.weight, suppresses = NEW.suppresses
	 WHERE k.kind = NEW.kind
	   AND (k.kind, k.weight, k.suppresses) IN
		   (SELECT d.kind, d.weight, d.suppresses FROM @extschema@.default_event_kinds() d);
	IF FOUND THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$$;

-- A built-in kind cannot be deleted or renamed: a restore would bring it
-- back. (A kind that events still use cannot be deleted either: the foreign
-- key of rec.events says so.)
CREATE FUNCTION @extschema@.event_kinds_before_change() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF (TG_OP = 'DELETE' OR NEW.kind IS DISTINCT FROM OLD.kind)
	   AND OLD.kind IN (SELECT d.kind FROM @extschema@.default_event_kinds() d) THEN
		RAISE EXCEPTION 'event kind "%" is built in and cannot be deleted or renamed', OLD.kind
			USING ERRCODE = 'restrict_violation',
				  HINT = 'Set its weight to 0 to make it count for nothing.';
	END IF;
	IF TG_OP = 'DELETE' THEN
		RETURN OLD;
	END IF;
	RETURN NEW;
END
$$;

-- TRUNCATE fires no row triggers: refuse it as a whole, or it would remove
-- the built-in kinds that DELETE may not.
CREATE FUNCTION @extschema@.event_kinds_before_truncate() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	RAISE EXCEPTION 'rec.event_kinds cannot be truncated: it holds the built-in event kinds'
		USING ERRCODE = 'restrict_violation',
			  HINT = 'DELETE the kinds you added instead.';
END
$$;

CREATE TRIGGER event_kinds_before_insert BEFORE INSERT ON @extschema@.event_kinds
	FOR EACH ROW EXECUTE FUNCTION @extschema@.event_kinds_before_insert();
CREATE TRIGGER event_kinds_before_change BEFORE UPDATE OR DELETE ON @extschema@.event_kinds
	FOR EACH ROW EXECUTE FUNCTION @extschema@.event_kinds_before_change();
CREATE TRIGGER event_kinds_before_truncate BEFORE TRUNCATE ON @extschema@.event_kinds
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.event_kinds_before_truncate();

-- ------------------------------------------------------------ events

-- item_id does not reference rec.items: events may be loaded before the
-- catalogue, keep their history (for training) when an item leaves it, and
-- deleting an item does not have to visit its events. Serving only returns
-- items that are in the catalogue. kind does reference rec.event_kinds: an
-- unknown kind is an error, and pg_dump restores the kinds before the
-- events because of it.
CREATE TABLE @extschema@.events (
	user_id		bigint NOT NULL,
	item_id		bigint NOT NULL,
	kind		text NOT NULL REFERENCES @extschema@.event_kinds (kind) ON UPDATE CASCADE,
	value		real NOT NULL DEFAULT 1
				CHECK (value > '-Infinity' AND value < 'Infinity'),
	occurred_at	timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE @extschema@.events IS
	'interactions: who did what to which item, when (log them with rec.track or bulk COPY)';

-- A user's history, newest last (suppression, recent items for similar and
-- session candidates); an item's audience (similar items). The included
-- columns let those reads use index-only scans.
CREATE INDEX events_user_idx ON @extschema@.events (user_id, occurred_at) INCLUDE (item_id, kind);
CREATE INDEX events_item_idx ON @extschema@.events (item_id, occurred_at) INCLUDE (user_id, kind);

-- ------------------------------------------------------------ popularity

-- Popularity of an item at time t is  sum over its events of
--   weight(kind) * value * 2^(-(t - occurred_at) / half_life).
-- Relative to the fixed epoch 2000-01-01 UTC this is
--   2^(-t / half_life) * sum 2^(log2(weight * value) + occurred_at / half_life),
-- and the sum no longer depends on t. rec.item_popularity keeps its log2 as
-- score_log: ordering by it is ordering by popularity at any time, and the
-- log domain never overflows.
CREATE TABLE @extschema@.popularity_state (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	half_life		interval NOT NULL,
	refreshed_at	timestamptz NOT NULL
);

COMMENT ON TABLE @extschema@.popularity_state IS
	'the half-life rec.item_popularity was computed with (set by rec.refresh_popularity)';

-- score_log is finite: a NaN or an infinity would sort first in the score
-- index and break the ordering serving relies on.
CREATE TABLE @extschema@.item_popularity (
	item_id		bigint PRIMARY KEY,
	score_log	double precision NOT NULL
				CHECK (score_log > '-Infinity' AND score_log < 'Infinity'),
	events		bigint NOT NULL
);

CREATE INDEX item_popularity_score_idx ON @extschema@.item_popularity (score_log DESC, item_id);

COMMENT ON TABLE @extschema@.item_popularity IS
	'log2 of each item''s time-decayed popularity relative to 2000-01-01, kept current by a trigger on rec.events';

CREATE FUNCTION @extschema@.log2_add(double precision, double precision) RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_log2_add' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.log2_add(double precision, double precision) IS
	'log2(2^a + 2^b) without overflow';

CREATE AGGREGATE @extschema@.log2_sum_exp2(double precision) (
	SFUNC = @extschema@.log2_add,
	STYPE = double precision,
	COMBINEFUNC = @extschema@.log2_add,
	PARALLEL = SAFE
);

COMMENT ON AGGREGATE @extschema@.log2_sum_exp2(double precision) IS
	'log2 of the sum of 2^x over the rows, without overflow';

CREATE FUNCTION @extschema@.popularity_log_weight(weight real, value real, occurred_at timestamptz,
												  half_life_seconds double precision)
	RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_popularity_log_weight' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.popularity_log_weight(real, real, timestamptz, double precision) IS
	'one event''s term of score_log: log2(weight * value) + seconds since 2000-01-01 / half-life; NULL unless weight * value > 0';

CREATE FUNCTION @extschema@.refresh_popularity() RETURNS bigint
	AS 'MODULE_PATHNAME', 'rec_refresh_popularity' LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.refresh_popularity() IS
	'rebuild rec.item_popularity from rec.events with the current rec.popularity_half_life';

-- Per INSERT or COPY statement: fold the new events into the popularity of
-- their items, in item order, so that concurrent statements lock popularity
-- rows in the same order. An event dated in the future counts as happening
-- now (when it is logged): otherwise one mistyped year would put its item
-- first for everyone for decades.
--
-- The trigger functions run with the extension owner's rights (SECURITY
-- DEFINER, pinned search_path, no dynamic SQL), so a role that may INSERT
-- into rec.events needs no privilege on the derived rec.item_popularity,
-- and cannot rewrite it.
CREATE FUNCTION @extschema@.events_after_insert() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	INSERT INTO @extschema@.item_popularity AS p (item_id, score_log, events)
	SELECT e.item_id, @extschema@.log2_sum_exp2(w.x), count(w.x)
	  FROM new_events e
	  JOIN @extschema@.event_kinds k ON k.kind = e.kind
	 CROSS JOIN @extschema@.popularity_state s
	 CROSS JOIN LATERAL (SELECT @extschema@.popularity_log_weight(k.weight, e.value,
																 LEAST(e.occurred_at, pg_catalog.now()),
																 pg_catalog.date_part('epoch', s.half_life)) AS x) w
	 WHERE w.x IS NOT NULL
	 GROUP BY e.item_id
	 ORDER BY e.item_id
	ON CONFLICT (item_id) DO UPDATE
	   SET score_log = @extschema@.log2_add(p.score_log, excluded.score_log),
		   events = p.events + excluded.events;
	RETURN NULL;
END
$$;

CREATE FUNCTION @extschema@.events_after_truncate() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	TRUNCATE @extschema@.item_popularity;
	RETURN NULL;
END
$$;

CREATE TRIGGER events_after_insert AFTER INSERT ON @extschema@.events
	REFERENCING NEW TABLE AS new_events
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_after_insert();
CREATE TRIGGER events_after_truncate AFTER TRUNCATE ON @extschema@.events
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.events_after_truncate();
-- Fire on logical-replication subscribers too (events applied there keep
-- their popularity current); rec.item_popularity is derived and should not
-- itself be replicated.
ALTER TABLE @extschema@.events ENABLE ALWAYS TRIGGER events_after_insert;
ALTER TABLE @extschema@.events ENABLE ALWAYS TRIGGER events_after_truncate;
REVOKE ALL ON FUNCTION @extschema@.events_after_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.events_after_truncate() FROM PUBLIC;

-- ------------------------------------------------------------ track

CREATE FUNCTION @extschema@.track(user_id bigint, item_id bigint, kind text,
								  value real DEFAULT 1, at timestamptz DEFAULT now())
	RETURNS void
	AS 'MODULE_PATHNAME', 'rec_track' LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION @extschema@.track(bigint, bigint, text, real, timestamptz) IS
	'log one interaction; recommendations take it into account at once';

-- ------------------------------------------------------------ demo data

CREATE FUNCTION @extschema@.demo_items(items integer, seed integer DEFAULT 42,
									   end_at timestamptz DEFAULT now())
	RETURNS TABLE (item_id bigint, category text, tags text[], attributes jsonb,
				   available boolean, boost real, created_at timestamptz)
	AS 'MODULE_PATHNAME', 'rec_demo_items' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.demo_items(integer, integer, timestamptz) IS
	'the items of the synthetic data set (deterministic for the arguments)';

CREATE FUNCTION @extschema@.demo_events(users integer, items integer, events bigint,
										seed integer DEFAULT 42,
										end_at timestamptz DEFAULT now())
	RETURNS TABLE (user_id bigint, item_id bigint, kind text, value real,
				   occurred_at timestamptz)
	AS 'MODULE_PATHNAME', 'rec_demo_events' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.demo_events(integer, integer, bigint, integer, timestamptz) IS
	'the events of the synthetic data set, in time order (deterministic for the arguments)';

CREATE FUNCTION @extschema@.generate_demo_data(users integer, items integer, events bigint,
											   seed integer DEFAULT 42,
											   end_at timestamptz DEFAULT now())
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	n bigint;
BEGIN
	IF EXISTS (SELECT 1 FROM @extschema@.items) OR EXISTS (SELECT 1 FROM @extschema@.events) THEN
		RAISE EXCEPTION 'rec.generate_demo_data fills empty tables, and rec.items or rec.events has rows'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'TRUNCATE rec.items, rec.events first.';
	END IF;
	INSERT INTO @extschema@.items (item_id, category, tags, attributes, available, boost, created_at)
	SELECT * FROM @extschema@.demo_items(items, seed, end_at);
	INSERT INTO @extschema@.events (user_id, item_id, kind, value, occurred_at)
	SELECT * FROM @extschema@.demo_events(users, items, events, seed, end_at);
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

COMMENT ON FUNCTION @extschema@.generate_demo_data(integer, integer, bigint, integer, timestamptz) IS
	'fill empty rec.items and rec.events with the synthetic data set; returns the number of events';

-- Maintenance and bulk generation are for the owner (and whom it grants);
-- rec.track stays executable by PUBLIC: the table privileges decide.
REVOKE ALL ON FUNCTION @extschema@.refresh_popularity() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.generate_demo_data(integer, integer, bigint, integer, timestamptz) FROM PUBLIC;

-- ------------------------------------------------------------ pg_dump

-- User data: dumped. Built-in kinds only where they differ from their
-- defaults (CREATE EXTENSION seeds the rest). rec.item_popularity and
-- rec.popularity_state are derived: not dumped; reloading rec.events
-- rebuilds them through the trigger, with the half-life of the restoring
-- server (see docs/events.md).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.items', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.event_kinds',
	'WHERE (kind, weight, suppresses) NOT IN (SELECT d.kind, d.weight, d.suppresses FROM @extschema@.default_event_kinds() d)');

-- Record the half-life in effect (rec.popularity_half_life) in
-- rec.popularity_state.
SELECT @extschema@.refresh_popularity();
