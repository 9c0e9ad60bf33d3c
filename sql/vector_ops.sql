-- vector type: distances, arithmetic, concatenation, l2_normalize,
-- subvector, binary_quantize, comparisons and the btree operator class
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;
SET search_path = rec, public;

CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN others THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- distances: operators and functions agree
SELECT '[1,2,3]'::vector <-> '[3,2,1]' AS l2, l2_distance('[1,2,3]', '[3,2,1]');
SELECT '[1,2,3]'::vector <#> '[3,2,1]' AS neg_ip, inner_product('[1,2,3]', '[3,2,1]');
SELECT '[1,2,3]'::vector <=> '[3,2,1]' AS cos, cosine_distance('[1,2,3]', '[3,2,1]');
SELECT '[1,2,3]'::vector <+> '[3,2,1]' AS l1, l1_distance('[1,2,3]', '[3,2,1]');
SELECT vector_l2_squared_distance('[1,2,3]', '[3,2,1]'), vector_negative_inner_product('[1,2,3]', '[3,2,1]');
SELECT '[0,0]'::vector <-> '[3,4]', '[1,1]'::vector <-> '[1,1]';
-- cosine: same direction 0, opposite 2, orthogonal 1, zero vector NaN
SELECT '[1,2]'::vector <=> '[2,4]', '[1,2]'::vector <=> '[-1,-2]', '[1,0]'::vector <=> '[0,5]';
SELECT '[0,0]'::vector <=> '[1,1]', '[1,1]'::vector <=> '[0,0]', '[0,0]'::vector <=> '[0,0]';
-- commutators
SELECT oprname, oprcom::regoperator FROM pg_operator
WHERE oprleft = 'vector'::regtype AND oprname IN ('<->', '<#>', '<=>', '<+>') ORDER BY 1;
-- huge elements: the float4 kernels would overflow; the result is exact enough
SELECT '[1e20]'::vector <-> '[-1e20]' AS l2, '[3e38]'::vector <+> '[-3e38]' AS l1;
SELECT inner_product('[1e20,1e20]', '[1e20,-1e20]') AS ip0, inner_product('[1e20]', '[2e20]') AS ip,
       '[1e20,1e20]'::vector <=> '[1e20,-1e20]' AS cos_orthogonal;
SELECT '[1e30,1]'::vector <=> '[-1e30,1]' AS cos_opposite;
-- different dimensions
SELECT pg_temp.err($$SELECT '[1,2]'::vector <-> '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::vector <#> '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::vector <=> '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::vector <+> '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT vector_l2_squared_distance('[1]', '[1,2]')$$);

