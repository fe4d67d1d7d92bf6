"""The imagery cube: STAC items + AOI → lazy, masked reflectance on one grid.

:func:`load_cube` is the single entry point from imagery to science. It

1. normalises the items (:mod:`kpgeo.items`: common band names, scale/offset)
   and checks *every* asset header up front, in a thread pool, so that missing
   files, corrupt or truncated rasters, absent CRS and missing bands fail at
   load time with a message naming the file — not an hour later inside dask;
2. picks one output grid: the target CRS (``crs=``, else the CRS shared by the
   items, else — mixed UTM zones, common where S2 tiles straddle a zone
   boundary — the zone's local UTM when ``aoi`` is a :class:`~kpgeo.zones.Zone`,
   else the CRS of most items; a geographic CRS (EPSG:4326 exports from Google
   Earth Engine or Sentinel Hub) is never the default grid: such imagery goes on
   the zone's UTM, else the UTM of the imagery; items in other CRSs are
   **reprojected**, never refused), the native resolution of the finest reflectance band (10 m for
   Sentinel-2; the 20 m SCL/SWIR are resampled nearest), snapped to the native
   pixel grid, over the AOI bounding box **intersected with the union of the
   item footprints** (a 9,000 km² zone and a 3 km scene give a 3 km cube);
3. builds a dask graph with **one task per (time, y, x) block**
   (:mod:`kpgeo._cube_read`); each task calls :func:`odc.stac.load` (rasterio
   driver, nearest for masks) on that block's geobox with only the items that
   touch it, then applies scale/offset and masks. Blocks share no dependency,
   so memory follows the chunk size, not the cube size (odc-stac's own dask
   mode shares one "open" task per asset between all chunks, and the threaded
   scheduler then reads the whole cube before reducing any chunk: ~1 GB
   instead of ~0.3 GB on a 2048² × 12-date test). A reader wrapper turns a
   decode failure at compute time into :class:`~kpgeo.errors.AssetReadError`
   naming the file;
4. groups items into time steps by the key *(solar day, per-band scale and
   offset)* (odc-stac's ``solar_day`` rule at the cube centre; within a step
   the first valid pixel wins), applies scale/offset per time step, and masks
   clouds with the scheme of :mod:`kpgeo.masks`. Items of one solar day with
   *different* scaling (e.g. two processing baselines) therefore give two
   time steps with the same date, because DN values can only be fused before
   scaling.

:func:`region_mask` rasterises a lon/lat geometry on a cube grid
(pixel-centre rule); it builds ``aoi_mask`` and serves :mod:`kpgeo.timeseries`.

:func:`check_clear` is the explicit, computing, "is there anything to see?"
check; loading an all-cloud collection is not an error in itself.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kpgeo._cube_grid import (
    centre_lon,
    densify_step,
    item_footprints,
    native_grid,
    norm_aoi,
    output_geobox,
    raster_footprint,
    target_crs,
)
from kpgeo._cube_read import BlockSpec, dask_arrays, direct_read
from kpgeo.errors import (
    ConfigError,
    CRSMismatchError,
    ImageryError,
    KpgeoWarning,
    MissingBandError,
    NoDataError,
)
from kpgeo.items import (
    REFLECTANCE_BANDS,
    AssetHeader,
    band_assets,
    band_scaling,
    check_band_encoding,
    inspect_assets,
    item_datetime,
    mask_band,
    norm_items,
)
from kpgeo.masks import get_mask_scheme
from kpgeo.zones import to_crs

__all__ = ["load_cube", "plan_cube", "cube_from_plan", "CubePlan", "check_clear", "region_mask",
           "DEFAULT_CHUNKS"]

log = logging.getLogger(__name__)

# odc-loader warps 20 m bands from in-memory arrays that carry their transform
# separately; rasterio then warns that the array "has no geotransform" (about
# odc's buffer, never the user's data). The filter is module-level and targeted
# because warnings.catch_warnings() swaps process-global state and is not
# thread-safe under dask's threaded scheduler, where these reads happen.
warnings.filterwarnings("ignore", message="Dataset has no geotransform", module="rasterio.warp")
# rasterio's rasterize (region_mask) says the same about its in-memory target, which has one
warnings.filterwarnings("ignore", message="Dataset has no geotransform",
                        module="rasterio.features")

#: Default dask chunks: the whole time axis per chunk (per-pixel change detection
#: needs every date of a pixel in one block), 512 × 512 pixels in space.
DEFAULT_CHUNKS: dict[str, int] = {"time": -1, "y": 512, "x": 512}


@dataclass
class _ItemPlan:
    """One item, resolved: which asset is which band, its headers and scaling."""

    item: Any
    assets: dict[str, str]  # common name -> provider asset key (selected bands only)
    headers: dict[str, AssetHeader]
    scaling: dict[str, tuple[float, float]]  # reflectance band -> (scale, offset)
    crs_wkt: str


# --------------------------------------------------------------------------- public


def load_cube(
    items: Any,
    aoi: Any = None,
    *,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    crs: Any = None,
    chunks: Mapping[str, int] | None = None,
    mask_clouds: bool = True,
    resampling: str = "nearest",
) -> Any:
    """Load STAC items as a lazy, cloud-masked reflectance cube over an AOI.

    Parameters
    ----------
    items
        Path to an ItemCollection JSON, a :class:`pystac.ItemCollection`, or a
        list of :class:`pystac.Item`. Asset keys of Earth Search v1, Planetary
        Computer and Landsat C2 L2 are understood (see :mod:`kpgeo.items`).
    aoi
        :class:`~kpgeo.zones.Zone` (or any object with a shapely ``.geometry``
        in EPSG:4326), shapely geometry in EPSG:4326, GeoDataFrame/GeoSeries (any
        CRS), path to a polygon file, or None for the whole imagery footprint.
        Invalid polygons (e.g. a self-intersecting bowtie) are **refused**, not
        silently repaired: repair them with :func:`shapely.make_valid` first.
    bands
        Reflectance bands in common names (``blue, green, red, nir, swir16,
        swir22``). Default: every one of those present in all items; a band
        some items lack is dropped with a :class:`~kpgeo.errors.KpgeoWarning`
        naming the items.
    resolution
        Pixel size in target-CRS units. Default: the finest native resolution
        of the requested reflectance bands (10 m for Sentinel-2).
    crs
        Output CRS (anything pyproj understands). Default: the items' CRS; for
        items in several CRSs, the zone's UTM when ``aoi`` is a Zone, else the
        CRS of most items; never a geographic CRS (lon/lat imagery goes on the
        AOI's, else the imagery's, UTM zone, at its native pixel size in metres).
        Other items are reprojected onto that grid.
    chunks
        Dask chunks by dim name; default :data:`DEFAULT_CHUNKS`
        (``{"time": -1, "y": 512, "x": 512}``: whole time series per chunk).
    mask_clouds
        Mask with the items' mask band (``scl``/``fmask``/``qa_pixel``); a
        collection without one (e.g. Sentinel-2 L1C) needs ``mask_clouds=False``.
        Nodata and outside-AOI pixels are always masked.
    resampling
        Resampling of reflectance bands when a band is not on the output grid
        (20 m bands, other UTM zones). Mask bands always use ``"nearest"``.

    Returns
    -------
    xarray.Dataset
        Lazy (dask) Dataset, dims ``(time, y, x)``: one ``float32`` variable per
        reflectance band (scale/offset applied, NaN where not clear), ``clear``
        (bool; inside AOI, valid, not masked), ``aoi_mask`` (bool, ``(y, x)``);
        coordinates ``time`` (datetime64[ns], naive UTC, sorted: one step per
        solar day and scaling — items of one solar day with different
        scale/offset give two steps with the same date; each step's time is
        its earliest item's), ``y``/``x`` pixel centres and ``spatial_ref`` (``ds.odc.geobox``
        works); attrs ``mask_scheme``, ``platform``, ``collection``, ``bands``.

    Raises
    ------
    NoDataError
        Empty collection.
    AssetReadError
        A missing, corrupt or truncated asset (named), at load time or — for
        damage the header check cannot see — at compute time.
    CRSMismatchError
        An item whose asset has no CRS in the file.
    MissingBandError
        A requested band or the mask band is absent from an item (present bands listed).
    InvalidAOIError
        Empty, invalid or non-polygonal AOI, or an AOI that does not overlap the imagery.
    ConfigError
        Bad ``bands``/``chunks``/``resolution``/``crs`` values.

    Examples
    --------
    >>> cube = load_cube("scene/items.json", get_zone("carnot"))  # doctest: +SKIP
    >>> cube.red.isel(time=0).compute()  # doctest: +SKIP
    """
    return cube_from_plan(
        plan_cube(items, aoi, bands=bands, resolution=resolution, crs=crs,
                  mask_clouds=mask_clouds, resampling=resampling),
        chunks=chunks,
    )


@dataclass(frozen=True)
class CubePlan:
    """Everything known about a cube before any pixel is read (see :func:`plan_cube`).

    Attributes
    ----------
    spec
        :class:`kpgeo._cube_read.BlockSpec`: item clones (paths, no open datasets),
        footprints, time groups, grid; what a block read needs.
    times
        ``datetime64[ns]`` of each time step (sorted).
    scale, offset
        ``float32`` arrays ``(time, band)``: the DN scaling of each time step.
    attrs
        The cube's attributes (``mask_scheme``, ``platform``, ``collection``,
        ``bands``, ``crs``, ``resolution``).
    """

    spec: BlockSpec
    times: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    attrs: dict[str, Any]

    @property
    def geobox(self) -> Any:
        """The output grid (:class:`odc.geo.geobox.GeoBox`)."""
        return self.spec.gbox

    def acquisitions(self) -> list[dict[str, Any]]:
        """Per time step: ``time`` (ISO 8601 UTC), ``key`` (solar day, scaling), ``items`` (ids)."""
        out = []
        for i, key in enumerate(self.spec.group_keys):
            ids = sorted(c.id for c, k in zip(self.spec.clones, self.spec.keys, strict=True)
                         if k == key)
            when = np.datetime_as_string(self.times[i], unit="s") + "Z"
            out.append({"time": when, "key": [key[0], list(key[1])], "items": ids})
        return out


def plan_cube(
    items: Any,
    aoi: Any = None,
    *,
    bands: Sequence[str] | None = None,
    resolution: float | None = None,
    crs: Any = None,
    mask_clouds: bool = True,
    resampling: str = "nearest",
    header_cache: dict[str, list] | None = None,
) -> CubePlan:
    """Check the items and plan the cube's grid and time steps, reading no pixel.

    Same parameters, checks and errors as :func:`load_cube` (which is
    ``cube_from_plan(plan_cube(...))``); the streamed zone run
    (:mod:`kpgeo.stream`) reads blocks of the plan itself. ``header_cache``:
    headers of files checked by an earlier run (see
    :func:`kpgeo.items.inspect_assets`), updated in place.
    """
    item_list = norm_items(items)
    wanted = _norm_bands(bands)
    plans, scheme = _plan_items(item_list, wanted, mask_clouds, header_cache)
    log.info("%d item(s) read, %d asset header(s) checked", len(plans),
             sum(len(p.headers) for p in plans))
    band_list = wanted or _common_bands(plans, scheme)
    for plan in plans:  # drop bands not common to every item
        plan.assets = {b: k for b, k in plan.assets.items() if b in band_list or b == scheme}
    aoi_geom, aoi_utm = norm_aoi(aoi)
    target = target_crs(plans, crs, aoi_utm, aoi_geom)
    res, anchor = native_grid(plans, band_list, target, resolution)
    gbox, region, aoi_t = output_geobox(plans, target, res, anchor, aoi_geom)

    clones = [_clone(plan, scheme) for plan in plans]
    lon = centre_lon(region, target)
    keys = [_group_key(plan, band_list, lon) for plan in plans]
    group_keys = sorted(set(keys))
    times = _group_times(plans, keys, group_keys)
    scale, offset = _group_scaling(group_keys, len(band_list))
    first = plans[0]
    names = [*band_list, *([scheme] if scheme else [])]
    dtypes, nodata = {}, {}
    for b in names:
        meta = clones[0].assets[b].extra_fields["raster:bands"][0]
        dtypes[b] = np.dtype(first.headers[b].dtype).name
        nodata[b] = meta.get("nodata", np.nan)
    resampling_ = {
        **{b: resampling for b in band_list},
        **({scheme: "nearest"} if scheme else {}),
    }
    spec = BlockSpec(
        clones=tuple(clones),
        feet=tuple(item_footprints(plans, target)),
        keys=tuple(keys),
        group_keys=tuple(group_keys),
        bands=tuple(band_list),
        scheme=scheme,
        dtypes=dtypes,
        nodata=nodata,
        resampling=resampling_,
        gbox=gbox,
        aoi=aoi_t,
        direct=tuple(
            {b: direct_read(clone.assets[b].href, plan.headers[b], gbox, resampling_[b])
             for b in names}
            for plan, clone in zip(plans, clones, strict=True)),
    )
    attrs = {
        "mask_scheme": scheme or "none",
        "platform": _join_prop(item_list, "platform"),
        "collection": ",".join(
            sorted({str(i.collection_id) for i in item_list if i.collection_id})
        ),
        "bands": ",".join(band_list),
        "crs": f"EPSG:{target.epsg}" if target.epsg else target.to_wkt(),
        "resolution": float(res),
    }
    return CubePlan(spec=spec, times=times, scale=scale, offset=offset, attrs=attrs)


def cube_from_plan(plan: CubePlan, *, chunks: Mapping[str, int] | None = None) -> Any:
    """Build the lazy cube of a :class:`CubePlan` (see :func:`load_cube` for its layout)."""
    import xarray as xr
    from odc.geo.xr import xr_coords

    spec = plan.spec
    arrays = dask_arrays(spec, _norm_chunks(chunks), plan.scale, plan.offset)
    coords = {"time": plan.times, **xr_coords(spec.gbox)}
    out = {}
    for b in spec.bands:
        out[b] = xr.DataArray(arrays[b], dims=("time", "y", "x"), coords=coords, name=b)
        out[b].attrs = {"long_name": f"{b} surface reflectance", "units": "1"}
        out[b].encoding["grid_mapping"] = "spatial_ref"
    out["clear"] = xr.DataArray(arrays["clear"], dims=("time", "y", "x"), coords=coords)
    out["clear"].attrs = {"long_name": "usable observation (inside AOI, valid, not masked)"}
    out["aoi_mask"] = _aoi_mask(out["clear"], spec.gbox, spec.aoi)
    ds = xr.Dataset(out)
    ds.attrs = dict(plan.attrs)
    return ds


def check_clear(cube: Any) -> int:
    """Count clear observations; raise when there is none at all.

    This computes ``cube.clear`` (lazily loaded data are read). It lives here,
    not in :func:`load_cube`, because loading must stay lazy and an all-cloud
    *date* is normal; only an all-cloud *cube* is an error.

    Parameters
    ----------
    cube
        Dataset from :func:`load_cube`.

    Returns
    -------
    int
        Number of clear (time, y, x) observations.

    Raises
    ------
    NoDataError
        No clear pixel on any date (all cloud, all nodata or AOI outside data).
    """
    if "clear" not in getattr(cube, "data_vars", {}):
        raise ConfigError(
            "check_clear() needs a cube from kpgeo.cube.load_cube (no 'clear' variable)"
        )
    n = int(cube["clear"].sum().compute())
    if n == 0:
        nt = cube.sizes.get("time", 0)
        raise NoDataError(
            f"no clear observation in the cube ({nt} dates, "
            f"{cube.attrs.get('mask_scheme', '?')} mask): "
            "every pixel is cloud, shadow, nodata or outside the AOI; add dates or check the AOI"
        )
    return n


def region_mask(geometry: Any, geobox: Any, *, crs: Any = "EPSG:4326") -> np.ndarray:
    """Rasterise a geometry on a grid: True where the pixel centre is inside.

    Parameters
    ----------
    geometry
        Shapely (multi)polygon, in lon/lat unless ``crs`` says otherwise.
    geobox
        :class:`odc.geo.geobox.GeoBox` of the grid (e.g. ``cube.odc.geobox``,
        or a slice of it such as ``gbox[y0:y1, x0:x1]``).
    crs
        CRS of ``geometry``; it is reprojected (edges densified) to the grid CRS.

    Returns
    -------
    numpy.ndarray
        ``bool`` array of ``geobox.shape`` (pixel-centre rule, as
        :func:`rasterio.features.geometry_mask`).
    """
    import shapely
    from odc.geo import CRS
    from rasterio.features import geometry_mask

    if geometry is None or geometry.is_empty:
        return np.zeros(tuple(geobox.shape), bool)
    if CRS(crs) != geobox.crs:
        geometry = shapely.make_valid(
            to_crs(geometry, CRS(crs).proj, geobox.crs.proj, max_segment=densify_step(geometry))
        )
        if geometry.is_empty:
            return np.zeros(tuple(geobox.shape), bool)
    return geometry_mask(
        [geometry], out_shape=tuple(geobox.shape), transform=geobox.transform, invert=True
    )


# --------------------------------------------------------------------------- planning


def _norm_bands(bands: Sequence[str] | str | None) -> list[str] | None:
    if bands is None:
        return None
    if isinstance(bands, str):
        bands = [bands]
    out = []
    for b in bands:
        name = str(b).lower()
        if name not in REFLECTANCE_BANDS:
            raise ConfigError(
                f"unknown band {b!r}; use common names: {', '.join(REFLECTANCE_BANDS)}"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError("bands is empty; pass None for every available band")
    return out


def _href(asset: Any) -> str:
    href = asset.get_absolute_href() or asset.href
    if "://" not in href and not href.startswith("/vsi") and not os.path.isabs(href):
        href = os.path.abspath(href)
    return href


def _plan_items(
    items: list[Any], wanted: list[str] | None, mask_clouds: bool,
    header_cache: dict[str, list] | None = None,
) -> tuple[list[_ItemPlan], str | None]:
    """Resolve band assets and mask scheme per item and read every asset header."""
    found = [band_assets(item) for item in items]
    schemes = {mask_band(f) for f in found}
    scheme: str | None = None
    if mask_clouds:
        for item, f in zip(items, found, strict=True):
            if mask_band(f) is None:
                raise MissingBandError(
                    f"item {item.id!r} has no mask band (scl, fmask or qa_pixel); present bands: "
                    f"{', '.join(sorted(f)) or 'none'} (asset keys: {', '.join(item.assets)}); "
                    "pass mask_clouds=False to load without cloud masking"
                )
        if len(schemes) > 1:
            raise ImageryError(
                f"items mix mask schemes {sorted(schemes)}; load one sensor family at a time"
            )
        scheme = schemes.pop()
    todo: list[tuple[int, str, str, str]] = []
    for i, (item, f) in enumerate(zip(items, found, strict=True)):
        present = [b for b in REFLECTANCE_BANDS if b in f]
        need = wanted if wanted is not None else present
        missing = [b for b in need if b not in f]
        if missing or not need:
            raise MissingBandError(
                f"item {item.id!r} lacks band(s) "
                f"{', '.join(missing) or ', '.join(REFLECTANCE_BANDS)}; present bands: "
                f"{', '.join(sorted(f)) or 'none'} (asset keys: {', '.join(item.assets)})"
            )
        for b in need + ([scheme] if scheme else []):
            todo.append((i, b, f[b], _href(item.assets[f[b]])))
    headers = inspect_assets(
        [t[3] for t in todo], labels=[f"item {items[t[0]].id!r} band {t[1]}" for t in todo],
        cache=header_cache,
    )
    plans = [_ItemPlan(item, {}, {}, {}, "") for item in items]
    for (i, b, key, _), hdr in zip(todo, headers, strict=True):
        plan = plans[i]
        if hdr.crs_wkt is None:
            raise CRSMismatchError(
                f"item {plan.item.id!r} band {b}: {hdr.href} has no CRS in the file; "
                "write the CRS into the raster (e.g. rio edit-info --crs EPSG:32634)"
            )
        plan.assets[b] = key
        plan.headers[b] = hdr
    for plan in plans:
        first = next(b for b in plan.assets if b != scheme)
        plan.crs_wkt = plan.headers[first].crs_wkt or ""
        for b in plan.assets:
            if b == scheme:
                continue
            sc = band_scaling(plan.item, plan.assets[b])
            if sc is None:
                integer = np.issubdtype(np.dtype(plan.headers[b].dtype), np.integer)
                sc = (1e-4, 0.0) if integer else (1.0, 0.0)
                warnings.warn(
                    f"item {plan.item.id!r} band {b}: no raster:bands scale/offset; assuming "
                    f"scale={sc[0]}, offset={sc[1]}",
                    KpgeoWarning,
                    stacklevel=3,
                )
            check_band_encoding(plan.item, plan.assets[b], plan.headers[b], sc)
            plan.scaling[b] = sc
    return plans, scheme


def _common_bands(plans: list[_ItemPlan], scheme: str | None) -> list[str]:
    """Reflectance bands every item has; warn about bands only some items have."""
    common, dropped = [], []
    for b in REFLECTANCE_BANDS:
        lacking = [p.item.id for p in plans if b not in p.assets]
        if not lacking:
            common.append(b)
        elif len(lacking) < len(plans):
            shown = ", ".join(repr(i) for i in lacking[:5])
            more = f" and {len(lacking) - 5} more" if len(lacking) > 5 else ""
            dropped.append(f"{b} (missing from item(s) {shown}{more})")
    if dropped:
        warnings.warn(
            "band(s) not in every item are dropped from the cube: "
            + "; ".join(dropped)
            + "; pass bands=[...] to require them (items lacking one then fail)",
            KpgeoWarning,
            stacklevel=3,
        )
    return common







def _norm_chunks(chunks: Mapping[str, int] | None) -> dict[str, int]:
    out = dict(DEFAULT_CHUNKS)
    if chunks is None:
        return out
    if not isinstance(chunks, Mapping):
        raise ConfigError(f"chunks must be a dict like {DEFAULT_CHUNKS}, got {chunks!r}")
    for k, v in chunks.items():
        if k not in out:
            raise ConfigError(f"chunks: unknown dimension {k!r}; use time, y, x")
        if not isinstance(v, (int, np.integer)) or (v < 1 and v != -1):
            raise ConfigError(f"chunks[{k!r}] must be a positive integer or -1, got {v!r}")
        out[k] = int(v)
    for k in ("y", "x"):
        if out[k] == -1:
            out[k] = 1 << 30
    return out



def _utc(item: Any) -> _dt.datetime:
    return item_datetime(item)


def _group_key(plan: _ItemPlan, bands: list[str], lon: float) -> tuple[str, tuple[float, ...]]:
    """Solar day (odc-stac's rule, at the cube centre) plus the item's scaling."""
    solar = _utc(plan.item) + _dt.timedelta(hours=lon / 15.0)
    return solar.date().isoformat(), tuple(v for b in bands for v in plan.scaling[b])


def _group_scaling(group_keys: list[Any], nbands: int) -> tuple[np.ndarray, np.ndarray]:
    """Per time step (group) and band: scale and offset, from the group keys."""
    sig = np.asarray([k[1] for k in group_keys], dtype=np.float64).reshape(-1, nbands, 2)
    return sig[..., 0].astype(np.float32), sig[..., 1].astype(np.float32)


def _clone(plan: _ItemPlan, scheme: str | None) -> Any:
    """Build a minimal pystac Item: the selected assets under common names, fully described."""
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import RasterExtension

    from kpgeo.items import _proj_fields

    item = plan.item
    clone = pystac.Item(
        id=item.id,
        geometry=item.geometry or _to_geojson_4326(plan),
        bbox=item.bbox,
        datetime=_utc(item),
        properties={},
        collection=None,  # one "collection" for odc-stac: the common names
    )
    ProjectionExtension.add_to(clone)
    RasterExtension.add_to(clone)
    for b, key in plan.assets.items():
        hdr = plan.headers[b]
        asset = pystac.Asset(
            href=_href(item.assets[key]),
            roles=["data"],
            media_type="image/tiff; application=geotiff",
        )
        asset.extra_fields.update(_proj_fields(hdr))
        nodata = hdr.nodata
        if b == scheme:
            if nodata is None:
                nodata = get_mask_scheme(scheme).nodata
        elif nodata is None and np.issubdtype(np.dtype(hdr.dtype), np.integer):
            nodata = 0  # Sentinel-2 / Landsat convention: DN 0 = no data
        meta: dict[str, Any] = {"data_type": hdr.dtype}
        if nodata is not None:
            meta["nodata"] = nodata
        asset.extra_fields["raster:bands"] = [meta]
        clone.add_asset(b, asset)
    return clone


def _to_geojson_4326(plan: _ItemPlan) -> dict[str, Any]:
    import shapely

    hdr = next(iter(plan.headers.values()))
    return shapely.geometry.mapping(raster_footprint(hdr, "EPSG:4326"))




def _aoi_block(aoi: Any, gbox: Any, block_info: Any = None) -> np.ndarray:
    (y0, y1), (x0, x1) = block_info[None]["array-location"]
    return region_mask(aoi, gbox[y0:y1, x0:x1], crs=gbox.crs)


def _aoi_mask(like: Any, gbox: Any, aoi_t: Any) -> Any:
    """Lazy (y, x) bool: pixel centre inside the AOI (all True without an AOI)."""
    import dask
    import dask.array as da
    import xarray as xr

    if aoi_t is None:
        arr = da.ones(tuple(gbox.shape), dtype=bool, chunks=like.data.chunks[1:])
    else:  # AOI and grid enter the graph once (delayed), not once per block
        arr = da.map_blocks(
            _aoi_block,
            dask.delayed(aoi_t, pure=False),
            dask.delayed(gbox, pure=False),
            chunks=like.data.chunks[1:],
            dtype=bool,
            meta=np.empty((0, 0), bool),
        )
    coords = {k: like.coords[k] for k in ("y", "x", "spatial_ref") if k in like.coords}
    mask = xr.DataArray(arr, dims=("y", "x"), coords=coords, name="aoi_mask")
    mask.attrs = {"long_name": "pixel centre inside the area of interest"}
    return mask



def _group_times(plans: list[_ItemPlan], keys: list[Any], group_keys: list[Any]) -> np.ndarray:
    """Time of each group: its earliest item (odc-stac's rule), naive-UTC datetime64[ns]."""
    first: dict[Any, _dt.datetime] = {}
    for plan, key in zip(plans, keys, strict=True):
        when = _utc(plan.item)
        if key not in first or when < first[key]:
            first[key] = when
    return np.array(
        [np.datetime64(first[k].replace(tzinfo=None), "ns") for k in group_keys],
        dtype="datetime64[ns]",
    )


def _join_prop(items: list[Any], key: str) -> str:
    return ",".join(sorted({str(i.properties[key]) for i in items if i.properties.get(key)}))
