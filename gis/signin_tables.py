"""Row-level security on the sign-in tables, and the owner's functions through which the sign-in path, which runs
before a caller (and so a scope) is known, reads and writes them.

- `users`, `api_tokens`: rows are seen and written by admin paths only (scope `all` with role `admin` or
  `system`: the user administration API, the command line, backups); a street office, a viewer or a session
  with no scope sees none. The sign-in path goes through SECURITY DEFINER functions owned by the owner role that
  answer exactly its question: the user of one token hash, the user of one user name (with its password hash, to
  verify), issue or revoke one token.
- `login_attempts`, `complaint_hits` (who tried which account from where; hashed complaint addresses): the
  application role has no privilege on them at all; it counts an attempt through one function that records it
  and answers the window's counts. Row-level security (admin paths only) covers the owner too.

Each function works under `firelane.scope = all` / `firelane.role = system` and puts the caller's settings
back before it returns; its search_path is fixed.
"""

from __future__ import annotations

#: Seen and written by admin paths only.
ADMIN_TABLES = ("users", "api_tokens")
#: No privilege for the application role: counted through functions only.
COUNTER_TABLES = ("login_attempts", "complaint_hits")

ADMIN_ONLY = ("(SELECT current_setting('firelane.scope', true)) = 'all' "
              "AND (SELECT current_setting('firelane.role', true)) IN ('admin', 'system')")

#: name(signature) -> (returns, plpgsql statements); run as the owner (SECURITY DEFINER), under the admin scope
FUNCTIONS: dict[str, tuple[str, str]] = {
    "firelane_token_user(p_hash text)": (
        "TABLE (id bigint, username text, role text, street_codes jsonb, compound_refs jsonb)",
        "RETURN QUERY SELECT u.id, u.username::text, u.role::text, u.street_codes, u.compound_refs FROM api_tokens t "
        "JOIN users u ON u.id = t.user_id WHERE t.token_hash = p_hash AND NOT t.revoked AND u.active "
        "AND (t.expires_at IS NULL OR t.expires_at > now());"),
    "firelane_login_user(p_username text)": (
        "TABLE (id bigint, username text, role text, street_codes jsonb, compound_refs jsonb, password_hash text, "
        "active boolean)",
        "RETURN QUERY SELECT u.id, u.username::text, u.role::text, u.street_codes, u.compound_refs, u.password_hash, "
        "u.active FROM users u WHERE u.username = p_username;"),
    "firelane_issue_token(p_user bigint, p_hash text, p_name text, p_expires timestamptz)": (
        "void",
        "INSERT INTO api_tokens (user_id, token_hash, name, expires_at) VALUES (p_user, p_hash, p_name, p_expires);"),
    "firelane_revoke_token(p_hash text)": (
        "void", "UPDATE api_tokens SET revoked = true WHERE token_hash = p_hash;"),
    "firelane_login_hit(p_keys text[], p_window float8, p_purge boolean)": (
        "TABLE (key text, attempts bigint, retry float8)",
        "INSERT INTO login_attempts (key) SELECT unnest(p_keys); "
        "IF p_purge THEN DELETE FROM login_attempts WHERE at < clock_timestamp() - make_interval(secs => p_window); "
        "END IF; "
        "RETURN QUERY SELECT a.key::text, count(*), extract(epoch FROM min(a.at) + make_interval(secs => p_window) "
        "- clock_timestamp())::float8 FROM login_attempts a WHERE a.key = ANY (p_keys) "
        "AND a.at > clock_timestamp() - make_interval(secs => p_window) GROUP BY a.key;"),
    "firelane_login_reset(p_key text)": (
        "void", "DELETE FROM login_attempts WHERE key = p_key;"),
    "firelane_login_purge(p_window float8)": (
        "bigint",
        "DELETE FROM login_attempts WHERE at < clock_timestamp() - make_interval(secs => p_window); "
        "GET DIAGNOSTICS result = ROW_COUNT;"),
    "firelane_complaint_hit(p_key text, p_per_hour integer, p_per_day integer)": (
        "TABLE (hour bigint, day bigint, hour_wait float8, day_wait float8)",
        "PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 7)); "
        "DELETE FROM complaint_hits WHERE at < now() - interval '2 days' AND id IN "
        "(SELECT id FROM complaint_hits WHERE at < now() - interval '2 days' LIMIT 100); "
        "SELECT count(*) FILTER (WHERE h.at > now() - interval '1 hour'), count(*), "
        "extract(epoch FROM min(h.at) FILTER (WHERE h.at > now() - interval '1 hour') + interval '1 hour' - now()), "
        "extract(epoch FROM min(h.at) + interval '1 day' - now()) INTO n_hour, n_day, w_hour, w_day "
        "FROM complaint_hits h WHERE h.address_hash = p_key AND h.at > now() - interval '1 day'; "
        "IF n_hour < p_per_hour AND n_day < p_per_day THEN "
        "INSERT INTO complaint_hits (address_hash) VALUES (p_key); END IF; "
        "RETURN QUERY SELECT n_hour, n_day, w_hour, w_day;"),
}

