#!/bin/sh
# First start of the postgis/postgis container (run by its entrypoint as the superuser): the two firelane roles.
#   firelane_owner  owns the schema; `firelane init` (migrations) and backups log in as it
#   firelane_app    the API, pages, checks and data commands: rows only (no DDL, no superuser, no RLS bypass)
# The grants on tables come with the migration (gis/jurisdiction.py); the same statements as gis/pgcluster.py.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v owner_pw="$FIRELANE_DB_OWNER_PASSWORD" -v app_pw="$FIRELANE_DB_APP_PASSWORD" <<'SQL'
CREATE ROLE firelane_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'owner_pw';
CREATE ROLE firelane_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'app_pw';
CREATE EXTENSION IF NOT EXISTS postgis;
ALTER DATABASE firelane OWNER TO firelane_owner;
ALTER SCHEMA public OWNER TO firelane_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO firelane_app;
REVOKE TEMPORARY ON DATABASE firelane FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE firelane TO firelane_owner, firelane_app;
ALTER FUNCTION geometry_overlaps(geometry, geometry) LEAKPROOF;
ALTER FUNCTION geometry_contains(geometry, geometry) LEAKPROOF;
ALTER FUNCTION geometry_within(geometry, geometry) LEAKPROOF;
SQL
