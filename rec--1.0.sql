-- rec 1.0: assembled by make from the fragments named below; edit those, not this file.
\echo Use "CREATE EXTENSION rec" to load this file. \quit

-- ==== src/rec.sql ====

-- Schema-wide objects of rec. The schema itself is created by CREATE
-- EXTENSION from rec.control (schema = rec).

COMMENT ON SCHEMA @extschema@ IS 'rec: recommendations inside PostgreSQL';

-- Everyone may use what is in the schema; functions that change state are
-- revoked from PUBLIC one by one in their fragments.
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

-- ==== src/vector/vector.sql ====

-- src/vector: the vector type (pgvector-compatible text and binary formats),
-- its distance functions, arithmetic, comparisons, casts and aggregates.

CREATE TYPE @extschema@.vector;

CREATE FUNCTION @extschema@.vector_in(cstring, oid, integer) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_out(@extschema@.vector) RETURNS cstring
	AS 'MODULE_PATHNAME', 'rec_vector_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_typmod_in(cstring[]) RETURNS integer
	AS 'MODULE_PATHNAME', 'rec_vector_typmod_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_recv(internal, oid, integer) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_send(@extschema@.vector) RETURNS bytea
	AS 'MODULE_PATHNAME', 'rec_vector_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.vector (
	INPUT     = @extschema@.vector_in,
	OUTPUT    = @extschema@.vector_out,
	TYPMOD_IN = @extschema@.vector_typmod_in,
	RECEIVE   = @extschema@.vector_recv,
	SEND      = @extschema@.vector_send,
	STORAGE   = external
);

COMMENT ON TYPE @extschema@.vector IS 'dense float4 vector, pgvector-compatible text and binary formats';

-- length coercion: vector(n)

CREATE FUNCTION @extschema@.vector(@extschema@.vector, integer, boolean) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_typmod_cast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (@extschema@.vector AS @extschema@.vector)
	WITH FUNCTION @extschema@.vector(@extschema@.vector, integer, boolean) AS IMPLICIT;

-- functions

CREATE FUNCTION @extschema@.vector_dims(@extschema@.vector) RETURNS integer
	AS 'MODULE_PATHNAME', 'rec_vector_dims' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_norm(@extschema@.vector) RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_vector_norm' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.l2_distance(@extschema@.vector, @extschema@.vector) RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_vector_l2_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.inner_product(@extschema@.vector, @extschema@.vector) RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_vector_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.cosine_distance(@extschema@.vector, @extschema@.vector) RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_vector_cosine_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.l1_distance(@extschema@.vector, @extschema@.vector) RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_vector_l1_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.l2_normalize(@extschema@.vector) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_l2_normalize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.subvector(@extschema@.vector, integer, integer) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_subvector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.binary_quantize(@extschema@.vector) RETURNS pg_catalog.bit
	AS 'MODULE_PATHNAME', 'rec_vector_binary_quantize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Which distance kernel set is in use (see the setting rec.vector_kernels).
-- STABLE: the setting can change within a session.
CREATE FUNCTION @extschema@.vector_kernel_set() RETURNS text
	AS 'MODULE_PATHNAME', 'rec_vector_kernel_set' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- support functions for index operator classes

CREATE FUNCTION @extschema@.vector_l2_squared_distance(@extschema@.vector, @extschema@.vector) RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_vector_l2_squared_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_negative_inner_product(@extschema@.vector, @extschema@.vector) RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_vector_negative_inner_product' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- distance operators

CREATE OPERATOR @extschema@.<-> (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.l2_distance, COMMUTATOR = OPERATOR(@extschema@.<->)
);

CREATE OPERATOR @extschema@.<#> (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_negative_inner_product, COMMUTATOR = OPERATOR(@extschema@.<#>)
);

CREATE OPERATOR @extschema@.<=> (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.cosine_distance, COMMUTATOR = OPERATOR(@extschema@.<=>)
);

CREATE OPERATOR @extschema@.<+> (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.l1_distance, COMMUTATOR = OPERATOR(@extschema@.<+>)
);

-- arithmetic (element by element) and concatenation

CREATE FUNCTION @extschema@.vector_add(@extschema@.vector, @extschema@.vector) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_add' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_sub(@extschema@.vector, @extschema@.vector) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_sub' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_mul(@extschema@.vector, @extschema@.vector) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_mul' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_concat(@extschema@.vector, @extschema@.vector) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_concat' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.+ (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_add, COMMUTATOR = OPERATOR(@extschema@.+)
);

