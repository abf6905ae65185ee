-- Closed loop: promotion decisions, retraining outcomes, guard decisions, breaker resets.
-- REQ: RET-1..9, DRIFT-2, DRIFT-5

CREATE TABLE promotion_decisions (
    decision_id       bigserial PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants,
    season_id         text NOT NULL REFERENCES seasons,
    candidate_model_id bigint NOT NULL REFERENCES model_versions,
    champion_model_id bigint REFERENCES model_versions,
    stage             text NOT NULL CHECK (stage IN ('shadow', 'canary', 'champion', 'rollback')),
    decision          text NOT NULL,
    statistic         double precision,
    p_value           double precision,
    likelihood_ratio  double precision,
    sample_size       integer NOT NULL DEFAULT 0,
    evidence          jsonb NOT NULL,
    dagster_run_id    text NOT NULL DEFAULT '',
    decided_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE retraining_runs (
    tenant_id       text NOT NULL REFERENCES tenants,
    dagster_run_id  text NOT NULL,
    season_id       text NOT NULL,
    trigger         text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'canceled')),
    finished_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, dagster_run_id)
);

CREATE TABLE guard_decisions (
    guard_decision_id bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants,
    season_id       text NOT NULL,
    drift_report_sha256 char(64),
    guard           text NOT NULL,
    allowed         boolean NOT NULL,
    reason          text NOT NULL,
    detail          jsonb NOT NULL,
    decided_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE breaker_resets (
    reset_id        bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants,
    actor           text NOT NULL,
    reason          text NOT NULL,
    reset_at        timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['promotion_decisions', 'retraining_runs', 'guard_decisions', 'breaker_resets'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = rai_current_tenant())'
                   ' WITH CHECK (tenant_id = rai_current_tenant())', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW EXECUTE FUNCTION rai_forbid_change()',
                   t || '_immutable', t);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION rai_forbid_change()',
                   t || '_no_truncate', t);
  END LOOP;
END $$;

GRANT SELECT, INSERT ON promotion_decisions, retraining_runs, guard_decisions TO rai_app;
GRANT SELECT ON breaker_resets TO rai_app;
GRANT SELECT ON promotion_decisions, retraining_runs, guard_decisions, breaker_resets TO rai_manager, rai_admin;
GRANT INSERT ON breaker_resets TO rai_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO rai_app, rai_manager, rai_admin;
