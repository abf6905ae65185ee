"""Pictures of the drift report, the bias audit and the evaluation, as PNG bytes (matplotlib).

Every function is pure: from the already-computed report dicts (``DriftAssessment.to_dict()``,
``BiasAudit.to_dict()``, ``ModelComparison.to_dict()``) or plain arrays to the bytes of one PNG of
:data:`FIGSIZE_IN` inches at :data:`DPI` dots per inch (480 × 280 pixels, RGB; typically 10-40 kB), small
enough to inline in Dagster materialization metadata (:func:`markdown_image`).

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no global
figure registry, no GUI backend, safe in threads; each has its own Agg canvas (matplotlib's "embedding in a
web application server" recipe). The canvases of one thread share one Agg renderer per picture size
(:class:`_SharedRendererCanvas`): every picture is the same size, ``draw`` clears the renderer first, and
matplotlib's text-metrics cache is keyed by the renderer, so tick labels, titles and axis labels measured for
one picture are not measured again for the next (byte-identical PNGs). Layouts are fixed margins
(:data:`MARGINS`, widened from the measured width of the tick labels the picture names itself), not
``tight_layout``, which costs a second pass over every tick (≈30 % of a picture).

Kept figures: building a Figure and its Axes, and the Tick objects an Axis makes while drawing, were about half
of a picture. Each thread therefore keeps one figure per picture kind and grid (``(kind, nrows, ncols)``:
everything that decides the figure's structure) and resets it before the next render of that kind
(:class:`_AxesDefaults`): artists, legend and containers removed, data and view limits back to a new Axes' (unit
limits, autoscaling on), prop cycle restarted, default locators and formatters (``set_xticks`` installs fixed
ones), title and axis labels emptied with their new font, the tick parameters ``tick_params`` changed and the
label properties of every tick made so far (size, rotation), visibility, and the ``subplots_adjust`` margins.
The pictures never call ``Axes.margins`` or change scales; sticky edges and hatches belong to their own artists,
removed with them. A figure is taken out of the cache while it is drawn and put back by :func:`_png` once saved,
so a render that raises leaves no half-drawn figure: the next one of that kind builds a new figure.
Why it is safe: ``rai_assets_tests/presentation/test_plot_reuse.py`` draws varied inputs of every picture (empty
ones, 1 to 4 panels, categorical and numeric panels, NaN intervals, undefined PSI, hatched groups, negative
values) in several orders and in two threads at once and requires the PNG bytes of a newly built figure
(:func:`fresh_figures`, for that comparison). The seven pictures: ≈440 → ≈330 ms wall, ≈380 → ≈305 ms CPU.

Fixed text placement: on every draw matplotlib searched the tick labels twice more to place text, about a sixth
of a picture. ``Axes._update_title_position`` lays out the y tick labels (``yaxis.get_tightbbox``) to lift the
title above any top tick labels; the pictures have none, so the titles are given their height
(:data:`_TITLE_Y`, ``set_title(y=...)``, matplotlib's usual pad above) and the search is skipped.
``Axis._update_label_position`` (even for an empty label) makes the ticks again and lays out every tick label to
put the axis label beyond the outermost; :func:`_pin_axis_labels` computes that place before the draw from what
decides it (the x tick labels: one line of digits, so their height is a line's of their font; the y tick
labels: the formatter's texts for the locator's ticks in view, measured as Agg measures them) and fixes it with
``Axis.set_label_coords``; where it cannot be derived (rotated tick labels, other scales) the label stays
automatic. The legends keep ``loc="best"``: its search is about 1 % of a picture, and a fixed corner could
cover data. The PNG is encoded by Pillow directly (:func:`_encode_png`): RGB, since the white figure is opaque,
at zlib level 3 (:data:`_PNG_COMPRESS_LEVEL`) instead of ``savefig``'s RGBA at level 6, half the encoding time.
Every PNG has the pixels it had before (the 39 inputs of the reuse tests and the benchmark's seven compared
pixel for pixel with the previous module); ``rai_assets_tests/presentation/test_plot_placement.py`` checks
every title and axis label against matplotlib's automatic placement on the same figure (within a pixel) and
every PNG against ``savefig``'s pixels. ``benchmarks/pictures.py``, medians of 4 alternating runs each, old →
new, ms: PSI bars 20.6 → 15.6, distributions 60.8 → 48.4, season covariates 27.3 → 20.9, subgroup MAE
26.6 → 21.0, predicted vs actual 33.5 → 26.0, residuals 27.8 → 20.6, MAE comparison 22.4 → 16.2; the seven
219 → 169 ms (-23 %), 93.5 → 88.5 kB.

Missing data (an empty subgroup, a NaN interval, no season-level covariate) is drawn as such — never an
exception; only malformed input (arrays of different lengths) raises ``ValueError``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text
from matplotlib.transforms import ScaledTranslation
from numpy.typing import ArrayLike
from PIL.PngImagePlugin import PngInfo

#: Figure size in inches (width, height).
FIGSIZE_IN = (6.0, 3.5)
#: Resolution of the PNG, dots per inch.
DPI = 80
#: zlib level of the PNGs: 3 encodes the pictures in about half the time of Pillow's default (6) and, with the
#: RGB mode, gives ~5 % fewer bytes than ``savefig``'s RGBA at level 6 (benchmarks/pictures.py).
_PNG_COMPRESS_LEVEL = 3
#: Margins of a single-axes picture (fractions of the figure): room for 5-digit tick labels at 7 pt, an axis
#: label at 8 pt and a title at 9 pt; pictures whose tick labels are names widen ``left``/``bottom`` to fit them.
MARGINS = {"left": 0.13, "right": 0.97, "bottom": 0.16, "top": 0.9}
#: Room (pixels) beside a tick label: the tick (3.5 pt), its pad (3.5 pt) and the figure's edge.
_TICK_ROOM_PX = 14.0
#: How many features the reference-vs-current histograms show (the largest PSI first).
TOP_FEATURES = 4
#: How many season-level covariates the ratio-over-seasons plot shows (largest |log ratio| first).
TOP_COVARIATES = 5

#: The titles' height above the axes (axes fraction; plus matplotlib's usual pad, :rc:`axes.titlepad`). Given, it
#: spares matplotlib's search for top tick labels to lift the title over (``Axes._update_title_position``); the
#: pictures have none, so the automatic placement puts the title here too.
_TITLE_Y = 1.0

_REFERENCE_COLOUR = "#4c72b0"
_CURRENT_COLOUR = "#dd8452"
_LEVEL_COLOURS = {"stable": "#55a868", "warning": "#dd8452", "shift": "#c44e52"}
_ROLE_COLOURS = {"candidate": "#4c72b0", "champion": "#55a868", "naive": "#8c8c8c", "cobb_douglas": "#937860"}
_ROLE_LABELS = {"candidate": "candidate", "champion": "champion", "naive": "naive", "cobb_douglas": "Cobb-Douglas"}


_renderers = threading.local()  # (width px, height px, dpi) → RendererAgg, per thread


class _SharedRendererCanvas(FigureCanvasAgg):
    """An Agg canvas that draws with its thread's renderer for its size instead of a renderer of its own.

    Matplotlib caches text metrics per renderer (``matplotlib.text._get_text_metrics_with_cache``, keyed by a
    weak reference to it); a renderer per figure measures every label again. ``FigureCanvasAgg.draw`` clears
    the renderer before drawing, so a shared one gives the same pixels. Per thread: a renderer holds the
    picture being drawn.
    """

    def get_renderer(self) -> RendererAgg:
        """The calling thread's renderer for this figure's size and resolution (made on first use)."""
        width, height = self.get_width_height(physical=True)
        key = (width, height, self.figure.dpi)
        cache: dict[tuple[int, int, float], RendererAgg] = _renderers.__dict__.setdefault("by_size", {})
        renderer = cache.get(key)
        if renderer is None:
            renderer = cache[key] = RendererAgg(width, height, self.figure.dpi)
        self.renderer = renderer
        self._lastKey = key
        return renderer


_DEFAULT_SUBPLOT_PARAMS = ("left", "right", "bottom", "top", "wspace", "hspace")
_kept = threading.local()  # per thread: "figures": (kind, nrows, ncols) → _KeptFigure; "fresh": bool


class _AxesDefaults:
    """What a freshly built :class:`~matplotlib.axes.Axes` looks like, recorded once so that a kept one can be put
    back: its title's and axis labels' text properties, and per axis the keyword arguments new ticks are made with
    and a new tick (its labels' properties).

    ``_major_tick_kw``, ``_minor_tick_kw`` and ``_get_tick`` are private to :class:`matplotlib.axis.Axis` (what
    ``tick_params`` changes, and how an axis makes a tick); the byte-identity tests of
    ``rai_assets_tests/presentation/test_plot_reuse.py`` fail if a matplotlib release changes them.
    """

    def __init__(self, ax: Axes) -> None:
        self.texts = [(text, _text_like(text)) for text in (ax.title, ax.xaxis.label, ax.yaxis.label)]
        axes: list[Any] = [ax.xaxis, ax.yaxis]  # Any: the private attributes are not in matplotlib's stubs
        self.axes = [(axis, dict(axis._major_tick_kw), dict(axis._minor_tick_kw), axis._get_tick(major=True))
                     for axis in axes]

    def reset(self, ax: Axes) -> None:
        """Undo on ``ax`` everything the picture functions change: artists, legend, containers, data and view
        limits and autoscaling, prop cycle, locators and formatters, title and axis labels, tick label
        properties (on every tick made so far) and tick parameters, visibility."""
        ax.set_visible(True)
        for artist in [*ax.artists, *ax.collections, *ax.images, *ax.lines, *ax.patches, *ax.tables, *ax.texts]:
            artist.remove()  # their sticky edges and hatches go with them
        if ax.legend_ is not None:
            ax.legend_.remove()
        ax.containers.clear()
        ax.relim()  # no artists left: null data limits, existing ones ignored
        ax.set_prop_cycle(None)
        ax.set_xscale("linear")  # new default locators and formatters (set_xticks installs fixed ones)
        ax.set_yscale("linear")
        ax.set_xlim(0.0, 1.0, emit=False, auto=True)  # as Axes.clear leaves them: unit limits, autoscale on
        ax.set_ylim(0.0, 1.0, emit=False, auto=True)
        for text, default in self.texts:
            text.set_text("")
            text.update_from(default)  # also the transform :func:`_pin_axis_labels` replaced
        ax._autotitlepos = True  # type: ignore[attr-defined]  # as a new Axes: set_title(y=...) turned it off
        ax.xaxis._autolabelpos = True  # type: ignore[attr-defined]  # set_label_coords turned them off
        ax.yaxis._autolabelpos = True  # type: ignore[attr-defined]
        for axis, major_kw, minor_kw, tick in self.axes:
            axis._major_tick_kw = dict(major_kw)  # what new ticks are made with (tick_params changes it)
            axis._minor_tick_kw = dict(minor_kw)
            for existing in axis.majorTicks:  # the pictures change tick labels only (size, rotation): reset those
                existing.label1.update_from(tick.label1)
                existing.label2.update_from(tick.label2)


def _text_like(text: Text) -> Text:
    """A detached :class:`~matplotlib.text.Text` with ``text``'s properties (font, colour, alignment, rotation)."""
    copy = Text()
    copy.update_from(text)
    return copy


class _KeptFigure:
    """A figure of one picture kind and grid, with what its axes looked like when new."""

    def __init__(self, nrows: int, ncols: int) -> None:
        self.figure = Figure(figsize=FIGSIZE_IN, dpi=DPI)
        _SharedRendererCanvas(self.figure)  # one renderer measures and draws; savefig does not switch canvases
        self.subplot_params = {name: getattr(self.figure.subplotpars, name) for name in _DEFAULT_SUBPLOT_PARAMS}
        self.figure.subplots_adjust(**MARGINS)
        self.axes = self.figure.subplots(nrows, ncols, squeeze=False)
        self.defaults = [_AxesDefaults(ax) for ax in self.axes.ravel()]


def _figure(kind: str, nrows: int = 1, ncols: int = 1, **margins: float) -> tuple[Figure, np.ndarray]:
    """A blank figure of ``nrows`` × ``ncols`` axes for the picture ``kind``, margins :data:`MARGINS` updated by
    ``margins``: this thread's kept one for ``(kind, nrows, ncols)`` reset, or a new one.

    The figure is taken out of the thread's cache until :func:`_png` has saved it: a render that raises on the
    way leaves no half-drawn figure behind (the next render of that kind builds a new one)."""
    key = (kind, nrows, ncols)
    figures: dict[tuple[str, int, int], _KeptFigure] = _kept.__dict__.setdefault("figures", {})
    kept = None if getattr(_kept, "fresh", False) else figures.pop(key, None)
    if kept is None:
        kept = _KeptFigure(nrows, ncols)
    else:
        for ax, defaults in zip(kept.axes.ravel(), kept.defaults, strict=True):
            defaults.reset(ax)
    kept.figure.subplots_adjust(**{**kept.subplot_params, **MARGINS, **margins})
    in_use: dict[int, tuple[tuple[str, int, int], _KeptFigure]] = _kept.__dict__.setdefault("in_use", {})
    for stale in [fig_id for fig_id, (used, _) in in_use.items() if used == key]:
        del in_use[stale]  # the figure of a render of this kind that raised: dropped
    in_use[id(kept.figure)] = (key, kept)
    return kept.figure, kept.axes


@contextlib.contextmanager
def fresh_figures() -> Iterator[None]:
    """Within the block, this thread's pictures are drawn on newly built figures, as before figures were kept,
    and none is kept. For the tests that compare both ways byte for byte; the pictures do not need it."""
    previous = getattr(_kept, "fresh", False)
    _kept.fresh = True
    try:
        yield
    finally:
        _kept.fresh = previous


def _label_margin(fig: Figure, labels: Sequence[str], fontsize: float, *, axis: str,
                  rotation_deg: float = 0.0, at_least: float = 0.0) -> float:
    """The margin (fraction of the figure's width for ``axis="y"``, height for ``"x"``) that the tick labels
    ``labels`` at ``fontsize`` pt need, rotated by ``rotation_deg``; never below ``at_least``, at most 0.6."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    font = FontProperties(size=fontsize)
    extent = 0.0
    for label in labels:
        w, h, _ = renderer.get_text_width_height_descent(label, font, ismath=False)
        angle = math.radians(rotation_deg)
        extent = max(extent, w * math.cos(angle) + h * math.sin(angle) if axis == "y"
                     else w * math.sin(angle) + h * math.cos(angle))
    size = fig.bbox.width if axis == "y" else fig.bbox.height
    return min(0.6, max(at_least, (extent + _TICK_ROOM_PX) / size))


def _grid_layout(fig: Figure, nrows: int, ncols: int, categories: Sequence[str]) -> dict[str, float]:
    """``subplots_adjust`` arguments for a grid of small panels: titles at 8 pt, tick labels at 6 pt (numbers,
    or the names of ``categories`` rotated by 30°), as fractions of the figure (gaps: of a panel)."""
    below = max(_label_margin(fig, ["0000"], 6, axis="x"),
                _label_margin(fig, categories, 6, axis="x", rotation_deg=30) if categories else 0.0)
    above = 20.0 / fig.bbox.height  # a title at 8 pt and its pad
    left = _label_margin(fig, ["0.00"], 6, axis="y")
    if categories:  # a centred rotated name reaches left of its tick by half its width
        left = max(left, _label_margin(fig, categories, 6, axis="y", rotation_deg=30) / 2)
    top, bottom, right = 1.0 - above, below, 0.98
    panel_h = (top - bottom - (below + above) * (nrows - 1)) / nrows
    panel_w = (right - left - left * (ncols - 1)) / ncols
    return {"left": left, "right": right, "bottom": bottom, "top": top,
            "hspace": (below + above) / panel_h, "wspace": left / panel_w}


@functools.lru_cache(maxsize=4096)
def _text_extent_px(text: str, font: FontProperties, dpi: float) -> tuple[float, float]:
    """``(width, height)`` in pixels of one line ``text`` in ``font`` at ``dpi``, as Agg measures it for a
    :class:`~matplotlib.text.Text`'s bounding box (the height of ``"lp"`` is the one matplotlib gives a line of
    digits). ``font`` must not change afterwards (pass a copy)."""
    width, height, _ = RendererAgg(1, 1, dpi).get_text_width_height_descent(text, font, ismath=False)
    return float(width), float(height)


def _tick_pad_pt(axis: Any) -> float:
    """Points from the axes' edge to a major tick label of ``axis``: the tick's length outside plus its pad."""
    tick = axis.majorTicks[0]
    return float(tick.get_pad()) + float(tick.get_tick_padding())  # get_pad: the pad in points (stubs: None)


def _pin_axis_labels(ax: Axes) -> None:
    """Fix the positions of ``ax``'s axis labels where matplotlib's automatic placement puts them, without its
    search: automatic placement (``Axis._update_label_position``, on every draw, even of an empty label) makes
    the ticks a second time and lays out every tick label to find the outermost one.

    - An empty label is pinned anywhere (nothing is drawn).
    - The x label: every x tick label under an x label here is one unrotated line of digits at one font size,
      so the lowest reaches ``tick length + pad`` below the axes plus the height matplotlib gives a line of
      that font (that of ``"lp"``, which no digit exceeds); the label goes ``labelpad`` below.
    - The y label: the tick labels the draw will show are the formatter's texts for the locator's ticks inside
      the view interval (what ``Axis._update_ticks`` computes); the widest of them, measured as Agg measures a
      ``Text`` (:func:`_text_extent_px`), gives the left edge; the label goes ``labelpad`` left of it.

    A label stays automatic when its tick labels are rotated or hidden or none is in view, or the scale is not
    linear. ``rai_assets_tests/presentation/test_plot_placement.py`` compares every label and title with
    matplotlib's own placement on the same figure."""
    if not ax.get_visible():
        return
    figure: Any = ax.get_figure(root=True)  # Any: a Figure here (the stubs also allow None)
    xaxis: Any = ax.xaxis  # Any: majorTicks' Tick.get_pad is typed None in the stubs
    yaxis: Any = ax.yaxis
    x_tick, y_tick = xaxis.majorTicks[0].label1, yaxis.majorTicks[0].label1
    if not xaxis.label.get_text():
        xaxis.set_label_coords(0.5, 0.0)
    elif x_tick.get_rotation() == 0.0 and x_tick.get_visible():
        _, line_px = _text_extent_px("lp", x_tick.get_fontproperties().copy(), figure.dpi)
        below_in = (_tick_pad_pt(xaxis) + xaxis.labelpad) / 72 + line_px / figure.dpi
        xaxis.set_label_coords(0.5, 0.0, transform=ax.transAxes + ScaledTranslation(0.0, -below_in,
                                                                                    figure.dpi_scale_trans))
    if not yaxis.label.get_text():
        yaxis.set_label_coords(0.0, 0.5)
        return
    if y_tick.get_rotation() != 0.0 or ax.get_yscale() != "linear":
        return
    locs = yaxis.get_majorticklocs()  # autoscales first, as the draw would
    texts = yaxis.major.formatter.format_ticks(locs)
    low, high = sorted(yaxis.get_view_interval())
    slack = (high - low) * 1e-10  # matplotlib.transforms._interval_contains_close, as Axis._update_ticks
    ticks = yaxis.get_major_ticks(len(locs))  # made as the draw makes them: fonts copied from the first
    widths = [_text_extent_px(text, tick.label1.get_fontproperties().copy(), figure.dpi)[0]
              for tick, loc, text in zip(ticks, locs, texts, strict=True)
              if low - slack <= loc <= high + slack and text and tick.label1.get_visible()]
    if not widths:
        return
    left_in = (_tick_pad_pt(yaxis) + yaxis.labelpad) / 72 + max(widths) / figure.dpi
    yaxis.set_label_coords(0.0, 0.5, transform=ax.transAxes + ScaledTranslation(-left_in, 0.0,
                                                                               figure.dpi_scale_trans))


