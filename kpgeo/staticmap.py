"""Static, report-ready maps: true-colour composites and per-zone footprint maps.

:func:`true_colour` makes a cloud-free RGB picture of a period (or of chosen
dates) from the cube (median of the clear observations), optionally
reprojected (e.g. to EPSG:3857 for a web map overlay). :func:`compare_dates`
picks the clear dates just before and just after a date, so that a
before/after pair shows a change rather than two long averages;
:func:`footprint_chips` makes such a pair for each footprint around its own
first-detection date. :func:`plot_zone_map` draws a zone's footprints,
coloured by the period they were first detected, over a composite, with the
zone outline, its outside ring, a legend, a scale bar and a north arrow
(matplotlib, Agg canvas; no display needed).

Colours: :func:`period_palette` gives one colour per period for a whole run
(all periods of its time series), so that the same period has the same colour
on every static and web map of the run.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import ConfigError, NoDataError

__all__ = [
    "true_colour",
    "compare_dates",
    "footprint_chips",
    "period_labels",
    "period_colours",
    "period_palette",
    "UNDATED",
    "plot_zone_map",
    "write_zone_map",
    "figure_png",
]

_RGB = ("red", "green", "blue")

#: period label of a footprint without a first-detection date
UNDATED = "undated"
_UNDATED_COLOUR = "#9e9e9e"


def true_colour(
    cube: Any,
    *,
    start: Any = None,
    end: Any = None,
    dates: Any = None,
    stretch: tuple[float, float] = (0.0, 0.3),
    crs: Any = None,
    resolution: float | None = None,
    max_size: int | None = 2048,
) -> Any:
    """Median true-colour composite of the clear observations in ``[start, end]``.

    Parameters
    ----------
    cube
        Cube from :func:`kpgeo.cube.load_cube` with ``red``, ``green``, ``blue``
        (reflectance, NaN where not clear).
    start, end
        Inclusive date window (date-likes); None = open.
    dates
        Exact cube dates to use instead of a window (e.g. from :func:`compare_dates`).
    stretch
        Reflectance mapped to 0 and 255.
    crs
        Reproject the composite to this CRS (e.g. ``"EPSG:3857"``); default: the
        cube grid.
    resolution
        Output resolution in ``crs`` units when reprojecting.
    max_size
        Coarsen (or pick a coarser reprojection resolution) so that neither
        side exceeds this many pixels; None keeps full resolution.

    Returns
    -------
    xarray.DataArray
        ``uint8`` (y, x, band) with bands ``r, g, b, a`` (alpha 0 where no clear
        observation), georeferenced (``spatial_ref`` coordinate). Computed.

    Raises
    ------
    MissingBandError
        When the cube lacks a red, green or blue band.
    NoDataError
        When no date falls in the window.
    """
    import xarray as xr

    from kpgeo.errors import MissingBandError

    missing = [b for b in _RGB if b not in cube]
    if missing:
        raise MissingBandError(f"cube lacks band(s) {missing} for a true-colour composite")
    if dates is not None:
        wanted = pd.DatetimeIndex(pd.to_datetime(list(dates)))
        sub = cube[list(_RGB)].sel(time=wanted[wanted.isin(pd.to_datetime(cube["time"].values))])
        if sub.sizes.get("time", 0) == 0:
            raise NoDataError(f"none of the dates {list(wanted.date)} is a cube date")
    else:
        sub = cube[list(_RGB)].sel(time=slice(start, end))
        if sub.sizes.get("time", 0) == 0:
            raise NoDataError(f"no cube date between {start} and {end}; choose another period")
    if sub.chunks:
        sub = sub.chunk({"time": -1})
    med = sub.median("time", skipna=True)
    if "spatial_ref" in cube.coords and "spatial_ref" not in med.coords:
        med = med.assign_coords(spatial_ref=cube["spatial_ref"])
    ny, nx = med.sizes["y"], med.sizes["x"]
    factor = int(np.ceil(max(ny, nx) / max_size)) if max_size and max(ny, nx) > max_size else 1
    if crs is not None:
        import odc.geo.xr  # noqa: F401  (registers .odc)

        if resolution is None and factor > 1:
            out_box = med.odc.geobox.to_crs(crs)
            resolution = abs(out_box.resolution.x) * factor
        kw = {"resolution": resolution} if resolution else {}
        med = med.odc.reproject(crs, resampling="bilinear", **kw)
    elif factor > 1:
        ref = med.coords.get("spatial_ref")
        med = med.coarsen(y=factor, x=factor, boundary="trim").mean()
        if ref is not None and "spatial_ref" not in med.coords:
            med = med.assign_coords(spatial_ref=ref)
    with warnings.catch_warnings():
        # pixels never clear in the window have an all-NaN median: transparent, not an error
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        rgb = med.to_array("band").transpose("y", "x", "band").compute()
    rgba = _to_rgba(rgb.values, stretch)
    coords = {k: v for k, v in rgb.coords.items() if k in ("y", "x", "spatial_ref")}
    return xr.DataArray(rgba, dims=("y", "x", "band"), coords={**coords, "band": list("rgba")})


def _to_rgba(vals: np.ndarray, stretch: tuple[float, float]) -> np.ndarray:
    """Reflectance (y, x, 3) -> uint8 RGBA, transparent where any band is NaN."""
    lo, hi = stretch
    vals = np.asarray(vals, dtype="float32")
    valid = np.all(np.isfinite(vals), axis=-1)
    scaled = np.clip((np.nan_to_num(vals) - lo) / (hi - lo), 0.0, 1.0) * 255.0
    return np.concatenate([scaled, (valid * 255.0)[..., None]], axis=-1).astype("uint8")


def compare_dates(
    dates: Any,
    clear_fraction: Any = None,
    *,
    split: Any = None,
    n_dates: int = 3,
    min_clear: float = 0.5,
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Clear dates just before and just after ``split``, for a before/after pair.

    Parameters
    ----------
    dates
        Image dates (date-likes).
    clear_fraction
        Clear fraction of each date over the area shown (same length); None:
        every date counts as clear.
    split
        First date of the "after" side. None: "after" is the most recent clear
        dates and "before" the earliest ones.
    n_dates
        Dates per side (the nearest to ``split`` that are clear enough).
    min_clear
        A date is clear enough when its clear fraction reaches this; a side with
        no such date falls back to its single clearest date (if any pixel was clear).

    Returns
    -------
    tuple of pandas.DatetimeIndex
        ``(before, after)``, each sorted, possibly empty.
    """
    times = pd.DatetimeIndex(pd.to_datetime(list(dates)))
    frac = (
        np.ones(len(times))
        if clear_fraction is None
        else np.nan_to_num(np.asarray(clear_fraction, dtype="float64"))
    )
    if len(frac) != len(times):
        raise ConfigError(f"{len(times)} dates but {len(frac)} clear fractions")
    order = np.argsort(times.values, kind="stable")
    times, frac = times[order], frac[order]
    if split is None:
        before_side = np.arange(len(times))
        after_side = before_side[::-1]
    else:
        cut = int(times.searchsorted(pd.Timestamp(split)))
        before_side = np.arange(cut)[::-1]  # nearest to the split first
        after_side = np.arange(cut, len(times))
    return _pick(times, frac, before_side, n_dates, min_clear), _pick(
        times, frac, after_side, n_dates, min_clear
    )


