-- Schema-wide objects of rec. The schema itself is created by CREATE
-- EXTENSION from rec.control (schema = rec).

COMMENT ON SCHEMA @extschema@ IS 'rec: recommendations inside PostgreSQL';
