-- One trace id on every ledger row a step writes (issue 11, item 5), not only on audit_log.
-- REQ: OBS-2, GOV-2
--
-- Each tenant-owned table the steps write gets a trace_id column whose default is the transaction's
-- rai.trace_id setting -- the same source as audit_log.trace_id (LedgerResource.connect sets it from
-- the current OpenTelemetry span). No insert names the column, so no code path can forget it, and
-- a row written outside any trace gets ''. The default is stable, not volatile: adding it rewrites
-- no table and fires no UPDATE trigger; rows from before 0007 get '' (no trace was recorded then).
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['learning_events', 'dead_letters', 'dataset_snapshots', 'model_versions',
                           'model_evaluations', 'bias_audits', 'drift_reports', 'yield_forecasts',
                           'training_runs', 'integrity_checks', 'season_profiles', 'drift_baselines',
                           'promotion_decisions', 'retraining_runs', 'guard_decisions', 'breaker_resets',
                           'bootstrap_overrides', 'promotion_evidence', 'cohort_memberships'] LOOP
    EXECUTE format('ALTER TABLE %I ADD COLUMN trace_id text NOT NULL'
                   ' DEFAULT coalesce(current_setting(''rai.trace_id'', true), '''')', t);
  END LOOP;
END $$;

-- A model version's trace_id is the trace that created it (later transitions carry their own trace in
-- the audit log); like the rest of its identity it never changes (GOV-2). season_profiles is an
-- upsert and takes the trace of its latest writer (rai_assets.adapters.ledger.profiles).
CREATE FUNCTION rai_trace_id_immutable() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF NEW.trace_id IS DISTINCT FROM OLD.trace_id THEN
    RAISE EXCEPTION 'trace_id of % rows is immutable (GOV-2)', TG_TABLE_NAME USING ERRCODE = 'RA002';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER model_versions_trace_id BEFORE UPDATE ON model_versions
  FOR EACH ROW EXECUTE FUNCTION rai_trace_id_immutable();
CREATE TRIGGER cohort_memberships_trace_id BEFORE UPDATE ON cohort_memberships
  FOR EACH ROW EXECUTE FUNCTION rai_trace_id_immutable();

-- who looks rows of one trace up (the trace test, an operator following a trace id) reads these
CREATE INDEX learning_events_trace ON learning_events (trace_id);
CREATE INDEX model_versions_trace ON model_versions (trace_id);
