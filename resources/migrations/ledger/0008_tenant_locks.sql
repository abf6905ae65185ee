-- Tenant locks a tenant can block must not be reachable from another tenant's session (issue 8, item 4).
-- REQ: GOV-1, GOV-3, REG-4
--
-- Advisory locks are one namespace for the whole database: the ledger took
-- pg_advisory_xact_lock(hashtextextended('audit|' || tenant, 0)), a key any session can compute, so a
-- session of tenant A could hold tenant B's audit lock and make B's appends wait until they timed out.
-- The keys are now derived with a secret salt that only the schema owner can read, through one
-- SECURITY DEFINER function that locks a tenant's key only for a session of that tenant (or for the
-- owner's maintenance sessions, which are no tenant's). A tenant session cannot compute another
-- tenant's key, and asking the function for it is refused.

CREATE TABLE ledger_lock_salt (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    salt     text NOT NULL
);
INSERT INTO ledger_lock_salt (salt)
VALUES (md5(random()::text || clock_timestamp()::text) || replace(gen_random_uuid()::text, '-', ''));
REVOKE ALL ON ledger_lock_salt FROM PUBLIC;

CREATE FUNCTION rai_tenant_xact_lock(kind text, tenant text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  current text := rai_current_tenant();
  key bigint;
BEGIN
  IF tenant IS NULL OR kind IS NULL THEN
    RAISE EXCEPTION 'a tenant lock needs a kind and a tenant' USING ERRCODE = '22004';
  END IF;
  IF tenant IS DISTINCT FROM current
     AND session_user::text IN ('rai_app', 'rai_agronomist', 'rai_manager', 'rai_admin', 'rai_cohort') THEN
    RAISE EXCEPTION 'a session of tenant % may not take tenant %''s % lock', coalesce(current, '(none)'), tenant, kind
      USING ERRCODE = '42501';
  END IF;
  SELECT hashtextextended(kind || '|' || tenant || '|' || salt, 0) INTO key FROM ledger_lock_salt;
  PERFORM pg_advisory_xact_lock(key);
END $$;
REVOKE ALL ON FUNCTION rai_tenant_xact_lock(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rai_tenant_xact_lock(text, text) TO rai_app, rai_manager, rai_admin;

-- the audit chain's append lock (was 0003's forgeable key); the rest of the function is unchanged
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  last_seq bigint;
  last_hash text;
BEGIN
  IF NEW.action LIKE 'lifecycle.%' AND pg_trigger_depth() < 2 THEN
    RAISE EXCEPTION 'lifecycle audit entries are written by the ledger itself, not by clients (GOV-3)'
      USING ERRCODE = 'RA004';
  END IF;
  PERFORM rai_tenant_xact_lock('audit', NEW.tenant_id);
  SELECT seq, entry_hash INTO last_seq, last_hash FROM audit_log
   WHERE tenant_id = NEW.tenant_id ORDER BY seq DESC LIMIT 1;
  NEW.seq := coalesce(last_seq, 0) + 1;
  NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
  NEW.at := clock_timestamp();
  NEW.db_role := current_user;
  NEW.entry := jsonb_build_object(
    'tenant_id', NEW.tenant_id, 'seq', NEW.seq, 'action', NEW.action, 'actor', NEW.actor,
    'db_role', NEW.db_role, 'model_id', NEW.model_id, 'before', NEW.before, 'after', NEW.after,
    'reason', NEW.reason, 'trace_id', NEW.trace_id,
    'at', to_char(NEW.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'prev_hash', NEW.prev_hash)::text;
  NEW.entry_hash := encode(sha256(convert_to(NEW.prev_hash || NEW.entry, 'UTF8')), 'hex');
  RETURN NEW;
END $$;