#: The caller's scope is saved, the admin scope set for the function's statements (transaction-local), and the
#: caller's put back. (A function SET clause would be neater, but PostgreSQL 15 lets only superusers attach
#: settings of an extension-less prefix to a function.)
_TEMPLATE = """CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = public, pg_temp AS $fn$
#variable_conflict use_column
DECLARE
  caller_scope text := coalesce(current_setting('firelane.scope', true), '');
  caller_role text := coalesce(current_setting('firelane.role', true), '');
  result bigint; n_hour bigint; n_day bigint; w_hour float8; w_day float8;
BEGIN
  PERFORM set_config('firelane.scope', 'all', true), set_config('firelane.role', 'system', true);
  {body}
  PERFORM set_config('firelane.scope', caller_scope, true), set_config('firelane.role', caller_role, true);
  {finish}
END $fn$;"""


def signin_sql(app_role: str) -> str:
    """Policies, privileges and functions of the sign-in tables (after the tables and the general grants)."""
    out = []
    for table in ADMIN_TABLES + COUNTER_TABLES:
        expr = ADMIN_ONLY.replace("'", "''")
        out.append(f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS firelane_admin ON {table};
DO $$ BEGIN EXECUTE 'CREATE POLICY firelane_admin ON {table} USING ({expr}) WITH CHECK ({expr})'; END $$;""")
    for signature, (returns, body) in FUNCTIONS.items():
        name = signature.split("(")[0]
        finish = "RETURN result;" if returns == "bigint" else ""
        out.append(f"""
DROP FUNCTION IF EXISTS {name};
{_TEMPLATE.format(signature=signature, returns=returns, body=body, finish=finish)}
REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;""")
    out.append(signin_privileges_sql(app_role))
    return "\n".join(out)


def signin_privileges_sql(app_role: str) -> str:
    """What the application role may do here (after the general grants, which give it every table: a restore
    runs them again too): nothing on the counters, EXECUTE on the functions (nobody else)."""
    functions = "".join(f"    EXECUTE 'REVOKE ALL ON FUNCTION {s} FROM PUBLIC';\n"
                        f"    EXECUTE 'GRANT EXECUTE ON FUNCTION {s} TO {app_role}';\n" for s in FUNCTIONS)
    revokes = "".join(
        f"    EXECUTE 'REVOKE ALL ON TABLE {table} FROM {app_role}';\n"
        f"    EXECUTE 'REVOKE ALL ON SEQUENCE {table}_id_seq FROM {app_role}';\n" for table in COUNTER_TABLES)
    return f"""
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app_role}') THEN
{revokes}{functions}  END IF;
END $$;
"""


def drop_signin_sql() -> str:
    drops = "".join(f"DROP POLICY IF EXISTS firelane_admin ON {t};\n" for t in ADMIN_TABLES + COUNTER_TABLES)
    return drops + "".join(f"DROP FUNCTION IF EXISTS {s.split('(')[0]};\n" for s in FUNCTIONS)
