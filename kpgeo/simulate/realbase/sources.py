"""Readers of the real data shipped in ``realbase/data/`` (see ``data/SOURCE.md``).

Every reader is cached (read once per process) and returns plain arrays or
shapely geometries; the science lives in :mod:`~kpgeo.simulate.realbase.library`
and :mod:`~kpgeo.simulate.realbase.basemap`. A missing or unreadable data file
raises :class:`~kpgeo.errors.AssetReadError` naming the file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from kpgeo.errors import AssetReadError

__all__ = ["DATA_DIR", "DATA_FILES", "TextureSource", "texture_source", "osm_landuse",
           "monthly_series", "monthly_precipitation", "landsat_olinda", "cloud_probability",
           "mine_outlines"]

DATA_DIR = Path(__file__).parent / "data"

#: every file the real source reads (all listed in data/SOURCE.md)
DATA_FILES: dict[str, str] = {
    **{f"s2_{b}": f"T33UUU_20170216T102101_{b}.jp2"
       for b in ("B02", "B03", "B04", "B08", "B11", "B12")},
    "osm": "osm_landuse_water_33UUU.gpkg",
    "togo": "togo_s2_monthly_2019.tif",
    "honduras": "honduras_s2_monthly_2017_2018.tif",
    "landsat": "landsat7_olinda.tif",
    "clouds": "eolearn_clp.npz",
    "mines": "mine_outlines.geojson",
}
_S2_ORDER = ("B02", "B03", "B04", "B08", "B11", "B12")


def _path(key: str) -> Path:
    p = DATA_DIR / DATA_FILES[key]
    if not p.is_file():
        raise AssetReadError(f"real-data file {p} is missing; reinstall kpgeo (it ships as "
                             "package data, see kpgeo/simulate/realbase/data/SOURCE.md)")
    return p


def _read_raster(key: str, **kw) -> tuple[np.ndarray, object, object]:
    import rasterio

    p = _path(key)
    try:
        with rasterio.open(p) as ds:
            return ds.read(**kw), ds.transform, ds.crs
    except rasterio.errors.RasterioError as exc:
        raise AssetReadError(f"real-data file {p} cannot be read: {exc}") from exc


@dataclass(frozen=True)
class TextureSource:
    """The real Sentinel-2 L1C scene: TOA reflectance ``(6, rows, cols)`` at 10 m."""

    refl: np.ndarray
    transform: object
    crs: object


@lru_cache(maxsize=1)
def texture_source() -> TextureSource:
    """Tile 33UUU, 2017-02-16: blue green red nir swir16 swir22 (B11/B12 bilinear to 10 m)."""
    from rasterio.enums import Resampling

    bands, tr, crs = [], None, None
    shape = None
    for b in _S2_ORDER:
        if b in ("B11", "B12"):
            a, _, _ = _read_raster(f"s2_{b}", out_shape=(1, *shape),
                                   resampling=Resampling.bilinear)
        else:
            a, tr, crs = _read_raster(f"s2_{b}")
            shape = a.shape[1:]
        bands.append(a[0].astype(np.float32) * np.float32(1e-4))
    refl = np.stack(bands)
    refl.setflags(write=False)
    return TextureSource(refl=refl, transform=tr, crs=crs)


@lru_cache(maxsize=1)
def osm_landuse():
    """OSM land-use / water polygons beside the scene: ``[(fclass, geometry)]`` in EPSG:32633."""
    import geopandas as gpd

    p = _path("osm")
    try:
        g = gpd.read_file(p)
    except Exception as exc:  # pyogrio raises several types
        raise AssetReadError(f"real-data file {p} cannot be read: {exc}") from exc
    g = g.drop_duplicates("osm_id")
    return tuple(zip(g["fclass"].astype(str), g.geometry, strict=True))


@lru_cache(maxsize=2)
def monthly_series(name: str) -> tuple[np.ndarray, tuple[dt.date, ...]]:
    """Monthly S2 L1C series: TOA ``(pixels, steps, 6)`` and the first day of each step.

    ``name`` is ``"togo"`` (12 thirty-day steps from 2019-02-06) or ``"honduras"``
    (24 calendar months, 2017-01 .. 2018-12).
    """
    a, _, _ = _read_raster(name)
    n = a.shape[0] // 6
    x = a.astype(np.float32).reshape(n, 6, -1).transpose(2, 0, 1) * np.float32(1e-4)
    if name == "togo":
        d0 = dt.date(2019, 2, 6)
        starts = tuple(d0 + dt.timedelta(days=30 * k) for k in range(n))
    else:
        starts = tuple(dt.date(2017 + k // 12, k % 12 + 1, 1) for k in range(n))
    return x, starts


@lru_cache(maxsize=2)
def monthly_precipitation(name: str) -> np.ndarray:
    """ERA5 precipitation (mm/day, patch mean) of each step of :func:`monthly_series`."""
    import rasterio

    p = _path(name)
    try:
        with rasterio.open(p) as ds:
            text = ds.tags()["precipitation_mm"]
        return np.array([float(v) for v in text.split(",")], np.float64)
    except (rasterio.errors.RasterioError, KeyError, ValueError) as exc:
        raise AssetReadError(f"real-data file {p} has no usable precipitation tag: {exc}") \
            from exc


@lru_cache(maxsize=1)
def landsat_olinda() -> np.ndarray:
    """Landsat 7 ETM+ bands 1, 2, 3, 4, 5, 7 (uint8 DN) of Olinda, Brazil: ``(6, rows, cols)``."""
    return _read_raster("landsat")[0]


@lru_cache(maxsize=1)
def cloud_probability() -> np.ndarray:
    """eo-learn s2cloudless cloud probability, ``(68, 101, 100)`` float32 in 0..1."""
    p = _path("clouds")
    try:
        with np.load(p) as z:
            clp = z["clp"].astype(np.float32) / np.float32(250.0)
    except (OSError, KeyError, ValueError) as exc:
        raise AssetReadError(f"real-data file {p} cannot be read: {exc}") from exc
    clp.setflags(write=False)
    return clp


@lru_cache(maxsize=1)
def mine_outlines() -> tuple:
    """Read the mapped mine outlines: ``[(source, polygon in metres, centred, 1 ha)]``.

    Each outline is projected to its local UTM zone, centred and scaled to one
    hectare; the shapes are real, the size is set by the simulator.
    """
    import geopandas as gpd
    from shapely import affinity

    from kpgeo.zones import to_crs, utm_crs_for

    p = _path("mines")
    try:
        g = gpd.read_file(p)
    except Exception as exc:
        raise AssetReadError(f"real-data file {p} cannot be read: {exc}") from exc
    out = []
    for src, geom in zip(g["source"], g.geometry, strict=True):
        utm = to_crs(geom, 4326, utm_crs_for(geom))
        if utm.is_empty or utm.area <= 0:
            continue
        c = utm.centroid
        unit = affinity.translate(utm, -c.x, -c.y)
        unit = affinity.scale(unit, *(2 * [np.sqrt(1e4 / utm.area)]), origin=(0, 0))
        out.append(("earthgenome" if src.startswith("earthgenome") else "segmentation", unit))
    return tuple(out)
