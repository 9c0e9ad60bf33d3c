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
