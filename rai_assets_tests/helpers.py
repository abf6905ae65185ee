"""Test helpers: a small slice of the real RiceFarms panel as uniquely named tenants."""

from __future__ import annotations

import pandas as pd

from rai_assets.demo.ricefarms import load_panel

_PANEL: pd.DataFrame | None = None


def panel_slice(villages: list[str], seasons: int, suffix: str) -> pd.DataFrame:
    """Rows of ``villages`` for the first ``seasons`` seasons, tenants renamed ``<village>-<suffix>``."""
    global _PANEL
    if _PANEL is None:
        _PANEL = load_panel()
    keep = sorted(_PANEL["season"].unique())[:seasons]
    part = _PANEL[_PANEL["tenant"].isin(villages) & _PANEL["season"].isin(keep)].copy()
    part["tenant"] = part["tenant"] + "-" + suffix
    return part
