-- Cross-tenant references (issue 8, item 2). REQ: GOV-1, GOV-2
--
-- Foreign keys are checked by Postgres outside row-level security: tenant A could insert a forecast
-- (or evaluation, audit, decision …) pointing at tenant B's model version, and the FK's error told
-- A which of B's ids exist. Every reference from a tenant-owned table to another tenant-owned table
-- now carries the tenant: the single-column key is replaced by (tenant_id, column) → the referenced
-- table's (tenant_id, key), so a reference can only point inside its own tenant, and a missing and a
-- foreign id give the same error. rai_assets_tests/ledger/test_tenant_foreign_keys.py enumerates
-- pg_constraint so a new single-column reference between tenant tables fails CI.
DO $$
DECLARE
  fk record;
  uniq text;
BEGIN
  FOR fk IN
    SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
           a.attname AS col, pa.attname AS parent_col
      FROM pg_constraint c
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
      JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
     WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace AND array_length(c.conkey, 1) = 1
       AND a.attname <> 'tenant_id'
       AND EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = c.conrelid AND x.attname = 'tenant_id'
                     AND NOT x.attisdropped)
       AND EXISTS (SELECT 1 FROM pg_attribute x WHERE x.attrelid = c.confrelid AND x.attname = 'tenant_id'
                     AND NOT x.attisdropped)
  LOOP
    uniq := format('%s_tenant_%s_key', replace(fk.parent::text, '.', '_'), fk.parent_col);
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = uniq) THEN
      EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I UNIQUE (tenant_id, %I)', fk.parent, uniq, fk.parent_col);
    END IF;
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.child, fk.conname);
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I FOREIGN KEY (tenant_id, %I) REFERENCES %s (tenant_id, %I)',
                   fk.child, fk.conname, fk.col, fk.parent, fk.parent_col);
  END LOOP;
END $$;
