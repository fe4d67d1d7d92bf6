"""Artisanal mining sites of the real source: real outlines, growing outward from a first pit.

A site's outline is a real mapped mine polygon (``data/mine_outlines.geojson``:
mine-segmentation annotations of artisanal / placer tiles, three times more
often than the Earth Genome galamsey detections, whose patch-grid corners are
rounded), rotated, maybe mirrored and rescaled to an artisanal size
(``site_area_ha``, log-uniform). It is dug into one of four grounds
(:data:`~kpgeo.simulate.realbase.params.GROUNDS`):

- ``vegetated``: forest, woodland, grass or wetland (at least 70 % of the outline);
- ``river``: across a real shore, 15-75 % of the outline in the water: the
  channel is turned into gravel bars and pits, the bank is dug;
- ``bare``: on field plots (at least half), the outline cleared to bare soil
  60-400 days before the first pit (so often before the first image): no
  vegetation loss when digging starts;
- ``reworked``: old workings (partly revegetated pits, spoil and ponds over
  the outline dilated by 10-30 m) exist before the period and are dug again.

Pixels open in order of distance from a random first pit plus smooth and white
noise (35 % / 10 % of the site's radius), over ``growth_days`` (longer for bigger
sites) with a power-law schedule. The surface is a mosaic of pits
(``pit_spacing_m``): water (clear to laterite-laden), bright gravel (real sand
and soil), spoil (real bare soil) and wet laterite; some water pits are drained
and some dry pits flood later. Edge pixels are mixed with the ground (40-75 %).
Abandoned sites revegetate with a time constant of ``revegetation_days`` (twice
as slow for water). Sites keep at least 30 m apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpgeo.simulate.noise import fbm, mix_key, uniform
from kpgeo.simulate.realbase.basemap import (
    FIELD,
    FOREST,
    GRASS,
    VILLAGE,
    WATER,
    WETLAND,
    WOODLAND,
    base_window,
)
from kpgeo.simulate.realbase.landcover import SceneLook, final_classes, water_spectrum
from kpgeo.simulate.realbase.library import MODELLED, Library
from kpgeo.simulate.realbase.params import GROUNDS, RealParams
from kpgeo.simulate.realbase.sources import mine_outlines

__all__ = ["MineSite", "plan_sites", "paint_sites", "NEVER", "WATER_PIT", "GRAVEL", "SPOIL",
           "WET_LATERITE"]

NEVER = np.int64(2**40)
WATER_PIT, GRAVEL, SPOIL, WET_LATERITE = 0, 1, 2, 3
_KIND_P = {"river": (0.3, 0.5, 0.1, 0.1)}
_KIND_P_DEFAULT = (0.35, 0.3, 0.2, 0.15)
_VEGETATED = (FOREST, WOODLAND, GRASS, WETLAND)
_GAP_PX = 3
_TRIES = 80


@dataclass
class MineSite:
    """One site on a window of the scene grid (arrays are on that window)."""

    site_id: str
    ground: str
    row0: int
    col0: int
    open_day: np.ndarray
    """(h, w) int64 day the pixel is dug (:data:`NEVER` outside the site)."""
    kind0: np.ndarray
    kind1: np.ndarray
    trans_day: np.ndarray
    turb: np.ndarray
    mix: np.ndarray
    old: np.ndarray | None
    """(h, w) bool footprint of the old workings (``reworked``), else None."""
    old_mix: np.ndarray | None
    preclear: int | None
    start: int
    end: int | None
    tau: float
    bright: float
    n_cells: np.ndarray
    """(h, w) int32 pit / heap number of each pixel."""
    inside_zone: bool | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Window shape."""
        return self.open_day.shape


def _outline(rng, area_ha: float):
    """Pick a real mine outline, rotate, maybe mirror, scale to ``area_ha`` (metres)."""
    from shapely import affinity

    shapes = mine_outlines()
    seg = [g for s, g in shapes if s == "segmentation"]
    eg = [g for s, g in shapes if s == "earthgenome"]
    use_eg = bool(eg) and rng.uniform() < 0.25
    pool = eg if use_eg else seg
    g = pool[int(rng.integers(len(pool)))]
    g = affinity.rotate(g, float(rng.uniform(0, 360)), origin=(0, 0))
    if rng.uniform() < 0.5:
        g = affinity.scale(g, -1.0, 1.0, origin=(0, 0))
    g = affinity.scale(g, np.sqrt(area_ha), np.sqrt(area_ha), origin=(0, 0))
    if use_eg:  # round the corners of the 480 m patch grid
        s = np.sqrt(area_ha * 1e4)
        r = g.buffer(0.08 * s).buffer(-0.16 * s).buffer(0.08 * s)
        g = r if not r.is_empty else g
    return g


