-- Governance: the database itself enforces the lifecycle, tenant isolation and immutability.
-- REQ: REG-3, REG-4, REG-5, SNAP-2, SNAP-4, GOV-1, GOV-2, GOV-3, GOV-4
--
-- Error codes raised here (SQLSTATE class "RA", caught by rai_assets.adapters.ledger.errors):
--   RA001 illegal lifecycle transition      RA002 immutable row or column
--   RA003 promotion guard not met           RA004 role not allowed
--   RA005 optimistic-locking violation

CREATE EXTENSION IF NOT EXISTS vector;

-- ---------------------------------------------------------------- roles (GOV-4)
-- Cluster-wide; the migration's runner (the owner) is none of them. rai_app is what the assets
-- use: not the owner, not superuser, no BYPASSRLS — so row-level security applies to it.
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['rai_app', 'rai_agronomist', 'rai_manager', 'rai_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION', r);
    END IF;
  END LOOP;
END $$;

-- ---------------------------------------------------------------- new tables
CREATE TABLE lifecycle_transitions (
    from_state text NOT NULL,
    to_state   text NOT NULL,
    PRIMARY KEY (from_state, to_state)
);
-- The same table as rai_assets.domain.lifecycle.LEGAL_TRANSITIONS (a test compares all 81 pairs).
INSERT INTO lifecycle_transitions VALUES
  ('DRAFT','TRAINING'), ('DRAFT','FAILED'),
  ('TRAINING','VALIDATED'), ('TRAINING','FAILED'),
  ('VALIDATED','SHADOW'), ('VALIDATED','CHAMPION'), ('VALIDATED','DEPRECATED'), ('VALIDATED','QUARANTINED'),
  ('SHADOW','CANARY'), ('SHADOW','DEPRECATED'), ('SHADOW','QUARANTINED'),
  ('CANARY','CHAMPION'), ('CANARY','DEPRECATED'), ('CANARY','QUARANTINED'),
  ('CHAMPION','DEPRECATED'), ('CHAMPION','QUARANTINED'),
  ('DEPRECATED','CHAMPION'),
  ('QUARANTINED','VALIDATED'), ('QUARANTINED','DEPRECATED');

CREATE TABLE audit_log (
    audit_id    bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    seq         bigint NOT NULL,
    action      text NOT NULL,
    actor       text NOT NULL,
    db_role     text NOT NULL,
    model_id    bigint,
    before      jsonb,
    after       jsonb,
    reason      text NOT NULL,
    trace_id    text NOT NULL,
    at          timestamptz NOT NULL,
    prev_hash   char(64) NOT NULL,
    entry       text NOT NULL,
    entry_hash  char(64) NOT NULL,
    UNIQUE (tenant_id, seq)
);

CREATE TABLE training_runs (
    tenant_id       text NOT NULL REFERENCES tenants,
    model_id        bigint NOT NULL REFERENCES model_versions,
    dagster_run_id  text NOT NULL,
    device          text NOT NULL,
    gpu_count       integer NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    PRIMARY KEY (tenant_id, model_id, dagster_run_id, started_at)
);

CREATE TABLE integrity_checks (
    check_id        bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants,
    artifact_kind   text NOT NULL CHECK (artifact_kind IN ('bias_audit', 'drift_report', 'snapshot', 'model')),
    artifact_sha256 char(64) NOT NULL,
    object_key      text NOT NULL,
    verified        boolean NOT NULL,
    detail          text NOT NULL,
    checked_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integrity_checks_artifact ON integrity_checks (tenant_id, artifact_kind, artifact_sha256);

CREATE TABLE season_profiles (
    tenant_id   text NOT NULL REFERENCES tenants,
    season_id   text NOT NULL REFERENCES seasons,
    n_events    integer NOT NULL,
    profile     vector(64) NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, season_id)
);
CREATE INDEX season_profiles_hnsw ON season_profiles USING hnsw (profile vector_l2_ops);
ALTER TABLE dataset_snapshots ADD COLUMN profile vector(64);

CREATE TABLE drift_baselines (
    baseline_id     bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants,
    model_id        bigint NOT NULL REFERENCES model_versions,
    actor           text NOT NULL,
    reason          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE model_versions ADD COLUMN artifacts_deleted_at timestamptz;
DROP TABLE model_state_history;

-- ---------------------------------------------------------------- tenant context (GOV-1)
CREATE FUNCTION rai_current_tenant() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('rai.tenant_id', true), '') $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tenants', 'learning_events', 'dead_letters', 'dataset_snapshots', 'model_versions',
                           'model_evaluations', 'bias_audits', 'drift_reports', 'yield_forecasts', 'audit_log',
                           'training_runs', 'integrity_checks', 'season_profiles', 'drift_baselines'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = rai_current_tenant())'
                   ' WITH CHECK (tenant_id = rai_current_tenant())', t);
  END LOOP;
