-- vector type: every SIMD kernel set against a float8 reference, and the
-- setting rec.vector_kernels that picks them
--
-- The output lists which kernel sets this CPU supports. The expected output
-- is for a CPU with AVX-512 (the CI machine); vector_kernels_1.out is for
-- AVX2 without AVX-512, vector_kernels_2.out for neither.
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

-- the setting
SHOW rec.vector_kernels;
SELECT pg_temp.err($$SET rec.vector_kernels = 'sse'$$);
SET rec.vector_kernels = portable;
SHOW rec.vector_kernels;
SELECT vector_kernel_set();
RESET rec.vector_kernels;
SHOW rec.vector_kernels;
SELECT vector_kernel_set() IN ('avx512', 'avx2', 'portable') AS known;
-- only superusers may change it
CREATE ROLE regress_vector_kernels_user;
SET ROLE regress_vector_kernels_user;
SELECT pg_temp.err($$SET rec.vector_kernels = portable$$);
RESET ROLE;
DROP ROLE regress_vector_kernels_user;

-- Two pairs of random vectors for each length 1..300 (every tail length of
-- every kernel): k = 1 with elements in (-3, 3), k = 2 with elements of
-- mixed magnitude (1e-3 .. 1e3); and float8 reference values computed from
-- the elements.
SELECT setseed(0.31);
CREATE TEMP TABLE pairs AS
SELECT n, k, a::vector AS a, b::vector AS b
FROM generate_series(1, 300) n, generate_series(1, 2) k,
	LATERAL (SELECT array_agg(((random() * 2 - 1) * CASE WHEN k = 1 AND i > 0 THEN 3 ELSE 10 ^ (random() * 6 - 3) END)::real) AS a,
					array_agg(((random() * 2 - 1) * CASE WHEN k = 1 AND i > 0 THEN 3 ELSE 10 ^ (random() * 6 - 3) END)::real) AS b
			 FROM generate_series(1, n) i) g;
CREATE TEMP TABLE ref AS
SELECT n, k, a, b,
	   sum((x - y) ^ 2) AS l2sq, sum(x * y) AS dot, sum(abs(x - y)) AS l1,
	   sum(x * x) AS aa, sum(y * y) AS bb, sum(abs(x * y)) AS absdot
FROM pairs, LATERAL unnest(a::real[]::float8[], b::real[]::float8[]) u(x, y)
GROUP BY n, k, a, b;
SELECT count(*), min(vector_dims(a)), max(vector_dims(a)) FROM ref;

-- Single-precision sums of n terms in any order are within about
-- n * 2^-24 of the exact sum of the absolute terms; allow twice that.
CREATE FUNCTION pg_temp.tol(n int, mag float8) RETURNS float8 LANGUAGE sql IMMUTABLE
	AS 'SELECT (n + 4) * 1.2e-7 * mag + 1e-30';

CREATE FUNCTION pg_temp.check_kernels(want text)
RETURNS TABLE (kernels text, in_use text, pairs int, l2_bad int, ip_bad int, cos_bad int, l1_bad int)
LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		PERFORM set_config('rec.vector_kernels', want, false);
	EXCEPTION WHEN invalid_parameter_value THEN
		RETURN QUERY SELECT want, 'not supported by this CPU', NULL::int, NULL::int, NULL::int, NULL::int, NULL::int;
		RETURN;
	END;
	RETURN QUERY
	SELECT want, vector_kernel_set(), count(*)::int,
		count(*) FILTER (WHERE abs(vector_l2_squared_distance(a, b) - l2sq) > pg_temp.tol(n, l2sq)
						 OR a <-> b <> sqrt(vector_l2_squared_distance(a, b)))::int,
		count(*) FILTER (WHERE abs(inner_product(a, b) - dot) > pg_temp.tol(n, absdot)
						 OR a <#> b <> -inner_product(a, b))::int,
		count(*) FILTER (WHERE abs((a <=> b) - (1 - dot / sqrt(aa * bb)))
						 > pg_temp.tol(n, absdot / sqrt(aa * bb) + 1))::int,
		count(*) FILTER (WHERE abs((a <+> b) - l1) > pg_temp.tol(n, l1))::int
	FROM ref;
END $$;

SELECT r.* FROM unnest(ARRAY['avx512', 'avx2', 'portable', 'auto']) k, LATERAL pg_temp.check_kernels(k) r;
RESET rec.vector_kernels;

-- the tolerance is tight enough to notice a lost tail element: dropping the
-- last element of both vectors (elements of like magnitude) moves nearly
-- every distance by more than it allows
SELECT count(*) FILTER (WHERE abs(vector_l2_squared_distance(subvector(a, 1, n - 1), subvector(b, 1, n - 1)) - l2sq)
						 > pg_temp.tol(n, l2sq)) AS noticed, count(*) AS pairs
FROM ref WHERE n > 1 AND k = 1;
