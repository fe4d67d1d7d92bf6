"""The output grid of a cube: its CRS, pixel size, anchor and extent.

Pure planning from asset headers and the AOI (no pixel is read); used by
:func:`kpgeo.cube.plan_cube`. ``plans`` are the cube's resolved items
(``kpgeo.cube._ItemPlan``: ``item``, ``headers`` per band, ``crs_wkt``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from kpgeo.asset_headers import AssetHeader
from kpgeo.errors import ConfigError, InvalidAOIError
from kpgeo.zones import to_crs, utm_crs_for

__all__ = ["norm_aoi", "target_crs", "native_grid", "output_geobox", "item_footprints",
           "raster_footprint", "densify_step", "centre_lon"]


def norm_aoi(aoi: Any) -> tuple[Any, Any]:
    """AOI → (shapely geometry in EPSG:4326 or None, local UTM CRS or None)."""
    if aoi is None:
        return None, None
    from shapely.geometry.base import BaseGeometry

    from kpgeo.zones import Zone, load_aoi

    if not isinstance(aoi, (Zone, BaseGeometry)) and isinstance(
        getattr(aoi, "geometry", None), BaseGeometry
    ):
        zone = load_aoi(aoi.geometry, name=str(getattr(aoi, "id", "aoi")))
    else:
        zone = load_aoi(aoi)
    return zone.geometry, zone.utm_crs


def target_crs(plans: Sequence[Any], crs: Any, aoi_utm: Any, aoi_geom: Any) -> Any:
    """Output CRS: ``crs``; else the shared projected CRS; else the AOI's UTM; else the majority.

    Geographic CRSs are never chosen by default: lon/lat imagery goes on the AOI's
    UTM zone, else on the UTM zone of the imagery (or of the AOI) centre.
    """
    import shapely
    from odc.geo import CRS

    if crs is not None:
        try:
            return CRS(crs)
        except Exception as exc:
            raise ConfigError(f"crs={crs!r} is not a CRS pyproj understands ({exc})") from exc
    counts = Counter(p.crs_wkt for p in plans)
    projected = Counter({wkt: n for wkt, n in counts.items() if CRS(wkt).projected})
    if len(counts) == 1 and projected:
        return CRS(next(iter(counts)))
    if aoi_utm is not None:
        return CRS(aoi_utm)
    if projected:
        return CRS(projected.most_common(1)[0][0])
    feet = shapely.union_all([raster_footprint(h, "EPSG:4326") for p in plans
                              for h in p.headers.values()])
    return CRS(utm_crs_for(feet if aoi_geom is None else aoi_geom))


def native_grid(
    plans: Sequence[Any], bands: list[str], target: Any, resolution: float | None
) -> tuple[float, Any]:
    """Output pixel size and the pixel-grid anchor (fraction of a pixel) in the target CRS."""
    from odc.geo import CRS, xy_

    best: tuple[float, float, float] | None = None  # (res, c, f)
    for plan in plans:
        for b in bands:
            hdr = plan.headers[b]
            if CRS(hdr.crs_wkt) != target:
                continue
            a, _, c, _, e, f = hdr.transform
            px = abs(a)
            if best is None or px < best[0]:
                best = (px, c, f)
    if resolution is not None:
        try:
            res = float(resolution)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"resolution must be a number in target-CRS units, got {resolution!r}"
            ) from exc
        if not res > 0:
            raise ConfigError(f"resolution must be positive, got {resolution!r}")
    elif best is not None:
        res = best[0]
    elif target.geographic:
        raise ConfigError(f"crs={target} is geographic: pass resolution in degrees")
    else:  # every band is reprojected: the finest native pixel, measured in the target CRS
        res = min(pixel_size(p.headers[b], target) for p in plans for b in bands)
    if best is None:
        return res, "default"
    fx = (best[1] / res) % 1.0
    fy = (best[2] / res) % 1.0
    fx, fy = (0.0 if min(fx, 1 - fx) < 1e-6 else fx), (0.0 if min(fy, 1 - fy) < 1e-6 else fy)
    return res, xy_(fx, fy)


def pixel_size(hdr: AssetHeader, target: Any) -> float:
    """Native pixel side of an asset in target-CRS units, to 2 significant digits.

    The side of a square with the mean pixel area of the asset's footprint in
    ``target``: 8.98e-5 degree pixels at 5° N give 10 (metres in UTM).
    """
    side = float(np.sqrt(raster_footprint(hdr, target).area / (hdr.shape[0] * hdr.shape[1])))
    return float(f"{side:.2g}")


def output_geobox(
    plans: Sequence[Any], target: Any, res: float, anchor: Any, aoi_geom: Any
) -> tuple[Any, Any, Any]:
    """GeoBox over (AOI bbox ∩ union of item footprints) in the target CRS."""
    import shapely
    from odc.geo.geobox import GeoBox

    feet = item_footprints(plans, target)
    footprint = shapely.union_all(feet)
    aoi_t = None
    region = footprint
    if aoi_geom is not None:
        aoi_t = shapely.make_valid(
            to_crs(aoi_geom, "EPSG:4326", target.proj, max_segment=densify_step(aoi_geom))
        )
        region = footprint.intersection(aoi_t)
        if region.is_empty or region.area <= 0:
            fb = to_crs(footprint, target.proj, "EPSG:4326").bounds
            raise InvalidAOIError(
                f"the AOI (lon/lat bounds {tuple(round(v, 4) for v in aoi_geom.bounds)}) does not "
                f"overlap the imagery (lon/lat bounds {tuple(round(v, 4) for v in fb)}); "
                "check the zone and the items"
            )
    try:
        gbox = GeoBox.from_bbox(region.bounds, crs=target, resolution=res, anchor=anchor)
    except Exception as exc:
        raise ConfigError(f"cannot build a {res} pixel grid in {target}: {exc}") from exc
    return gbox, region, aoi_t


def item_footprints(plans: Sequence[Any], target: Any) -> list[Any]:
    """Item footprints in the target CRS: asset grids, clipped by the item geometry."""
    import shapely

    feet, grids = [], {}  # the bands of a product share a few pixel grids
    for plan in plans:
        keys = {(h.shape, tuple(h.transform[:6]), h.crs_wkt): h for h in plan.headers.values()}
        for key, hdr in keys.items():
            if key not in grids:
                grids[key] = raster_footprint(hdr, target)
        rect = shapely.union_all([grids[key] for key in keys])
        if plan.item.geometry:
            try:
                geo = shapely.make_valid(shapely.geometry.shape(plan.item.geometry))
                geo_t = to_crs(geo, "EPSG:4326", target.proj, max_segment=densify_step(geo))
                clipped = rect.intersection(shapely.make_valid(geo_t))
                if clipped.area > 0:
                    rect = clipped
            except Exception:  # a broken item geometry: fall back to the raster grid
                pass
        feet.append(rect)
    return feet


def raster_footprint(hdr: AssetHeader, crs: Any) -> Any:
    """Shapely footprint of an asset's pixel grid in ``crs`` (edges densified)."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    return GeoBox(hdr.shape, Affine(*hdr.transform[:6]), hdr.crs_wkt).footprint(crs).geom


def densify_step(geom: Any) -> float | None:
    """Edge length giving ~32 segments across a geometry (for reprojection)."""
    x0, y0, x1, y1 = geom.bounds
    return max(x1 - x0, y1 - y0) / 32 or None


def centre_lon(region: Any, target: Any) -> float:
    c = to_crs(region.centroid, target.proj, "EPSG:4326")
    return float(c.x)
