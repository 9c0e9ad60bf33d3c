-- vector type: text I/O, typmod, binary round trip, distances (core)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS rec;
RESET client_min_messages;
SET search_path = rec, public;

SELECT '[1,2.5,3]'::vector;
SELECT ' [ 1 , 2.5 , -3e2 ] '::vector;
SELECT '[1e-45,3.4028235e38,0.1]'::vector;
SELECT '[1,2,3]'::vector(3);
SELECT vector_dims('[1,2,3]');

-- errors
SELECT '[1,2,3]'::vector(2);
SELECT '[]'::vector;
SELECT '1,2'::vector;
SELECT '[1,2'::vector;
SELECT '[1,,2]'::vector;
SELECT '[1,2] x'::vector;
SELECT '[NaN]'::vector;
SELECT '[inf]'::vector;
SELECT '[1e39]'::vector;
SELECT '[1]'::vector(0);
SELECT '[1]'::vector(16001);
SELECT '[1]'::vector(1,2);

-- distances
SELECT '[1,2,3]'::vector <-> '[3,2,1]';
SELECT '[1,2,3]'::vector <#> '[3,2,1]';
SELECT '[1,2,3]'::vector <=> '[3,2,1]';
SELECT '[1,2,3]'::vector <+> '[3,2,1]';
SELECT '[0,0]'::vector <=> '[1,1]';
SELECT '[1,2]'::vector <-> '[1,2,3]';
