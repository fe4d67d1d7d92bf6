"""Per-zone activity time series: how much mining, where, when, and how well we saw it.

Two pure functions (their writers and plot are in :mod:`kpgeo.timeseries_output`):

* :func:`clear_coverage` — for each cube date and each region (a zone, the
  ring just outside it), the fraction of the region's pixels that had a clear
  observation. Computed with dask reductions on the ``clear`` mask; the cube's
  reflectance is never loaded.
* :func:`zone_activity` — for each zone, its ring, and each period: area first
  detected in the period, cumulative footprint, active area, site counts,
  water-pit area, and the period's clear coverage. A period seen through clouds
  is flagged ``low_coverage`` and its activity columns are missing (missing
  data, not "less mining").

:data:`TIMESERIES_COLUMNS` is the data dictionary of the table (unit and
meaning of every column); :func:`kpgeo.timeseries_output.write_timeseries` writes it next to
``timeseries.csv`` as a CSV on the Web (CSVW) sidecar,
``timeseries.csv-metadata.json``, and ``docs/outputs.md`` lists it. Every
table has the :data:`CORE_COLUMNS`; the error-adjusted area
(:data:`ESTIMATE_COLUMNS`) and production capacity (:data:`CAPACITY_COLUMNS`)
are added by :mod:`kpgeo.estimates` only when a run has them.

Why quarterly (``freq="QS"``) by default: in the Central African Republic and
central Côte d'Ivoire the wet season (about April–October) leaves many months
with almost no clear Sentinel-2 view of a zone, so monthly periods are
dominated by cloud gaps; artisanal pits grow over weeks to months, so a quarter
still resolves the seasonal mining cycle (dry-season digging, wet-season
flooding); and quarters line up with the Kimberley Process's half-yearly and
yearly statistics, which they aggregate into exactly.

Region naming: a zone's region is its id (``"caf-berberati"``); its outside
band is ``"caf-berberati:ring"`` (see :func:`zone_regions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import ConfigError
from kpgeo.io import to_utc_naive

__all__ = [
    "RING_SUFFIX",
    "ACTIVITY_COLUMNS",
    "ESTIMATE_COLUMNS",
    "CAPACITY_COLUMNS",
    "CORE_COLUMNS",
    "TIMESERIES_COLUMNS",
    "zone_regions",
    "norm_freq",
    "clear_coverage",
    "coverage_table",
    "zone_activity",
]

#: suffix of the ring region name: ``"<zone id>" + RING_SUFFIX``
RING_SUFFIX = ":ring"

#: columns missing in low-coverage periods (what was seen in the period; cumulative state is kept)
ACTIVITY_COLUMNS = (
    "new_area_ha",
    "active_area_ha",
    "new_sites",
    "active_sites",
    "water_area_ha",
)

#: optional columns of an error-adjusted area estimate (only with a labelled sample)
ESTIMATE_COLUMNS = (
    "sample_mapped_area_ha",
    "estimated_area_ha",
    "estimated_area_ci_low_ha",
    "estimated_area_ci_high_ha",
)

#: optional production-capacity columns (only with production parameters or export figures)
CAPACITY_COLUMNS = tuple(
    f"capacity_{method}{stat}_ct_yr"
    for method in ("volume_grade", "miners_days")
    for stat in ("", "_p05", "_p95")
)

#: footprint states that mean "still being mined at the last image date"
_ACTIVE_STATES = ("new", "active")

#: data dictionary of :func:`zone_activity` / ``timeseries.csv``:
#: column -> (datatype, unit, meaning)
TIMESERIES_COLUMNS: dict[str, tuple[str, str, str]] = {
    "zone": ("string", "", "Zone id (kpgeo zones)."),
    "region": (
        "string",
        "",
        "'zone': inside the zone; 'ring': the band of ring_width_m just outside it.",
    ),
    "region_id": ("string", "", "Coverage region: '<zone id>' or '<zone id>:ring'."),
    "period_start": ("date", "", "First day of the period (UTC)."),
    "period_end": ("date", "", "Last day of the period (UTC)."),
    "new_area_ha": (
        "decimal",
        "ha",
        "Area first detected in the period: union of the footprints first detected in it, "
        "minus area detected earlier. Empty in low-coverage periods.",
    ),
    "cumulative_area_ha": (
        "decimal",
        "ha",
        "Union of all footprints first detected by the period end. A state: kept in "
        "low-coverage periods.",
    ),
    "active_area_ha": (
        "decimal",
        "ha",
        "Union of the footprints active in the period: first detected by its end and last "
        "active on or after its start (a footprint in state new or active is active up to "
        "the last image). Empty in low-coverage periods.",
    ),
    "new_sites": ("integer", "count", "Footprints first detected in the period. Empty in "
                  "low-coverage periods."),
    "active_sites": ("integer", "count", "Footprints active in the period (as for "
                     "active_area_ha). Empty in low-coverage periods."),
    "water_area_ha": (
        "decimal",
        "ha",
        "Water-filled pit area of the active footprints: sum of area x water_fraction. "
        "Empty in low-coverage periods.",
    ),
    "clear_fraction": (
        "decimal",
        "fraction 0-1",
        "Mean over the period's image dates of the share of the region's pixels seen "
        "clear (0 when the period has no image; empty when coverage is unknown).",
    ),
    "n_dates": ("integer", "count", "Image dates in the period."),
    "low_coverage": (
        "boolean",
        "",
        "True when the period has no image or clear_fraction is below min_coverage "
        "(0.3 by default): its activity is unknown, not zero.",
    ),
    # optional: only when the run has a labelled sample (kpgeo sample, docs/area_estimation.md)
    "sample_mapped_area_ha": (
        "decimal",
        "ha",
        "Mapped mining (new + stable) at the end of a labelled sample's window: the change-map "
        "pixels inside the zone that the estimate corrects (cumulative_area_ha counts whole "
        "footprint polygons and can differ). Zone rows only, on the period holding the window "
        "end (the last period for an open window); empty elsewhere. Only with a labelled sample.",
    ),
    "estimated_area_ha": (
        "decimal",
        "ha",
        "Error-adjusted area of all mining (new + stable) at the end of the sample window: "
        "stratified estimate from the labelled sample (Olofsson et al. 2014). Same rows as "
        "sample_mapped_area_ha; a state, kept in low-coverage periods. Only with a labelled "
        "sample.",
    ),
    "estimated_area_ci_low_ha": (
        "decimal",
        "ha",
        "Lower bound of the 95 % confidence interval of estimated_area_ha (estimate - 1.96 SE, "
        "clipped at 0). Only with a labelled sample.",
    ),
    "estimated_area_ci_high_ha": (
        "decimal",
        "ha",
        "Upper bound of the 95 % confidence interval of estimated_area_ha (estimate + 1.96 SE). "
        "Only with a labelled sample.",
    ),
    # optional: only with production parameters or export figures (kpgeo.production)
    **{
        f"capacity_{method}{stat}_ct_yr": (
            "decimal",
            "ct/yr",
            f"{what} of the production capacity by {route} (Monte Carlo over the parameter "
            "ranges: docs/area_estimation.md). Inside the zone: zone rows only; empty in "
            "low-coverage periods. Only with production parameters or export figures.",
        )
        for method, route in (
            ("volume_grade", "volume x grade: area first detected in the period, per year, x "
             "gravel thickness x grade x recovery"),
            ("miners_days", "miners x days: area active in the period x miners per ha x working "
             "days x gravel per miner-day x grade x recovery"),
        )
        for stat, what in (("", "Median"), ("_p05", "5th percentile"), ("_p95", "95th percentile"))
    },
}

#: columns every time series has (the others are optional)
CORE_COLUMNS = tuple(c for c in TIMESERIES_COLUMNS if c not in ESTIMATE_COLUMNS + CAPACITY_COLUMNS)

#: decimals of the CSV: areas to 0.01 ha, clear fractions to 1e-4, carats to whole carats

_FOOTPRINT_COLUMNS = ("zone", "geometry", "first_detected", "last_active", "inside_zone")


# --------------------------------------------------------------------------- regions
def zone_regions(zones: Iterable[Any], *, ring_width_m: float = 5000.0) -> dict[str, Any]:
    """Regions to monitor for some zones: each zone and the ring just outside it.

    Parameters
    ----------
    zones
        :class:`kpgeo.zones.Zone` objects (anything with ``id``, ``geometry``
        in EPSG:4326 and ``ring(width_m)``).
    ring_width_m
        Width of the outside band, metres.

    Returns
    -------
    dict
        ``{zone.id: geometry, zone.id + ":ring": ring geometry}``, EPSG:4326.
    """
    out: dict[str, Any] = {}
    for zone in zones:
        out[str(zone.id)] = zone.geometry
        out[str(zone.id) + RING_SUFFIX] = zone.ring(ring_width_m)
    return out


def _norm_regions(regions: Any) -> dict[str, Any]:
    """Normalise regions (dict name -> EPSG:4326 geometry, or GeoDataFrame) to a dict."""
    if isinstance(regions, Mapping):
        if not regions:
            raise ConfigError("regions is empty; pass {name: shapely geometry in EPSG:4326}")
        return {str(k): v for k, v in regions.items()}
    try:
        import geopandas as gpd
    except ImportError:  # pragma: no cover - geopandas is a dependency
        gpd = None
    if gpd is not None and isinstance(regions, gpd.GeoDataFrame):
        if regions.crs is None:
            raise ConfigError("regions GeoDataFrame has no CRS; set one (e.g. .set_crs(4326))")
        gdf = regions.to_crs(4326)
        for col in ("region", "name", "id"):
            if col in gdf.columns:
                names = gdf[col].astype(str)
                break
        else:
            names = gdf.index.astype(str)
        return dict(zip(names, gdf.geometry, strict=True))
    raise ConfigError(
        f"regions must be a dict name -> shapely geometry (EPSG:4326) or a GeoDataFrame, "
        f"got {type(regions).__name__}"
    )


def _cube_geobox(cube: Any) -> Any:
    """Return the cube's odc-geo GeoBox (from its ``spatial_ref`` coordinate)."""
    import odc.geo.xr  # noqa: F401  (registers .odc)

    try:
        gbox = cube.odc.geobox
    except (AttributeError, ValueError):
        gbox = None
    if gbox is None or gbox.crs is None:
        raise ConfigError(
            "cube has no georeference (no spatial_ref coordinate / odc geobox); "
            "build it with kpgeo.cube.load_cube"
        )
    return gbox