END $$;

-- ---------------------------------------------------------------- immutability (GOV-2, SNAP-2)
CREATE FUNCTION rai_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on % is not allowed: its rows are immutable (GOV-2)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'RA002';
END $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['audit_log', 'drift_reports', 'bias_audits', 'dataset_snapshots', 'learning_events',
                           'model_evaluations', 'integrity_checks', 'training_runs', 'drift_baselines'] LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION rai_forbid_change()',
                   t || '_immutable', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION rai_forbid_change()',
                   t || '_no_truncate', t);
  END LOOP;
END $$;

CREATE FUNCTION tenants_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id OR NEW.public_key IS DISTINCT FROM OLD.public_key
     OR NEW.registered_at IS DISTINCT FROM OLD.registered_at THEN
    RAISE EXCEPTION 'a tenant''s id, public key and registration time are immutable (GOV-2)' USING ERRCODE = 'RA002';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER tenants_guard BEFORE UPDATE OR DELETE ON tenants FOR EACH ROW EXECUTE FUNCTION tenants_guard();

-- ---------------------------------------------------------------- lifecycle FSM and guards (REG-3..5)
CREATE FUNCTION model_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  audit_ok boolean;
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'model versions are never deleted (retention marks artifacts_deleted_at)' USING ERRCODE = 'RA002';
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.state <> 'DRAFT' OR NEW.state_version <> 1 THEN
      RAISE EXCEPTION 'a model version starts in DRAFT at state_version 1, not % / %', NEW.state, NEW.state_version
        USING ERRCODE = 'RA001';
    END IF;
    RETURN NEW;
  END IF;
  -- immutable identity and lineage; set-once registry and validation fields
  IF NEW.model_id IS DISTINCT FROM OLD.model_id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
     OR NEW.season_id IS DISTINCT FROM OLD.season_id OR NEW.snapshot_root IS DISTINCT FROM OLD.snapshot_root
     OR NEW.code_version IS DISTINCT FROM OLD.code_version OR NEW.spec_sha256 IS DISTINCT FROM OLD.spec_sha256
     OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR (OLD.mlflow_version IS NOT NULL AND NEW.mlflow_version IS DISTINCT FROM OLD.mlflow_version)
     OR (OLD.mlflow_run_id IS NOT NULL AND NEW.mlflow_run_id IS DISTINCT FROM OLD.mlflow_run_id)
     OR (OLD.validation_mae IS NOT NULL AND NEW.validation_mae IS DISTINCT FROM OLD.validation_mae)
     OR (OLD.artifacts_deleted_at IS NOT NULL AND NEW.artifacts_deleted_at IS DISTINCT FROM OLD.artifacts_deleted_at)
  THEN
    RAISE EXCEPTION 'immutable column of model version % cannot change (GOV-2)', OLD.model_id USING ERRCODE = 'RA002';
  END IF;
  IF NEW.state IS NOT DISTINCT FROM OLD.state THEN
    IF NEW.state_version <> OLD.state_version THEN
      RAISE EXCEPTION 'state_version changes only with a transition' USING ERRCODE = 'RA005';
    END IF;
    RETURN NEW;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM lifecycle_transitions WHERE from_state = OLD.state AND to_state = NEW.state) THEN
    RAISE EXCEPTION 'illegal lifecycle transition % → % for model version %', OLD.state, NEW.state, OLD.model_id
      USING ERRCODE = 'RA001';
  END IF;
  IF NEW.state_version <> OLD.state_version + 1 THEN
    RAISE EXCEPTION 'a transition must state the version it read: expected state_version %, got %',
      OLD.state_version + 1, NEW.state_version USING ERRCODE = 'RA005';
  END IF;
  IF NEW.state = 'SHADOW' THEN
    SELECT EXISTS (
      SELECT 1 FROM bias_audits b JOIN integrity_checks i
        ON i.tenant_id = b.tenant_id AND i.artifact_kind = 'bias_audit' AND i.artifact_sha256 = b.body_sha256
       AND i.verified
     WHERE b.model_id = NEW.model_id AND b.passed) INTO audit_ok;
    IF NOT audit_ok THEN
      RAISE EXCEPTION 'promotion of model version % to SHADOW needs a passed bias audit whose signature verified (REG-5)',
        NEW.model_id USING ERRCODE = 'RA003';
    END IF;
  END IF;
  IF OLD.state = 'VALIDATED' AND NEW.state = 'CHAMPION'
     AND EXISTS (SELECT 1 FROM model_versions m WHERE m.tenant_id = NEW.tenant_id AND m.state = 'CHAMPION') THEN
    RAISE EXCEPTION 'bootstrap promotion (VALIDATED → CHAMPION) only while tenant % has no champion', NEW.tenant_id
      USING ERRCODE = 'RA003';
  END IF;
  IF OLD.state = 'QUARANTINED' AND NOT (pg_has_role(current_user, 'rai_manager', 'MEMBER')
                                        OR pg_has_role(current_user, 'rai_admin', 'MEMBER')) THEN
    RAISE EXCEPTION 'leaving QUARANTINED needs a manager''s decision (role %)', current_user USING ERRCODE = 'RA004';
  END IF;
  IF OLD.state = 'DEPRECATED' AND NEW.state = 'CHAMPION' AND pg_has_role(current_user, 'rai_manager', 'MEMBER')
     AND NOT pg_has_role(current_user, 'rai_admin', 'MEMBER') THEN
    RAISE EXCEPTION 'a rollback to a previous champion is an admin action (role %)', current_user USING ERRCODE = 'RA004';
  END IF;
  IF NEW.state = 'CHAMPION' AND OLD.state IN ('CANARY', 'DEPRECATED') THEN
    -- one champion per tenant: the previous one is deprecated in the same transaction
    UPDATE model_versions SET state = 'DEPRECATED', state_version = state_version + 1
     WHERE tenant_id = NEW.tenant_id AND state = 'CHAMPION' AND model_id <> NEW.model_id;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER model_versions_guard BEFORE INSERT OR UPDATE OR DELETE ON model_versions
  FOR EACH ROW EXECUTE FUNCTION model_versions_guard();

