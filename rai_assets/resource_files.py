"""Locating the versioned, non-code artifacts under ``resources/`` (contracts, specs, suites).

The directory is the repository's ``resources/`` folder; ``RAI_RESOURCES_DIR`` overrides it
(e.g. when the package is installed into an image and the folder is copied elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    """Absolute path of the ``resources/`` folder.

    Raises:
        FileNotFoundError: the folder does not exist (set ``RAI_RESOURCES_DIR``).
    """
    override = os.environ.get("RAI_RESOURCES_DIR")
    path = Path(override) if override else Path(__file__).resolve().parent.parent / "resources"
    if not path.is_dir():
        raise FileNotFoundError(f"resources folder {path} not found; set RAI_RESOURCES_DIR to its location")
    return path
