"""Presentation: pictures (and other human-facing renderings) of already-computed reports.

Kept out of :mod:`rai_assets.domain` (pure computation); assets import it, it imports nothing above it.
"""
