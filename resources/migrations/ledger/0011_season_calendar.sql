-- A season calendar per tenant, written only through one audited gate (issue 8, item 3). REQ: GOV-1, GOV-2, ING-2
--
-- The calendar was the global `seasons` table: any tenant session could INSERT into it, and the landing sensor
-- appended every season id it saw in a landing key — before any signature was checked. A new tenant's seasons
-- ("1931", "1932") then landed after everyone else's "s06", and another tenant's garbage upload changed what
-- "the seasons before s03" meant for everybody.
--
-- `seasons` stays the registry of season ids that the foreign keys reference (and its ordinal still orders a
-- cohort's pooled rows, whose seasons the members share). Each tenant's time order is now its own
-- `season_calendar` (row-level security, immutable rows). Neither table can be written by a tenant session:
-- rai_register_season, SECURITY DEFINER, adds a season to the calendar of the session's own tenant (and to the
-- registry when the id is new). The application calls it only after a manifest's signature verified; the
-- governed `rai-assets season register` command calls it as manager/admin and appends to the audit log.

CREATE TABLE season_calendar (
    tenant_id      text NOT NULL REFERENCES tenants,
    season_id      text NOT NULL REFERENCES seasons,
    -- numeric: a season registered "after s02" takes the midpoint between s02 and its successor, so rows never move
    ordinal        numeric NOT NULL CHECK (ordinal > 0),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    trace_id       text NOT NULL DEFAULT coalesce(current_setting('rai.trace_id', true), ''),  -- as 0007
    PRIMARY KEY (tenant_id, season_id),
    UNIQUE (tenant_id, ordinal)
);

-- existing tenants keep the order they had: every registered season at its global ordinal
INSERT INTO season_calendar (tenant_id, season_id, ordinal)
SELECT t.tenant_id, s.season_id, s.ordinal FROM tenants t CROSS JOIN seasons s;

ALTER TABLE season_calendar ENABLE ROW LEVEL SECURITY;
ALTER TABLE season_calendar FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON season_calendar USING (tenant_id = rai_current_tenant())
  WITH CHECK (tenant_id = rai_current_tenant());
CREATE TRIGGER season_calendar_immutable BEFORE UPDATE OR DELETE ON season_calendar
  FOR EACH ROW EXECUTE FUNCTION rai_forbid_change();
CREATE TRIGGER season_calendar_no_truncate BEFORE TRUNCATE ON season_calendar
  FOR EACH STATEMENT EXECUTE FUNCTION rai_forbid_change();
CREATE TRIGGER seasons_immutable BEFORE UPDATE OR DELETE ON seasons
  FOR EACH ROW EXECUTE FUNCTION rai_forbid_change();

-- Add ``season`` to ``tenant``'s calendar; returns its 1-based position there. Re-registering is a no-op when
-- it agrees with the calendar. ``ordinal`` (explicit position value) and ``follows`` (the season it comes after)
-- are exclusive; with neither the season goes after the tenant's latest.
CREATE FUNCTION rai_register_season(tenant text, season text, ordinal numeric DEFAULT NULL,
                                    follows text DEFAULT NULL, label text DEFAULT '') RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  current text := rai_current_tenant();
  want numeric := ordinal;
  existing numeric;
  after_ordinal numeric;
  next_ordinal numeric;
  previous text;
  taken text;
  global_ordinal integer;
  pos integer;
