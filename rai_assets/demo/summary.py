"""The per-tenant summary the demo prints, read back from the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from rai_assets.adapters.ledger import artifacts, loop
from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger import models as model_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import season_order
from rai_assets.serving.export import ServedAccuracy


@dataclass(frozen=True)
class TenantSummary:
    """What a tenant ended with after the demo (MAE in kg/ha on its latest evaluated season)."""

    tenant: str
    champion_version: int | None
    latest_season: str | None
    candidate_mae: float | None
    champion_mae: float | None
    naive_mae: float | None
    max_psi: float | None
    drift_verdict: str | None
    bias_verdict: str | None
    promotion: str | None
    dead_letters: int
    refit: str | None = None  # the latest decision on serving a refit of the champion's recipe, with its test


def summarize(ledger: LedgerResource, tenant: str) -> TenantSummary:
    """Collect the tenant's summary from the ledger."""
    with ledger.connect(tenant) as conn:
        champion = model_store.get_champion(conn, tenant)
        evaluated = [s for s in season_order(conn, tenant) if model_store.latest_model_for_partition(conn, tenant, s)]
        latest = evaluated[-1] if evaluated else None
        cand = champ = naive = psi = None
        drift = bias = promotion = None
        if latest is not None:
            model = model_store.latest_model_for_partition(conn, tenant, latest)
            body = artifacts.latest_evaluation(conn, tenant, latest, model.model_id) if model else None
            if body:
                comparison = body["comparison"]
                cand = comparison["candidate"]["mae"]
                naive = comparison["naive"]["mae"]
                champ = (comparison.get("champion") or {}).get("mae")
            report = artifacts.latest_signed(conn, "drift_reports", tenant, latest)
            if report:
                drift, psi = report["verdict"], report["max_psi"]
            audit = artifacts.latest_signed(conn, "bias_audits", tenant, latest)
            if audit:
                bias = "pass" if audit["passed"] else "fail"
            if model is not None:
                decisions = loop.promotion_decisions(conn, tenant, model.model_id)
                promotion = f"{decisions[-1]['stage']}: {decisions[-1]['decision']}" if decisions else model.state.value
        dead = event_store.count_dead_letters(conn, tenant)
        row = conn.execute("SELECT season_id, decision, sample_size, p_value FROM promotion_decisions"
                           " WHERE tenant_id = %s AND stage = 'refit' ORDER BY decision_id DESC LIMIT 1",
                           (tenant,)).fetchone()
    refit = None
    if row is not None:
        what = "refit serves" if row["decision"] == "refit" else str(row["decision"]).removeprefix("refit: ")
        refit = f"{row['season_id']}: {what} (n={row['sample_size']}, p={row['p_value']:.2g})"
    return TenantSummary(tenant, champion.mlflow_version if champion else None, latest, cand, champ, naive, psi,
                         drift, bias, promotion, dead, refit)


def plain_table(header: list[str], body: list[list[str]]) -> str:
    """A left-aligned plain-text table: the header, a rule of dashes, one line per row of ``body``."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def format_table(rows: list[TenantSummary]) -> str:
    """A plain-text table of summaries."""
    def f(v: float | None, fmt: str = "{:,.0f}") -> str:
        return "—" if v is None else fmt.format(v)

    header = ["tenant", "champion", "season", "cand MAE", "champ MAE", "naive MAE", "max PSI", "drift", "bias",
              "candidate", "dead letters", "refit of the champion's recipe"]
    body = [
        [r.tenant, f"v{r.champion_version}" if r.champion_version else "—", r.latest_season or "—",
         f(r.candidate_mae), f(r.champion_mae), f(r.naive_mae), f(r.max_psi, "{:.3f}"), r.drift_verdict or "—",
         r.bias_verdict or "—", r.promotion or "—", str(r.dead_letters), r.refit or "—"]
        for r in rows
    ]
    return plain_table(header, body)


def served_table(rows: list[ServedAccuracy], seasons: list[str]) -> str:
    """Served forecasts vs the naive baseline on ``seasons``: one row per tenant, then the cohort pooled.

    MAE in kg/ha, weighted by fields; "worse" counts tenant-seasons served worse than their naive MAE.
    """
    picked = [r for r in rows if r.season in seasons]
    header = ["tenant", "seasons", "fields", "served MAE", "naive MAE", "vs naive", "worse than naive", "served by"]

    def line(name: str, group: list[ServedAccuracy]) -> list[str]:
        n = sum(r.fields for r in group)
        served = sum(r.served_mae * r.fields for r in group) / n
        naive = sum(r.naive_mae * r.fields for r in group) / n
        sources = sorted({s for r in group for s in r.sources.split(",")})
        return [name, ",".join(sorted({r.season for r in group})), str(n), f"{served:,.0f}", f"{naive:,.0f}",
                f"{100 * (served - naive) / naive:+.1f} %", f"{sum(r.worse_than_naive for r in group)} of {len(group)}",
                "/".join(sources)]

    body = [line(t, [r for r in picked if r.tenant == t]) for t in sorted({r.tenant for r in picked})]
    if picked:
        body.append(line("all (pooled)", picked))
    return plain_table(header, body)
