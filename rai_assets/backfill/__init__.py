"""Season waves: a backfill over many tenants that launches a few Dagster runs per season, not one per
partition (issue 12 goal 4).

A *wave* is one run of ``season_wave_job`` that materializes every tenant × season asset of one season
for a list of tenants, tenant after tenant, in the asset graph's order — the same asset bodies as the
per-partition runs, recording one materialization and the asset checks' evaluations per partition. The
driver (:func:`rai_assets.backfill.driver.run_season_backfill`, ``rai-assets backfill``) launches a
season's waves only when the previous season's have finished, so each tenant's seasons stay in order
while tenants run side by side.
"""
