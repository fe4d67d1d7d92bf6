"""Mining footprints: from the per-pixel change rasters to polygons.

:func:`extract_footprints` builds the footprint mask in three steps, each a
small pure function on arrays (:func:`footprint_mask`):

1. *confirmed* pixels (a mining state, ``confidence >= min_confidence``) are
   cleaned with scikit-image morphology — a closing with a small disk bridges
   the one-pixel gaps between neighbouring pits of one site, then objects and
   holes smaller than the minimum mapping unit are dropped/filled;
2. the objects grow by hysteresis (:func:`skimage.filters.apply_hysteresis_threshold`)
   over connected ``pending`` pixels — mining-like runs still too short to be
   confirmed at the last date: the newest pits of a site that opens outward
   from its first pit. Pending pixels never form an object on their own;
3. connected objects (8-connectivity) are labelled and vectorised with
   :func:`rasterio.features.shapes`; objects that never show water and are
   spectrally uniform are *clearings* — a ploughed or long-fallow field, not a
   pit-and-spoil mosaic — and are left out (:func:`footprint_candidates` keeps
   them, with ``kind``), unless they lie next to (30 m) a mining object that
   holds water, or are small (< 0.25 ha) and within 100 m of a river or lake
   (a gravel pit on a bank).

Attributes are aggregated per object from the change rasters; ``alert_date`` is
the date on which the object first reached the mapping unit in confirmed
pixels (what an operational alert would have reported). Areas and distances
are computed in the zone's local UTM CRS (or EPSG:6933 equal-area when there
is no zone and the cube CRS is geographic).

:func:`detect_footprints` chains :func:`kpgeo.change.detect_changes` and
:func:`extract_footprints`; :func:`write_detection` writes footprints and the
change rasters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kpgeo.change import STATE_NAMES, ChangeParams
from kpgeo.errors import ConfigError, CRSMismatchError

__all__ = [
    "FOOTPRINT_COLUMNS",
    "DETECT_OUTPUTS",
    "extract_footprints",
    "detect_footprints",
    "change_rasters",
    "write_detection",
]

FOOTPRINT_COLUMNS = [
    "id", "zone", "geometry", "area_ha", "first_detected", "alert_date", "last_active", "state",
    "confidence", "water_fraction", "mean_ndvi", "mean_mndwi", "mean_bsi",
    "distance_to_boundary_m", "inside_zone",
]

#: files written by :func:`write_detection`
DETECT_OUTPUTS = ("footprints.geojson", "footprints.parquet", "first_detected.tif",
                  "alert_date.tif", "last_active.tif", "confidence.tif", "state.tif",
                  "reason.tif")

#: nodata of the int32 day rasters (days since 1970-01-01)
DAY_NODATA = -1


def _crs_of(change: Any):
    from pyproj import CRS

    if "spatial_ref" in change.coords:
        wkt = change["spatial_ref"].attrs.get("crs_wkt") or change["spatial_ref"].attrs.get(
            "spatial_ref")
        if wkt:
            return CRS.from_wkt(wkt)
    try:
        crs = change.odc.geobox.crs
        if crs is not None:
            return CRS.from_user_input(str(crs))
    except Exception:  # noqa: BLE001 - fall through to a clear error
        pass
    raise CRSMismatchError("The change Dataset has no CRS (expected a `spatial_ref` coordinate "
                           "as produced by kpgeo.cube.load_cube).")


def _transform_of(change: Any):
    from affine import Affine

    x = np.asarray(change["x"].values, dtype="float64")
    y = np.asarray(change["y"].values, dtype="float64")
    if x.size < 2 or y.size < 2:
        gt = change["spatial_ref"].attrs.get("GeoTransform") if "spatial_ref" in change.coords \
            else None
        if gt:
            return Affine.from_gdal(*[float(v) for v in str(gt).split()])
        raise ConfigError("Cannot derive the pixel grid of a change raster narrower than 2 px.")
    dx = (x[-1] - x[0]) / (x.size - 1)
    dy = (y[-1] - y[0]) / (y.size - 1)
    return Affine(dx, 0.0, x[0] - dx / 2, 0.0, dy, y[0] - dy / 2)


def _zone_parts(zone: Any):
    """Return (zone id or None, shapely geometry EPSG:4326 or None, metric CRS or None)."""
    if zone is None:
        return None, None, None
    from shapely.geometry.base import BaseGeometry

    if isinstance(zone, BaseGeometry):
        from kpgeo.zones import utm_crs_for

        return None, zone, utm_crs_for(zone)
    geom = getattr(zone, "geometry", None)
    if geom is None:
        raise ConfigError(f"zone must be a kpgeo.zones.Zone or a shapely geometry, got {zone!r}.")
    return getattr(zone, "id", None), geom, zone.utm_crs


def _clean_mask(mask: np.ndarray, *, min_pixels: int, closing_radius: int) -> np.ndarray:
    from skimage import morphology

    out = mask.copy()
    if closing_radius > 0:
        fp = morphology.disk(closing_radius)
        out = morphology.closing(out, fp)
    if min_pixels > 1:
        out = morphology.remove_small_objects(out, max_size=min_pixels - 1, connectivity=2)
        out = morphology.remove_small_holes(out, max_size=min_pixels - 1)
    return out


def footprint_mask(confirmed: np.ndarray, pending: np.ndarray | None = None, *,
                   min_pixels: int, closing_radius: int = 1) -> np.ndarray:
    """Footprint mask from confirmed and pending pixels (see the module docstring).

    Parameters
    ----------
    confirmed : numpy.ndarray of bool
        Pixels in a mining state.
    pending : numpy.ndarray of bool, optional
        Pixels whose mining-like run is too short to confirm yet; they join
        the confirmed objects they touch, never form one alone.
    min_pixels : int
        Minimum mapping unit in pixels (objects and holes below it are removed).
    closing_radius : int
        Radius (pixels) of the morphological closing; 0 disables it.
    """
    from skimage.filters import apply_hysteresis_threshold

    core = _clean_mask(confirmed, min_pixels=min_pixels, closing_radius=closing_radius)
    if pending is None or not core.any():
        return core
    level = core.astype("uint8") * 2 + (pending & ~core).astype("uint8")
    grown = apply_hysteresis_threshold(level, 0.5, 1.5)
    return _clean_mask(grown, min_pixels=min_pixels, closing_radius=closing_radius)


#: an object is a dry uniform *clearing* (a ploughed or fallow field, not a pit-and-spoil
#: mosaic) when fewer than this share of its pixels ever showed water ...
CLEARING_MAX_WATER = 0.05
#: ... and the spread (standard deviation) of its pixels' mean NDVI is below this
CLEARING_MAX_TEXTURE = 0.06


def _check_args(min_area_ha: Any, min_confidence: Any, closing_radius: Any,
                clearing_min_area_ha: Any) -> None:
    if not (isinstance(min_area_ha, (int, float)) and 0 <= min_area_ha < 1e6):
        raise ConfigError(f"min_area_ha must be a number >= 0 (hectares), got {min_area_ha!r}.")
    if not (isinstance(min_confidence, (int, float)) and 0 <= min_confidence <= 1):
        raise ConfigError(f"min_confidence must be in [0, 1], got {min_confidence!r}.")
    if not (isinstance(closing_radius, (int, np.integer)) and 0 <= closing_radius <= 10):
        raise ConfigError(f"closing_radius must be an integer in [0, 10], got {closing_radius!r}.")
    if clearing_min_area_ha is not None and not (
            isinstance(clearing_min_area_ha, (int, float)) and 0 <= clearing_min_area_ha < 1e6):
        raise ConfigError("clearing_min_area_ha must be None or a number >= 0 (hectares), got "
                          f"{clearing_min_area_ha!r}.")


def _pixel_area_m2(crs: Any, transform: Any, metric_crs: Any) -> float:
    """Area of one pixel of the change grid in the metric CRS."""
    import shapely
    from pyproj import Transformer

    if crs.equals(metric_crs):
        return abs(transform.a * transform.e)
    fn = Transformer.from_crs(crs, metric_crs, always_xy=True).transform
    box = shapely.box(transform.c, transform.f + transform.e, transform.c + transform.a,
                      transform.f)
    return abs(shapely.transform(box, lambda c: np.column_stack(fn(c[:, 0], c[:, 1]))).area)


def _days(change: Any, var: str) -> np.ndarray:
    """Return a datetime64 change variable as float days since 1970-01-01 (NaN for NaT)."""
    vals = np.asarray(change[var].values)
    out = vals.astype("datetime64[D]").astype("float64")
    out[np.isnat(vals)] = np.nan
    return out


def object_attributes(change: Any, labels: np.ndarray, n: int, *, min_pixels: int) -> Any:
    """Per-object statistics of the change rasters (one row per label 1..n).

    Columns: ``first_detected``/``alert_date``/``last_active`` (days),
    ``state`` (majority code of the mining pixels), ``confidence``,
    ``water_fraction`` (share of mining pixels mostly under water),
    ``water_any`` (share that ever showed water), ``texture`` (standard
    deviation of the pixels' mean NDVI since their break) and the mean indices.
    """
    import pandas as pd
    from scipy import ndimage

    idx = np.arange(1, n + 1)
    state = np.asarray(change["state"].values)
    mining = (state >= 1) & (state <= 4)

    def agg(values, fn):
        return np.asarray(ndimage.labeled_comprehension(values, labels, idx, fn, float, np.nan))

    def on_mining(var):
        if var not in change:
            return np.full(state.shape, np.nan)
        return np.where(mining, np.asarray(change[var].values, dtype="float64"), np.nan)

    def mode(v):
        v = v[v > 0]
        return float(np.bincount(v).argmax()) if v.size else 2.0

    out = pd.DataFrame({
        "first_detected": agg(_days(change, "first_detected"), np.nanmin),
        "alert_date": _alert_days(_days(change, "alert_date"), labels, idx, max(min_pixels, 1))
        if "alert_date" in change else np.full(n, np.nan),
        "last_active": agg(_days(change, "last_active"), np.nanmax),
        # pixels added by the closing or the growth have no state: mode over mining pixels
        "state": agg(np.where(mining, state, 0).astype("int64"), mode),
        "confidence": agg(on_mining("confidence"), np.nanmean),
        "water_fraction": agg(on_mining("water"), np.nanmean),
        "water_any": agg(np.where(mining, on_mining("water_share") > 0, np.nan), np.nanmean)
        if "water_share" in change else np.full(n, np.nan),
        "texture": agg(on_mining("mean_ndvi"), np.nanstd),
    })
    for var in ("mean_ndvi", "mean_mndwi", "mean_bsi"):
        out[var] = agg(on_mining(var), np.nanmean)
    return out


def object_kind(attrs: Any, area_ha: np.ndarray, *, clearing_min_area_ha: float | None,
                near_wet: np.ndarray | None = None) -> np.ndarray:
    """``"mining"`` or ``"clearing"`` per object (see :data:`CLEARING_MAX_WATER`).

    Artisanal alluvial mining is a mosaic of water-filled pits, gravel and spoil;
    a ploughed or long-fallow field is one uniform, dry patch. An object of at
    least ``clearing_min_area_ha`` that never shows water and is uniform is a
    clearing — unless ``near_wet`` says it sits where pits are dug (next to a
    water-bearing mining object, or small and beside a river; see
    :func:`_pit_context`). ``None`` disables the test.
    """
    kind = np.full(len(attrs), "mining", dtype=object)
    if clearing_min_area_ha is None or "water_any" not in attrs or attrs["water_any"].isna().all():
        return kind
    dry = attrs["water_any"].fillna(0).to_numpy() < CLEARING_MAX_WATER
    uniform = attrs["texture"].fillna(0).to_numpy() < CLEARING_MAX_TEXTURE
    clearing = dry & uniform & (np.asarray(area_ha) >= clearing_min_area_ha)
    if near_wet is not None:
        clearing &= ~near_wet
    kind[clearing] = "clearing"
    return kind


def objects_near(labels: np.ndarray, n: int, region: np.ndarray, *, radius: int) -> np.ndarray:
    """Per object 1..n: whether any of its pixels lies within ``radius`` px of ``region``."""
    from scipy import ndimage
    from skimage.morphology import disk

    zone = ndimage.binary_dilation(region, structure=disk(radius)) if region.any() else region
    hit = np.zeros(n + 1, bool)
    hit[np.unique(labels[zone & (labels > 0)])] = True
    return hit[1:]


def near_wet_objects(labels: np.ndarray, wet: np.ndarray, *, radius: int) -> np.ndarray:
    """Per object 1..n: whether it lies within ``radius`` px of another object marked ``wet``."""
    wet_lab = np.r_[False, np.asarray(wet, bool)]
    return objects_near(labels, len(wet), wet_lab[labels], radius=radius) & ~wet


#: a dry object next to a water-bearing mining object (this close) belongs to its pit site
SITE_DISTANCE_M = 30.0
#: a small dry object (below PIT_MAX_HA) this close to a river or lake is a gravel pit
RIVER_DISTANCE_M = 100.0
PIT_MAX_HA = 0.25


def _pit_context(change: Any, labels: np.ndarray, attrs: Any, area_ha: Any, *,
                 px_m: float) -> np.ndarray:
    """Per object: whether a dry object sits where pits are dug (see :func:`object_kind`).

    Next to (``SITE_DISTANCE_M``) a mining object that holds water — a gravel
    heap of a pit site —, or small (< ``PIT_MAX_HA``) and within
    ``RIVER_DISTANCE_M`` of water that was there from the start (a river or lake:
    the pixels whose baseline class is water) — a gravel pit on a bank.
    """
    n = len(attrs)
    wet = attrs["water_any"].fillna(0).to_numpy() >= CLEARING_MAX_WATER
    near = near_wet_objects(labels, wet, radius=max(1, int(round(SITE_DISTANCE_M / px_m))))
    if "baseline_class" in change:
        river = np.asarray(change["baseline_class"].values) == 2  # kpgeo.change WATER
        reach = max(1, int(round(RIVER_DISTANCE_M / px_m)))
        by_river = objects_near(labels, n, river, radius=reach)
        near |= by_river & (np.asarray(area_ha) < PIT_MAX_HA)
    return near


def _vectorise(labels: np.ndarray, n: int, transform: Any) -> list:
    import rasterio.features
    import shapely
    from shapely.geometry import shape

    geoms: dict[int, list] = {}
    for geom, val in rasterio.features.shapes(labels.astype("int32"), mask=labels > 0,
                                              transform=transform, connectivity=8):
        geoms.setdefault(int(val), []).append(shape(geom))
    return [shapely.union_all(geoms[i]) for i in range(1, n + 1)]


def _zone_relation(gdf: Any, metric: Any, zone_geom: Any, metric_crs: Any) -> None:
    """Add ``distance_to_boundary_m`` (signed, negative inside) and ``inside_zone``."""
    import shapely
    from pyproj import Transformer

    if zone_geom is None:
        gdf["distance_to_boundary_m"] = np.nan
        gdf["inside_zone"] = True
        return
    fn = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True).transform
    zone_metric = shapely.transform(zone_geom, lambda c: np.column_stack(fn(c[:, 0], c[:, 1])))
    cents = metric.geometry.centroid
    inside = cents.within(zone_metric).to_numpy()
    dist = cents.distance(zone_metric.boundary).to_numpy()
    gdf["distance_to_boundary_m"] = np.where(inside, -dist, dist)
    gdf["inside_zone"] = inside


def footprint_candidates(
    change: Any,
    *,
    zone: Any = None,
    min_area_ha: float = 0.05,
    min_confidence: float = 0.0,
    closing_radius: int = 1,
    clearing_min_area_ha: float | None = 0.0,
) -> Any:
    """Every object of the footprint mask, with its ``kind`` (mining or clearing).

    Same parameters and columns as :func:`extract_footprints`, plus ``kind``,
    ``water_any`` and ``texture``.
    """
    import geopandas as gpd
    import pandas as pd
    from pyproj import CRS
    from scipy import ndimage

    _check_args(min_area_ha, min_confidence, closing_radius, clearing_min_area_ha)
    for var in ("state", "confidence", "first_detected", "last_active"):
        if var not in change:
            raise ConfigError(f"The change Dataset lacks `{var}`; pass the output of "
                              f"kpgeo.change.detect_changes.")
    crs, transform = _crs_of(change), _transform_of(change)
    zone_id, zone_geom, metric_crs = _zone_parts(zone)
    metric_crs = CRS.from_user_input(metric_crs if metric_crs is not None else
                                     (crs if crs.is_projected else CRS.from_epsg(6933)))
    px_area = _pixel_area_m2(crs, transform, metric_crs)
    min_pixels = int(np.ceil(min_area_ha * 10_000.0 / px_area - 1e-9)) if min_area_ha else 0

    state = np.asarray(change["state"].values)
    confirmed = (state >= 1) & (state <= 4) & \
        (np.asarray(change["confidence"].values) >= min_confidence)
    pending = np.asarray(change["pending"].values, dtype=bool) if "pending" in change else None
    mask = footprint_mask(confirmed, pending, min_pixels=min_pixels,
                          closing_radius=int(closing_radius))
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), int))
    columns = FOOTPRINT_COLUMNS + ["kind", "water_any", "texture"]
    if n == 0:
        return gpd.GeoDataFrame({c: pd.Series(dtype="object") for c in columns
                                 if c != "geometry"}, geometry=gpd.GeoSeries([], crs=crs),
                                crs=crs)[columns]

    attrs = object_attributes(change, labels, n, min_pixels=min_pixels)
    gdf = gpd.GeoDataFrame(attrs, geometry=_vectorise(labels, n, transform), crs=crs)
    metric = gdf.to_crs(metric_crs)
    gdf["area_ha"] = metric.geometry.area.to_numpy() / 10_000.0
    for col in ("first_detected", "alert_date", "last_active"):
        d = gdf[col].to_numpy(dtype="float64")
        gdf[col] = pd.to_datetime(np.where(np.isfinite(d), d, np.nan), unit="D")
    gdf["state"] = [STATE_NAMES.get(int(s), "active") for s in gdf["state"]]
    gdf["kind"] = object_kind(attrs, gdf["area_ha"].to_numpy(),
                              clearing_min_area_ha=clearing_min_area_ha,
                              near_wet=_pit_context(change, labels, attrs, gdf["area_ha"],
                                                    px_m=abs(transform.a)))
    gdf["zone"] = zone_id
    _zone_relation(gdf, metric, zone_geom, metric_crs)
    gdf = gdf.sort_values("first_detected", kind="stable").reset_index(drop=True)
    gdf["id"] = [f"{zone_id or 'fp'}-candidate-{i + 1:05d}" for i in range(len(gdf))]
    return gdf[columns]


def extract_footprints(
    change: Any,
    *,
    zone: Any = None,
    min_area_ha: float = 0.05,
    min_confidence: float = 0.0,
    closing_radius: int = 1,
    clearing_min_area_ha: float | None = 0.0,
) -> Any:
    """Turn per-pixel change rasters into mining footprint polygons.

    Parameters
    ----------
    change : xarray.Dataset
        Output of :func:`kpgeo.change.detect_changes` (``y, x`` grid with
        ``spatial_ref``).
    zone : kpgeo.zones.Zone or shapely geometry (EPSG:4326), optional
        Gives ``zone``, ``distance_to_boundary_m`` and ``inside_zone``; without
        it ``zone`` is None, distances NaN and ``inside_zone`` True (the cube
        is the area of interest).
    min_area_ha : float
        Minimum mapping unit in hectares (default 0.05 ha = 5 Sentinel-2 px).
    min_confidence : float
        Pixels below this confidence are ignored (0-1).
    closing_radius : int
        Radius (pixels) of the morphological closing; 0 disables it.
    clearing_min_area_ha : float or None
        Objects at least this large that are dry and uniform, and not next to
        a water-bearing mining object, are clearings, not mining (see
        :func:`object_kind`; default 0: any size); None keeps every object.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`FOOTPRINT_COLUMNS`, in the CRS of the change rasters.
        ``state`` is the majority state name of the object's pixels;
        ``first_detected`` the earliest pixel break, ``alert_date`` the date the
        object first reached the mapping unit in confirmed pixels,
        ``last_active`` the latest pixel date; ``distance_to_boundary_m`` is the
        signed distance from the footprint centroid to the zone boundary
        (negative inside). Ids are in order of ``first_detected``.

    Raises
    ------
    kpgeo.errors.ConfigError
        Out-of-range ``min_area_ha``, ``min_confidence`` or ``closing_radius``.
    kpgeo.errors.CRSMismatchError
        The rasters carry no CRS.
    """
    cand = footprint_candidates(change, zone=zone, min_area_ha=min_area_ha,
                                min_confidence=min_confidence, closing_radius=closing_radius,
                                clearing_min_area_ha=clearing_min_area_ha)
    fps = cand[cand["kind"] == "mining"].reset_index(drop=True)
    prefix = (fps["zone"].iloc[0] if len(fps) else None) or "fp"
    fps["id"] = [f"{prefix}-{i + 1:05d}" for i in range(len(fps))]
    return fps[FOOTPRINT_COLUMNS]


def _alert_days(alert: np.ndarray, labels: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Per object, the day its ``k``-th pixel was confirmed (the object reached the MMU)."""
    from scipy import ndimage

    def kth(v):
        v = np.sort(v[np.isfinite(v)])
        return v[min(k, v.size) - 1] if v.size else np.nan

    return np.asarray(ndimage.labeled_comprehension(alert, labels, idx, kth, float, np.nan))


def detect_footprints(
    cube: Any,
    zone: Any = None,
    *,
    params: ChangeParams | None = None,
    min_area_ha: float = 0.05,
    min_confidence: float = 0.0,
    clearing_min_area_ha: float | None = 0.0,
) -> tuple[Any, Any]:
    """Run change detection on a cube and extract footprints.

    Parameters
    ----------
    cube : xarray.Dataset
        Masked reflectance cube (:func:`kpgeo.cube.load_cube`).
    zone : kpgeo.zones.Zone or shapely geometry, optional
        See :func:`extract_footprints`.
    params : ChangeParams, optional
        Change-detection parameters.
    min_area_ha, min_confidence, clearing_min_area_ha : float
        See :func:`extract_footprints`.

    Returns
    -------
    change : xarray.Dataset
        Output of :func:`kpgeo.change.detect_changes`.
    footprints : geopandas.GeoDataFrame
        Output of :func:`extract_footprints`.
    """
    from kpgeo.change import detect_changes

    change = detect_changes(cube, params=params)
    fps = extract_footprints(change, zone=zone, min_area_ha=min_area_ha,
                             min_confidence=min_confidence,
                             clearing_min_area_ha=clearing_min_area_ha)
    return change, fps


def change_rasters(change: Any) -> dict[str, Any]:
    """Encode the change Dataset as the output rasters (keeps ``spatial_ref``).

    Returns
    -------
    dict
        ``first_detected``/``alert_date``/``last_active``: int32 days since
        1970-01-01, nodata ``-1``; ``confidence``: float32 0-1 (0 where no
        change); ``state`` and ``reason``: uint8 codes of
        :data:`kpgeo.change.STATE_NAMES` / :data:`kpgeo.change.REASON_NAMES`.
    """
    from kpgeo.change import REASON_NAMES

    out = {}
    for var in ("first_detected", "alert_date", "last_active"):
        if var not in change:
            continue
        v = change[var]
        vals = np.asarray(v.values)
        d = vals.astype("datetime64[D]").astype("int64")
        d = np.where(np.isnat(vals), DAY_NODATA, d).astype("int32")
        da = v.copy(data=d)
        da.attrs = {"units": "days since 1970-01-01", "nodata": DAY_NODATA}
        out[var] = da
    out["confidence"] = change["confidence"].astype("float32")
    for var, names in (("state", STATE_NAMES), ("reason", REASON_NAMES)):
        if var not in change:
            continue
        out[var] = change[var].astype("uint8")
        out[var].attrs = {"flag_values": list(names), "flag_meanings":
                          " ".join(n.replace(" ", "_") for n in names.values())}
    return out


def write_detection(change: Any, footprints: Any, out_dir: str | os.PathLike, *,
                    overwrite: bool = False) -> dict[str, Path]:
    """Write footprints (GeoJSON + GeoParquet) and the change rasters (COGs) into ``out_dir``.

    Returns
    -------
    dict
        Output name -> path (see :data:`DETECT_OUTPUTS`).

    Raises
    ------
    kpgeo.errors.OutputExistsError
        An output exists and ``overwrite`` is False.
    """
    from kpgeo import io

    out = io.ensure_out_dir(out_dir, overwrite=overwrite, expect=DETECT_OUTPUTS)
    paths = {
        "footprints.geojson": io.write_vector(footprints, out / "footprints.geojson"),
        "footprints.parquet": io.write_vector(footprints, out / "footprints.parquet"),
    }
    for name, da in change_rasters(change).items():
        nodata = DAY_NODATA if name in ("first_detected", "alert_date", "last_active") else None
        paths[f"{name}.tif"] = io.write_cog(da, out / f"{name}.tif", nodata=nodata)
    return paths
