"""PostgreSQL roles: an owner role owns the schema, the service role cannot rewrite evidence.

Used by migration 0003 and after every upgrade (:func:`triggerpath.adapters.database.upgrade`),
so tables added by later revisions get the same grants.
"""

from __future__ import annotations

import sqlalchemy as sa

OWNER_ROLE = "triggerpath_owner"
SERVICE_ROLE = "triggerpath_service"
#: The service may read and add to these, never change or remove (nor TRUNCATE) them.
APPEND_ONLY_TABLES = ("audit_events", "record_versions", "policy_versions", "record_addenda")

_CREATE_ROLE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
    CREATE ROLE {role} NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation OR internal_error THEN
  NULL;  -- another database on this server created it at the same moment
END $$"""

_OWN_TABLES = """
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT tablename FROM pg_tables
           WHERE schemaname = current_schema() AND tableowner <> '{owner}' LOOP
    EXECUTE 'ALTER TABLE ' || quote_ident(r.tablename) || ' OWNER TO {owner}';
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'triggerpath_append_only') THEN
    ALTER FUNCTION triggerpath_append_only() OWNER TO {owner};
  END IF;
END $$"""


def has_security_schema(conn: sa.Connection) -> bool:
    return "token_version" in {c["name"] for c in sa.inspect(conn).get_columns("users")}


def apply_pg_privileges(conn: sa.Connection) -> None:
    """Owner role owns the schema; the service role may not rewrite the evidence.

    Idempotent, and safe while other databases on the same server do the same (roles
    are cluster-global; grants and default privileges are per database). Run by the
    migrating (DBA) connection; the service logs in as a member of ``triggerpath_service``.
    """
    for role in (OWNER_ROLE, SERVICE_ROLE):
        conn.exec_driver_sql(_CREATE_ROLE.format(role=role))
    conn.exec_driver_sql(_OWN_TABLES.format(owner=OWNER_ROLE))
    svc, schema = SERVICE_ROLE, "current_schema()"
    name = conn.exec_driver_sql(f"SELECT {schema}").scalar()
    conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{name}" TO {svc}')
    conn.exec_driver_sql(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{name}" FROM {svc}')
    conn.exec_driver_sql(
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{name}" TO {svc}'
    )
    present = set(sa.inspect(conn).get_table_names())  # 0003 runs before later tables exist
    frozen = ", ".join(t for t in APPEND_ONLY_TABLES if t in present)
    conn.exec_driver_sql(f"REVOKE UPDATE, DELETE, TRUNCATE ON {frozen} FROM {svc}")
    conn.exec_driver_sql(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {svc}")
    conn.exec_driver_sql(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{name}" TO {svc}')
    conn.exec_driver_sql(
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{name}" '
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {svc}"
    )
    conn.exec_driver_sql(
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{name}" GRANT USAGE, SELECT ON SEQUENCES TO {svc}'
    )
