"""Cheaper pictures, same pixels (issue 12, goal 3). The pictures give their titles a fixed height
(``plots._TITLE_Y``) and pin their axis labels (``plots._pin_axis_labels``) instead of letting matplotlib search
the tick labels on every draw, and encode the PNG with Pillow directly (``plots._encode_png``: RGB, zlib level 3)
instead of ``savefig``. The contract tested here, for every input of every picture kind (5-digit and negative
values, long names, empty inputs, grids of panels): on the same drawn figure, the title and both axis labels sit
where matplotlib's automatic placement puts them, within a pixel; the PNG decodes to the pixels ``savefig``
draws."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from matplotlib import transforms
from matplotlib.figure import Figure
from PIL import Image

from rai_assets.presentation import plots
from rai_assets_tests.presentation.test_plot_reuse import KINDS

TOLERANCE_PX = 1.0


def _extents(fig: Figure) -> list[tuple[str, tuple[float, ...]]]:
    """(name, window extent x0, y0, x1, y1 in pixels) of every non-empty title and axis label of ``fig``."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    out = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        for name, text in (("title", ax.title), ("xlabel", ax.xaxis.label), ("ylabel", ax.yaxis.label)):
            if text.get_text():
                out.append((f"axes {i} {name} {text.get_text()!r}", tuple(text.get_window_extent(renderer).bounds)))
    return out


def _labelled_axes(fig: Figure) -> list[tuple[str, Any]]:
    """(name, axis) of every visible axis of ``fig`` with a non-empty label."""
    return [(f"axes {i} {axis.axis_name}label", axis) for i, ax in enumerate(fig.axes) if ax.get_visible()
            for axis in (ax.xaxis, ax.yaxis) if axis.label.get_text()]


def _automatic(fig: Figure) -> None:
    """Give ``fig``'s titles and axis labels back to matplotlib's automatic placement (as a new Axes has it)."""
    for ax in fig.axes:
        axes: Any = ax  # the flags are private to matplotlib
        axes._autotitlepos = True
        axes.xaxis._autolabelpos = True
        axes.yaxis._autolabelpos = True
        ax.xaxis.label.set_transform(transforms.blended_transform_factory(ax.transAxes,
                                                                          transforms.IdentityTransform()))
        ax.yaxis.label.set_transform(transforms.blended_transform_factory(transforms.IdentityTransform(),
                                                                          ax.transAxes))


@pytest.mark.parametrize("kind", list(KINDS))
def test_titles_and_axis_labels_sit_where_automatic_placement_puts_them(kind, monkeypatch):
    """Issue 12, goal 3: each input of the picture kind is drawn with the fixed placement, then the same figure
    again with matplotlib's automatic one; every title and axis label's window extent agrees within a pixel."""
    drawn: list[Figure] = []
    original = plots._png

    def spy(fig: Figure) -> bytes:
        png = original(fig)
        drawn.append(fig)
        return png

    monkeypatch.setattr(plots, "_png", spy)
    compared = 0
    with plots.fresh_figures():  # the figures are changed below: none of them is kept
        for render in KINDS[kind]():
            render()
            fig = drawn[-1]
            fixed = _extents(fig)
            automatic_before = [name for name, axis in _labelled_axes(fig) if axis._autolabelpos]
            assert not automatic_before, f"{kind}: {automatic_before} left to automatic placement"
            _automatic(fig)
            fig.canvas.draw()
            automatic = _extents(fig)
            assert [name for name, _ in fixed] == [name for name, _ in automatic]
            compared += len(fixed)
            for (name, got), (_, want) in zip(fixed, automatic, strict=True):
                assert max(abs(g - w) for g, w in zip(got, want, strict=True)) <= TOLERANCE_PX, (
                    f"{kind}: {name} at {got} (x0, y0, width, height px), automatic placement at {want}")
    assert compared >= len(drawn), f"{kind}: {compared} texts compared in {len(drawn)} pictures"


def test_pinned_x_label_is_not_automatic():
    """The fixed placement is in effect (else the test above compares automatic with automatic): after a
    render the automatic placement of the axis labels and of the title is off."""
    drawn: list[Figure] = []
    original = plots._png

    def spy(fig: Figure) -> bytes:
        drawn.append(fig)
        return original(fig)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "_png", spy)
        plots.residual_histogram([5000.0, 5400.0, 4800.0], [5100.0, 5200.0, 5000.0], unit="kg/ha")
    ax: Any = drawn[0].axes[0]
    assert ax.xaxis._autolabelpos is False
    assert ax.yaxis._autolabelpos is False
    assert ax._autotitlepos is False


@pytest.mark.parametrize("kind", list(KINDS))
def test_png_has_the_pixels_savefig_draws(kind, monkeypatch):
    """Issue 12, goal 3: each picture's PNG (Pillow, RGB, zlib level 3) decodes to the pixels of
    ``Figure.savefig(format="png")`` of the same figure (RGBA, opaque); the bytes stay within the inline-metadata
    limit (level 3 compresses a near-empty picture to ~4.4 kB where level 6 gives ~3.2 kB, a drawn one to about
    the same or fewer bytes: RGB has no alpha channel to store)."""
    original = plots._encode_png
    pairs: list[tuple[bytes, bytes]] = []

    def spy(fig: Figure) -> bytes:
        png = original(fig)
        reference = io.BytesIO()
        fig.savefig(reference, format="png", dpi=plots.DPI)
        pairs.append((png, reference.getvalue()))
        return png

    monkeypatch.setattr(plots, "_encode_png", spy)
    for render in KINDS[kind]():
        render()
    assert pairs
    for i, (png, reference) in enumerate(pairs):
        ours, theirs = Image.open(io.BytesIO(png)), Image.open(io.BytesIO(reference))
        assert ours.mode == "RGB", f"{kind} input {i}: mode {ours.mode}"
        assert ours.info["Software"] == theirs.info["Software"]
        expected = np.asarray(theirs.convert("RGBA"))
        assert (expected[..., 3] == 255).all(), f"{kind} input {i}: savefig drew transparent pixels"
        assert np.array_equal(np.asarray(ours), expected[..., :3]), f"{kind} input {i}: pixels differ"
        assert len(png) < 60_000, f"{kind} input {i}: {len(png)} bytes, too large for inline metadata"
    ours_total, theirs_total = (sum(len(pair[j]) for pair in pairs) for j in (0, 1))
    assert ours_total <= 1.25 * theirs_total, f"{kind}: {ours_total} bytes against savefig's {theirs_total}"
