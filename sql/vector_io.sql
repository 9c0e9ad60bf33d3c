-- vector type: text I/O, typmod, binary send/recv, dims and norm
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;
SET search_path = rec, public;

-- Runs a statement; returns 'ok' or the SQLSTATE and message of its error.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN others THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- input: white space around brackets and elements, signs, exponents, hex
SELECT '[1,2.5,3]'::vector;
SELECT ' [ 1 , 2.5 , -3e2 ] '::vector;
SELECT E'\t[\n1,\r2\f,\x0B3]\n'::vector;
SELECT '[+1,-0,0x10,1E3,.5,5.]'::vector;
SELECT '[1e-45,3.4028235e38,-3.4028235e38,1.1754944e-38]'::vector;
-- underflow to zero is accepted, as in pgvector
SELECT '[1e-50,-1e-50]'::vector;
SELECT '[1,2,3]'::vector(3);
SELECT '[1,2,3]'::vector(3)::text, pg_typeof('[1]'::vector(1));

-- output: the shortest text that reads back to the same float4, no spaces
SELECT '[0.1,0.2,0.3,1e10,1.5e-7,123456789,16777217]'::vector;
SELECT '[3.14159265358979]'::vector, '[1.0000001]'::vector, '[-1.17549435e-38]'::vector;
SELECT v::text::vector = v AS reparses FROM (SELECT '[0.1,1e-45,3.4028235e38,7e-10]'::vector v) s;

-- typmod
CREATE TEMP TABLE t3 (v vector(3));
INSERT INTO t3 VALUES ('[1,2,3]');
SELECT pg_temp.err($$INSERT INTO t3 VALUES ('[1,2]')$$);
SELECT pg_temp.err($$UPDATE t3 SET v = '[1,2,3,4]'::vector$$);
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't3'::regclass AND attname = 'v';
SELECT '[1,2]'::vector::vector(2), pg_temp.err($$SELECT '[1,2]'::vector::vector(3)$$);
SELECT pg_temp.err($$SELECT '[1]'::vector(0)$$);
SELECT pg_temp.err($$SELECT '[1]'::vector(16001)$$);
SELECT pg_temp.err($$SELECT '[1]'::vector(1,2)$$);
SELECT pg_temp.err($$SELECT '[1]'::vector(-1)$$);
SELECT pg_temp.err($$CREATE TEMP TABLE bad (v vector('a'))$$);

-- errors, with their SQLSTATE
SELECT q, pg_temp.err(format('SELECT %L::vector', q)) FROM unnest(ARRAY[
	'', ' ', '[', ']', '[]', '[ ]', '1,2', '(1,2)', '{1,2}', '[1,2', '[1,,2]',
	'[,1]', '[1,]', '[1 2]', '[1,2] x', '[1,2]]', '[1;2]', '[a]', '[1a]',
	'[--1]', '[1e]', '[NaN]', '[nan]', '[-nan]', '[inf]', '[-Infinity]',
	'[1e39]', '[-1e39]', '[3.5e38]', '[1e400]', '[0x1p200]'
]) q;
-- the detail says what is wrong
SELECT '1,2'::vector;
SELECT '[1,2] x'::vector;
SELECT '[1,,2]'::vector;
SELECT '[1e39]'::vector;

-- dimension limit: 16000 is fine, 16001 is not
SELECT vector_dims(('[' || repeat('1,', 15999) || '1]')::vector);
SELECT pg_temp.err($$SELECT ('[' || repeat('1,', 16000) || '1]')::vector$$);
SELECT pg_temp.err($$SELECT ('[' || repeat('1,', 100000) || '1]')::vector$$);
-- a long string of commas is malformed, not a huge allocation
SELECT left(pg_temp.err($$SELECT ('[' || repeat(',', 1000000) || ']')::vector$$), 50);

-- binary send/recv: int16 dims, int16 zero, float4 elements, big-endian
SELECT vector_send('[1,-2,0.5]');
SELECT vector_send('[1,2,3]'::vector) = int2send(3::int2) || int2send(0::int2)
	|| float4send(1) || float4send(2) || float4send(3) AS layout;
SELECT length(vector_send(('[' || repeat('0.25,', 15999) || '1]')::vector));

-- dims and norm
SELECT vector_dims('[1,2,3]'), vector_dims('[0]');
SELECT vector_norm('[3,4]'), vector_norm('[0,0]'), vector_norm('[1,1,1,1]');
-- the norm is computed in double precision: no float4 overflow
SELECT vector_norm('[3e38,3e38]');

-- NULL in, NULL out
SELECT vector_dims(NULL), vector_norm(NULL), NULL::vector;

-- storage: a table round trip, large vectors TOASTed
CREATE TEMP TABLE big (id int, v vector);
INSERT INTO big SELECT i, array_fill(i::real, ARRAY[2000])::vector FROM generate_series(1, 3) i;
SELECT id, vector_dims(v), abs(vector_norm(v) - id * sqrt(2000::float8)) < 1e-9 AS norm_ok
FROM big ORDER BY id;
