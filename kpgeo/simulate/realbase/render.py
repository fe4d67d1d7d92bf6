"""Render one tile of a real-source scene: every date's surface, atmosphere, SCL and truth.

Called by :func:`kpgeo.simulate.writer.write_scene` (the same writer, COG
conversion and STAC items as the procedural source); only one date of one
tile is in memory at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpgeo.simulate.realbase.atmosphere import TRUTH_NODATA, observe
from kpgeo.simulate.realbase.basemap import FIELD
from kpgeo.simulate.realbase.events import burn_tile, field_cycles, paint_burns, paint_fields
from kpgeo.simulate.realbase.landcover import is_flooded, land_tile, vegetation, water_and_floods
from kpgeo.simulate.realbase.mining import paint_sites
from kpgeo.simulate.spectra import BANDS
from kpgeo.simulate.writer import BIT_BURN, BIT_FARM, BIT_FLOOD, _to_dn, label_precedence

__all__ = ["RealSceneInputs", "render_tile"]


@dataclass
class RealSceneInputs:
    """Everything the real-source renderer needs (built by ``prepare``)."""

    grid: object
    calendar: object
    atmosphere: list
    params: object
    look: object
    lib: object
    sites: list
    burns: list
    years: tuple
    flood_levels: np.ndarray
    wetness: np.ndarray
    meta: dict


def _mining_truth(sites, row0, col0, shape, days):
    """Mining mask and first image day of mining (0 = never) on the tile."""
    last = int(days[-1])
    start = np.zeros(shape, np.int32)
    for s in sites:
        sh, sw = s.shape
        a0, b0 = max(s.row0, row0), max(s.col0, col0)
        a1, b1 = min(s.row0 + sh, row0 + shape[0]), min(s.col0 + sw, col0 + shape[1])
        if a0 >= a1 or b0 >= b1:
            continue
        od = s.open_day[a0 - s.row0:a1 - s.row0, b0 - s.col0:b1 - s.col0]
        dug = od <= last
        if not dug.any():
            continue
        idx = np.searchsorted(days, od[dug], side="left")
        sub = start[a0 - row0:a1 - row0, b0 - col0:b1 - col0]
        sub[dug] = days[np.minimum(idx, len(days) - 1)].astype(np.int32)
    return start > 0, start


def render_tile(inp: RealSceneInputs, r0, c0, shape, days, doys, raw, t_cloud, t_lab,
                t_start, t_conf, stats, Window) -> None:
    """Render and write one tile (signature of :func:`kpgeo.simulate.writer.write_scene`)."""
    grid, lib, look, params = inp.grid, inp.lib, inp.look, inp.params
    res = grid.resolution
    lt = land_tile(look, lib, row0=r0, col0=c0, shape=shape, res=res)
    field = lt.cls == FIELD
    ids, inv = np.unique(lt.parcel[field], return_inverse=True)
    cyc = field_cycles(look, params, ids, inp.years, lib)
    burn_idx = burn_tile(inp.burns, row0=r0, col0=c0, shape=shape, cls=lt.cls)
    win = Window(c0, r0, shape[1], shape[0])

    mining, mstart = _mining_truth(inp.sites, r0, c0, shape, days)
    flooded = is_flooded(lt, look, inp.flood_levels)
    farmed = np.zeros(shape, bool)
    farmed[field] = cyc.disturbed(int(days[0]), int(days[-1]))[inv]
    burnt = burn_idx > 0
    t_lab.write(label_precedence(mining=mining, flood=flooded, farm=farmed, burn=burnt), 1,
                window=win)
    t_start.write(mstart, 1, window=win)
    conf = (farmed * BIT_FARM | burnt * BIT_BURN | flooded * BIT_FLOOD).astype(np.uint8)
    t_conf.write(conf, 1, window=win)
    del mining, mstart, flooded, farmed, burnt, conf

    for i, atm in enumerate(inp.atmosphere):
        day = int(days[i])
        surf = vegetation(lt, lib, day)
        paint_fields(surf, field, inv, cyc, lib, lt.texture, day)
        paint_burns(surf, burn_idx, inp.burns, lib, lt.texture, day)
        water_and_floods(surf, lt, look, lib, day=day, year=inp.calendar.dates[i].year, i=i)
        paint_sites(surf, inp.sites, lib, row0=r0, col0=c0, day=day, date_index=i,
                    wet=float(inp.wetness[i]), key=look.key)
        surf = surf.astype(np.float32, copy=False)
        obs, truth, scl = observe(surf, atm=atm, params=params, res=res, row0=r0, col0=c0)
        dn = _to_dn(obs)
        for b, name in enumerate(BANDS):
            raw[(i, name)].write(dn[b], 1, window=win)
        raw[(i, "scl")].write(scl, 1, window=Window(c0 // 2, r0 // 2, scl.shape[1],
                                                    scl.shape[0]))
        t_cloud.write(truth, i + 1, window=win)
        stats["scl_counts"][i] += np.bincount(scl.ravel(), minlength=12)[:12]
        valid = truth != TRUTH_NODATA
        stats["truth_counts"][i] += np.bincount(truth[valid].ravel(), minlength=4)[:4]
        stats["nodata"][i] += int((~valid).sum())

