"""Sampling design for area estimation: strata, sample sizes, the labelling sheet.

A mapped area is not an estimate of the true area: the map misses pit edges
and late pits and may flag a few confounders. Following Olofsson et al.
(2014), the area is estimated from a probability sample of reference labels,
stratified by the map (:mod:`kpgeo.area` is the estimator). This module is
the sampling design:

* :func:`stratify` turns a run's change map (``state.tif`` and
  ``first_detected.tif``) into four strata for a period — **new mining**
  (first detected in the period), **stable mining** (detected before it),
  **buffer** (non-mining pixels within ``buffer_px`` of a mapped mining pixel,
  where omissions concentrate) and **no change**. Pixels with insufficient
  data (state 255) or outside the region are excluded from the population.
  This is the one place the strata are defined.
* :func:`sample_size` is Olofsson et al. (2014) Eq. (13),
  ``n = (sum_i W_i S_i / S(O))**2`` with ``S_i = sqrt(U_i (1 - U_i))``;
  :func:`allocate` gives each stratum at least ``min_per_stratum`` units and
  the rest in proportion to the stratum weights.
* :func:`draw_sample` draws a stratified random sample of pixels (without
  replacement, reproducible from ``seed``); :func:`labelling_sheet` makes the
  GeoDataFrame an analyst fills in (``ref_class``), in QGIS (GeoPackage) or a
  spreadsheet (CSV); :func:`write_chips` adds before/after true-colour PNG
  chips per unit.
* :func:`label_from_truth` is the simulated analyst: it labels a sheet from
  the simulator's ``truth_mining_start.tif``, with the same period rule as the
  map, so the whole chain runs in tests.

The sample unit is one pixel of the change map. Reference classes are
``new mining`` (mining began in the period), ``stable mining`` (mining began
before it) and ``no mining``; see ``docs/area_estimation.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kpgeo.errors import ConfigError, CRSMismatchError, KpgeoWarning

__all__ = [
    "STRATA",
    "MAP_CLASS_OF_STRATUM",
    "CLASSES",
    "MINING_CLASSES",
    "DEFAULT_USERS",
    "SHEET_COLUMNS",
    "Period",
    "ChangeMap",
    "read_change_map",
    "zone_of_folder",
    "period_class",
    "stratify",
    "stratum_pixels",
    "sample_size",
    "allocate",
    "plan_sample",
    "draw_sample",
    "labelling_sheet",
    "label_from_truth",
    "sample_units_layer",
    "write_sheet",
    "write_chips",
    "design_record",
    "sample_zone",
    "SampleSizeWarning",
]

#: stratum code (uint8 in the strata raster) -> name; 0 = not in the population
STRATA: dict[int, str] = {1: "new mining", 2: "stable mining", 3: "buffer", 4: "no change"}
#: map class of every pixel of a stratum
MAP_CLASS_OF_STRATUM: dict[str, str] = {
    "new mining": "new mining",
    "stable mining": "stable mining",
    "buffer": "no mining",
    "no change": "no mining",
}
#: map and reference classes (the sheet's ``map_class`` and ``ref_class``)
CLASSES: tuple[str, ...] = ("new mining", "stable mining", "no mining")
#: classes that together make "all mining"
MINING_CLASSES: tuple[str, ...] = ("new mining", "stable mining")
#: anticipated user's accuracies for Eq. (13) (planning guesses; see docs/area_estimation.md)
DEFAULT_USERS: dict[str, float] = {
    "new mining": 0.80, "stable mining": 0.85, "buffer": 0.80, "no change": 0.99,
}
#: change-map states that count as mapped mining (new, active, inactive, revegetating)
MINING_STATES = (1, 2, 3, 4)
#: state of pixels with too few clear observations
NO_DATA_STATE = 255

#: columns of the labelling sheet, in order (the analyst fills ``ref_class``)
SHEET_COLUMNS = [
    "unit_id", "zone", "period_start", "period_end", "lon", "lat", "chip_before", "chip_after",
    "ref_class", "analyst", "notes", "stratum", "map_class", "stratum_pixels", "pixel_area_ha",
    "row", "col", "x", "y",
]


class SampleSizeWarning(KpgeoWarning):
    """A stratum's sample is expected to hold too few minority-class units for an honest CI."""