CREATE OPERATOR @extschema@.- (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_sub
);

CREATE OPERATOR @extschema@.* (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_mul, COMMUTATOR = OPERATOR(@extschema@.*)
);

CREATE OPERATOR @extschema@.|| (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_concat
);

-- comparisons: element by element, then by dimensions (like arrays)

CREATE FUNCTION @extschema@.vector_lt(@extschema@.vector, @extschema@.vector) RETURNS boolean
	AS 'MODULE_PATHNAME', 'rec_vector_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_le(@extschema@.vector, @extschema@.vector) RETURNS boolean
	AS 'MODULE_PATHNAME', 'rec_vector_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_eq(@extschema@.vector, @extschema@.vector) RETURNS boolean
	AS 'MODULE_PATHNAME', 'rec_vector_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_ne(@extschema@.vector, @extschema@.vector) RETURNS boolean
	AS 'MODULE_PATHNAME', 'rec_vector_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_ge(@extschema@.vector, @extschema@.vector) RETURNS boolean
	AS 'MODULE_PATHNAME', 'rec_vector_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_gt(@extschema@.vector, @extschema@.vector) RETURNS boolean
	AS 'MODULE_PATHNAME', 'rec_vector_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_cmp(@extschema@.vector, @extschema@.vector) RETURNS integer
	AS 'MODULE_PATHNAME', 'rec_vector_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.< (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_lt,
	COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=),
	RESTRICT = pg_catalog.scalarltsel, JOIN = pg_catalog.scalarltjoinsel
);

CREATE OPERATOR @extschema@.<= (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_le,
	COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>),
	RESTRICT = pg_catalog.scalarlesel, JOIN = pg_catalog.scalarlejoinsel
);

CREATE OPERATOR @extschema@.= (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_eq,
	COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
	RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel
);

CREATE OPERATOR @extschema@.<> (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_ne,
	COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
	RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel
);

CREATE OPERATOR @extschema@.>= (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_ge,
	COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<),
	RESTRICT = pg_catalog.scalargesel, JOIN = pg_catalog.scalargejoinsel
);

CREATE OPERATOR @extschema@.> (
	LEFTARG = @extschema@.vector, RIGHTARG = @extschema@.vector,
	FUNCTION = @extschema@.vector_gt,
	COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=),
	RESTRICT = pg_catalog.scalargtsel, JOIN = pg_catalog.scalargtjoinsel
);

CREATE OPERATOR CLASS @extschema@.vector_ops
	DEFAULT FOR TYPE @extschema@.vector USING btree AS
	OPERATOR 1 @extschema@.< ,
	OPERATOR 2 @extschema@.<= ,
	OPERATOR 3 @extschema@.= ,
	OPERATOR 4 @extschema@.>= ,
	OPERATOR 5 @extschema@.> ,
	FUNCTION 1 @extschema@.vector_cmp(@extschema@.vector, @extschema@.vector);

-- casts to and from arrays. Arrays become vectors on assignment (as in
-- pgvector); a vector is a real[] wherever one is wanted, and converts to the
-- other array types on assignment.

CREATE FUNCTION @extschema@.array_to_vector(integer[], integer, boolean) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_array_to_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.array_to_vector(real[], integer, boolean) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_array_to_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.array_to_vector(double precision[], integer, boolean) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_array_to_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.array_to_vector(numeric[], integer, boolean) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_array_to_vector' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_to_float4(@extschema@.vector) RETURNS real[]
	AS 'MODULE_PATHNAME', 'rec_vector_to_float4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_to_float8(@extschema@.vector) RETURNS double precision[]
	AS 'MODULE_PATHNAME', 'rec_vector_to_float8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_to_int4(@extschema@.vector) RETURNS integer[]
	AS 'MODULE_PATHNAME', 'rec_vector_to_int4' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_to_numeric(@extschema@.vector) RETURNS numeric[]
	AS 'MODULE_PATHNAME', 'rec_vector_to_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE CAST (integer[] AS @extschema@.vector)
	WITH FUNCTION @extschema@.array_to_vector(integer[], integer, boolean) AS ASSIGNMENT;