-- ---------------------------------------------------------------- audit log, hash-chained per tenant (GOV-3)
CREATE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last_seq bigint;
  last_hash text;
BEGIN
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
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE FUNCTION model_versions_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
    INSERT INTO audit_log (tenant_id, action, actor, db_role, model_id, before, after, reason, trace_id, at,
                           prev_hash, entry, entry_hash, seq)
    VALUES (NEW.tenant_id, CASE WHEN TG_OP = 'INSERT' THEN 'lifecycle.create' ELSE 'lifecycle.transition' END,
            coalesce(nullif(current_setting('rai.actor', true), ''), current_user), current_user, NEW.model_id,
            CASE WHEN TG_OP = 'INSERT' THEN NULL
                 ELSE jsonb_build_object('state', OLD.state, 'state_version', OLD.state_version) END,
            jsonb_build_object('state', NEW.state, 'state_version', NEW.state_version),
            coalesce(nullif(current_setting('rai.reason', true), ''),
                     CASE WHEN TG_OP = 'UPDATE' AND NEW.state = 'DEPRECATED' AND OLD.state = 'CHAMPION'
                          THEN 'superseded by a new champion' ELSE 'unspecified' END),
            coalesce(current_setting('rai.trace_id', true), ''), now(), '', '', '', 0);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER model_versions_audit AFTER INSERT OR UPDATE ON model_versions
  FOR EACH ROW EXECUTE FUNCTION model_versions_audit();

-- ---------------------------------------------------------------- privileges (GOV-4)
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO rai_app, rai_agronomist, rai_manager, rai_admin;
GRANT SELECT ON seasons, lifecycle_transitions TO rai_app, rai_agronomist, rai_manager, rai_admin;
GRANT INSERT ON seasons TO rai_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO rai_app, rai_manager, rai_admin;

GRANT SELECT, INSERT ON tenants, learning_events, dead_letters, dataset_snapshots, model_evaluations, bias_audits,
  drift_reports, audit_log, training_runs, integrity_checks TO rai_app;
GRANT UPDATE (model_spec, display_name) ON tenants TO rai_app;
GRANT SELECT, INSERT, UPDATE ON season_profiles TO rai_app;
GRANT SELECT, INSERT, DELETE ON yield_forecasts TO rai_app;
GRANT SELECT ON drift_baselines TO rai_app;
GRANT SELECT, INSERT, UPDATE (state, state_version, updated_at, mlflow_model_name, mlflow_version, mlflow_run_id,
  device, training_seconds, validation_mae, failure_reason) ON model_versions TO rai_app;

GRANT SELECT (tenant_id, display_name) ON tenants TO rai_agronomist;
GRANT SELECT ON yield_forecasts TO rai_agronomist;

GRANT SELECT ON tenants, model_versions, model_evaluations, bias_audits, drift_reports, audit_log, integrity_checks,
  drift_baselines TO rai_manager, rai_admin;
GRANT UPDATE (state, state_version, updated_at) ON model_versions TO rai_manager, rai_admin;
GRANT INSERT ON audit_log TO rai_manager, rai_admin;
GRANT UPDATE (artifacts_deleted_at) ON model_versions TO rai_admin;
GRANT INSERT ON drift_baselines TO rai_admin;
