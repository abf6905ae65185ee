-- The learning-event write path, cheaper per row and no weaker (issue 12, goal 5). REQ: ING-2, GOV-1, GOV-2
--
-- Ingestion's INSERT … SELECT spent ~25 µs of database CPU per event; two of its per-row costs go.
--
-- ---------------------------------------------------------------- one foreign-key check per event
-- A learning event referenced tenants (tenant_id) and the global season registry (season_id): two per-row
-- RI lookups, ~4 µs each, about a third of the ledger's time per ingested event. Since 0011 ingestion
-- registers the season in the tenant's own calendar before writing its first event (rai_register_season,
-- after the manifest verified), so the event now references that calendar row, (tenant_id, season_id) →
-- season_calendar. The guarantee is stronger, not weaker: the tenant and the season must still exist
-- (season_calendar's own foreign keys reference tenants and seasons, and none of these rows can be updated
-- or deleted: 0002, 0011), and in addition the season must be in *this tenant's* calendar. The key carries
-- tenant_id, as every reference between tenant tables does (0009). The digest CHECK, the field-id CHECK,
-- the row-level policy and the immutability triggers are unchanged.
--
-- Events stored before 0011's gate whose season is missing from their tenant's calendar get it appended
-- there (after the tenant's latest, in the registry's order), so the key can be validated on every row.
INSERT INTO season_calendar (tenant_id, season_id, ordinal)
SELECT m.tenant_id, m.season_id,
       coalesce((SELECT max(c.ordinal) FROM season_calendar c WHERE c.tenant_id = m.tenant_id), 0)
         + row_number() OVER (PARTITION BY m.tenant_id ORDER BY s.ordinal)
  FROM (SELECT DISTINCT e.tenant_id, e.season_id FROM learning_events e
         WHERE NOT EXISTS (SELECT 1 FROM season_calendar c
                            WHERE c.tenant_id = e.tenant_id AND c.season_id = e.season_id)) m
  JOIN seasons s USING (season_id);

ALTER TABLE learning_events
  DROP CONSTRAINT learning_events_tenant_id_fkey,
  DROP CONSTRAINT learning_events_season_id_fkey,
  ADD CONSTRAINT learning_events_season_fkey FOREIGN KEY (tenant_id, season_id)
    REFERENCES season_calendar (tenant_id, season_id);

-- ---------------------------------------------------------------- the tenant read once per statement (GOV-1)
-- The policy's WITH CHECK called rai_current_tenant() for every inserted row: a SQL function with a pinned
-- search_path (0006) is never inlined, and each call (its own GUC scope) cost ~1.4 µs. As an uncorrelated
-- scalar subquery it is evaluated once per statement (an InitPlan) with the same value -- the function is
-- STABLE, so it could not change within the statement anyway -- and a NULL tenant (no tenant context) still
-- fails the check. USING (what a session may see) is unchanged.
ALTER POLICY tenant_isolation ON learning_events WITH CHECK (tenant_id = (SELECT rai_current_tenant()));
