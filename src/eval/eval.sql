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
