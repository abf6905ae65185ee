-- Every stored forecast names its unit (issue 10, item 7: a new crop is configuration). REQ: REG-10, GOV-4
--
-- A tenant's model spec names its target and the target's unit (rice-yield-v1: kg/ha; barley-yield-v1:
-- bu/ac), so a forecast's value is in the unit of the spec its model was trained under. The column
-- predicted_yield_kg_ha keeps its name (readers and exports depend on it) and now holds the value in the
-- unit recorded next to it. Every row before this migration was a rice forecast, in kg/ha.
ALTER TABLE yield_forecasts ADD COLUMN unit text NOT NULL DEFAULT 'kg/ha' CHECK (unit <> '');
COMMENT ON COLUMN yield_forecasts.predicted_yield_kg_ha IS
    'forecast value, in the unit of column unit (named for the first spec, rice-yield-v1, in kg/ha)';
COMMENT ON COLUMN yield_forecasts.unit IS 'unit of predicted_yield_kg_ha: the target.unit of the model''s spec';
