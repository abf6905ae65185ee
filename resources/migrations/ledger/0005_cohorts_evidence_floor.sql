-- Cohorts (REG-9), promotion evidence that accumulates (RET-10), the naive floor (REG-10) and the
-- bias gate of bootstrap promotions (REG-5).
--
-- Every function defined here pins its search_path.

-- ---------------------------------------------------------------- cohort role
-- rai_cohort reads, for the cohort named in the transaction setting rai.cohort_id, exactly the rows
-- of that cohort's current members; nothing else, and it writes nothing.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rai_cohort') THEN
    CREATE ROLE rai_cohort LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
  END IF;
END $$;

CREATE FUNCTION rai_current_cohort() RETURNS text LANGUAGE sql STABLE
  SET search_path = pg_catalog, public AS
$$ SELECT nullif(current_setting('rai.cohort_id', true), '') $$;

-- ---------------------------------------------------------------- cohorts and memberships
CREATE TABLE cohorts (
    cohort_id   text PRIMARY KEY CHECK (cohort_id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    model_spec  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cohort_memberships (
    membership_id bigserial PRIMARY KEY,
    cohort_id   text NOT NULL REFERENCES cohorts,
    tenant_id   text NOT NULL REFERENCES tenants,
    joined_by   text NOT NULL,
    joined_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    left_by     text,
    left_at     timestamptz,
    CHECK ((left_at IS NULL) = (left_by IS NULL))
);
-- a tenant is in at most one cohort at a time
CREATE UNIQUE INDEX cohort_memberships_one_active ON cohort_memberships (tenant_id) WHERE left_at IS NULL;

-- joining and leaving only by a manager or admin (a governed action); a membership is closed once
CREATE FUNCTION cohort_memberships_guard() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, public AS $$
BEGIN
  IF NOT (pg_has_role(current_user, 'rai_manager', 'MEMBER') OR pg_has_role(current_user, 'rai_admin', 'MEMBER'))
     AND current_user NOT IN (SELECT rolname FROM pg_roles WHERE rolsuper) THEN
    RAISE EXCEPTION 'joining or leaving a cohort is a manager''s decision (role %)', current_user USING ERRCODE = 'RA004';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'cohort memberships are never deleted (GOV-2)' USING ERRCODE = 'RA002';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF OLD.left_at IS NOT NULL OR NEW.left_at IS NULL
       OR NEW.membership_id <> OLD.membership_id OR NEW.cohort_id <> OLD.cohort_id OR NEW.tenant_id <> OLD.tenant_id
       OR NEW.joined_by <> OLD.joined_by OR NEW.joined_at <> OLD.joined_at THEN
      RAISE EXCEPTION 'a cohort membership can only be closed, once (GOV-2)' USING ERRCODE = 'RA002';
    END IF;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM public.cohorts c JOIN public.tenants t ON t.model_spec = c.model_spec
                  WHERE c.cohort_id = NEW.cohort_id AND t.tenant_id = NEW.tenant_id) THEN
    RAISE EXCEPTION 'tenant % does not use the model spec of cohort %', NEW.tenant_id, NEW.cohort_id
      USING ERRCODE = 'RA003';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER cohort_memberships_guard BEFORE INSERT OR UPDATE OR DELETE ON cohort_memberships
  FOR EACH ROW EXECUTE FUNCTION cohort_memberships_guard();

-- ---------------------------------------------------------------- lineage of a model version
ALTER TABLE model_versions ADD COLUMN kind text NOT NULL DEFAULT 'tenant'
  CHECK (kind IN ('tenant', 'cohort', 'naive'));
ALTER TABLE model_versions ADD COLUMN cohort_id text REFERENCES cohorts;
ALTER TABLE model_versions ADD COLUMN lineage jsonb;

CREATE FUNCTION model_versions_lineage_guard() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, public AS $$
BEGIN
  IF NEW.kind IS DISTINCT FROM OLD.kind OR NEW.cohort_id IS DISTINCT FROM OLD.cohort_id
     OR NEW.lineage IS DISTINCT FROM OLD.lineage THEN
    RAISE EXCEPTION 'the lineage of model version % cannot change (GOV-2)', OLD.model_id USING ERRCODE = 'RA002';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER model_versions_lineage_guard BEFORE UPDATE ON model_versions
  FOR EACH ROW EXECUTE FUNCTION model_versions_lineage_guard();

-- ---------------------------------------------------------------- bootstrap promotions need a passed bias audit
CREATE TABLE bootstrap_overrides (
    override_id bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants,
    model_id    bigint NOT NULL REFERENCES model_versions,
    actor       text NOT NULL,
    reason      text NOT NULL CHECK (length(btrim(reason)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION model_versions_bootstrap_gate() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, public AS $$
BEGIN
  -- VALIDATED → CHAMPION (a tenant's first champion, or its naive floor) needs the same evidence as
  -- SHADOW: a passed bias audit whose signature verified, or a manager's audited override. The naive
  -- baseline (a constant forecast, REG-10) is the floor itself and needs neither.
  IF OLD.state = 'VALIDATED' AND NEW.state = 'CHAMPION' AND NEW.kind <> 'naive'
     AND NOT EXISTS (
       SELECT 1 FROM public.bias_audits b JOIN public.integrity_checks i
         ON i.tenant_id = b.tenant_id AND i.artifact_kind = 'bias_audit' AND i.artifact_sha256 = b.body_sha256
        AND i.verified
      WHERE b.tenant_id = NEW.tenant_id AND b.model_id = NEW.model_id AND b.passed)
     AND NOT EXISTS (SELECT 1 FROM public.bootstrap_overrides o
                      WHERE o.tenant_id = NEW.tenant_id AND o.model_id = NEW.model_id) THEN
    RAISE EXCEPTION 'bootstrap promotion of model version % needs a passed bias audit whose signature verified, '
                    'or a manager''s override (REG-5)', NEW.model_id USING ERRCODE = 'RA003';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER model_versions_bootstrap_gate BEFORE UPDATE ON model_versions
  FOR EACH ROW EXECUTE FUNCTION model_versions_bootstrap_gate();

-- ---------------------------------------------------------------- promotion evidence (RET-10)
-- Paired per-field differences d = |error of the champion| - |error of the candidate| (kg/ha) of one
-- tenant-season; models are named by their MLflow registered model and version, so the evidence of a
-- cohort model pools over the cohort's members.
CREATE TABLE promotion_evidence (
    evidence_id   bigserial PRIMARY KEY,
    tenant_id     text NOT NULL REFERENCES tenants,
    season_id     text NOT NULL REFERENCES seasons,
    cohort_id     text REFERENCES cohorts,
    candidate_ref text NOT NULL,
    champion_ref  text NOT NULL,
    field_ids     text[] NOT NULL,
    differences   double precision[] NOT NULL CHECK (cardinality(differences) = cardinality(field_ids)),
    dagster_run_id text NOT NULL DEFAULT '',
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, season_id, candidate_ref, champion_ref)
);

-- ---------------------------------------------------------------- tenant isolation, immutability
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['cohort_memberships', 'bootstrap_overrides', 'promotion_evidence'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = rai_current_tenant())'
                   ' WITH CHECK (tenant_id = rai_current_tenant())', t);
  END LOOP;
  FOREACH t IN ARRAY ARRAY['bootstrap_overrides', 'promotion_evidence'] LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION rai_forbid_change()',
                   t || '_immutable', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION rai_forbid_change()',
                   t || '_no_truncate', t);
  END LOOP;
END $$;

-- the cohort role: memberships of the current cohort, and the events and promotion evidence of its
-- current members — nothing of a tenant that is not (or no longer) a member
CREATE POLICY cohort_read ON cohort_memberships FOR SELECT TO rai_cohort
  USING (cohort_id = rai_current_cohort());
CREATE POLICY cohort_members_read ON learning_events FOR SELECT TO rai_cohort
  USING (tenant_id IN (SELECT m.tenant_id FROM cohort_memberships m
                        WHERE m.cohort_id = rai_current_cohort() AND m.left_at IS NULL));
CREATE POLICY cohort_members_read ON promotion_evidence FOR SELECT TO rai_cohort
  USING (cohort_id = rai_current_cohort()
         AND tenant_id IN (SELECT m.tenant_id FROM cohort_memberships m
                            WHERE m.cohort_id = rai_current_cohort() AND m.left_at IS NULL));

-- ---------------------------------------------------------------- privileges
GRANT USAGE ON SCHEMA public TO rai_cohort;
GRANT SELECT ON cohorts TO rai_app, rai_manager, rai_admin, rai_cohort;
GRANT INSERT ON cohorts TO rai_manager, rai_admin;
GRANT SELECT ON cohort_memberships TO rai_app, rai_manager, rai_admin, rai_cohort;
GRANT INSERT, UPDATE (left_by, left_at) ON cohort_memberships TO rai_manager, rai_admin;
GRANT SELECT ON learning_events, seasons TO rai_cohort;
GRANT SELECT, INSERT ON promotion_evidence TO rai_app;
GRANT SELECT ON promotion_evidence TO rai_cohort, rai_manager, rai_admin;
GRANT SELECT ON bootstrap_overrides TO rai_app, rai_manager, rai_admin;
GRANT INSERT ON bootstrap_overrides TO rai_manager, rai_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO rai_app, rai_manager, rai_admin;
-- agronomists export served forecasts with the model that made them (no lineage, no state)
GRANT SELECT (model_id, tenant_id, mlflow_model_name, mlflow_version, kind) ON model_versions TO rai_agronomist;

-- a tenant model, a cohort model and the naive baseline of one season share the tenant's snapshot
-- root: the idempotency key includes the kind (and a cohort model's lineage root)
DROP INDEX model_versions_idempotent;
CREATE UNIQUE INDEX model_versions_idempotent ON model_versions
  (tenant_id, season_id, snapshot_root, code_version, spec_sha256, kind, coalesce(lineage->>'lineage_root', ''))
  WHERE state <> 'FAILED';
