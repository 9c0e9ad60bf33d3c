-- Schema-wide objects of rec. The schema itself is created by CREATE
-- EXTENSION from rec.control (schema = rec).

COMMENT ON SCHEMA @extschema@ IS 'rec: recommendations inside PostgreSQL';

-- Everyone may use what is in the schema; functions that change state are
-- revoked from PUBLIC one by one in their fragments.
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;
