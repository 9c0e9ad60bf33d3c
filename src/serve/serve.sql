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