@dataclass(frozen=True)
class Period:
    """Inclusive date window ``[start, end]``; None = open on that side."""

    start: dt.date | None = None
    end: dt.date | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.start > self.end:
            raise ConfigError(f"period start {self.start} is after its end {self.end}")

    @classmethod
    def parse(cls, text: str | None) -> Period:
        """Parse ``"YYYY-MM-DD/YYYY-MM-DD"`` (either side may be empty); None = all."""
        if text is None or text.strip() in ("", "/", "all"):
            return cls()
        parts = text.split("/")
        if len(parts) != 2:
            raise ConfigError(f"period {text!r} must be START/END (ISO dates, either may be empty)")
        try:
            start, end = (dt.date.fromisoformat(p.strip()) if p.strip() else None for p in parts)
        except ValueError as exc:
            raise ConfigError(f"period {text!r}: {exc}; use YYYY-MM-DD/YYYY-MM-DD") from exc
        return cls(start, end)

    @property
    def days(self) -> tuple[float, float]:
        """``(start, end)`` in days since 1970-01-01, infinite where open."""
        epoch = dt.date(1970, 1, 1)
        lo = (self.start - epoch).days if self.start else -np.inf
        hi = (self.end - epoch).days if self.end else np.inf
        return float(lo), float(hi)

    def iso(self) -> tuple[str, str]:
        """``(start, end)`` as ISO strings, ``""`` where open."""
        return (self.start.isoformat() if self.start else "",
                self.end.isoformat() if self.end else "")

    @property
    def label(self) -> str:
        """File-name friendly label, e.g. ``2020-01-01_2020-12-31`` or ``all``."""
        a, b = self.iso()
        return f"{a or 'start'}_{b or 'end'}" if (a or b) else "all"


@dataclass(frozen=True)
class ChangeMap:
    """A zone's change rasters (``state.tif`` + ``first_detected.tif``) and their grid."""

    state: np.ndarray
    """uint8 states (0 no change, 1 new, 2 active, 3 inactive, 4 revegetating, 255 no data)."""
    first_detected: np.ndarray
    """int32 days since 1970-01-01, -1 where none."""
    transform: Any
    crs: Any
    zone: str | None = None

    @property
    def pixel_area_ha(self) -> float:
        """Area of one pixel in hectares (the grid is projected, metres)."""
        return abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d) / 1e4


def read_change_map(zone_dir: str | os.PathLike, *, zone: str | None = None) -> ChangeMap:
    """Read ``state.tif`` and ``first_detected.tif`` from a zone's output folder.

    ``zone`` (the id written into the sheet) defaults to :func:`zone_of_folder`.

    Raises
    ------
    ConfigError
        A raster is missing, or the two differ in shape or grid.
    CRSMismatchError
        The rasters have no CRS or a geographic one (pixel areas need metres).
    """
    import rasterio

    zone_dir = Path(zone_dir)
    arrays, grids = {}, {}
    for name in ("state", "first_detected"):
        path = zone_dir / f"{name}.tif"
        if not path.is_file():
            raise ConfigError(f"{path} does not exist; pass a zone folder written by "
                              "`kpgeo detect` or `kpgeo run` (OUT/zones/<zone>/)")
        try:
            with rasterio.open(path) as src:
                arrays[name] = src.read(1)
                grids[name] = (src.shape, src.transform, src.crs)
        except rasterio.RasterioIOError as exc:
            raise ConfigError(f"{path}: cannot read the raster ({exc})") from exc
    shape, transform, crs = grids["state"]
    if grids["first_detected"][:2] != (shape, transform):
        raise ConfigError(f"{zone_dir}: state.tif and first_detected.tif are not on the same grid")
    if crs is None or not crs.is_projected:
        kind = "no" if crs is None else "a geographic"
        raise CRSMismatchError(f"{zone_dir / 'state.tif'} has {kind} CRS; sampling needs a "
                               "projected grid in metres")
    return ChangeMap(state=arrays["state"].astype("uint8"),
                     first_detected=arrays["first_detected"].astype("int32"),
                     transform=transform, crs=crs, zone=zone or zone_of_folder(zone_dir))


def zone_of_folder(zone_dir: str | os.PathLike) -> str:
    """Zone id of a zone's output folder: ``summary.json``'s ``zone``, else the folder name."""
    import json

    zone_dir = Path(zone_dir)
    try:
        return str(json.loads((zone_dir / "summary.json").read_text())["zone"])
    except (OSError, ValueError, KeyError, TypeError):
        return zone_dir.name


