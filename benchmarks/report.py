"""How every benchmark ends: its JSON result written, where it went, and the headline figure printed last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_result(out: Path, doc: dict[str, Any], headline: str) -> int:
    """Write ``doc`` to ``out`` as indented JSON (folders created), print ``results: <out>`` and then
    ``headline`` (``name=value unit``, the line the README's performance table quotes) as the last line.

    Returns:
        0, the benchmark's exit status.

    Raises:
        OSError: ``out`` cannot be written.
        TypeError: ``doc`` holds a value JSON cannot encode.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results: {out}")
    print(headline)
    return 0