-- arithmetic, element by element
SELECT '[1,2,3]'::vector + '[4,5,6]', '[1,2,3]'::vector - '[4,5,6]', '[1,2,3]'::vector * '[4,5,6]';
SELECT '[1.5]'::vector + '[-1.5]', '[0.1]'::vector * '[10]';
SELECT pg_temp.err($$SELECT '[1,2]'::vector + '[1,2,3]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::vector - '[1]'$$);
SELECT pg_temp.err($$SELECT '[1,2]'::vector * '[1]'$$);
-- overflow and underflow are errors, never infinity or a silent zero
SELECT pg_temp.err($$SELECT '[1,3e38]'::vector + '[1,3e38]'$$);
SELECT pg_temp.err($$SELECT '[-3e38]'::vector - '[3e38]'$$);
SELECT pg_temp.err($$SELECT '[1,2,1e20]'::vector * '[1,2,1e20]'$$);
SELECT pg_temp.err($$SELECT '[1e-30]'::vector * '[1e-30]'$$);
SELECT '[1e-30]'::vector * '[0]', '[3e38]'::vector - '[3e38]';
SELECT '[3e38]'::vector + '[3e38]';

-- concatenation, up to 16000 dimensions
SELECT '[1,2]'::vector || '[3]', '[1]'::vector || '[1]';
SELECT vector_dims(array_fill(1, ARRAY[15999])::vector || '[2]');
SELECT pg_temp.err($$SELECT array_fill(1, ARRAY[15999])::vector || '[2,3]'$$);
SELECT pg_temp.err($$SELECT array_fill(1, ARRAY[16000])::vector || array_fill(1, ARRAY[16000])::vector$$);

-- l2_normalize
SELECT l2_normalize('[3,4]'), l2_normalize('[0,0,-5]'), l2_normalize('[1e-40,0]');
SELECT vector_norm(l2_normalize('[1,2,3,4,5]')) BETWEEN 0.9999999 AND 1.0000001 AS unit;
SELECT l2_normalize('[3e38,3e38]');
-- the zero vector stays zero
SELECT l2_normalize('[0,0]'), l2_normalize('[-0]');

-- subvector(v, start, count): 1-based; the part outside the vector is cut
SELECT subvector('[1,2,3,4,5]', 1, 3), subvector('[1,2,3,4,5]', 3, 2), subvector('[1,2,3,4,5]', 5, 1);
SELECT subvector('[1,2,3,4,5]', 4, 10), subvector('[1,2,3,4,5]', 0, 2), subvector('[1,2,3,4,5]', -2, 5);
SELECT subvector('[1,2,3]', 2, 2147483647), subvector('[1,2,3]', -2147483645, 2147483647);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', 1, 0)$$);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', 1, -1)$$);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', 4, 1)$$);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', -1, 2)$$);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', 2147483647, 2147483647)$$);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', -2147483648, 2147483647)$$);
SELECT pg_temp.err($$SELECT subvector('[1,2,3]', -2147483647, 2147483647)$$);

-- binary_quantize: one bit per element, set where the element is positive
SELECT binary_quantize('[1,-1,0,2]'), binary_quantize('[0.5]'), binary_quantize('[-0.5]');
SELECT binary_quantize('[1,1,1,1,1,1,1,1,-1,1]'), pg_typeof(binary_quantize('[1]'));
SELECT length(binary_quantize(array_fill(1, ARRAY[16000])::vector)),
       binary_quantize(array_fill(1, ARRAY[9])::vector) = B'111111111' AS eq;

-- comparisons: element by element, then the shorter vector first
SELECT a, b, a < b AS lt, a <= b AS le, a = b AS eq, a <> b AS ne, a >= b AS ge, a > b AS gt,
       vector_cmp(a, b) AS cmp
FROM (VALUES ('[1,2,3]'::vector, '[1,2,3]'::vector), ('[1,2,3]', '[1,2,4]'), ('[1,2,3]', '[1,2]'),
             ('[1,2]', '[1,3,0]'), ('[2]', '[1,9,9]'), ('[-0]', '[0]'), ('[-1]', '[1]')) v(a, b);
-- sorting, DISTINCT, a btree index, and commutator/negator links
CREATE TEMP TABLE s (v vector);
INSERT INTO s VALUES ('[1,2]'), ('[1]'), ('[0,5,5]'), ('[1,2]'), ('[1,1,9]'), ('[-1]'), ('[1,2,0]'), (NULL);
SELECT v FROM s ORDER BY v;
SELECT v FROM s ORDER BY v DESC NULLS LAST LIMIT 3;
SELECT DISTINCT v FROM s ORDER BY v;
SELECT v, count(*) FROM s GROUP BY v ORDER BY v;
CREATE INDEX s_v ON s (v);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM s WHERE v = '[1,2]';
SELECT * FROM s WHERE v = '[1,2]';
SELECT * FROM s WHERE v > '[1,2]' ORDER BY v;
SELECT * FROM s WHERE v <= '[1]' ORDER BY v;
RESET enable_seqscan;
SELECT opcname, opcdefault, amname FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
WHERE opcintype = 'vector'::regtype ORDER BY 1;
SELECT oprname, oprcom::regoperator AS commutator, oprnegate::regoperator AS negator FROM pg_operator
WHERE oprleft = 'vector'::regtype AND oprname IN ('<', '<=', '=', '<>', '>=', '>') ORDER BY 1;
