"""What a cube holds for a zone: dates, clear-observation coverage and area.

The first thing a monitoring run reports for each zone, before any change
detection: which dates were acquired, how much of the zone and of its outside
ring each date saw clearly (coverage from :func:`kpgeo.timeseries.clear_coverage`),
and how much area the imagery covers, in hectares on the cube's projected grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import CRSMismatchError
from kpgeo.io import to_iso_date
from kpgeo.timeseries import RING_SUFFIX
from kpgeo.zones import geodesic_area_ha

__all__ = ["cube_summary", "format_summary"]


def cube_summary(cube: Any, coverage: pd.DataFrame, *, zone: Any) -> dict[str, Any]:
    """Summarise a cube over a zone and its ring.

    Parameters
    ----------
    cube
        Cube from :func:`kpgeo.cube.load_cube` (projected CRS in metres).
    coverage
        Output of :func:`kpgeo.timeseries.clear_coverage` for
        :func:`kpgeo.timeseries.zone_regions` of ``zone``.
    zone
        The :class:`kpgeo.zones.Zone`.

    Returns
    -------
    dict
        JSON-ready: zone id/name, dates (ISO), grid (CRS, resolution, shape), and for
        the zone and its ring the imaged area (ha) and mean/min/max clear fraction.
    """
    geobox = cube.odc.geobox
    if not geobox.crs.projected:
        raise CRSMismatchError(
            f"cube for {zone.id} is in {geobox.crs}, not a projected CRS in metres"
        )
    res_x = abs(geobox.resolution.x)
    # true ground area of a pixel: geodesic area of the grid's extent / pixel count,
    # so the figure is right whatever projected CRS the cube is in
    extent_4326 = geobox.extent.to_crs("EPSG:4326", resolution=res_x * 16).geom
    pixel_ha = geodesic_area_ha(extent_4326) / (geobox.shape[0] * geobox.shape[1])
    dates = pd.to_datetime(cube["time"].values)
    regions = {}
    for label, name in (("zone", zone.id), ("ring", zone.id + RING_SUFFIX)):
        rows = coverage[coverage["region"] == name]
        fractions = rows["clear_fraction"].to_numpy(dtype="float64")
        seen = fractions[np.isfinite(fractions)]  # NaN: the region has no pixel on the grid
        n_pixels = int(rows["n_pixels"].iloc[0]) if len(rows) else 0
        regions[label] = {
            "imaged_area_ha": round(n_pixels * pixel_ha, 2),
            "clear_fraction_mean": _round(seen.mean()) if seen.size else None,
            "clear_fraction_min": _round(seen.min()) if seen.size else None,
            "clear_fraction_max": _round(seen.max()) if seen.size else None,
            "dates_mostly_clear": int((seen >= 0.5).sum()),
        }
    return {
        "zone": zone.id,
        "name": zone.name,
        "zone_area_ha": round(zone.area_ha, 1),
        "n_dates": int(len(dates)),
        "first_date": to_iso_date(dates.min()) if len(dates) else None,
        "last_date": to_iso_date(dates.max()) if len(dates) else None,
        "dates": [to_iso_date(d) for d in dates],
        "crs": f"EPSG:{geobox.crs.epsg}" if geobox.crs.epsg else geobox.crs.to_wkt(),
        "resolution_m": res_x,
        "shape_yx": [int(n) for n in geobox.shape],
        **{
            f"{label}_{key}": value
            for label, block in regions.items()
            for key, value in block.items()
        },
    }


def _round(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable block for one zone summary (the CLI prints it)."""
    lines = [
        f"{summary['name']} ({summary['zone']}), zone area {summary['zone_area_ha']:,.0f} ha",
        f"  dates      : {summary['n_dates']} from {summary['first_date']} "
        f"to {summary['last_date']}",
        f"  grid       : {summary['shape_yx'][0]} x {summary['shape_yx'][1]} px at "
        f"{summary['resolution_m']:g} m, {summary['crs']}",
    ]
    for label in ("zone", "ring"):
        mean = summary[f"{label}_clear_fraction_mean"]
        lines.append(
            f"  {'inside' if label == 'zone' else 'ring':<11}: "
            f"imaged {summary[f'{label}_imaged_area_ha']:,.1f} ha, "
            f"clear coverage mean {mean if mean is None else f'{mean:.0%}'} "
            f"({summary[f'{label}_dates_mostly_clear']} of {summary['n_dates']} dates >= 50% clear)"
        )
    if "footprints" in summary:
        lines.append(
            f"  footprints : {summary['footprints']} ({summary['footprint_area_ha']:,.2f} ha), "
            f"{summary['footprints_outside_zone']} outside the zone"
        )
    return "\n".join(lines)