def _rasterise(geom, grid, r, c):
    """Mask of ``geom`` centred on pixel (r, c): (row0, col0, bool mask)."""
    from rasterio.features import rasterize
    from shapely import affinity

    res = grid.resolution
    minx, miny, maxx, maxy = geom.bounds
    r0 = int(np.floor(r - maxy / res)) - 2
    c0 = int(np.floor(c + minx / res)) - 2
    h = int(np.ceil((maxy - miny) / res)) + 5
    w = int(np.ceil((maxx - minx) / res)) + 5
    x, y = grid.x0 + (c + 0.5) * res, grid.y0 - (r + 0.5) * res
    g = affinity.translate(geom, x, y)
    m = rasterize([(g, 1)], out_shape=(h, w), transform=grid.window_transform(r0, c0),
                  fill=0, dtype="uint8").astype(bool)
    return r0, c0, m


def _ground_ok(ground: str, cls: np.ndarray, mask: np.ndarray, relaxed: bool) -> bool:
    c = cls[mask]
    frac = {k: float(np.isin(c, k).mean()) for k in (_VEGETATED, (WATER,), (FIELD,),
                                                     (WATER, VILLAGE))}
    if ground == "vegetated":
        return frac[_VEGETATED] >= 0.7
    if ground == "river":
        return 0.15 <= frac[(WATER,)] <= 0.75
    if ground == "bare":
        return frac[(FIELD,)] >= 0.5 or (relaxed and frac[(WATER, VILLAGE)] <= 0.2)
    return frac[(WATER, VILLAGE)] <= 0.2


def _clip(r0, c0, mask, shape):
    rows = np.arange(r0, r0 + mask.shape[0])[:, None]
    cols = np.arange(c0, c0 + mask.shape[1])[None, :]
    return mask & (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])


def _overlaps(r0, c0, mask, taken) -> bool:
    from scipy.ndimage import binary_dilation

    big = binary_dilation(np.pad(mask, _GAP_PX), iterations=_GAP_PX)
    br0, bc0 = r0 - _GAP_PX, c0 - _GAP_PX
    for tr0, tc0, tm in taken:
        rr0, cc0 = max(br0, tr0), max(bc0, tc0)
        rr1 = min(br0 + big.shape[0], tr0 + tm.shape[0])
        cc1 = min(bc0 + big.shape[1], tc0 + tm.shape[1])
        if rr0 >= rr1 or cc0 >= cc1:
            continue
        a = big[rr0 - br0:rr1 - br0, cc0 - bc0:cc1 - bc0]
        b = tm[rr0 - tr0:rr1 - tr0, cc0 - tc0:cc1 - tc0]
        if (a & b).any():
            return True
    return False