def pixel_area_ha(gbox: Any) -> float:
    """Mean ground area of one pixel of a grid, hectares (see :func:`clear_coverage`)."""
    return _pixel_area_ha(gbox)


def _pixel_area_ha(gbox: Any) -> float:
    """Mean ground area of one grid pixel, hectares (geodesic area of the grid / pixel count)."""
    from kpgeo.zones import geodesic_area_ha

    ny, nx = gbox.shape
    if not ny or not nx:
        return 0.0
    res = abs(gbox.resolution.x)
    extent = gbox.extent.to_crs("EPSG:4326", resolution=res * 16).geom
    return geodesic_area_ha(extent) / (ny * nx)


# --------------------------------------------------------------------------- coverage
def clear_coverage(cube: Any, regions: Any, *, clear_var: str = "clear") -> pd.DataFrame:
    """Fraction of each region's pixels with a clear observation, per cube date.

    Parameters
    ----------
    cube
        Cube from :func:`kpgeo.cube.load_cube` (dims ``time, y, x``, a boolean
        ``clear`` variable, a ``spatial_ref`` coordinate). Dask-backed cubes stay
        lazy: one reduction per region, computed together; reflectance bands are
        never read.
    regions
        ``{name: shapely geometry in EPSG:4326}`` or a GeoDataFrame (names from
        its ``region``, ``name`` or ``id`` column, else its index).
    clear_var
        Name of the boolean clear-observation variable.

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (datetime64[ns]), ``region`` (str), ``clear_fraction``
        (float in [0, 1]; NaN for a region with no pixel on the cube grid),
        ``n_pixels`` (region pixels on the grid) and ``imaged_area_ha`` (their
        ground area, geodesic, hectares: the part of the region the imagery
        covers). Pixels of the region outside the cube grid are not counted;
        pixels on the grid but outside the imagery or AOI count as not clear.

    Raises
    ------
    ConfigError
        When the cube lacks ``clear_var`` or a georeference, or regions are invalid.
    """
    import dask
    import xarray as xr

    if clear_var not in cube:
        raise ConfigError(
            f"cube has no {clear_var!r} variable (has {sorted(cube.data_vars)}); "
            "load it with kpgeo.cube.load_cube"
        )
    named = _norm_regions(regions)
    from kpgeo.cube import region_mask

    gbox = _cube_geobox(cube)
    clear = cube[clear_var]
    if clear.dims[-2:] != ("y", "x"):
        clear = clear.transpose(..., "y", "x")
    sums = []
    counts = []
    for geom in named.values():
        mask = region_mask(geom, gbox)
        counts.append(int(mask.sum()))
        m = xr.DataArray(mask, dims=("y", "x"))
        sums.append(clear.where(m, False).sum(("y", "x")))
    (computed,) = dask.compute(sums)
    clear_counts = np.stack([np.asarray(c, dtype="int64") for c in computed], axis=1)
    return coverage_table(cube["time"].values, list(named), clear_counts, counts,
                          pixel_ha=_pixel_area_ha(gbox))