def period_class(start_days: np.ndarray, mined: np.ndarray, period: Period) -> np.ndarray:
    """Class code of each pixel for a period: 1 new, 2 stable, 0 no mining (by its end).

    The same rule serves the map (``first_detected``) and the truth (mining
    start): mining that began within ``[start, end]`` is new, before ``start``
    stable; mining that began after ``end`` is not mining at the end of the
    period. A mined pixel without a date counts as stable.
    """
    lo, hi = (int(np.clip(v, -2**40, 2**40)) for v in period.days)  # ints: no float copy
    days = np.asarray(start_days)
    mined = np.asarray(mined, dtype=bool)
    known = mined & (days >= 0)
    out = np.zeros(days.shape, "uint8")
    out[known & (days >= lo) & (days <= hi)] = 1
    out[(known & (days < lo)) | (mined & (days < 0))] = 2
    return out


def stratify(cmap: ChangeMap, *, period: Period = Period(), buffer_px: int = 3,
             region: Any = None) -> np.ndarray:
    """Strata raster of a change map for a period (codes of :data:`STRATA`, 0 excluded).

    Parameters
    ----------
    cmap
        From :func:`read_change_map`.
    period
        The period whose new mining is estimated.
    buffer_px
        Width of the buffer stratum around mapped mining, in pixels (0: none).
    region
        Optional shapely geometry (EPSG:4326): only pixels whose centre lies
        inside belong to the population (e.g. the zone without its ring).

    Returns
    -------
    numpy.ndarray
        uint8 strata codes on the change-map grid.
    """
    from scipy import ndimage

    if not isinstance(buffer_px, (int, np.integer)) or not 0 <= buffer_px <= 100:
        raise ConfigError(f"buffer_px must be an integer in [0, 100], got {buffer_px!r}")
    state = cmap.state
    mined = np.isin(state, MINING_STATES)
    cls = period_class(cmap.first_detected, mined, period)
    valid = state != NO_DATA_STATE
    if region is not None:
        from odc.geo.geobox import GeoBox

        from kpgeo.cube import region_mask

        valid &= region_mask(region, GeoBox(state.shape, cmap.transform, str(cmap.crs)))
    mining = cls > 0
    if buffer_px > 0 and mining.any():
        yy, xx = np.mgrid[-buffer_px:buffer_px + 1, -buffer_px:buffer_px + 1]
        disk = (yy**2 + xx**2) <= buffer_px**2
        near = ndimage.binary_dilation(mining, structure=disk) & ~mining
    else:
        near = np.zeros(state.shape, bool)
    out = np.full(state.shape, 4, "uint8")
    out[near] = 3
    out[cls == 2] = 2
    out[cls == 1] = 1
    out[~valid] = 0
    return out


def sample_size(weights: Any, users: Any, target_se: float) -> int:
    """Total sample size for a target standard error of overall accuracy (Eq. 13).

    ``n = (sum_i W_i S_i / S(O))**2`` with ``S_i = sqrt(U_i (1 - U_i))``
    (Olofsson et al. 2014; Cochran 1977, Eq. 5.25 without the finite
    population correction), rounded up.

    Parameters
    ----------
    weights
        Stratum weights ``W_i`` (area proportions; normalised to sum to 1).
    users
        Anticipated user's accuracies ``U_i`` in [0, 1], same order.
    target_se
        Target standard error ``S(O)`` of overall accuracy, in (0, 1).

    Examples
    --------
    Olofsson et al. (2014), section 5: W = 0.020, 0.015, 0.320, 0.645,
    U = 0.70, 0.60, 0.90, 0.95 and S(O) = 0.01 give 641.

    >>> sample_size([0.020, 0.015, 0.320, 0.645], [0.70, 0.60, 0.90, 0.95], 0.01)
    641
    """
    w = np.asarray(weights, dtype="float64")
    u = np.asarray(users, dtype="float64")
    if w.shape != u.shape or w.ndim != 1 or w.size == 0:
        raise ConfigError("weights and users must be 1-D sequences of the same length")
    if (w < 0).any() or w.sum() <= 0 or not np.isfinite(w).all():
        raise ConfigError(f"stratum weights must be finite, >= 0 and not all 0, got {list(w)}")
    if ((u < 0) | (u > 1) | ~np.isfinite(u)).any():
        raise ConfigError(f"anticipated user's accuracies must be in [0, 1], got {list(u)}")
    if not (isinstance(target_se, (int, float)) and 0 < target_se < 1):
        raise ConfigError(f"target standard error must be in (0, 1), got {target_se!r}")
    w = w / w.sum()
    s = np.sqrt(u * (1 - u))
    return int(np.ceil((np.sum(w * s) / target_se) ** 2 - 1e-9))