CREATE CAST (real[] AS @extschema@.vector)
	WITH FUNCTION @extschema@.array_to_vector(real[], integer, boolean) AS ASSIGNMENT;

CREATE CAST (double precision[] AS @extschema@.vector)
	WITH FUNCTION @extschema@.array_to_vector(double precision[], integer, boolean) AS ASSIGNMENT;

CREATE CAST (numeric[] AS @extschema@.vector)
	WITH FUNCTION @extschema@.array_to_vector(numeric[], integer, boolean) AS ASSIGNMENT;

CREATE CAST (@extschema@.vector AS real[])
	WITH FUNCTION @extschema@.vector_to_float4(@extschema@.vector) AS IMPLICIT;

CREATE CAST (@extschema@.vector AS double precision[])
	WITH FUNCTION @extschema@.vector_to_float8(@extschema@.vector) AS ASSIGNMENT;

CREATE CAST (@extschema@.vector AS integer[])
	WITH FUNCTION @extschema@.vector_to_int4(@extschema@.vector) AS ASSIGNMENT;

CREATE CAST (@extschema@.vector AS numeric[])
	WITH FUNCTION @extschema@.vector_to_numeric(@extschema@.vector) AS ASSIGNMENT;

-- aggregates: avg and sum, parallel (a float8 running sum per element)

CREATE FUNCTION @extschema@.vector_agg_accum(internal, @extschema@.vector) RETURNS internal
	AS 'MODULE_PATHNAME', 'rec_vector_agg_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_agg_combine(internal, internal) RETURNS internal
	AS 'MODULE_PATHNAME', 'rec_vector_agg_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_agg_serialize(internal) RETURNS bytea
	AS 'MODULE_PATHNAME', 'rec_vector_agg_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_agg_deserialize(bytea, internal) RETURNS internal
	AS 'MODULE_PATHNAME', 'rec_vector_agg_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_avg_final(internal) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_avg_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.vector_sum_final(internal) RETURNS @extschema@.vector
	AS 'MODULE_PATHNAME', 'rec_vector_sum_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE @extschema@.avg(@extschema@.vector) (
	SFUNC = @extschema@.vector_agg_accum,
	STYPE = internal,
	FINALFUNC = @extschema@.vector_avg_final,
	COMBINEFUNC = @extschema@.vector_agg_combine,
	SERIALFUNC = @extschema@.vector_agg_serialize,
	DESERIALFUNC = @extschema@.vector_agg_deserialize,
	PARALLEL = SAFE
);

CREATE AGGREGATE @extschema@.sum(@extschema@.vector) (
	SFUNC = @extschema@.vector_agg_accum,
	STYPE = internal,
	FINALFUNC = @extschema@.vector_sum_final,
	COMBINEFUNC = @extschema@.vector_agg_combine,
	SERIALFUNC = @extschema@.vector_agg_serialize,
	DESERIALFUNC = @extschema@.vector_agg_deserialize,
	PARALLEL = SAFE
);

-- ==== src/hnsw/hnsw.sql ====

-- src/hnsw: the rec_hnsw index access method and its operator classes.

CREATE FUNCTION @extschema@.hnsw_handler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME', 'rec_hnsw_handler' LANGUAGE C;

CREATE ACCESS METHOD rec_hnsw TYPE INDEX HANDLER @extschema@.hnsw_handler;

COMMENT ON ACCESS METHOD rec_hnsw IS 'rec: HNSW approximate nearest-neighbour index for rec.vector';

CREATE OPERATOR CLASS @extschema@.vector_l2_ops
	FOR TYPE @extschema@.vector USING rec_hnsw AS
	OPERATOR 1 @extschema@.<-> (@extschema@.vector, @extschema@.vector) FOR ORDER BY pg_catalog.float_ops,
	FUNCTION 1 @extschema@.vector_l2_squared_distance(@extschema@.vector, @extschema@.vector);

CREATE OPERATOR CLASS @extschema@.vector_ip_ops
	FOR TYPE @extschema@.vector USING rec_hnsw AS
	OPERATOR 1 @extschema@.<#> (@extschema@.vector, @extschema@.vector) FOR ORDER BY pg_catalog.float_ops,
	FUNCTION 1 @extschema@.vector_negative_inner_product(@extschema@.vector, @extschema@.vector);