def _encode_png(fig: Figure) -> bytes:
    """Draw ``fig`` on its canvas and encode the pixels as PNG: RGB when every pixel is opaque (the pictures'
    white figure), else RGBA; zlib level :data:`_PNG_COMPRESS_LEVEL`; matplotlib's ``Software`` text and the
    resolution (:data:`DPI`) as ``savefig`` writes them.

    What ``fig.savefig(format="png")`` does for these figures (same dpi, own face colour, no bbox or layout
    engine), with Pillow called directly to choose the mode and compression: the same pixels."""
    canvas: Any = fig.canvas  # a _SharedRendererCanvas (FigureCanvasAgg); the stubs say FigureCanvasBase
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    image = PIL.Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    extrema: Any = image.getextrema()  # per band (min, max); the stubs also allow one band's
    if extrema[3] == (255, 255):
        image = image.convert("RGB")
    info = PngInfo()
    info.add_text("Software", f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/")
    buffer = io.BytesIO()
    image.save(buffer, format="png", dpi=(DPI, DPI), pnginfo=info, compress_level=_PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _png(fig: Figure) -> bytes:
    """The PNG bytes of ``fig`` (:func:`_encode_png`, axis labels pinned first: :func:`_pin_axis_labels`);
    then ``fig`` goes back to its thread's cache (unless drawing fresh)."""
    in_use: dict[int, tuple[tuple[str, int, int], _KeptFigure]] = _kept.__dict__.setdefault("in_use", {})
    key, kept = in_use.pop(id(fig))
    for ax in fig.axes:
        _pin_axis_labels(ax)
    png = _encode_png(fig)
    if not getattr(_kept, "fresh", False):
        _kept.__dict__.setdefault("figures", {})[key] = kept
    return png


def _nothing(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None (None, NaN, inf, strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def markdown_image(title: str, png: bytes) -> str:
    """Markdown that shows ``png`` inline: ``![title](data:image/png;base64,...)``.

    Dagster's UI renders it in ``MetadataValue.md`` entries (the approach of Dagster's own tutorial);
    the base64 text is 4/3 of the PNG's size.
    """
    alt = title.replace("[", "(").replace("]", ")")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def psi_bars(features: Sequence[Mapping[str, Any]], *, psi_warning: float | None = None,
             psi_actionable: float | None = None) -> bytes:
    """Horizontal bars of each feature's PSI, coloured by its ``psi_level``, with the threshold lines.

    Args:
        features: ``DriftAssessment.to_dict()["features"]``: dicts with ``feature``, ``psi`` (unitless,
            may be None when undefined), ``psi_level`` and ``actionable``; drawn largest PSI on top.
        psi_warning, psi_actionable: the tenant's thresholds (dashed lines), when given.

    Returns:
        PNG bytes. An empty ``features`` gives a picture that says so.
    """
    rows = [(str(f.get("feature")), _finite(f.get("psi")), str(f.get("psi_level", "")), bool(f.get("actionable")))
            for f in features]
    rows.sort(key=lambda r: -1.0 if r[1] is None else r[1])
    names = [f"{name} *" if actionable else name for name, _, _, actionable in rows]
    fig, axes = _figure("psi_bars", right=0.88)  # room for the threshold labels
    ax = axes[0, 0]
    if not rows:
        _nothing(ax, "no features compared")
        return _png(fig)
    fig.subplots_adjust(left=_label_margin(fig, names, 7, axis="y", at_least=0.05))
    values = [0.0 if psi is None else psi for _, psi, _, _ in rows]
    colours = [_LEVEL_COLOURS.get(level, "#8c8c8c") for _, _, level, _ in rows]
    ax.barh(range(len(rows)), values, color=colours)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    for y, (_, psi, _, _) in enumerate(rows):
        if psi is None:
            ax.text(0, y, " undefined", va="center", fontsize=7)
    for value, label in ((psi_warning, "warning"), (psi_actionable, "actionable")):
        if _finite(value) is not None:
            ax.axvline(float(value), linestyle="--", linewidth=1, color="#333333")  # type: ignore[arg-type]
            ax.text(float(value), len(rows) - 0.5, f" {label}", fontsize=7, va="top")  # type: ignore[arg-type]
    ax.set_xlabel("PSI (unitless)", fontsize=8)
    ax.set_title("Population Stability Index per feature (* actionable)", fontsize=9, y=_TITLE_Y)
    ax.tick_params(axis="x", labelsize=7)
    return _png(fig)


def _numeric(values: np.ndarray) -> np.ndarray | None:
    try:
        out = np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        return None
    return out[np.isfinite(out)]


def distribution_panels(reference: Mapping[str, ArrayLike], current: Mapping[str, ArrayLike],
                        features: Sequence[str]) -> bytes:
    """Reference-vs-current distributions of up to :data:`TOP_FEATURES` features, one panel each.

    Numeric columns: overlaid density histograms on common bins (the reference's range and the current
    one's); other columns: side-by-side bars of each category's share (the 8 most frequent).

    Args:
        reference, current: column name → values (e.g. a ``DataFrame``'s columns); missing values dropped.
        features: the features to draw, in order (e.g. largest PSI first); those absent from either
            mapping are skipped.

    Returns:
        PNG bytes; without any drawable feature a picture that says so.
    """
    names = [f for f in features if f in reference and f in current][:TOP_FEATURES]
    ncols = max(1, min(2, len(names)))
    nrows = max(1, math.ceil(len(names) / 2))
    fig, axes = _figure("distribution_panels", nrows, ncols)
    flat = list(axes.ravel())
    categories: list[str] = []  # tick labels that are names: the layout leaves room for them
    if not names:
        _nothing(flat[0], "no features to compare")
        return _png(fig)
    for ax, name in zip(flat, names, strict=False):
        ref_raw, cur_raw = np.asarray(reference[name]), np.asarray(current[name])
        ref, cur = _numeric(ref_raw), _numeric(cur_raw)
        if ref is not None and cur is not None and ref_raw.dtype.kind in "biuf" and cur_raw.dtype.kind in "biuf":
            both = np.concatenate([ref, cur])
            if both.size == 0:
                _nothing(ax, f"{name}: no values")
                continue
            lo, hi = float(both.min()), float(both.max())
            bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 21)
            if ref.size:
                ax.hist(ref, bins=bins, density=True, alpha=0.55, color=_REFERENCE_COLOUR, label="reference",
                        histtype="stepfilled")  # one polygon, not a rectangle per bin: same picture, cheaper
            if cur.size:
                ax.hist(cur, bins=bins, density=True, alpha=0.55, color=_CURRENT_COLOUR, label="current",
                        histtype="stepfilled")
            ax.set_yticks([])
        else:
            ref_s = [str(v) for v in ref_raw if v is not None and v == v]
            cur_s = [str(v) for v in cur_raw if v is not None and v == v]
            cats, counts = np.unique(np.array(ref_s + cur_s, dtype=object), return_counts=True)
            top = [str(c) for c in cats[np.argsort(-counts)][:8]]
            if not top:
                _nothing(ax, f"{name}: no values")
                continue
            x = np.arange(len(top))
            for offset, values, colour, label in ((-0.2, ref_s, _REFERENCE_COLOUR, "reference"),
                                                  (0.2, cur_s, _CURRENT_COLOUR, "current")):
                share = [values.count(c) / len(values) if values else 0.0 for c in top]
                ax.bar(x + offset, share, width=0.4, color=colour, label=label)
            ax.set_xticks(x, top, fontsize=6, rotation=30)
            categories.extend(top)
        ax.set_title(name, fontsize=8, y=_TITLE_Y)
        ax.tick_params(labelsize=6)
    for ax in flat[len(names):]:
        ax.set_visible(False)
    if flat[0].get_legend_handles_labels()[0]:
        flat[0].legend(fontsize=6)
    fig.subplots_adjust(**_grid_layout(fig, nrows, ncols, categories))
    return _png(fig)


def season_covariate_ratios(season_level: Sequence[Mapping[str, Any]], *,
                            season_ratio_actionable: float | None = None) -> bytes:
    """Season-level covariates over seasons, each as its ratio to the reference seasons' mean.

    Args:
        season_level: ``DriftAssessment.to_dict()["season_level"]``: dicts with ``feature``, ``history``
            (``[{"season", "value", "n"}]``, calendar order), ``current_season`` and ``current_value``
            (column unit); the first :data:`TOP_COVARIATES` are drawn (the report ranks them).
        season_ratio_actionable: the band ``1 ± season_ratio_actionable`` is shaded when given.

    Returns:
        PNG bytes: one line per covariate over the reference seasons then the current one (ratio 1 = the
        reference mean); a picture that says so when there is none.
    """
    fig, axes = _figure("season_covariate_ratios")
    ax = axes[0, 0]
    covariates = list(season_level)[:TOP_COVARIATES]
    if not covariates:
        _nothing(ax, "no season-level covariates")
        return _png(fig)
    seasons: list[str] = []
    for cov in covariates:
        for label in [*(str(h.get("season")) for h in cov.get("history", [])), str(cov.get("current_season"))]:
            if label not in seasons:
                seasons.append(label)
    position = {label: i for i, label in enumerate(seasons)}
    for cov in covariates:
        history = [(str(h.get("season")), _finite(h.get("value"))) for h in cov.get("history", [])]
        reference = [v for _, v in history if v is not None]
        mean = float(np.mean(reference)) if reference else None
        points = [*history, (str(cov.get("current_season")), _finite(cov.get("current_value")))]
        xs = [position[s] for s, v in points if v is not None and mean]
        ys = [v / mean for _, v in points if v is not None and mean]
        if xs:
            line = ax.plot(xs, ys, marker="o", markersize=3, linewidth=1, label=str(cov.get("feature")))
            ax.plot(xs[-1:], ys[-1:], marker="o", markersize=6, color=line[0].get_color())
    ax.axhline(1.0, color="#333333", linewidth=0.8)
    if _finite(season_ratio_actionable) is not None:
        r = float(season_ratio_actionable)  # type: ignore[arg-type]
        ax.axhspan(1.0 - r, 1.0 + r, color="#dddddd", alpha=0.5, label=f"±{r:.0%}")
    ax.set_xticks(range(len(seasons)), seasons, fontsize=6, rotation=30)
    fig.subplots_adjust(bottom=_label_margin(fig, seasons, 6, axis="x", rotation_deg=30, at_least=0.1))
    ax.set_ylabel("ratio to reference mean", fontsize=8)
    ax.set_title("Season-level covariates over seasons (last point: current season)", fontsize=9, y=_TITLE_Y)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=6, loc="best")
    return _png(fig)


def subgroup_mae(subgroups: Sequence[Mapping[str, Any]], *, unit: str) -> bytes:
    """Each subgroup's groups' MAE (in ``unit``) with their 95 % bootstrap intervals as error bars.

    Args:
        subgroups: ``BiasAudit.to_dict()["subgroups"]``: dicts with ``subgroup``, ``verdict`` and
            ``groups`` (dicts with ``group``, ``n``, ``mae``, ``mae_ci`` = ``[low, high]`` or None,
            ``status``). A group with ``status`` ≠ ``"ok"`` is drawn hatched and grey; an undefined
            interval (None or NaN) draws no error bar; a subgroup without groups is listed as "no rows".
        unit: the target unit of the model's spec (``ModelSpec.target_unit``, e.g. kg/ha), for the axis.

    Returns:
        PNG bytes: horizontal bars, subgroups top to bottom; a picture that says so without subgroups.
    """
    fig, axes = _figure("subgroup_mae")
    ax = axes[0, 0]
    labels: list[str] = []
    values: list[float] = []
    errors: list[tuple[float, float]] = []
    colours: list[str] = []
    hatches: list[str] = []
    palette = ["#4c72b0", "#55a868", "#dd8452", "#8172b3", "#937860", "#da8bc3"]
    for i, sub in enumerate(subgroups):
        groups = list(sub.get("groups") or [])
        if not groups:
            labels.append(f"{sub.get('subgroup')}: no rows")
            values.append(0.0)
            errors.append((0.0, 0.0))
            colours.append("#cccccc")
            hatches.append("")
            continue
        for g in groups:
            mae = _finite(g.get("mae"))
            ci = g.get("mae_ci") or (None, None)
            low, high = (_finite(ci[0]), _finite(ci[1])) if len(ci) == 2 else (None, None)
            ok = g.get("status") == "ok"
            labels.append(f"{sub.get('subgroup')}={g.get('group')} (n={g.get('n')})")
            values.append(0.0 if mae is None else mae)
            errors.append((mae - low, high - mae) if mae is not None and low is not None and high is not None
                          else (0.0, 0.0))
            colours.append(palette[i % len(palette)] if ok else "#bbbbbb")
            hatches.append("" if ok else "//")
    if not labels:
        _nothing(ax, "no subgroups audited")
        return _png(fig)
    y = np.arange(len(labels))[::-1]
    bars = ax.barh(y, values, color=colours, xerr=np.array(errors).T.clip(min=0), capsize=2,
                   error_kw={"elinewidth": 0.8})
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    ax.set_yticks(y, labels, fontsize=6)
    fig.subplots_adjust(left=_label_margin(fig, labels, 6, axis="y", at_least=0.05))
    ax.set_xlabel(f"MAE ({unit}), 95 % bootstrap interval; hatched: too few rows", fontsize=7)
    ax.set_title("Out-of-sample MAE per subgroup", fontsize=9, y=_TITLE_Y)
    ax.tick_params(axis="x", labelsize=7)
    return _png(fig)


def _paired(actual: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype="float64").ravel()
    p = np.asarray(predicted, dtype="float64").ravel()
    if a.shape != p.shape:
        raise ValueError(f"actual has {a.size} values but predicted has {p.size}: they must pair up")
    keep = np.isfinite(a) & np.isfinite(p)
    return a[keep], p[keep]


def predicted_vs_actual(actual: ArrayLike, predicted: ArrayLike, *, unit: str, label: str = "candidate") -> bytes:
    """Scatter of predicted against actual yield (in ``unit``) with the ``y = x`` line.

    Args:
        actual, predicted: shape ``(n,)``, in ``unit``; pairs with a non-finite value are dropped.
        unit: the target unit of the model's spec (``ModelSpec.target_unit``), for the axes.
        label: the model's name in the legend.

    Raises:
        ValueError: ``actual`` and ``predicted`` differ in length.
    """
    a, p = _paired(actual, predicted)
    fig, axes = _figure("predicted_vs_actual")
    ax = axes[0, 0]
    if a.size == 0:
        _nothing(ax, "no predictions to compare")
        return _png(fig)
    lo, hi = float(min(a.min(), p.min())), float(max(a.max(), p.max()))
    ax.plot([lo, hi], [lo, hi], color="#333333", linewidth=0.8, linestyle="--", label="y = x")
    ax.scatter(a, p, s=10, alpha=0.7, color=_ROLE_COLOURS["candidate"], label=f"{label} (n={a.size})")
    ax.set_xlabel(f"actual yield ({unit})", fontsize=8)
    ax.set_ylabel(f"predicted ({unit})", fontsize=8)
    ax.set_title("Predicted vs actual, held-out season", fontsize=9, y=_TITLE_Y)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def residual_histogram(actual: ArrayLike, predicted: ArrayLike, *, unit: str) -> bytes:
    """Histogram of the residuals ``predicted - actual`` (in ``unit``, the spec's target unit) with their mean marked.

    Raises:
        ValueError: ``actual`` and ``predicted`` differ in length.
    """
    a, p = _paired(actual, predicted)
    fig, axes = _figure("residual_histogram")
    ax = axes[0, 0]
    if a.size == 0:
        _nothing(ax, "no residuals")
        return _png(fig)
    residuals = p - a
    ax.hist(residuals, bins=min(30, max(5, residuals.size // 3)), color=_ROLE_COLOURS["candidate"], alpha=0.8,
            histtype="stepfilled")
    ax.axvline(0.0, color="#333333", linewidth=0.8)
    mean = float(residuals.mean())
    ax.axvline(mean, color="#c44e52", linestyle="--", linewidth=1, label=f"mean {mean:+.0f}")
    ax.set_xlabel(f"residual = predicted - actual ({unit})", fontsize=8)
    ax.set_ylabel("fields", fontsize=8)
    ax.set_title("Residuals, held-out season", fontsize=9, y=_TITLE_Y)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def mae_comparison(comparison: Mapping[str, Any], *, unit: str) -> bytes:
    """MAE bars (in ``unit``) of candidate, champion, naive baseline and Cobb-Douglas on the same rows.

    Args:
        comparison: ``ModelComparison.to_dict()``: per role ``None`` or a dict with ``mae``; a missing
            model is shown as "n/a".
        unit: the target unit of the model's spec (``ModelSpec.target_unit``), for the axis.
    """
    fig, axes = _figure("mae_comparison")
    ax = axes[0, 0]
    roles = list(_ROLE_LABELS)
    maes = [_finite((comparison.get(role) or {}).get("mae")) for role in roles]
    x = np.arange(len(roles))
    ax.bar(x, [0.0 if m is None else m for m in maes], color=[_ROLE_COLOURS[r] for r in roles])
    for xi, mae in zip(x, maes, strict=True):
        ax.text(xi, 0.0 if mae is None else mae, "n/a" if mae is None else f"{mae:.0f}", ha="center",
                va="bottom", fontsize=7)
    ax.set_xticks(x, [_ROLE_LABELS[r] for r in roles], fontsize=8)
    ax.set_ylabel(f"MAE ({unit})", fontsize=8)
    ax.set_title("Held-out MAE: candidate vs champion vs baselines", fontsize=9, y=_TITLE_Y)
    ax.tick_params(axis="y", labelsize=7)
    return _png(fig)