def allocate(n_total: int, stratum_pixels: dict[str, int], *,
             min_per_stratum: int = 50) -> dict[str, int]:
    """Split a total sample size over strata: a minimum for each, the rest proportionally.

    Strata whose proportional share is below ``min_per_stratum`` get that
    minimum (Olofsson et al. 2014 recommend 50-100 units for rare change
    classes); the remainder is allocated in proportion to the pixel counts of
    the other strata (largest-remainder rounding). No stratum gets more units
    than it has pixels; empty strata get none. The total can exceed
    ``n_total`` when the minima need more.
    """
    if not isinstance(n_total, (int, np.integer)) or n_total < 1:
        raise ConfigError(f"sample size must be a positive integer, got {n_total!r}")
    if not isinstance(min_per_stratum, (int, np.integer)) or min_per_stratum < 0:
        raise ConfigError(f"min_per_stratum must be an integer >= 0, got {min_per_stratum!r}")
    sizes = {k: int(v) for k, v in stratum_pixels.items() if int(v) > 0}
    out = {k: 0 for k in stratum_pixels}
    fixed: dict[str, int] = {}
    while True:
        free = {k: v for k, v in sizes.items() if k not in fixed}
        left = max(n_total - sum(fixed.values()), 0)
        total = sum(free.values())
        share = {k: left * v / total for k, v in free.items()} if total else {}
        small = {k for k, s in share.items() if s < min(min_per_stratum, sizes[k])}
        if not small:
            break
        fixed |= {k: min(min_per_stratum, sizes[k]) for k in small}
    floors = {k: int(np.floor(s)) for k, s in share.items()}
    rest = left - sum(floors.values())
    for k in sorted(share, key=lambda k: share[k] - floors[k], reverse=True)[:max(rest, 0)]:
        floors[k] += 1
    for k, v in (fixed | floors).items():
        out[k] = min(v, sizes[k])
    return out


def stratum_pixels(strata: np.ndarray) -> dict[str, int]:
    """Pixels in every stratum of a strata raster (the population sizes ``N_h``)."""
    counts = np.bincount(np.asarray(strata, "uint8").ravel(), minlength=256)
    return {name: int(counts[code]) for code, name in STRATA.items()}


def plan_sample(strata: np.ndarray, *, users: dict[str, float] | None = None,
                target_se: float = 0.01, n: int | None = None,
                min_per_stratum: int = 50) -> dict[str, Any]:
    """Stratum sizes and the sample size per stratum for a strata raster.

    ``n`` (total) defaults to :func:`sample_size` from the stratum weights,
    the anticipated user's accuracies ``users`` (default
    :data:`DEFAULT_USERS`) and ``target_se``; it is then split by
    :func:`allocate`.

    Returns
    -------
    dict
        ``stratum_pixels`` and ``n_per_stratum`` (name -> int), ``n_eq13``
        (Eq. 13 size, or None when ``n`` was given), ``target_se``, ``users``,
        ``min_per_stratum``.
    """
    users = DEFAULT_USERS | (users or {})
    unknown = sorted(set(users) - set(STRATA.values()))
    if unknown:
        raise ConfigError(f"anticipated user's accuracies for unknown strata {unknown}; "
                          f"strata are {list(STRATA.values())}")
    pixels = stratum_pixels(strata)
    if sum(pixels.values()) == 0:
        raise ConfigError("the change map has no pixel with data in the region; nothing to sample")
    n_eq13 = None
    if n is None:
        names = list(pixels)
        n_eq13 = sample_size([pixels[k] for k in names], [users[k] for k in names], target_se)
        n = n_eq13
    alloc = allocate(n, pixels, min_per_stratum=min_per_stratum)
    thin = [f"{k} ({alloc[k]} units x {1 - users[k]:.2f} = {alloc[k] * (1 - users[k]):.1f})"
            for k in pixels if 0 < alloc[k] < pixels[k] and alloc[k] * (1 - users[k]) < 5]
    if thin:
        warnings.warn("expected fewer than 5 units of the minority class in stratum "
                      f"{'; '.join(thin)}: the normal-approximation confidence interval may "
                      "cover the true area less often than stated; raise the sample size "
                      "(see docs/area_estimation.md)", SampleSizeWarning, stacklevel=2)
    return {"stratum_pixels": pixels, "n_per_stratum": alloc, "n_eq13": n_eq13,
            "target_se": target_se, "users": users, "min_per_stratum": min_per_stratum}