BEGIN
  IF tenant IS NULL OR season IS NULL THEN
    RAISE EXCEPTION 'registering a season needs a tenant and a season' USING ERRCODE = '22004';
  END IF;
  IF tenant IS DISTINCT FROM current
     AND session_user::text IN ('rai_app', 'rai_agronomist', 'rai_manager', 'rai_admin', 'rai_cohort') THEN
    RAISE EXCEPTION 'a session of tenant % may not register a season for tenant %', coalesce(current, '(none)'),
      tenant USING ERRCODE = '42501';
  END IF;
  IF want IS NOT NULL AND follows IS NOT NULL THEN
    RAISE EXCEPTION 'season %: give an ordinal or the season it follows, not both', season USING ERRCODE = '22023';
  END IF;
  IF season !~ '^[a-z0-9][a-z0-9-]{0,62}$' THEN
    RAISE EXCEPTION 'season id % is not a slug', season USING ERRCODE = '22023';
  END IF;
  PERFORM rai_tenant_xact_lock('calendar', tenant);
  SELECT c.ordinal INTO existing FROM season_calendar c WHERE c.tenant_id = tenant AND c.season_id = season;
  IF FOUND THEN
    IF want IS NOT NULL AND existing <> want THEN
      RAISE EXCEPTION 'season % of tenant % is at ordinal %, not %', season, tenant, existing, want
        USING ERRCODE = '22023';
    END IF;
    IF follows IS NOT NULL THEN
      SELECT c.season_id INTO previous FROM season_calendar c
       WHERE c.tenant_id = tenant AND c.ordinal < existing ORDER BY c.ordinal DESC LIMIT 1;
      IF previous IS DISTINCT FROM follows THEN
        RAISE EXCEPTION 'season % of tenant % follows %, not %', season, tenant, coalesce(previous, '(nothing)'),
          follows USING ERRCODE = '22023';
      END IF;
    END IF;
  ELSE
    IF follows IS NOT NULL THEN
      SELECT c.ordinal INTO after_ordinal FROM season_calendar c WHERE c.tenant_id = tenant AND c.season_id = follows;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'season % is not in tenant %''s calendar', follows, tenant USING ERRCODE = 'P0002';
      END IF;
      SELECT min(c.ordinal) INTO next_ordinal FROM season_calendar c
       WHERE c.tenant_id = tenant AND c.ordinal > after_ordinal;
      want := CASE WHEN next_ordinal IS NULL THEN floor(after_ordinal) + 1 ELSE (after_ordinal + next_ordinal) / 2 END;
    ELSIF want IS NULL THEN
      SELECT coalesce(floor(max(c.ordinal)), 0) + 1 INTO want FROM season_calendar c WHERE c.tenant_id = tenant;
    ELSE
      SELECT c.season_id INTO taken FROM season_calendar c WHERE c.tenant_id = tenant AND c.ordinal = want;
      IF FOUND THEN
        RAISE EXCEPTION 'ordinal % of tenant %''s calendar is already used by %', want, tenant, taken
          USING ERRCODE = '23505';
      END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM seasons s WHERE s.season_id = season) THEN
      LOCK TABLE seasons IN SHARE ROW EXCLUSIVE MODE;  -- one new registry id at a time
      IF NOT EXISTS (SELECT 1 FROM seasons s WHERE s.season_id = season) THEN
        SELECT CASE WHEN want = trunc(want) AND want < 2147483647
                         AND NOT EXISTS (SELECT 1 FROM seasons s WHERE s.ordinal = want) THEN want::integer
                    ELSE (SELECT coalesce(max(s.ordinal), 0) + 1 FROM seasons s) END
          INTO global_ordinal;
        INSERT INTO seasons (season_id, ordinal, label) VALUES (season, global_ordinal, coalesce(label, ''));
      END IF;
    END IF;
    INSERT INTO season_calendar (tenant_id, season_id, ordinal) VALUES (tenant, season, want);
  END IF;
  SELECT count(*) INTO pos FROM season_calendar c
   WHERE c.tenant_id = tenant
     AND c.ordinal <= (SELECT x.ordinal FROM season_calendar x WHERE x.tenant_id = tenant AND x.season_id = season);
  RETURN pos;
END $$;

REVOKE ALL ON FUNCTION rai_register_season(text, text, numeric, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rai_register_season(text, text, numeric, text, text) TO rai_app, rai_manager, rai_admin;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON seasons FROM rai_app, rai_agronomist, rai_manager, rai_admin;
GRANT SELECT ON season_calendar TO rai_app, rai_agronomist, rai_manager, rai_admin;
