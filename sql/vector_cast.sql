-- vector type: casts to and from real[], double precision[], integer[],
-- numeric[]; cast contexts; typmod on casts and assignment
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

-- the casts and their contexts (a = assignment, i = implicit, e = explicit)
SELECT castsource::regtype, casttarget::regtype, castfunc::regproc, castcontext
FROM pg_cast WHERE castsource = 'vector'::regtype OR casttarget = 'vector'::regtype
ORDER BY castsource::regtype::text, casttarget::regtype::text;

-- arrays -> vector
SELECT ARRAY[1,2,3]::vector, ARRAY[1.5,2.5]::real[]::vector, ARRAY[0.1,2]::float8[]::vector,
       ARRAY[0.1,2.25]::numeric[]::vector;
SELECT '{-0,1e-45}'::real[]::vector, '{1e-50}'::float8[]::vector, '{16777217}'::int[]::vector;
SELECT ARRAY[1,2,3]::vector(3), ARRAY[1,2]::float8[]::vector(2);
-- any lower bound works; the order is kept
SELECT '[5:7]={7,8,9}'::int[]::vector;
-- numeric rounds once, straight to the nearest real
SELECT ARRAY[0.100000001490116119384765625]::numeric[]::vector = '[0.1]' AS exact;
-- errors
SELECT pg_temp.err($$SELECT ARRAY[1,2]::vector(3)$$);
SELECT pg_temp.err($$SELECT '{}'::int[]::vector$$);
SELECT pg_temp.err($$SELECT '{{1,2},{3,4}}'::int[]::vector$$);
SELECT pg_temp.err($$SELECT ARRAY[1,NULL]::int[]::vector$$);
SELECT pg_temp.err($$SELECT '{NaN}'::real[]::vector$$);
SELECT pg_temp.err($$SELECT '{1,Infinity}'::real[]::vector$$);
SELECT pg_temp.err($$SELECT '{-Infinity}'::float8[]::vector$$);
SELECT pg_temp.err($$SELECT '{1e300}'::float8[]::vector$$);
SELECT pg_temp.err($$SELECT '{NaN}'::numeric[]::vector$$);
SELECT pg_temp.err($$SELECT '{Infinity}'::numeric[]::vector$$);
SELECT pg_temp.err($$SELECT '{1e39}'::numeric[]::vector$$);
SELECT pg_temp.err($$SELECT array_fill(1, ARRAY[16001])::vector$$);

-- vector -> arrays
SELECT '[1.5,-2.5,0.1]'::vector::real[], '[1.5,-2.5,0.1]'::vector::float8[];
SELECT '[1.5,-2.5,0.4,2.5,-0.6]'::vector::int[], '[1.5,-2.5,0.1]'::vector::numeric[];
-- integer[] and double precision[] are the same as going through real[];
-- numeric[] keeps the digits the vector prints (real::numeric keeps 6)
SELECT v::int[] = v::real[]::int[] AS int_same, v::float8[] = v::real[]::float8[] AS float8_same,
       v::numeric[] = translate(v::text, '[]', '{}')::numeric[] AS numeric_as_printed
FROM (SELECT '[1.5,-2.5,0.1,123456.7,3e-7,16777216,1.2345678]'::vector AS v) s;
SELECT '[3.4028235e38,1.2345678,1e-45]'::vector::numeric[];
SELECT pg_temp.err($$SELECT '[3e9]'::vector::int[]$$);
SELECT pg_temp.err($$SELECT '[-2147483904]'::vector::int[]$$);
SELECT '[2147483520]'::vector::int[], '[-2147483648]'::vector::int[];
-- a typmod on the array's element type is applied
SELECT '[1.25,2.75]'::vector::numeric(3,1)[];
-- round trips
SELECT v::real[]::vector = v AS real_rt, v::float8[]::vector = v AS float8_rt,
       v::numeric[]::vector = v AS numeric_rt
FROM (SELECT '[0.1,-3.4028235e38,1e-45,123.456,1.2345678]'::vector AS v) s;

-- implicit: a vector passes for a real[] argument (not for the others)
CREATE FUNCTION pg_temp.takes_real(real[]) RETURNS int LANGUAGE sql AS 'SELECT cardinality($1)';
CREATE FUNCTION pg_temp.takes_float8(float8[]) RETURNS int LANGUAGE sql AS 'SELECT cardinality($1)';
SELECT pg_temp.takes_real('[1,2,3]'::vector);
SELECT pg_temp.err($$SELECT pg_temp.takes_float8('[1,2,3]'::vector)$$);
-- arrays do not pass for a vector argument without a cast (assignment only)
SELECT pg_temp.err($$SELECT vector_dims(ARRAY[1,2,3])$$);
SELECT vector_dims(ARRAY[1,2,3]::vector);

-- assignment: arrays into vector(n) columns, vectors into array columns,
-- with the column's typmod enforced
CREATE TEMP TABLE t (v vector(3), r real[], d float8[], i int[], n numeric[]);
INSERT INTO t (v) VALUES (ARRAY[1,2,3]), ('{1.5,2,3}'::real[]), ('{1,2,3.25}'::float8[]), ('{1,2,3.5}'::numeric[]);
SELECT v FROM t;
SELECT pg_temp.err($$INSERT INTO t (v) VALUES (ARRAY[1,2])$$);
SELECT pg_temp.err($$INSERT INTO t (v) VALUES ('{1,2,3,4}'::real[])$$);
SELECT pg_temp.err($$UPDATE t SET v = '{1}'::float8[]$$);
SELECT pg_temp.err($$INSERT INTO t (v) VALUES ('[1,2]'::vector)$$);
UPDATE t SET r = v, d = v, i = v, n = v;
SELECT v, r, d, i, n FROM t ORDER BY v;
-- COPY from text goes through the typmod too
SELECT pg_temp.err($$COPY t (v) FROM PROGRAM 'echo "[1,2]"'$$) LIKE '22000: vector has 2 dimensions, expected 3%' AS copy_checks_typmod;

-- NULL in, NULL out
SELECT NULL::int[]::vector, NULL::vector::real[];