CREATE OPERATOR CLASS @extschema@.vector_cosine_ops
	FOR TYPE @extschema@.vector USING rec_hnsw AS
	OPERATOR 1 @extschema@.<=> (@extschema@.vector, @extschema@.vector) FOR ORDER BY pg_catalog.float_ops,
	FUNCTION 1 @extschema@.cosine_distance(@extschema@.vector, @extschema@.vector);

-- structural check, like amcheck: raises ERRCODE_INDEX_CORRUPTED
CREATE FUNCTION @extschema@.hnsw_check(index regclass) RETURNS void
	AS 'MODULE_PATHNAME', 'rec_hnsw_check' LANGUAGE C STRICT PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION @extschema@.hnsw_check(regclass) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.hnsw_check(regclass) IS
	'verify a rec_hnsw index: slots, neighbour lists, entry point, and that every live row is reachable';

-- ==== src/events/events.sql ====

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

-- ==== src/model/model.sql ====

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

-- ==== src/eval/eval.sql ====

-- src/eval: offline ranking metrics, and evaluation of trained models.

CREATE FUNCTION @extschema@.precision_at_k(ranked bigint[], relevant bigint[], k integer)
RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_precision_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.precision_at_k(bigint[], bigint[], integer)
	IS 'relevant items among the first k ranked, divided by k';

CREATE FUNCTION @extschema@.recall_at_k(ranked bigint[], relevant bigint[], k integer)
RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_recall_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.recall_at_k(bigint[], bigint[], integer)
	IS 'relevant items among the first k ranked, divided by the number of relevant items (NULL if none)';

CREATE FUNCTION @extschema@.hit_rate_at_k(ranked bigint[], relevant bigint[], k integer)
RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_hit_rate_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hit_rate_at_k(bigint[], bigint[], integer)
	IS '1 if a relevant item is among the first k ranked, else 0 (NULL if nothing is relevant)';

CREATE FUNCTION @extschema@.ndcg_at_k(ranked bigint[], relevant bigint[], k integer)
RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_ndcg_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.ndcg_at_k(bigint[], bigint[], integer)
	IS 'normalised discounted cumulative gain of the first k ranked, binary relevance (NULL if nothing is relevant)';

CREATE FUNCTION @extschema@.average_precision_at_k(ranked bigint[], relevant bigint[], k integer)
RETURNS double precision
	AS 'MODULE_PATHNAME', 'rec_average_precision_at_k' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.average_precision_at_k(bigint[], bigint[], integer)
	IS 'average precision at k: sum of precision@i at each relevant rank i <= k, divided by min(k, relevant items)';

CREATE FUNCTION @extschema@.evaluate(
	model_id  bigint,
	holdout   text DEFAULT NULL,
	k         integer DEFAULT 10,
	negatives text DEFAULT NULL,
	exclude   text DEFAULT NULL,
	label     text DEFAULT NULL)
RETURNS jsonb
	AS 'MODULE_PATHNAME', 'rec_evaluate' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.evaluate(bigint, text, integer, text, text, text)
	IS 'rank held-out items with a trained model (full ranking, or among given negatives) and store the metrics in rec.models';

REVOKE ALL ON FUNCTION @extschema@.evaluate(bigint, text, integer, text, text, text) FROM PUBLIC;

-- ==== src/serve/serve.sql ====

-- src/serve: rec.recommend and rec.similar_items.
-- Reference: docs/recommend.md, docs/similar.md.

CREATE FUNCTION @extschema@.recommend(user_id bigint, n integer DEFAULT 20,
									 surface text DEFAULT 'home')
	RETURNS TABLE (item_id bigint, score double precision, rank integer, source text)
	AS 'MODULE_PATHNAME', 'rec_recommend'
	LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 20;

COMMENT ON FUNCTION @extschema@.recommend(bigint, integer, text) IS
	'the n best items for a user on a surface, each row tagged with the source that produced it';

CREATE FUNCTION @extschema@.similar_items(item_id bigint, n integer DEFAULT 20)
	RETURNS TABLE (item_id bigint, score double precision, rank integer, source text)
	AS 'MODULE_PATHNAME', 'rec_similar_items'
	LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 20;

COMMENT ON FUNCTION @extschema@.similar_items(bigint, integer) IS
	'the n items most often used by the same users as the given item';