def _place(rng, look, grid, ground, geom, taken, zone_test, want_inside):
    """Find a position for one outline: (row0, col0, mask) or None."""
    h, w = grid.shape
    for attempt in range(_TRIES):
        r, c = rng.uniform(4, h - 4), rng.uniform(4, w - 4)
        r0, c0, m = _rasterise(geom, grid, r, c)
        m = _clip(r0, c0, m, grid.shape)
        if m.sum() < 3:
            continue
        b = base_window(look.layout, r0, c0, m.shape)
        cls = final_classes(b.cls, b.parcel, look)
        if not _ground_ok(ground, cls, m, relaxed=attempt >= _TRIES // 2):
            continue
        if zone_test is not None and want_inside is not None and attempt < _TRIES - 10:
            rr, cc = np.nonzero(m)
            if zone_test(r0 + rr.mean(), c0 + cc.mean()) != want_inside:
                continue
        if _overlaps(r0, c0, m, taken):
            continue
        return r0, c0, m
    return None


def _start_day(rng, params: RealParams, first: int, span: int) -> int:
    u = rng.uniform()
    if u < params.start_early:
        frac = rng.uniform(-0.4, 0.03)
    elif u < params.start_early + params.start_late:
        frac = rng.uniform(0.88, 1.0)
    else:
        frac = rng.uniform(0.03, 0.88)
    return int(first + frac * span)


def _cells(rng, shape, spacing_px: float) -> np.ndarray:
    """Pit / heap number of each pixel: Voronoi cells of random points."""
    from scipy.spatial import cKDTree

    n = max(1, int(round(shape[0] * shape[1] / spacing_px**2)))
    pts = rng.uniform(0, 1, (n, 2)) * np.array(shape, float)
    rr, cc = np.mgrid[0:shape[0], 0:shape[1]]
    _, idx = cKDTree(pts).query(np.c_[rr.ravel() + 0.5, cc.ravel() + 0.5])
    return idx.reshape(shape).astype(np.int32)


def _build(rng, key, ground, r0, c0, mask, params: RealParams, res, start):
    """Draw the opening schedule and surface mosaic of a placed site."""
    from scipy.ndimage import binary_dilation, binary_erosion

    shape = mask.shape
    rr, cc = np.nonzero(mask)
    s = int(rng.integers(len(rr)))
    dist = np.hypot(rr - rr[s], cc - cc[s]) * res
    dmax = max(float(dist.max()), res)
    smooth = fbm(mix_key(key, 1), row0=r0, col0=c0, shape=shape, scale=3.0, octaves=2)[rr, cc]
    white = uniform(mix_key(key, 2), row0=r0, col0=c0, shape=shape)[rr, cc] - 0.5
    score = dist + 0.35 * dmax * smooth + 0.1 * dmax * white
    score[s] = -np.inf
    q = np.empty(len(rr))
    q[np.argsort(score, kind="stable")] = np.linspace(0, 1, len(rr))
    area_ha = len(rr) * res**2 / 1e4
    grow = float(np.exp(rng.uniform(*np.log(params.growth_days))) * (area_ha / 2.0) ** 0.35)
    grow = float(np.clip(grow, 20.0, 1100.0))
    power = float(rng.uniform(*params.growth_power))
    open_day = np.full(shape, NEVER, np.int64)
    open_day[rr, cc] = start + (grow * q**power).astype(np.int64)

    cells = _cells(rng, shape, rng.uniform(*params.pit_spacing_m) / res)
    n = int(cells.max()) + 1
    kind = rng.choice(4, size=n, p=_KIND_P.get(ground, _KIND_P_DEFAULT))
    turb = rng.uniform(0.3, 1.5, n).astype(np.float32)
    cell_open = np.full(n, NEVER, np.int64)
    np.minimum.at(cell_open, cells[rr, cc], open_day[rr, cc])
    after = (rng.uniform(30, 300, n)).astype(np.int64)
    u = rng.uniform(size=n)
    drain = (kind == WATER_PIT) & (u < params.drain_probability)
    flood = (kind != WATER_PIT) & (u < params.flood_pit_probability)
    kind1 = np.where(drain, GRAVEL, np.where(flood, WATER_PIT, kind))
    trans = np.where(drain | flood, np.minimum(cell_open + after, NEVER), NEVER)
    edge = mask & ~binary_erosion(mask)
    px = uniform(mix_key(key, 3), row0=r0, col0=c0, shape=shape)
    mix = np.where(edge, 0.4 + 0.35 * px, 0.85 + 0.15 * px).astype(np.float32)
    old = old_mix = None
    if ground == "reworked":
        old = binary_dilation(mask, iterations=int(rng.integers(1, 4)))
        old_mix = (0.35 + 0.35 * uniform(mix_key(key, 4), row0=r0, col0=c0, shape=shape)) \
            .astype(np.float32)
    return dict(open_day=open_day, kind0=kind[cells].astype(np.int8),
                kind1=kind1[cells].astype(np.int8), trans_day=trans[cells],
                turb=turb[cells], mix=mix, old=old, old_mix=old_mix, n_cells=cells,
                grow=grow)


def plan_sites(look: SceneLook, params: RealParams, grid, *, first: int, last: int,
               seed: int, zone_test=None, sides: bool = False) -> list[MineSite]:
    """Place and schedule the mining sites of the scene (deterministic in ``seed``).

    ``zone_test(row, col) -> bool`` tells whether a pixel lies inside the zone; with
    ``sides`` the sites alternate between inside and outside.
    """
    rng = np.random.default_rng(mix_key(seed, 901))
    h, w = grid.shape
    km2 = h * w * grid.resolution**2 / 1e6
    n = max(params.min_sites, int(rng.poisson(params.sites_per_km2 * km2)))
    span = max(last - first, 1)
    weights = np.asarray(params.ground_weights, float)
    sites: list[MineSite] = []
    taken: list = []
    for i in range(n):
        ground = str(rng.choice(GROUNDS, p=weights / weights.sum()))
        area = float(np.exp(rng.uniform(*np.log(params.site_area_ha))))
        area = min(area, 0.05 * km2 * 100)
        geom = _outline(rng, area)
        want = bool(i % 2 == 0) if sides else None
        placed = None
        # a ground the scene lacks (no river, no fields) gives way to the next one
        for g in (ground, *(x for x in GROUNDS if x != ground)):
            placed = _place(rng, look, grid, g, geom, taken, zone_test, want)
            if placed is not None:
                ground = g
                break
        if placed is None:
            continue
        r0, c0, mask = placed
        start = _start_day(rng, params, first, span)
        key = mix_key(seed, 902, i)
        b = _build(rng, key, ground, r0, c0, mask, params, grid.resolution, start)
        end = None
        if rng.uniform() < params.abandon_probability:
            end = int(start + b["grow"] + rng.uniform(30, 300))
        preclear = int(start - rng.uniform(60, 400)) if ground == "bare" else None
        inside = None
        if zone_test is not None:
            rr, cc = np.nonzero(mask)
            inside = bool(zone_test(r0 + rr.mean(), c0 + cc.mean()))
        sites.append(MineSite(
            site_id=f"mine-{len(sites) + 1:03d}", ground=ground, row0=r0, col0=c0,
            open_day=b["open_day"], kind0=b["kind0"], kind1=b["kind1"],
            trans_day=b["trans_day"], turb=b["turb"], mix=b["mix"], old=b["old"],
            old_mix=b["old_mix"], preclear=preclear, start=start, end=end,
            tau=float(rng.uniform(*params.revegetation_days)),
            bright=float(rng.uniform(0.75, 1.05)), n_cells=b["n_cells"], inside_zone=inside))
        taken.append((r0, c0, mask))
    return sites


def _materials(kind, turb, bright, lib: Library, wet: float, pxnoise) -> np.ndarray:
    """(6, n) surface of pit pixels of ``kind`` (water pits with turbidity ``turb``)."""
    bare = np.median(lib.bare, axis=0)
    wetf = MODELLED["wet_factor"]
    gravel = bright * (0.75 * lib.sand + 0.25 * bare)
    dry = {GRAVEL: gravel, SPOIL: bare * 1.05, WET_LATERITE: bare * wetf}
    out = np.empty((6, len(kind)), np.float32)
    for k, spec in dry.items():
        m = kind == k
        if m.any():
            s = spec * (1 - 0.4 * wet) + spec * wetf * 0.4 * wet if k != WET_LATERITE else spec
            out[:, m] = s[:, None] * pxnoise[m]
    m = kind == WATER_PIT
    if m.any():
        out[:, m] = water_spectrum(lib, turb[m])
    return out


def paint_sites(surf: np.ndarray, sites, lib: Library, *, row0: int, col0: int, day: int,
                date_index: int, wet: float, key: int) -> None:
    """Paint every site's surface on ``day`` into the tile ``surf`` (6, h, w), in place."""
    h, w = surf.shape[1:]
    for k, s in enumerate(sites):
        sh, sw = s.shape
        a0, b0 = max(s.row0, row0), max(s.col0, col0)
        a1, b1 = min(s.row0 + sh, row0 + h), min(s.col0 + sw, col0 + w)
        if a0 >= a1 or b0 >= b1:
            continue
        ss = (slice(a0 - s.row0, a1 - s.row0), slice(b0 - s.col0, b1 - s.col0))
        ts = (slice(a0 - row0, a1 - row0), slice(b0 - col0, b1 - col0))
        sub = surf[(slice(None), *ts)]
        od = s.open_day[ss]
        noise = 0.94 + 0.12 * uniform(mix_key(key, k), row0=a0, col0=b0, shape=od.shape)
        if s.old is not None:
            m = s.old[ss] & (od > day)
            if m.any():
                mat = _materials(s.kind0[ss][m], np.full(m.sum(), 0.4, np.float32), 0.8,
                                 lib, wet, noise[m])
                f = s.old_mix[ss][m]
                sub[:, m] = sub[:, m] * (1 - f) + mat * f
        if s.preclear is not None and s.preclear <= day:
            m = (od > day) & (od < NEVER)
            if m.any():
                soil = np.median(lib.bare, axis=0)[:, None] * noise[m]
                sub[:, m] = sub[:, m] * 0.15 + soil * 0.85
        m = od <= day
        if not m.any():
            continue
        kind = np.where(day >= s.trans_day[ss][m], s.kind1[ss][m], s.kind0[ss][m])
        turb = s.turb[ss][m]
        f = s.mix[ss][m]
        if s.end is not None and day > s.end:
            since = day - s.end
            turb = turb * np.float32(np.exp(-since / 90.0))
            # scalars only: per-pixel transcendental functions could differ with tiling
            keep_dry, keep_wet = np.exp(-since / s.tau), np.exp(-since / (2 * s.tau))
            f = f * np.where(kind == WATER_PIT, keep_wet, keep_dry).astype(np.float32)
        else:
            jit = ((mix_key(key, 7, date_index, k) >> 11) / 2.0**53) - 0.5
            turb = np.clip(turb + 0.5 * jit, 0, 1.5).astype(np.float32)
        mat = _materials(kind, turb, s.bright, lib, wet, noise[m])
        sub[:, m] = sub[:, m] * (1 - f) + mat * f
