-- Lifecycle entries of the audit log come only from the model_versions trigger (GOV-3):
-- a client that may append governance entries cannot forge a 'lifecycle.*' history.
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last_seq bigint;
  last_hash text;
BEGIN
  IF NEW.action LIKE 'lifecycle.%' AND pg_trigger_depth() < 2 THEN
    RAISE EXCEPTION 'lifecycle audit entries are written by the ledger itself, not by clients (GOV-3)'
      USING ERRCODE = 'RA004';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('audit|' || NEW.tenant_id, 0));
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
