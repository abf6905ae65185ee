-- Hardening (issue 8): the ledger's own functions cannot be subverted by a session's temporary
-- tables.
-- REQ: GOV-1, GOV-3, GOV-4, REG-3, REG-5
--
-- ---------------------------------------------------------------- pinned search_path (GOV-3, REG-3, REG-5)
-- The trigger functions of 0002/0003 looked their tables up by unqualified name with the caller's
-- search_path, and a role's temporary schema is searched *first* for relations whenever pg_temp
-- is not named in the path -- even with `SET search_path = pg_catalog, public` (as 0005 had). So a
-- TEMP lifecycle_transitions, bias_audits, integrity_checks or audit_log shadowed the real table
-- inside the trigger. Every function of the ledger's schema now runs with
--   search_path = pg_catalog, public, pg_temp
-- (built-ins first, then the ledger, and the temporary schema last, where it can shadow nothing).
-- rai_assets_tests/ledger/test_hardening.py enumerates pg_proc so a new function without it fails CI.
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                         AND d.deptype = 'e')  -- pgvector's own functions belong to the extension
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public, pg_temp', f);
  END LOOP;
END $$;

-- ---------------------------------------------------------------- no temporary objects (GOV-4)
-- No ledger role needs TEMP (ingestion stages rows with unnest() arrays, not a temporary table);
-- only the owner keeps it. Nor may anyone but the owner create objects in the ledger's schema
-- (the PostgreSQL 15+ default, restated for servers created by older versions).
DO $$
BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM rai_app, rai_agronomist, rai_manager, rai_admin, rai_cohort',
                 current_database());
END $$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
