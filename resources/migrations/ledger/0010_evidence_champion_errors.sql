-- Promotion evidence keeps the champion's absolute errors next to the paired differences (issue 7). REQ: RET-7, RET-10
--
-- A refit of the champion's own recipe serves a season only on a non-inferiority test whose margin is a
-- share of the older fit's MAE: (1 + m)·|e_old| − |e_new| > 0 (a ratio margin). The differences alone
-- (|e_old| − |e_new|) cannot give it, so each evidence row may now carry |e_old| per field, in field order.
-- Rows recorded before this migration have NULL and are simply not used by that test.
ALTER TABLE public.promotion_evidence
  ADD COLUMN champion_abs_errors double precision[]
  CHECK (champion_abs_errors IS NULL OR cardinality(champion_abs_errors) = cardinality(differences));

-- The refit decision (may a refit of the champion's recipe serve the next season?) is recorded as its own stage.
ALTER TABLE public.promotion_decisions DROP CONSTRAINT promotion_decisions_stage_check;
ALTER TABLE public.promotion_decisions ADD CONSTRAINT promotion_decisions_stage_check
  CHECK (stage IN ('shadow', 'canary', 'champion', 'rollback', 'refit'));
