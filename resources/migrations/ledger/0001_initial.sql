-- Governance ledger, first schema: tenants, seasons, learning events, dead letters,
-- dataset snapshots, model versions (lifecycle state), drift reports, bias audits,
-- model evaluations and yield forecasts.  REQ: ING-2, ING-4, SNAP-1, SNAP-2, REG-1, REG-3, DRIFT-3

CREATE TABLE tenants (
    tenant_id      text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    public_key     text NOT NULL,
    model_spec     text NOT NULL,
    display_name   text NOT NULL DEFAULT '',
    registered_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE seasons (
    season_id      text PRIMARY KEY CHECK (season_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    ordinal        integer NOT NULL UNIQUE,
    label          text NOT NULL DEFAULT '',
    registered_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE learning_events (
    tenant_id      text NOT NULL REFERENCES tenants,
    season_id      text NOT NULL REFERENCES seasons,
    field_id       text NOT NULL CHECK (field_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    -- json, not jsonb: the exact canonical bytes that were hashed are kept, so the database
    -- itself can check that the payload matches its digest
    payload        json NOT NULL,
    payload_sha256 char(64) NOT NULL
        CHECK (payload_sha256 = encode(sha256(convert_to(payload::text, 'UTF8')), 'hex')),
    source_file    text NOT NULL,
    line_no        integer NOT NULL,
    dagster_run_id text NOT NULL DEFAULT '',
    ingested_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, season_id, field_id)
);

CREATE TABLE dead_letters (
    dead_letter_id bigserial PRIMARY KEY,
    tenant_id      text NOT NULL,
    season_id      text NOT NULL,
    source_file    text NOT NULL,
    line_no        integer,
    reason         text NOT NULL,
    raw_payload    text NOT NULL,
    raw_sha256     char(64) NOT NULL,
    dagster_run_id text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- re-ingesting the same bad line records it once
    UNIQUE (tenant_id, season_id, source_file, line_no, raw_sha256, reason)
);
CREATE INDEX dead_letters_tenant_season ON dead_letters (tenant_id, season_id);

CREATE TABLE dataset_snapshots (
    tenant_id       text NOT NULL REFERENCES tenants,
    season_id       text NOT NULL REFERENCES seasons,
    merkle_root     char(64) NOT NULL,
    object_key      text NOT NULL,
    row_count       integer NOT NULL CHECK (row_count >= 0),
    source_seasons  text[] NOT NULL,
    validation_passed boolean NOT NULL,
    validation_summary jsonb NOT NULL,
    dagster_run_id  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, season_id, merkle_root)
);

CREATE TABLE model_versions (
    model_id        bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants,
    season_id       text NOT NULL REFERENCES seasons,
    snapshot_root   char(64) NOT NULL,
    code_version    text NOT NULL,
    spec_sha256     char(64) NOT NULL,
    state           text NOT NULL DEFAULT 'DRAFT' CHECK (state IN (
                        'DRAFT','TRAINING','VALIDATED','SHADOW','CANARY','CHAMPION',
                        'DEPRECATED','FAILED','QUARANTINED')),
    state_version   integer NOT NULL DEFAULT 1,
    mlflow_model_name text,
    mlflow_version  integer,
    mlflow_run_id   text,
    device          text NOT NULL DEFAULT 'cpu',
    training_seconds double precision,
    validation_mae  double precision,
    failure_reason  text,
    dagster_run_id  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, season_id, snapshot_root)
        REFERENCES dataset_snapshots (tenant_id, season_id, merkle_root)
);
-- one champion per tenant at a time
CREATE UNIQUE INDEX model_versions_one_champion ON model_versions (tenant_id) WHERE state = 'CHAMPION';
-- the same inputs and code never produce a second live candidate
CREATE UNIQUE INDEX model_versions_idempotent ON model_versions (tenant_id, season_id, snapshot_root, code_version, spec_sha256)
    WHERE state <> 'FAILED';

CREATE TABLE model_state_history (
    history_id      bigserial PRIMARY KEY,
    model_id        bigint NOT NULL REFERENCES model_versions,
    tenant_id       text NOT NULL,
    from_state      text,
    to_state        text NOT NULL,
    reason          text NOT NULL,
    actor           text NOT NULL,
    dagster_run_id  text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_evaluations (
    tenant_id       text NOT NULL REFERENCES tenants,
    season_id       text NOT NULL REFERENCES seasons,
    model_id        bigint NOT NULL REFERENCES model_versions,
    champion_model_id bigint REFERENCES model_versions,
    body            jsonb NOT NULL,
    body_sha256     char(64) NOT NULL,
    dagster_run_id  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, season_id, model_id, body_sha256)
);

CREATE TABLE bias_audits (
    tenant_id       text NOT NULL REFERENCES tenants,
    season_id       text NOT NULL REFERENCES seasons,
    model_id        bigint NOT NULL REFERENCES model_versions,
    body_sha256     char(64) NOT NULL,
    signature       text NOT NULL,
    signer_public_key text NOT NULL,
    object_key      text NOT NULL,
    passed          boolean NOT NULL,
    body            jsonb NOT NULL,
    dagster_run_id  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, body_sha256)
);

CREATE TABLE drift_reports (
    tenant_id       text NOT NULL REFERENCES tenants,
    season_id       text NOT NULL REFERENCES seasons,
    reference_model_id bigint REFERENCES model_versions,
    body_sha256     char(64) NOT NULL,
    signature       text NOT NULL,
    signer_public_key text NOT NULL,
    object_key      text NOT NULL,
    verdict         text NOT NULL CHECK (verdict IN ('insufficient_sample','no_drift','warning','drift','no_reference')),
    max_psi         double precision,
    body            jsonb NOT NULL,
    dagster_run_id  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, body_sha256)
);

CREATE TABLE yield_forecasts (
    tenant_id       text NOT NULL REFERENCES tenants,
    season_id       text NOT NULL REFERENCES seasons,
    field_id        text NOT NULL,
    model_id        bigint NOT NULL REFERENCES model_versions,
    role            text NOT NULL DEFAULT 'champion' CHECK (role IN ('champion','shadow','canary')),
    predicted_yield_kg_ha double precision NOT NULL,
    dagster_run_id  text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, season_id, field_id, model_id, role)
);