def _pick(times, frac, candidates, n, min_clear) -> pd.DatetimeIndex:
    good = [i for i in candidates if frac[i] >= min_clear][:n]
    if not good and len(candidates):
        best = max(candidates, key=lambda i: frac[i])
        good = [best] if frac[best] > 0 else []
    return times[sorted(good)]


def footprint_chips(
    cube: Any,
    footprints: Any,
    *,
    n_dates: int = 2,
    margin_m: float = 60.0,
    max_sites: int = 60,
    min_clear: float = 0.5,
    chip_px: int = 96,
    stretch: tuple[float, float] = (0.0, 0.3),
) -> dict[str, dict[str, Any]]:
    """Small before/after true-colour views of each footprint around its first detection.

    For each footprint (the ``max_sites`` largest), the window is its bounding
    box plus ``margin_m``; "before" is the median of the ``n_dates`` clear dates
    of that window just before ``first_detected``, "after" of those from it on
    (clear: at least ``min_clear`` of the window's pixels clear, see
    :func:`compare_dates`). Chips are enlarged (nearest neighbour) to about
    ``chip_px`` pixels and the footprint outline is drawn in yellow. Two dask
    passes over the cube (clear fractions, then medians), each shared by all
    footprints.

    Parameters
    ----------
    cube
        Cube with ``red``, ``green``, ``blue`` and ``clear``, projected CRS.
    footprints
        GeoDataFrame with ``id``, ``first_detected``, ``area_ha`` (any CRS).

    Returns
    -------
    dict
        footprint id -> ``{"before", "after"}``, each ``{"rgba": uint8 array
        (y, x, 4), "dates": DatetimeIndex}`` or None when that side has no clear date.
    """
    import dask

    from kpgeo.io import to_utc_naive

    if not len(footprints) or any(b not in cube for b in (*_RGB, "clear")):
        return {}
    crs = cube.odc.geobox.crs
    fp = footprints.to_crs(str(crs))
    fp["first_detected"] = to_utc_naive(
        fp["first_detected"], what="footprints first_detected"
    ).to_numpy()
    fp = fp[fp["first_detected"].notna()]
    fp = fp.loc[fp.geometry.area.sort_values(ascending=False).index[:max_sites]]
    times = pd.DatetimeIndex(pd.to_datetime(cube["time"].values))
    windows = {}
    for idx, row in fp.iterrows():
        x0, y0, x1, y1 = row.geometry.buffer(margin_m).bounds
        win = cube.sel(x=slice(x0, x1), y=slice(y1, y0) if _y_descending(cube) else slice(y0, y1))
        if win.sizes["x"] and win.sizes["y"]:
            windows[idx] = win
    fractions = dask.compute({k: w["clear"].mean(("y", "x")) for k, w in windows.items()})[0]
    lazy = {}
    for idx, win in windows.items():
        sides = compare_dates(
            times,
            np.asarray(fractions[idx]),
            split=fp.loc[idx, "first_detected"],
            n_dates=n_dates,
            min_clear=min_clear,
        )
        for side, sel in zip(("before", "after"), sides, strict=True):
            if len(sel):
                rgb = win[list(_RGB)].sel(time=sel).median("time", skipna=True)
                lazy[(idx, side)] = (rgb.to_array("band").transpose("y", "x", "band"), sel)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        values = dask.compute({k: v[0] for k, v in lazy.items()})[0]
    out: dict[str, dict[str, Any]] = {}
    for idx in windows:
        sid = str(fp.loc[idx, "id"]) if "id" in fp.columns else str(idx)
        out[sid] = {}
        for side in ("before", "after"):
            if (idx, side) not in lazy:
                out[sid][side] = None
                continue
            rgba = _to_rgba(np.asarray(values[(idx, side)]), stretch)
            # enlarge (nearest) so that the outline is thin next to the 10 m pixels
            k = max(1, chip_px // max(rgba.shape[:2]))
            rgba = np.repeat(np.repeat(rgba, k, axis=0), k, axis=1)
            _draw_outline(rgba, fp.loc[idx].geometry, windows[idx])
            out[sid][side] = {"rgba": rgba, "dates": lazy[(idx, side)][1]}
    return out


def _y_descending(cube: Any) -> bool:
    y = cube["y"].values
    return y.size < 2 or bool(y[0] > y[-1])


def _draw_outline(rgba: np.ndarray, geom: Any, win: Any) -> None:
    """Burn a polygon's outline (yellow, opaque) into an RGBA chip of window ``win``."""
    from rasterio.features import rasterize
    from rasterio.transform import from_bounds

    left, right, bottom, top = _extent(win)
    ny, nx = rgba.shape[:2]
    if _y_descending(win):
        transform = from_bounds(left, bottom, right, top, nx, ny)
    else:  # rows run south to north: flip the mask back
        transform = from_bounds(left, top, right, bottom, nx, ny)
    line = rasterize([geom.boundary], out_shape=(ny, nx), transform=transform, all_touched=True)
    rgba[line.astype(bool)] = (255, 212, 0, 255)


def period_labels(dates: Any, *, freq: str = "QS") -> pd.Series:
    """Label dates by period: ``2020Q3`` for quarters, ``2020-07`` months, ``2020`` years.

    Parameters
    ----------
    dates
        Date-likes (naive taken as UTC; missing values allowed).
    freq
        Period-start frequency (``"QS"``, ``"MS"``, ``"YS"`` or their aliases);
        any other frequency labels each date as ``YYYY-MM-DD``.

    Returns
    -------
    pandas.Series
        One label per date (None where the date is missing).

    Raises
    ------
    ConfigError
        A value that is not a date.
    """
    from kpgeo.io import to_utc_naive
    from kpgeo.timeseries import norm_freq

    s = to_utc_naive(dates, what="dates to label by period")

    pfreq = {"QS": "Q", "MS": "M", "YS": "Y"}.get(norm_freq(freq).split("-")[0], None)
    if pfreq is None:
        return s.dt.strftime("%Y-%m-%d")
    out = s.dt.to_period(pfreq).astype(str)
    return out.where(s.notna(), None)


def period_colours(n: int) -> list[str]:
    """``n`` hex colours (plasma ramp) for successive periods, shared by static and web maps.

    Parameters
    ----------
    n
        Number of periods.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["plasma"]
    return [to_hex(cmap(0.1 + 0.8 * (i / max(n - 1, 1)))) for i in range(n)]


def period_palette(labels: Any) -> dict[str, str]:
    """One colour per period label, for every map of a run.

    Parameters
    ----------
    labels
        Period labels (from :func:`period_labels`), e.g. every period of the
        run's time series plus those of its footprints; repeats and None ignored.

    Returns
    -------
    dict
        label -> hex colour: the plasma ramp over the sorted dated labels, and
        grey for :data:`UNDATED`. The same labels always give the same colours.
    """
    dated = sorted({str(lab) for lab in labels if lab is not None and str(lab) != UNDATED})
    palette = dict(zip(dated, period_colours(len(dated)), strict=True))
    palette[UNDATED] = _UNDATED_COLOUR
    return palette


def _mpl_text(text: Any) -> str:
    """Plain text safe for matplotlib (no mathtext from ``$``)."""
    return str(text).replace("$", r"\$")


def _extent(da: Any) -> tuple[float, float, float, float]:
    x = da["x"].values
    y = da["y"].values
    dx = abs(float(x[1] - x[0])) if x.size > 1 else 10.0
    dy = abs(float(y[1] - y[0])) if y.size > 1 else 10.0
    return (x.min() - dx / 2, x.max() + dx / 2, y.min() - dy / 2, y.max() + dy / 2)


def _nice_length(span_m: float) -> float:
    target = span_m / 5.0
    exp = 10 ** np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * exp <= target:
            return float(m * exp)
    return float(exp)


def _scale_bar(ax: Any) -> None:
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(x1 - x0)
    bx, by = x0 + 0.05 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    h = 0.012 * (y1 - y0)
    for i in range(2):
        ax.add_patch(
            Rectangle(
                (bx + i * length / 2, by),
                length / 2,
                h,
                facecolor="black" if i == 0 else "white",
                edgecolor="black",
                lw=0.8,
                zorder=5,
            )
        )
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(
        bx + length / 2,
        by + 1.8 * h,
        label,
        ha="center",
        va="bottom",
        fontsize=8,
        zorder=5,
        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
    )


def _north_arrow(ax: Any) -> None:
    ax.annotate(
        "N",
        xy=(0.94, 0.93),
        xytext=(0.94, 0.80),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=11,
        fontweight="bold",
        zorder=6,
        arrowprops={"facecolor": "black", "width": 4, "headwidth": 11},
        bbox={"boxstyle": "circle", "facecolor": "white", "alpha": 0.7, "edgecolor": "none"},
    )


def plot_zone_map(
    footprints: Any,
    zone: Any,
    *,
    background: Any = None,
    period: tuple[Any, Any] | None = None,
    freq: str = "QS",
    ring_width_m: float = 5000.0,
    palette: dict[str, str] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (7.0, 7.0),
) -> Any:
    """Map one zone's footprints over an optional true-colour composite.

    Parameters
    ----------
    footprints
        GeoDataFrame (footprint column contract; any CRS). Only rows whose
        ``zone`` equals ``zone.id`` are drawn; with ``period``, only footprints
        first detected by its end.
    zone
        :class:`kpgeo.zones.Zone`.
    background
        Output of :func:`true_colour` (any CRS; reprojected to the zone's UTM
        CRS when it differs).
    period
        ``(start, end)`` shown in the title and used to filter footprints.
    freq
        Period used to group first-detection colours (``"QS"`` quarters).
    ring_width_m
        Width of the outside ring drawn dashed, metres.
    palette
        Period label -> colour for the whole run (:func:`period_palette`);
        default: a palette over this zone's own periods.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    crs = zone.utm_crs
    zgdf, rgdf = _zone_outlines(zone, ring_width_m, crs)
    fp = _zone_footprints(footprints, zone, crs, period)

    fig = Figure(figsize=figsize, dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    bg = _draw_background(ax, background, crs)
    handles = _draw_footprints(ax, fp, freq=freq, palette=palette)
    handles = _draw_outlines(ax, zgdf, rgdf, ring_width_m) + handles
    _set_map_view(ax, rgdf, bg, crs)
    _scale_bar(ax)
    _north_arrow(ax)
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.85)
    ax.set_title(_mpl_text(_map_title(zone, period, title)), fontsize=10)
    fig.tight_layout()
    return fig


def _zone_outlines(zone: Any, ring_width_m: float, crs: Any) -> tuple[Any, Any]:
    """Return the zone and its outside ring as GeoSeries in ``crs``."""
    import geopandas as gpd

    zgdf = gpd.GeoSeries([zone.geometry], crs=4326).to_crs(crs)
    rgdf = gpd.GeoSeries([zone.ring(ring_width_m)], crs=4326).to_crs(crs)
    return zgdf, rgdf


def _zone_footprints(footprints: Any, zone: Any, crs: Any, period: Any) -> Any:
    """Select the zone's footprints (in ``crs``), first detected by the period's end."""
    from kpgeo.io import to_utc_naive

    fp = (
        footprints[footprints["zone"].astype(str) == str(zone.id)]
        if len(footprints)
        else footprints
    )
    if len(fp):
        fp = fp.to_crs(crs)
        if period is not None and period[1] is not None:
            first = to_utc_naive(fp["first_detected"], what="footprints first_detected")
            fp = fp[first <= pd.Timestamp(period[1])]
    return fp


def _draw_background(ax: Any, background: Any, crs: Any) -> Any:
    """Draw the composite (reprojected to ``crs``) or a plain land colour; return the image."""
    if background is None:
        ax.set_facecolor("#f2efe9")
        return None
    bg = background
    try:
        import odc.geo.xr  # noqa: F401

        if bg.odc.crs is not None and bg.odc.crs != crs:
            bg = bg.odc.reproject(crs, resampling="nearest")
    except (ImportError, AttributeError):
        pass
    ax.imshow(np.asarray(bg.values), extent=_extent(bg), origin="upper", zorder=0)
    return bg


def _draw_footprints(ax: Any, fp: Any, *, freq: str, palette: dict[str, str] | None) -> list:
    """Fill the footprints by first-detection period; return their legend patches."""
    from matplotlib.patches import Patch

    handles = []
    if len(fp):
        labels = period_labels(fp["first_detected"], freq=freq).fillna(UNDATED)
        cats = sorted(labels.unique(), key=lambda c: (c == UNDATED, c))
        colours = period_palette(cats) | (palette or {})
        for cat in cats:
            colour = colours[cat]
            fp[labels.to_numpy() == cat].plot(
                ax=ax, facecolor=colour, edgecolor="black", linewidth=0.4, alpha=0.85, zorder=3
            )
            handles.append(
                Patch(facecolor=colour, edgecolor="black", label=f"first detected {cat}")
            )
    return handles


def _draw_outlines(ax: Any, zgdf: Any, rgdf: Any, ring_width_m: float) -> list:
    """Draw the zone boundary and the dashed outside ring; return their legend lines."""
    from matplotlib.lines import Line2D

    zgdf.boundary.plot(ax=ax, color="#ffd400", linewidth=2.0, zorder=4)
    rgdf.boundary.plot(ax=ax, color="#00bcd4", linewidth=1.0, linestyle="--", zorder=4)
    return [
        Line2D([], [], color="#ffd400", lw=2, label="zone boundary"),
        Line2D(
            [], [], color="#00bcd4", lw=1, ls="--", label=f"{ring_width_m / 1000:g} km outside ring"
        ),
    ]


def _set_map_view(ax: Any, rgdf: Any, bg: Any, crs: Any) -> None:
    """Frame the map on the ring (clipped to the composite) and label the UTM axes."""
    minx, miny, maxx, maxy = rgdf.total_bounds
    if bg is not None:
        e = _extent(bg)
        minx, maxx = max(minx, e[0]), min(maxx, e[1])
        miny, maxy = max(miny, e[2]), min(maxy, e[3])
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect("equal")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    ax.set_xlabel(f"easting (m, {crs.name})", fontsize=7)
    ax.set_ylabel("northing (m)", fontsize=7)


def _map_title(zone: Any, period: tuple[Any, Any] | None, title: str | None) -> str:
    """Return ``title``, or the zone name followed by the period's dates."""
    when = ""
    if period is not None:
        a, b = (pd.Timestamp(p).strftime("%Y-%m-%d") if p is not None else "…" for p in period)
        when = f"  ({a} – {b})"
    return title if title is not None else f"{zone.name}{when}"


def figure_png(fig: Any, *, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes (Agg).

    Parameters
    ----------
    fig
        :class:`matplotlib.figure.Figure` (e.g. from :func:`plot_zone_map`).
    dpi
        Output resolution, dots per inch.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def write_zone_map(path: str | os.PathLike, footprints: Any, zone: Any, **kwargs: Any) -> Path:
    """Write :func:`plot_zone_map` as a PNG, atomically. Returns the path.

    Parameters
    ----------
    path
        Output file; must end with ``.png``.
    footprints, zone
        As for :func:`plot_zone_map`.
    **kwargs
        Passed on to :func:`plot_zone_map` (``background``, ``period``, ``freq``, ...).

    Raises
    ------
    ConfigError
        When ``path`` does not end with ``.png``.
    """
    from kpgeo.io import atomic_path

    if not str(path).lower().endswith(".png"):
        raise ConfigError(f"static map path must end with .png, got {path}")
    data = figure_png(plot_zone_map(footprints, zone, **kwargs))
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)
