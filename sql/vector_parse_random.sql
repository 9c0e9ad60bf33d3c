-- vector type: a randomised test of the text parser. Random strings built
-- from vector-ish tokens, and valid vectors with random edits, must either
-- parse, print without spaces, and parse back to the very same value (same
-- binary form), or fail with one of the data-error SQLSTATEs the parser
-- documents. Anything else (another error, a mismatch, a crash) is a bug.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;
SET search_path = rec, public;

CREATE FUNCTION pg_temp.random_string() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	tokens text[] := ARRAY['[', ']', ',', ' ', E'\t', E'\n', '0', '1', '7', '.', 'e', 'E', '-', '+',
		'x', '0x1p3', 'inf', 'nan', 'Infinity', '1e38', '1e39', '1e-46', '3.4028235e38',
		'a', ';', '{', '}', '[1,2]', '1.5', '-0', '00', '1e', '..', ',,', '1 2'];
	s text := '';
BEGIN
	FOR i IN 1 .. floor(random() * 12)::int LOOP
		s := s || tokens[1 + floor(random() * array_length(tokens, 1))::int];
	END LOOP;
	IF random() < 0.6 THEN
		s := '[' || s || ']';
	END IF;
	RETURN s;
END $$;

-- A valid vector's text with one random character deleted, replaced or inserted.
CREATE FUNCTION pg_temp.mutated_string() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	chars text := '[],. -+e0123456789xna';
	s text;
	pos int;
	c text;
BEGIN
	SELECT array_agg(round((random() * 200 - 100)::numeric, (random() * 6)::int)
					 * 10 ^ floor(random() * 10 - 5)::int)::real[]::vector::text
	INTO s FROM generate_series(1, 1 + floor(random() * 6)::int);
	pos := 1 + floor(random() * length(s))::int;
	c := substr(chars, 1 + floor(random() * length(chars))::int, 1);
	CASE floor(random() * 3)::int
		WHEN 0 THEN s := overlay(s PLACING '' FROM pos FOR 1);
		WHEN 1 THEN s := overlay(s PLACING c FROM pos FOR 1);
		ELSE s := overlay(s PLACING c FROM pos FOR 0);
	END CASE;
	RETURN s;
END $$;

CREATE FUNCTION pg_temp.fuzz(iterations int)
RETURNS TABLE (source text, outcome text, n bigint) LANGUAGE plpgsql AS $$
DECLARE
	s text;
	v vector;
	v2 vector;
	t text;
	src text;
	res text;
BEGIN
	CREATE TEMP TABLE outcomes (source text, outcome text);
	FOR i IN 1 .. iterations LOOP
		IF i % 2 = 0 THEN
			src := 'random';
			s := pg_temp.random_string();
		ELSE
			src := 'mutated';
			s := pg_temp.mutated_string();
		END IF;
		BEGIN
			v := s::vector;
			t := v::text;
			v2 := t::vector;
			IF vector_send(v2) <> vector_send(v) OR v2::text <> t OR t ~ '\s' THEN
				res := 'MISMATCH';
				RAISE WARNING 'round trip mismatch: % -> % -> %', s, t, v2;
			ELSE
				res := 'parsed, round trip ok';
			END IF;
		EXCEPTION WHEN others THEN
			IF SQLSTATE IN ('22P02', '22003', '22000', '54000') THEN
				res := 'rejected ' || SQLSTATE;
			ELSE
				res := 'UNEXPECTED ' || SQLSTATE;
				RAISE WARNING 'unexpected error % for %: %', SQLSTATE, s, SQLERRM;
			END IF;
		END;
		INSERT INTO outcomes VALUES (src, res);
	END LOOP;
	RETURN QUERY SELECT o.source, o.outcome, count(*) FROM outcomes o GROUP BY 1, 2 ORDER BY 1, 2;
END $$;

SELECT setseed(0.5);
SELECT * FROM pg_temp.fuzz(20000);