def _draw_one(flat: np.ndarray, code: int, n: int, count: int, rng: Any) -> np.ndarray:
    """``n`` distinct flat indices of pixels with ``flat == code`` (``count`` of them)."""
    if n >= count:
        return np.flatnonzero(flat == code)
    if count > 0.05 * flat.size:  # a common stratum: rejection sampling, no index list
        picked = np.empty(0, "int64")
        while picked.size < n:
            cand = rng.integers(0, flat.size, size=2 * (n - picked.size) + 64)
            cand = cand[flat[cand] == code]
            picked = np.unique(np.concatenate([picked, cand]))
        return rng.choice(picked, size=n, replace=False)
    return rng.choice(np.flatnonzero(flat == code), size=n, replace=False)


def draw_sample(strata: np.ndarray, n_per_stratum: dict[str, int], *, seed: int = 0) -> Any:
    """Stratified random sample of pixels, without replacement.

    Returns
    -------
    pandas.DataFrame
        ``row``, ``col``, ``stratum`` (name), in random order (so that the
        labelling sheet does not list units by map class).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    flat = strata.ravel()
    counts = np.bincount(flat, minlength=max(STRATA) + 1)
    codes = {name: code for code, name in STRATA.items()}
    parts = []
    for name, n in n_per_stratum.items():
        if name not in codes:
            raise ConfigError(f"unknown stratum {name!r}; strata are {list(codes)}")
        if n > 0:
            idx = _draw_one(flat, codes[name], int(n), int(counts[codes[name]]), rng)
            parts.append(pd.DataFrame({"flat": idx, "stratum": name}))
    units = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"flat": np.empty(0, "int64"), "stratum": pd.Series(dtype=str)})
    units = units.iloc[rng.permutation(len(units))].reset_index(drop=True)
    rows, cols = np.unravel_index(units.pop("flat").to_numpy(), strata.shape)
    return units.assign(row=rows, col=cols)[["row", "col", "stratum"]]


def labelling_sheet(cmap: ChangeMap, units: Any, *, period: Period,
                    stratum_pixels: dict[str, int]) -> Any:
    """Build the labelling sheet: one row per unit, geometry = the unit's pixel.

    Parameters
    ----------
    cmap
        The change map the units were drawn from.
    units
        From :func:`draw_sample`.
    period
        The sampled period (written into every row).
    stratum_pixels
        Pixels per stratum (the population sizes the estimator needs).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`SHEET_COLUMNS` (``ref_class``, ``analyst``, ``notes``
        and the chip paths empty) and a pixel-square geometry in the map CRS.
    """
    import geopandas as gpd
    import shapely
    from pyproj import Transformer

    t = cmap.transform
    rows = units["row"].to_numpy()
    cols = units["col"].to_numpy()
    x0 = t.c + cols * t.a + rows * t.b
    y0 = t.f + cols * t.d + rows * t.e
    xc, yc = x0 + (t.a + t.b) / 2, y0 + (t.d + t.e) / 2
    lon, lat = Transformer.from_crs(cmap.crs, 4326, always_xy=True).transform(xc, yc)
    start, end = period.iso()
    zone = cmap.zone or ""
    sheet = gpd.GeoDataFrame({
        "unit_id": [f"{zone or 'map'}-{i + 1:04d}" for i in range(len(units))],
        "zone": zone, "period_start": start, "period_end": end,
        "lon": np.round(lon, 7), "lat": np.round(lat, 7),
        "chip_before": "", "chip_after": "", "ref_class": "", "analyst": "", "notes": "",
        "stratum": units["stratum"].to_numpy(),
        "map_class": [MAP_CLASS_OF_STRATUM[s] for s in units["stratum"]],
        "stratum_pixels": [int(stratum_pixels[s]) for s in units["stratum"]],
        "pixel_area_ha": cmap.pixel_area_ha,
        "row": rows, "col": cols, "x": xc, "y": yc,
    }, geometry=shapely.box(x0, y0 + t.e, x0 + t.a, y0), crs=cmap.crs)
    return sheet[SHEET_COLUMNS + ["geometry"]]


def label_from_truth(sheet: Any, mining_start_path: str | os.PathLike) -> Any:
    """Fill ``ref_class`` from the simulator's truth (the simulated analyst).

    Reads ``truth_mining_start.tif`` (days since 1970-01-01 of the first date
    a pixel is mining, 0 = never) at each unit's centre and applies
    :func:`period_class` with the sheet's period, so truth and map classes
    follow the same rule.

    Raises
    ------
    ConfigError
        The raster cannot be read, or a unit lies outside it.
    """
    import rasterio
    from pyproj import Transformer

    out = sheet.copy()
    try:
        with rasterio.open(mining_start_path) as src:
            truth = src.read(1)
            tr, tcrs = src.transform, src.crs
    except rasterio.RasterioIOError as exc:
        raise ConfigError(f"{mining_start_path}: cannot read the truth raster ({exc})") from exc
    x, y = out["x"].to_numpy(float), out["y"].to_numpy(float)
    if sheet.crs is not None and tcrs is not None and sheet.crs != tcrs:
        x, y = Transformer.from_crs(sheet.crs, tcrs, always_xy=True).transform(x, y)
    rr, cc = rasterio.transform.rowcol(tr, x, y)
    rr, cc = np.asarray(rr), np.asarray(cc)
    inside = (rr >= 0) & (rr < truth.shape[0]) & (cc >= 0) & (cc < truth.shape[1])
    if not inside.all():
        raise ConfigError(f"{(~inside).sum()} sample unit(s) lie outside {mining_start_path}")
    start = truth[rr, cc].astype("float64")
    names = {0: "no mining", 1: "new mining", 2: "stable mining"}
    for (a, b), idx in out.groupby(["period_start", "period_end"]).groups.items():
        period = Period.parse(f"{a}/{b}")
        pos = out.index.get_indexer(idx)
        codes = period_class(start[pos], start[pos] > 0, period)
        out.loc[idx, "ref_class"] = [names[int(c)] for c in codes]
    out["analyst"] = "simulated (truth_mining_start.tif)"
    return out


def sample_units_layer(sheet: Any) -> Any:
    """Sample units as points (EPSG:4326) for a web-map layer.

    Returns
    -------
    geopandas.GeoDataFrame
        ``unit_id``, ``zone``, ``period_start``, ``period_end``, ``stratum``,
        ``map_class``, ``ref_class`` (None where not labelled yet), ``agrees``
        (map class == reference class; None where not labelled) and point
        geometries at the pixel centres.
    """
    import geopandas as gpd

    ref = sheet["ref_class"].where(sheet["ref_class"].astype(str).str.strip() != "")
    agrees = (ref == sheet["map_class"]).where(ref.notna())
    return gpd.GeoDataFrame(
        {"unit_id": sheet["unit_id"], "zone": sheet["zone"],
         "period_start": sheet["period_start"], "period_end": sheet["period_end"],
         "stratum": sheet["stratum"], "map_class": sheet["map_class"], "ref_class": ref,
         "agrees": agrees},
        geometry=gpd.points_from_xy(sheet["lon"], sheet["lat"]), crs=4326)


def write_sheet(sheet: Any, out_dir: str | os.PathLike, *, design: dict[str, Any]) -> dict:
    """Write ``labels.csv``, ``labels.gpkg`` and ``design.json`` into ``out_dir`` (atomic).

    Returns
    -------
    dict
        Output name -> path.
    """
    from kpgeo import io

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "labels.csv": io.write_table(sheet.drop(columns="geometry"), out / "labels.csv"),
        "labels.gpkg": io.write_vector(sheet, out / "labels.gpkg"),
        "design.json": io.write_json(design, out / "design.json"),
    }


def _chip_windows(cube: Any, period: Period) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Date windows of the before/after composites: outside the period, else the series ends."""
    import pandas as pd

    times = pd.to_datetime(cube["time"].values)
    if times.size == 0:
        from kpgeo.errors import NoDataError

        raise NoDataError("the cube has no dates; cannot make chips")
    q = max(times.size // 4, 1)
    early, late = times[:q], times[-q:]
    start, end = (pd.Timestamp(d) if d else None for d in (period.start, period.end))
    before = times[times < start] if start is not None else early
    after = times[times >= end + pd.Timedelta(days=1)] if end is not None else late
    before = before if before.size else early
    after = after if after.size else late
    return (before[0], before[-1]), (after[0], after[-1])


def _mark(chip: np.ndarray, scale: int) -> np.ndarray:
    """Upscale an RGBA chip and draw a magenta square around the centre pixel."""
    big = np.repeat(np.repeat(chip, scale, axis=0), scale, axis=1).copy()
    big[..., 3] = 255
    c = (chip.shape[0] // 2) * scale
    lo, hi = c - scale, c + 2 * scale - 1
    colour = np.array([255, 0, 255, 255], "uint8")
    big[lo:hi + 1, [lo, hi]] = colour
    big[[lo, hi], lo:hi + 1] = colour
    return big


def write_chips(sheet: Any, cube: Any, out_dir: str | os.PathLike, *, size_px: int = 33,
                scale: int = 4, block: int = 256) -> Any:
    """Write before/after true-colour PNG chips for every unit; return the sheet with their paths.

    The "before" chip is the median of the clear observations before the
    period, the "after" chip after it (the first/last quarter of the series
    when the period is open on that side). Units are grouped by
    ``block`` x ``block`` windows of the cube, so each window is read once.

    Parameters
    ----------
    sheet
        From :func:`labelling_sheet` (``x``, ``y`` in the cube CRS).
    cube
        Lazy cube with red/green/blue (:func:`kpgeo.cube.load_cube`).
    out_dir
        Folder of the sheet; chips go to ``out_dir/chips/`` and the sheet's
        ``chip_before``/``chip_after`` are relative to ``out_dir``.
    size_px, scale
        Chip side in cube pixels (odd, so the unit is centred) and the
        nearest-neighbour upscaling of the PNG.
    """
    from matplotlib.image import imsave

    from kpgeo.io import atomic_path
    from kpgeo.staticmap import true_colour

    if size_px < 3 or size_px % 2 == 0:
        raise ConfigError(f"chip size must be an odd number of pixels >= 3, got {size_px!r}")
    out = sheet.copy()
    chips = Path(out_dir) / "chips"
    chips.mkdir(parents=True, exist_ok=True)
    windows = _chip_windows(cube, Period.parse(f"{sheet['period_start'].iloc[0]}/"
                                               f"{sheet['period_end'].iloc[0]}"))
    xs, ys = cube["x"].values, cube["y"].values
    ix = np.clip(np.rint((out["x"].to_numpy() - xs[0]) / (xs[1] - xs[0])).astype(int), 0,
                 xs.size - 1)
    iy = np.clip(np.rint((out["y"].to_numpy() - ys[0]) / (ys[1] - ys[0])).astype(int), 0,
                 ys.size - 1)
    half = size_px // 2
    for (_by, _bx), grp in out.groupby([iy // block, ix // block]).groups.items():
        pos = out.index.get_indexer(grp)
        y0, y1 = max(iy[pos].min() - half, 0), min(iy[pos].max() + half + 1, ys.size)
        x0, x1 = max(ix[pos].min() - half, 0), min(ix[pos].max() + half + 1, xs.size)
        sub = cube.isel(y=slice(y0, y1), x=slice(x0, x1))
        for tag, (a, b) in zip(("before", "after"), windows, strict=True):
            rgba = np.asarray(true_colour(sub, start=a, end=b, max_size=None).values)
            rgba = np.pad(rgba, ((half, half), (half, half), (0, 0)))
            for p in pos:
                r, c = iy[p] - y0 + half, ix[p] - x0 + half
                chip = _mark(rgba[r - half:r + half + 1, c - half:c + half + 1], scale)
                rel = f"chips/{out['unit_id'].iloc[p]}_{tag}.png"
                with atomic_path(Path(out_dir) / rel) as tmp:
                    imsave(tmp, chip, format="png")
                out.iloc[p, out.columns.get_loc(f"chip_{tag}")] = rel
    return out


def design_record(cmap: ChangeMap, plan: dict[str, Any], *, period: Period, buffer_px: int,
                  seed: int, region: str | None) -> dict[str, Any]:
    """Describe a drawn sample for ``design.json`` (everything needed to redo it)."""
    start, end = period.iso()
    return {
        "zone": cmap.zone, "period_start": start, "period_end": end, "buffer_px": buffer_px,
        "region": region, "seed": seed, "crs": cmap.crs.to_string(),
        "transform": list(cmap.transform)[:6], "pixel_area_ha": cmap.pixel_area_ha,
        "strata": {name: {"code": code, "map_class": MAP_CLASS_OF_STRATUM[name],
                          "pixels": plan["stratum_pixels"][name],
                          "area_ha": plan["stratum_pixels"][name] * cmap.pixel_area_ha,
                          "n": plan["n_per_stratum"][name],
                          "anticipated_users": plan["users"][name]}
                   for code, name in STRATA.items()},
        "n_eq13": plan["n_eq13"], "target_se_overall": plan["target_se"],
        "min_per_stratum": plan["min_per_stratum"],
        "method": "stratified random sample of pixels (Olofsson et al. 2014, Eq. 13 sizes)",
    }


def sample_zone(
    zone_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    period: Period = Period(),
    buffer_px: int = 3,
    users: dict[str, float] | None = None,
    target_se: float = 0.01,
    n: int | None = None,
    min_per_stratum: int = 50,
    seed: int = 0,
    region: Any = None,
    region_name: str | None = None,
    items: str | os.PathLike | None = None,
    truth: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> tuple[Any, dict[str, Path]]:
    """Draw a zone's sample and write its labelling sheet (the ``kpgeo sample`` command).

    Parameters
    ----------
    zone_dir
        Folder with ``state.tif`` and ``first_detected.tif`` (``OUT/zones/<zone>``).
    out_dir
        Where the sheet goes; default ``zone_dir/sample_<period label>``.
    period, buffer_px, region
        See :func:`stratify`; ``region_name`` is recorded in ``design.json``.
    users, target_se, n, min_per_stratum
        See :func:`plan_sample`.
    seed
        Seed of the random draw.
    items
        STAC ItemCollection JSON of the zone's imagery: writes before/after
        chips (:func:`write_chips`); None: no chips.
    truth
        A simulator ``truth_mining_start.tif``: the simulated analyst labels
        the sheet (:func:`label_from_truth`).
    overwrite
        Replace an existing sheet (labels an analyst entered would be lost).

    Returns
    -------
    sheet : geopandas.GeoDataFrame
        The labelling sheet.
    paths : dict
        Output name -> path.

    Raises
    ------
    OutputExistsError
        ``out_dir`` already holds a sheet and ``overwrite`` is False.
    """
    import shapely

    from kpgeo import io

    zone_dir = Path(zone_dir)
    out = Path(out_dir) if out_dir is not None else zone_dir / f"sample_{period.label}"
    io.ensure_out_dir(out, overwrite=overwrite, expect=("labels.csv", "labels.gpkg"))
    cmap = read_change_map(zone_dir)
    strata = stratify(cmap, period=period, buffer_px=buffer_px, region=region)
    plan = plan_sample(strata, users=users, target_se=target_se, n=n,
                       min_per_stratum=min_per_stratum)
    units = draw_sample(strata, plan["n_per_stratum"], seed=seed)
    sheet = labelling_sheet(cmap, units, period=period, stratum_pixels=plan["stratum_pixels"])
    if truth is not None:
        sheet = label_from_truth(sheet, truth)
    if items is not None and len(sheet):
        from kpgeo.cube import load_cube

        margin = 0.01  # degrees (~1 km) around the units: room for the chips
        aoi = shapely.box(sheet["lon"].min() - margin, sheet["lat"].min() - margin,
                          sheet["lon"].max() + margin, sheet["lat"].max() + margin)
        cube = load_cube(items, aoi=aoi, bands=["red", "green", "blue"], crs=str(cmap.crs),
                         resolution=abs(cmap.transform.a))
        sheet = write_chips(sheet, cube, out)
    design = design_record(cmap, plan, period=period, buffer_px=buffer_px, seed=seed,
                           region=region_name)
    return sheet, write_sheet(sheet, out, design=design)
