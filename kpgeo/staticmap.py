"""Static, report-ready maps: true-colour composites and per-zone footprint maps.

:func:`true_colour` makes a cloud-free RGB picture of a period from the cube
(median of the clear observations), optionally reprojected (e.g. to
EPSG:3857 for a web map overlay). :func:`plot_zone_map` draws a zone's
footprints, coloured by the period they were first detected, over such a
composite, with the zone outline, its outside ring, a legend, a scale bar and
a north arrow (matplotlib, Agg canvas; no display needed).
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
    "period_labels",
    "period_colours",
    "plot_zone_map",
    "write_zone_map",
    "figure_png",
]

_RGB = ("red", "green", "blue")


def true_colour(
    cube: Any,
    *,
    start: Any = None,
    end: Any = None,
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
    lo, hi = stretch
    vals = rgb.values.astype("float32")
    valid = np.all(np.isfinite(vals), axis=-1)
    scaled = np.clip((np.nan_to_num(vals) - lo) / (hi - lo), 0.0, 1.0) * 255.0
    rgba = np.concatenate([scaled, (valid * 255.0)[..., None]], axis=-1).astype("uint8")
    coords = {k: v for k, v in rgb.coords.items() if k in ("y", "x", "spatial_ref")}
    return xr.DataArray(rgba, dims=("y", "x", "band"), coords={**coords, "band": list("rgba")})


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

    Returns
    -------
    matplotlib.figure.Figure
    """
    import geopandas as gpd
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from kpgeo.io import to_utc_naive

    crs = zone.utm_crs
    zgdf = gpd.GeoSeries([zone.geometry], crs=4326).to_crs(crs)
    rgdf = gpd.GeoSeries([zone.ring(ring_width_m)], crs=4326).to_crs(crs)
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

    fig = Figure(figsize=figsize, dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    if background is not None:
        bg = background
        try:
            import odc.geo.xr  # noqa: F401

            if bg.odc.crs is not None and bg.odc.crs != crs:
                bg = bg.odc.reproject(crs, resampling="nearest")
        except (ImportError, AttributeError):
            pass
        ax.imshow(np.asarray(bg.values), extent=_extent(bg), origin="upper", zorder=0)
    else:
        ax.set_facecolor("#f2efe9")
    handles = []
    if len(fp):
        labels = period_labels(fp["first_detected"], freq=freq).fillna("unknown")
        cats = sorted(labels.unique())
        for cat, colour in zip(cats, period_colours(len(cats)), strict=True):
            fp[labels.to_numpy() == cat].plot(
                ax=ax, facecolor=colour, edgecolor="black", linewidth=0.4, alpha=0.85, zorder=3
            )
            handles.append(
                Patch(facecolor=colour, edgecolor="black", label=f"first detected {cat}")
            )
    zgdf.boundary.plot(ax=ax, color="#ffd400", linewidth=2.0, zorder=4)
    rgdf.boundary.plot(ax=ax, color="#00bcd4", linewidth=1.0, linestyle="--", zorder=4)
    handles = [
        Line2D([], [], color="#ffd400", lw=2, label="zone boundary"),
        Line2D(
            [], [], color="#00bcd4", lw=1, ls="--", label=f"{ring_width_m / 1000:g} km outside ring"
        ),
    ] + handles
    minx, miny, maxx, maxy = rgdf.total_bounds
    if background is not None:
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
    _scale_bar(ax)
    _north_arrow(ax)
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.85)
    when = ""
    if period is not None:
        a, b = (pd.Timestamp(p).strftime("%Y-%m-%d") if p is not None else "…" for p in period)
        when = f"  ({a} – {b})"
    ax.set_title(_mpl_text(title if title is not None else f"{zone.name}{when}"), fontsize=10)
    fig.tight_layout()
    return fig


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
