"""Ground-truth features of the real source (same schema as the procedural source).

Geometries are the exact pixel outlines of the truth rasters (vectorised on the
scene grid, then EPSG:4326), so ``area_ha`` in truth.geojson equals the pixel
count of the class in ``truth_labels.tif`` times the pixel area.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from kpgeo.simulate.realbase.basemap import BLOCK, FIELD, base_window
from kpgeo.simulate.realbase.events import field_cycles
from kpgeo.simulate.realbase.landcover import final_classes

__all__ = ["mining_features", "farm_features", "burn_features", "pixel_polygon",
           "pixel_polygons"]


def _iso(day: int | None) -> str | None:
    return None if day is None else dt.date.fromordinal(int(day) + 719163).isoformat()


def pixel_polygon(mask: np.ndarray, transform):
    """Union of the pixels of ``mask`` as a shapely (Multi)Polygon in the grid CRS."""
    return pixel_polygons(mask.astype(np.int32), mask, transform)[1]


def pixel_polygons(values: np.ndarray, mask: np.ndarray, transform) -> dict:
    """``{value: (Multi)Polygon}`` of the pixels of each value of ``values`` under ``mask``."""
    from rasterio.features import shapes
    from shapely.geometry import shape
    from shapely.ops import unary_union

    parts: dict = {}
    for g, v in shapes(values.astype(np.int32), mask=mask, transform=transform):
        parts.setdefault(int(v), []).append(shape(g))
    return {v: unary_union(p) for v, p in parts.items()}


def _features(items, grid) -> list[dict]:
    """GeoJSON features (EPSG:4326) of ``[(geometry in the grid CRS, properties)]``."""
    import shapely
    from pyproj import Transformer
    from shapely.geometry import mapping

    if not items:
        return []
    tr = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
    geoms = shapely.transform([g for g, _ in items], lambda xy: np.column_stack(
        tr.transform(xy[:, 0], xy[:, 1])))
    return [{"type": "Feature", "geometry": mapping(g), "properties": p}
            for g, (_, p) in zip(geoms, items, strict=True)]


def mining_features(sites, grid, cal) -> list[dict]:
    """One feature per site: the pixels dug by the last date, with the growth series."""
    px_ha = grid.resolution**2 / 1e4
    last = int(cal.days[-1])
    items = []
    for s in sites:
        dug = s.open_day <= last
        if not dug.any():
            continue
        growth = [[d.isoformat(), round(float((s.open_day <= day).sum() * px_ha), 4)]
                  for d, day in zip(cal.dates, cal.days, strict=True)]
        cells = np.unique(s.n_cells[dug]).size
        props = {
            "class": "mining",
            "site_id": s.site_id,
            "start_date": _iso(int(s.open_day[dug].min())),
            "end_date": _iso(s.end) if s.end is not None and s.end <= last else None,
            "area_ha": round(float(dug.sum() * px_ha), 4),
            "n_pits": int(cells),
            "ground": s.ground,
            "growth": growth,
        }
        if s.inside_zone is not None:
            props["inside_zone"] = s.inside_zone
        items.append((pixel_polygon(dug, grid.window_transform(s.row0, s.col0)), props))
    return _features(items, grid)


def farm_features(look, params, grid, cal, lib, years) -> list[dict]:
    """One feature per cleared plot and year overlapping the period (block by block)."""
    first, last = int(cal.days[0]), int(cal.days[-1])
    h, w = grid.shape
    px_ha = grid.resolution**2 / 1e4
    items = []
    for r0 in range(0, h, BLOCK):
        for c0 in range(0, w, BLOCK):
            shape = (min(BLOCK, h - r0), min(BLOCK, w - c0))
            b = base_window(look.layout, r0, c0, shape)
            cls = final_classes(b.cls, b.parcel, look)
            field = cls == FIELD
            if not field.any():
                continue
            ids, inv = np.unique(b.parcel[field], return_inverse=True)
            cyc = field_cycles(look, params, ids, years, lib)
            end = cyc.event_end()
            full = cyc.clear + cyc.stages.sum(axis=0)
            plot = np.full(shape, -1, np.int64)
            plot[field] = inv
            hit = cyc.disturbed(first, last)
            polys = pixel_polygons(plot, field & hit[np.maximum(plot, 0)],
                                   grid.window_transform(r0, c0))
            counts = np.bincount(inv, minlength=len(ids))
            for j in np.flatnonzero(hit):
                for k in range(len(years)):
                    if not (cyc.cultivated[k, j] and cyc.clear[k, j] <= last
                            and full[k, j] >= first):
                        continue
                    items.append((polys[int(j)], {
                        "class": "farm", "site_id": f"farm-{len(items) + 1:04d}",
                        "start_date": _iso(cyc.clear[k, j]),
                        "end_date": _iso(end[k, j]) if end[k, j] <= last else None,
                        "area_ha": round(float(counts[j] * px_ha), 4)}))
    return _features(items, grid)


def burn_features(look, burns, grid, *, last: int) -> list[dict]:
    """One feature per fire: its burnt pixels inside the scene."""
    px_ha = grid.resolution**2 / 1e4
    items = []
    h, w = grid.shape
    for b in burns:
        r0, c0, bh, bw = b.window()
        a0, b0 = max(r0, 0), max(c0, 0)
        a1, b1 = min(r0 + bh, h), min(c0 + bw, w)
        if a0 >= a1 or b0 >= b1:
            continue
        base = base_window(look.layout, a0, b0, (a1 - a0, b1 - b0))
        m = b.mask(a0, b0, (a1 - a0, b1 - b0), final_classes(base.cls, base.parcel, look))
        if not m.any():
            continue
        items.append((pixel_polygon(m, grid.window_transform(a0, b0)), {
            "class": "burn", "site_id": b.site_id, "start_date": _iso(b.day),
            "end_date": _iso(b.end) if b.end <= last else None,
            "area_ha": round(float(m.sum() * px_ha), 4)}))
    return _features(items, grid)