def coverage_table(times: Any, regions: list[str], clear_counts: Any, n_pixels: Any, *,
                   pixel_ha: float) -> pd.DataFrame:
    """Build the :func:`clear_coverage` table from counts of clear pixels.

    Parameters
    ----------
    times
        Date of each row of ``clear_counts`` (datetime64).
    regions
        Region names, one per column of ``clear_counts``.
    clear_counts
        ``(time, region)`` integers: clear pixels of each region on each date.
    n_pixels
        Pixels of each region on the grid.
    pixel_ha
        Ground area of one pixel, hectares.

    The streamed zone run (:mod:`kpgeo.stream`) adds these counts up block by
    block, and keeps them with its state so that a later run adds only the new dates.
    """
    clear_counts = np.asarray(clear_counts, dtype="float64").reshape(len(times), len(regions))
    frames = []
    for j, (name, n) in enumerate(zip(regions, n_pixels, strict=True)):
        n = int(n)
        vals = clear_counts[:, j]
        frac = vals / n if n else np.full(vals.shape, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.to_datetime(np.asarray(times)),
                    "region": name,
                    "clear_fraction": np.clip(frac, 0.0, 1.0),
                    "n_pixels": n,
                    "imaged_area_ha": round(n * pixel_ha, 2),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["date"] = out["date"].astype("datetime64[ns]")
    return out.sort_values(["region", "date"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- activity
def _check_footprints(footprints: Any) -> None:
    missing = [c for c in _FOOTPRINT_COLUMNS if c not in footprints.columns]
    if missing:
        raise ConfigError(
            f"footprints lack column(s) {missing}; pass the GeoDataFrame from "
            "kpgeo.footprints.extract_footprints (or its footprints.parquet)"
        )


_FREQ_ALIASES = {"M": "MS", "Q": "QS", "Y": "YS", "A": "YS", "AS": "YS", "QS-JAN": "QS"}


def norm_freq(freq: str) -> str:
    """Normalise a period alias to a period-*start* pandas frequency (``Q`` -> ``QS``)."""
    return _FREQ_ALIASES.get(str(freq).upper(), str(freq))


def _period_starts(start: pd.Timestamp, end: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    freq = norm_freq(freq)
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError as exc:
        raise ConfigError(
            f"freq={freq!r} is not a pandas frequency; use e.g. 'QS', 'MS', 'YS'"
        ) from exc
    first = offset.rollback(start.normalize())
    starts = pd.date_range(first, end, freq=offset)
    if len(starts) == 0:
        starts = pd.DatetimeIndex([first])
    return starts


def zone_activity(
    footprints: Any,
    coverage: pd.DataFrame | None = None,
    *,
    freq: str = "QS",
    zones: Iterable[Any] | None = None,
    ring_width_m: float = 5000.0,
    min_coverage: float = 0.3,
    mask_low_coverage: bool = True,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Mining activity per zone, per outside ring and per period.

    Parameters
    ----------
    footprints
        GeoDataFrame from :func:`kpgeo.footprints.extract_footprints` (columns
        ``zone, geometry, first_detected, last_active, inside_zone``, optionally
        ``state``, ``water_fraction``, ``distance_to_boundary_m``); any CRS.
    coverage
        Output of :func:`clear_coverage` with regions named as by
        :func:`zone_regions`, or None (coverage unknown: ``clear_fraction`` NaN,
        nothing flagged).
    freq
        Pandas period-start frequency; ``"QS"`` (quarters) by default — see the
        module docstring for why.
    zones
        Zones to report (objects with ``id``, ``name``, ``utm_crs``). Default:
        the zone ids found in ``footprints``. A zone with no footprint still gets
        rows (zero activity).
    ring_width_m
        Outside footprints farther than this from the boundary are ignored
        (needs ``distance_to_boundary_m``).
    min_coverage
        Periods whose mean clear fraction is below this are ``low_coverage``.
    mask_low_coverage
        Set the activity columns (:data:`ACTIVITY_COLUMNS`) to missing in
        low-coverage periods. Cumulative area is a state and is always kept.
    start, end
        Report window (date-likes). Default: from the earliest coverage date or
        detection to the latest.

    Returns
    -------
    pandas.DataFrame
        One row per (zone, region, period) with the columns of
        :data:`CORE_COLUMNS` (units and meanings: :data:`TIMESERIES_COLUMNS`;
        the optional columns are added by :mod:`kpgeo.estimates`).
        A footprint is *active* in a period when it was first detected by the
        period end and last active on or after its start; one in state
        ``new`` or ``active`` stays active up to the last image date. Counts
        are nullable integers (``Int64``), areas in hectares computed in each
        zone's UTM CRS (EPSG:6933 when unknown).
    """
    import geopandas as gpd

    _check_footprints(footprints)
    if not 0.0 <= float(min_coverage) <= 1.0:
        raise ConfigError(f"min_coverage must be within [0, 1], got {min_coverage!r}")
    if not isinstance(footprints, gpd.GeoDataFrame) or footprints.crs is None:
        raise ConfigError("footprints must be a GeoDataFrame with a CRS")
    fp = _prepare_footprints(footprints, ring_width_m=ring_width_m)

    zone_objs = {str(z.id): z for z in zones} if zones is not None else {}
    zone_ids = list(zone_objs) if zone_objs else sorted(fp["zone"].unique())
    if not zone_ids:
        raise ConfigError("no zone to report: footprints are empty and zones were not given")
    cov = _prepare_coverage(coverage)

    dates = [fp["first_detected"], fp["last_active"]]
    if cov is not None:
        dates.append(cov["date"])
    all_dates = pd.concat(dates).dropna()
    t0 = pd.Timestamp(start) if start is not None else (all_dates.min() if len(all_dates) else None)
    t1 = pd.Timestamp(end) if end is not None else (all_dates.max() if len(all_dates) else None)
    if t0 is None or t1 is None:
        raise ConfigError("cannot infer the report window: no dates; pass start= and end=")
    freq = norm_freq(freq)
    starts = _period_starts(t0, t1, freq)
    offset = pd.tseries.frequencies.to_offset(freq)
    ends = [s + offset - pd.Timedelta(1, "ns") for s in starts]

    rows = []
    for zid in zone_ids:
        zobj = zone_objs.get(zid)
        local_crs = getattr(zobj, "utm_crs", None) or "EPSG:6933"
        zfp = fp[fp["zone"] == zid]
        zfp = zfp.to_crs(local_crs) if len(zfp) else zfp
        if cov is not None:
            zdates = cov.loc[cov["region"].isin([zid, zid + RING_SUFFIX]), "date"]
            last_image = zdates.max() if len(zdates) else all_dates.max()
        else:
            last_image = all_dates.max()
        zfp = _still_active_until(zfp, last_image)
        for region, sel in (("zone", True), ("ring", False)):
            rfp = zfp[zfp["inside_zone"] == sel] if len(zfp) else zfp
            region_id = zid if region == "zone" else zid + RING_SUFFIX
            rcov = cov[cov["region"] == region_id] if cov is not None else None
            rows.extend(_region_rows(zid, region, region_id, rfp, rcov, starts, ends, min_coverage))
    out = pd.DataFrame(rows)
    if mask_low_coverage:
        for col in ACTIVITY_COLUMNS:
            out[col] = out[col].where(~out["low_coverage"])
    for col in ("new_sites", "active_sites", "n_dates"):
        out[col] = out[col].astype("Int64")
    return out[list(CORE_COLUMNS)]


def _prepare_footprints(footprints: Any, *, ring_width_m: float) -> Any:
    """Footprints with UTC-naive dates, filled optional columns, far ring sites dropped."""
    fp = footprints.copy()
    fp["first_detected"] = to_utc_naive(
        fp["first_detected"], what="footprints first_detected"
    ).to_numpy()
    fp["last_active"] = to_utc_naive(fp["last_active"], what="footprints last_active").to_numpy()
    fp["last_active"] = fp["last_active"].fillna(fp["first_detected"])
    fp = fp[fp["first_detected"].notna()]
    fp["zone"] = fp["zone"].astype(str)
    fp["inside_zone"] = fp["inside_zone"].astype(bool)
    if "water_fraction" not in fp.columns:
        fp["water_fraction"] = 0.0
    if "state" not in fp.columns:
        fp["state"] = ""
    if "distance_to_boundary_m" in fp.columns:
        far = (~fp["inside_zone"]) & (fp["distance_to_boundary_m"].astype(float) > ring_width_m)
        fp = fp[~far]
    return fp


def _still_active_until(fp: Any, last_image: Any) -> Any:
    """Footprints in state new/active stay active up to ``last_image`` (their last_active)."""
    still = fp["state"].astype(str).isin(_ACTIVE_STATES).to_numpy()
    if not still.any() or pd.isna(last_image):
        return fp
    fp = fp.copy()
    fp.loc[still, "last_active"] = np.maximum(
        fp.loc[still, "last_active"].to_numpy(), np.datetime64(pd.Timestamp(last_image), "ns")
    )
    return fp


def _prepare_coverage(coverage: pd.DataFrame | None) -> pd.DataFrame | None:
    """Coverage with UTC-naive dates and string regions (None when unknown)."""
    if coverage is None or not len(coverage):
        return None
    missing = {"date", "region", "clear_fraction"} - set(coverage.columns)
    if missing:
        raise ConfigError(
            f"coverage lacks column(s) {sorted(missing)}; pass clear_coverage() output"
        )
    cov = coverage.copy()
    cov["date"] = to_utc_naive(cov["date"], what="coverage date").to_numpy()
    cov["region"] = cov["region"].astype(str)
    return cov


def _period_coverage(rcov, s, e, min_coverage) -> tuple[int, float, bool]:
    """``(n_dates, mean clear fraction, low_coverage)`` of one region and period."""
    if rcov is None:
        return 0, float("nan"), False
    in_p = rcov[(rcov["date"] >= s) & (rcov["date"] <= e)]
    n_dates = int(len(in_p))
    frac = float(in_p["clear_fraction"].mean()) if n_dates else 0.0
    # NaN (region off the cube grid) compares False: low coverage
    return n_dates, frac, bool(n_dates == 0 or not (frac >= min_coverage))


def _overlap_free(geoms: list) -> bool:
    """Tell whether no two geometries share area (footprints of one label raster only touch)."""
    import shapely

    if len(geoms) < 2:
        return True
    arr = np.asarray(geoms, dtype=object)
    i, j = shapely.STRtree(arr).query(arr, predicate="intersects")
    pair = i < j
    if not pair.any():
        return True
    shared = shapely.area(shapely.intersection(arr[i[pair]], arr[j[pair]]))
    return bool((shared <= 1e-6).all())  # square metres: a shared edge or corner


class _AreaOfSets:
    """Hectares of the union of subsets of ``geoms`` (metric CRS).

    Footprints that do not overlap (the usual case: one label raster) add up, so no
    union is computed; overlapping ones are unioned per subset.
    """

    def __init__(self, geoms: list) -> None:
        self.geoms = geoms
        self.hectares = np.array([g.area for g in geoms], dtype=float) / 10_000.0
        self.disjoint = _overlap_free(geoms)

    def union(self, which: np.ndarray) -> Any:
        import shapely

        chosen = [g for g, k in zip(self.geoms, which, strict=True) if k]
        return shapely.union_all(chosen) if chosen else None

    def area(self, which: np.ndarray) -> float:
        if self.disjoint:
            return float(self.hectares[which].sum())
        union = self.union(which)
        return float(union.area) / 10_000.0 if union is not None else 0.0

    def new_area(self, which: np.ndarray, earlier: np.ndarray) -> float:
        """Area of ``which`` outside the union of ``earlier``."""
        if self.disjoint:
            return self.area(which)
        new, old = self.union(which), self.union(earlier)
        if new is None:
            return 0.0
        return float((new.difference(old) if old is not None else new).area) / 10_000.0


def _region_rows(zid, region, region_id, rfp, rcov, starts, ends, min_coverage) -> list[dict]:
    rows = []
    sets = _AreaOfSets(list(rfp.geometry) if len(rfp) else [])
    first = rfp["first_detected"].to_numpy() if len(rfp) else np.array([], dtype="datetime64[ns]")
    last = rfp["last_active"].to_numpy() if len(rfp) else np.array([], dtype="datetime64[ns]")
    water = rfp["water_fraction"].astype(float).fillna(0.0).to_numpy() if len(rfp) else np.array([])
    # footprints detected before the window are not "new" in its first period
    earlier = first < np.datetime64(starts[0], "ns")
    for s, e in zip(starts, ends, strict=True):
        s64, e64 = np.datetime64(s, "ns"), np.datetime64(e, "ns")
        is_new = (first >= s64) & (first <= e64)
        present = first <= e64
        active = present & (last >= s64)
        n_dates, frac, low = _period_coverage(rcov, s, e, min_coverage)
        rows.append(
            {
                "zone": zid,
                "region": region,
                "region_id": region_id,
                "period_start": s,
                "period_end": e.normalize(),
                "new_area_ha": sets.new_area(is_new, earlier) if is_new.any() else 0.0,
                "cumulative_area_ha": sets.area(present),
                "active_area_ha": sets.area(active),
                "new_sites": int(is_new.sum()),
                "active_sites": int(active.sum()),
                "water_area_ha": float((sets.hectares[active] * water[active]).sum()),
                "clear_fraction": frac,
                "n_dates": n_dates,
                "low_coverage": low,
            }
        )
        earlier = present
    return rows


# --------------------------------------------------------------------------- writers
