"""Synthetic landscape: rivers, gallery forest, savanna/woodland, floodplains, villages, roads.

The landscape is split into a small vector *plan* (river centrelines, village
disks, road lines; drawn once per scene from the seed) and per-tile *fields*
evaluated from global pixel coordinates (:mod:`kpgeo.simulate.noise`) and
from distance transforms computed on the tile plus a halo wide enough for
every distance used, so tiles join seamlessly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from kpgeo.simulate.grid import SceneGrid
from kpgeo.simulate.noise import fbm, mix_key, uniform
from kpgeo.simulate.spectra import LANDCOVER, SPECTRA

__all__ = [
    "LandscapePlan",
    "LandscapeTile",
    "plan_landscape",
    "landscape_tile",
    "woody_at",
    "HALO_M",
]

#: widest distance any field needs (m): floodplain and gallery forest widths stay below this
HALO_M = 650.0
_FLOOD_MAX_M = 550.0


@dataclass(frozen=True)
class LandscapePlan:
    """Vector skeleton of the landscape (UTM metres)."""

    main_rivers: tuple  # shapely LineStrings
    tributaries: tuple
    villages: tuple  # shapely Polygons (disks)
    roads: tuple  # shapely LineStrings
    main_half_width: float
    trib_half_width: float
    key: int


@dataclass
class LandscapeTile:
    """Per-pixel landscape fields of one tile (all float32 unless noted)."""

    base_dry: np.ndarray
    """(6, h, w) dry-season surface reflectance."""
    base_delta: np.ndarray
    """(6, h, w) wet minus dry reflectance."""
    pheno_shift: np.ndarray
    """(h, w) per-pixel greenness offset."""
    water: np.ndarray
    """(h, w) river water fraction 0..1."""
    flood_height: np.ndarray
    """(h, w) height above river of floodplain pixels, 0..~1.3; inf outside floodplains."""
    flood_var: np.ndarray
    """(h, w) smooth noise (about -1..1, ~500 m scale): reach-to-reach change of the flood
    (more open water where positive; shallower, grassier and more turbid where negative)."""
    dist_river: np.ndarray
    """(h, w) distance to the nearest river centreline (m), clipped at :data:`HALO_M`."""
    woody: np.ndarray
    """(h, w) woody (forest) fraction 0..1 (burns spare forest)."""


def _meander(rng, start, heading, step, n_steps, bounds, wiggle=0.16):
    """Centreline by an AR(1) random walk of the heading; stops outside ``bounds``."""
    from shapely.geometry import LineString

    x, y = start
    pts = [(x, y)]
    phi = 0.0
    left, bottom, right, top = bounds
    for _ in range(n_steps):
        phi = 0.88 * phi + rng.normal(0.0, wiggle)
        phi = float(np.clip(phi, -1.1, 1.1))
        a = heading + phi
        x += step * np.cos(a)
        y += step * np.sin(a)
        pts.append((x, y))
        if not (left <= x <= right and bottom <= y <= top):
            break
    return LineString(pts) if len(pts) > 1 else None


class _PlanFrame(NamedTuple):
    """Scene extent and random-walk settings shared by the plan's drawing steps."""

    left: float
    bottom: float
    right: float
    top: float
    width: float
    height: float
    diag: float
    ext: tuple  # scene bounds plus a margin: where centrelines stop
    area_km2: float
    step: float
    n_steps: int


def _plan_frame(grid: SceneGrid) -> _PlanFrame:
    """Extent, padded bounds and meander step of the plan for ``grid``."""
    left, bottom, right, top = grid.bounds
    width, height = right - left, top - bottom
    diag = float(np.hypot(width, height))
    margin = max(0.15 * diag, HALO_M * 2)
    ext = (left - margin, bottom - margin, right + margin, top + margin)
    area_km2 = grid.area_ha / 100.0
    step = float(np.clip(diag / 150.0, 15.0, 60.0))
    n_steps = int(4 * (diag + 2 * margin) / step) + 10
    return _PlanFrame(left, bottom, right, top, width, height, diag, ext, area_km2, step,
                      n_steps)


def _two_way_meander(rng, start, heading, step, n_steps, bounds, wiggle=0.16):
    """Line through ``start``: a meander forward along ``heading`` joined to one backward."""
    from shapely.geometry import LineString

    fwd = _meander(rng, start, heading, step, n_steps, bounds, wiggle)
    bwd = _meander(rng, start, heading + np.pi, step, n_steps, bounds, wiggle)
    return LineString(list(bwd.coords)[::-1] + list(fwd.coords)[1:])


def _plan_main_rivers(rng, fr: _PlanFrame) -> list:
    """Draw the main rivers: about one per 60 km2, each through the scene's centre part."""
    mains = []
    for _ in range(max(1, int(round(fr.area_km2 / 60.0)))):
        ax = fr.left + fr.width * rng.uniform(0.25, 0.75)
        ay = fr.bottom + fr.height * rng.uniform(0.25, 0.75)
        heading = rng.uniform(0, 2 * np.pi)
        mains.append(_two_way_meander(rng, (ax, ay), heading, fr.step, fr.n_steps, fr.ext))
    return mains


def _plan_tributaries(rng, fr: _PlanFrame, mains: list) -> list:
    """Tributaries branching off the main rivers and off earlier tributaries."""
    tribs = []
    n_trib = int(np.clip(2 + fr.area_km2 / 6.0, 2, 400))
    sources = list(mains)
    step = fr.step
    for _ in range(n_trib):
        parent = sources[int(rng.integers(len(sources)))]
        s = rng.uniform(0.05, 0.95) * parent.length
        p = parent.interpolate(s)
        q = parent.interpolate(min(s + step, parent.length))
        tangent = np.arctan2(q.y - p.y, q.x - p.x)
        heading = tangent + rng.choice([-1, 1]) * rng.uniform(0.6, 1.3)
        length = rng.uniform(0.3, 1.0) * max(fr.diag * 0.7, 800.0)
        line = _meander(rng, (p.x, p.y), heading, step, int(length / step) + 2, fr.ext, 0.22)
        if line is not None and line.length > step * 2:
            tribs.append(line)
            if len(sources) < 50:
                sources.append(line)
    return tribs


def _plan_villages(rng, fr: _PlanFrame, mains: list, tribs: list) -> tuple[list, list]:
    """Village disks at least 350 m from any river; return ``(disks, centre points)``."""
    from shapely.geometry import Point
    from shapely.ops import linemerge

    villages, centres = [], []
    n_vil = int(np.clip(round(fr.area_km2 / 3.0 + rng.uniform(0, 1)), 1, 3000))
    rivers = linemerge(mains + tribs) if (mains or tribs) else None
    tries = 0
    while len(villages) < n_vil and tries < n_vil * 30:
        tries += 1
        c = Point(rng.uniform(fr.left, fr.right), rng.uniform(fr.bottom, fr.top))
        if rivers is not None and rivers.distance(c) < 350.0:
            continue
        r = rng.uniform(50.0, 160.0)
        villages.append(c.buffer(r, quad_segs=8))
        centres.append(c)
    return villages, centres


def _plan_roads(rng, fr: _PlanFrame, centres: list) -> list:
    """Draw a through road across the scene, then a track from each village to the network."""
    from shapely.geometry import LineString

    roads = []
    # a through road crossing the scene
    heading = rng.uniform(0, 2 * np.pi)
    a = (fr.left + fr.width * rng.uniform(0.3, 0.7), fr.bottom + fr.height * rng.uniform(0.3, 0.7))
    roads.append(_two_way_meander(rng, a, heading, fr.step * 2, fr.n_steps, fr.ext, 0.05))
    for i, c in enumerate(centres):
        others = centres[:i] if i else []
        if others:
            target = min(others, key=c.distance)
        else:
            target = roads[0].interpolate(roads[0].project(c))
        mid = ((c.x + target.x) / 2 + rng.normal(0, 60), (c.y + target.y) / 2 + rng.normal(0, 60))
        roads.append(LineString([(c.x, c.y), mid, (target.x, target.y)]))
    return roads


def plan_landscape(grid: SceneGrid, *, seed: int) -> LandscapePlan:
    """Draw rivers, villages and roads for ``grid`` (deterministic in ``seed``)."""
    rng = np.random.default_rng(mix_key(seed, 101))
    fr = _plan_frame(grid)
    mains = _plan_main_rivers(rng, fr)
    tribs = _plan_tributaries(rng, fr, mains)
    villages, centres = _plan_villages(rng, fr, mains, tribs)
    roads = _plan_roads(rng, fr, centres)
    return LandscapePlan(
        main_rivers=tuple(mains),
        tributaries=tuple(tribs),
        villages=tuple(villages),
        roads=tuple(roads),
        main_half_width=float(rng.uniform(7.0, 18.0)),
        trib_half_width=float(rng.uniform(2.0, 5.0)),
        key=mix_key(seed, 102),
    )


def _distance(lines, transform, shape, res, all_touched=True):
    """Euclidean distance (m) to rasterised ``lines`` on a padded window, capped at HALO_M."""
    from rasterio.features import rasterize
    from scipy.ndimage import distance_transform_edt

    if not lines:
        return np.full(shape, HALO_M, np.float32)
    mask = rasterize(
        [(g, 1) for g in lines], out_shape=shape, transform=transform, fill=0,
        all_touched=all_touched, dtype="uint8",
    )
    if not mask.any():
        return np.full(shape, HALO_M, np.float32)
    d = distance_transform_edt(mask == 0).astype(np.float32) * np.float32(res)
    return np.minimum(d, np.float32(HALO_M))


def _sig(x):
    """Smooth step 0..1 (softsign: only exactly-rounded arithmetic, so tiling-invariant)."""
    return 0.5 + 0.5 * x / (1.0 + np.abs(x))


def landscape_tile(plan: LandscapePlan, *, grid: SceneGrid, row0: int, col0: int,
                   shape: tuple[int, int]) -> LandscapeTile:
    """Evaluate the landscape fields on the window ``(row0, col0, shape)`` of ``grid``."""
    from shapely.geometry import box

    res = grid.resolution
    h, w = shape
    halo = int(np.ceil(HALO_M / res)) + 1
    ph, pw = h + 2 * halo, w + 2 * halo
    ptr = grid.window_transform(row0 - halo, col0 - halo)
    left = grid.x0 + (col0 - halo) * res
    top = grid.y0 - (row0 - halo) * res
    win = box(left, top - ph * res, left + pw * res, top)

    def clip(lines):
        # clip to the padded window first: rasterising long lines costs per vertex
        out = (g.intersection(win) for g in lines if g.intersects(win))
        return [g for g in out if not g.is_empty]

    mains, tribs, roads = clip(plan.main_rivers), clip(plan.tributaries), clip(plan.roads)
    sl = (slice(halo, halo + h), slice(halo, halo + w))
    d_main = _distance(mains, ptr, (ph, pw), res)[sl]
    d_trib = _distance(tribs, ptr, (ph, pw), res)[sl]
    d_road = _distance(roads, ptr, (ph, pw), res)[sl]
    return _fields(plan, grid, row0, col0, shape, d_main, d_trib, d_road, win)


class _Noise(NamedTuple):
    """Smooth noise fields of one window (float32), named by feature scale."""

    big: np.ndarray  # ~900 m
    mid: np.ndarray  # ~250 m
    small: np.ndarray  # ~60 m
    fine: np.ndarray  # ~8 m at 10 m resolution
    flood: np.ndarray  # ~300 m: floodplain height
    flood_var: np.ndarray  # ~500 m: reach-to-reach change of the flood


def _noise(k, row0, col0, shape, res) -> _Noise:
    """Evaluate the landscape's noise fields on the window ``(row0, col0, shape)``."""
    px = 1.0 / res  # pixels per metre
    n_big = fbm(mix_key(k, 1), row0=row0, col0=col0, shape=shape, scale=900.0 * px, octaves=4)
    n_mid = fbm(mix_key(k, 2), row0=row0, col0=col0, shape=shape, scale=250.0 * px, octaves=4)
    n_small = fbm(mix_key(k, 3), row0=row0, col0=col0, shape=shape, scale=60.0 * px, octaves=3)
    fine_scale = 8.0 * px * 10 / max(res, 1)
    n_fine = fbm(mix_key(k, 4), row0=row0, col0=col0, shape=shape, scale=fine_scale, octaves=2)
    n_flood = fbm(mix_key(k, 5), row0=row0, col0=col0, shape=shape, scale=300.0 * px, octaves=3)
    # floods differ from one reach of floodplain to the next (depth, emergent grass, silt load)
    fl_var = fbm(mix_key(k, 8), row0=row0, col0=col0, shape=shape, scale=500.0 * px, octaves=2)
    return _Noise(n_big, n_mid, n_small, n_fine, n_flood, fl_var)


def _water_fraction(plan, d_main, d_trib, res) -> np.ndarray:
    """River water fraction from distance to the centreline (partial pixels on narrow streams)."""
    water = np.clip((plan.main_half_width - d_main) / res + 0.5, 0, 1)
    water = np.maximum(water, np.clip((plan.trib_half_width - d_trib) / res + 0.5, 0, 1) * 0.8)
    return water.astype(np.float32)


def _floodplain(d_main, nz: _Noise):
    """Floodplains along main rivers: ``(mask, height above river, wetness)``."""
    fp_width = 260.0 + 260.0 * nz.big
    fp_width = np.clip(fp_width, 80.0, _FLOOD_MAX_M)
    in_fp = d_main < fp_width
    flood_height = np.where(
        in_fp, np.clip(d_main / fp_width + 0.45 * nz.flood, 0.0, 1.3), np.inf
    ).astype(np.float32)
    wet = np.where(in_fp, np.clip(1.2 - d_main / fp_width, 0, 1), 0.0)
    return in_fp, flood_height, wet


def _forest_cover(d_main, d_trib, in_fp, nz: _Noise) -> np.ndarray:
    """Gallery forest along rivers, forest islands elsewhere, thinned on floodplains."""
    wf_main = 110.0 + 90.0 * nz.mid * 2.0
    wf_trib = 55.0 + 45.0 * nz.mid * 2.0
    forest = np.maximum(_sig((wf_main - d_main) / 20.0), _sig((wf_trib - d_trib) / 15.0))
    forest = np.maximum(forest, np.clip((nz.big - 0.30) / 0.12, 0, 1) * 0.9)
    forest *= np.clip(0.85 + 0.3 * nz.small, 0, 1)
    return np.where(in_fp, forest * np.clip(0.3 + 1.2 * nz.small, 0, 1), forest)


def _cover_weights(forest, wet, nz: _Noise, shape) -> dict:
    """Natural land-cover fractions (forest, woodland, grass, wet grass; built-up zero)."""
    woody_frac = np.clip(0.45 + 1.1 * nz.mid + 0.3 * nz.small, 0, 1)
    rest = 1.0 - forest
    return {
        "forest": forest,
        "woodland": rest * woody_frac * (1 - wet),
        "grass": rest * (1 - woody_frac) * (1 - wet),
        "wetgrass": rest * wet,
        "laterite": np.zeros(shape, np.float32),
        "roof": np.zeros(shape, np.float32),
        "compound": np.zeros(shape, np.float32),
    }


def _add_villages(weights, plan, grid, row0, col0, shape, win, nz: _Noise) -> None:
    """Replace the cover in villages by compacted soil, metal roofs and trees (in place)."""
    from rasterio.features import rasterize

    vils = [g for g in plan.villages if g.intersects(win)]
    if not vils:
        return
    tr = grid.window_transform(row0, col0)
    vmask = rasterize([(g, 1) for g in vils], out_shape=shape, transform=tr, fill=0,
                      dtype="uint8").astype(bool)
    if not vmask.any():
        return
    u = uniform(mix_key(plan.key, 6), row0=row0, col0=col0, shape=shape)
    roof = vmask & (u > 0.72)
    tree = vmask & ~roof & (nz.small + 0.3 * nz.fine > 0.15)
    for name in weights:
        weights[name] = np.where(vmask, 0.0, weights[name])
    weights["roof"] = np.where(roof, 0.75, 0.0)
    weights["compound"] = np.where(roof, 0.25, np.where(tree, 0.4, np.where(vmask, 1.0, 0)))
    weights["forest"] = np.where(tree, 0.6, weights["forest"])


def _add_roads(weights, d_road, res) -> None:
    """Mix ~7 m laterite roads into the (10 m) pixels (in place)."""
    road = np.clip((3.5 - d_road) / res + 0.5, 0, 0.85).astype(np.float32)
    road = np.where(d_road <= res * 0.75, np.maximum(road, 0.55), road)
    for name in weights:
        weights[name] = weights[name] * (1 - road)
    weights["laterite"] = weights["laterite"] + road


def _base_spectra(weights, nz: _Noise):
    """Textured dry-season reflectance and wet-minus-dry change from cover ``weights``."""
    wstack = np.stack([np.asarray(weights[n], np.float32) for n in LANDCOVER])
    dry = np.stack([SPECTRA.get(f"{n}_dry", SPECTRA.get(n)) for n in LANDCOVER])
    wetspec = np.stack([SPECTRA.get(f"{n}_wet", SPECTRA.get(n)) for n in LANDCOVER])
    base_dry = np.einsum("khw,kb->bhw", wstack, dry).astype(np.float32)
    base_delta = np.einsum("khw,kb->bhw", wstack, wetspec - dry).astype(np.float32)
    # texture: brightness and canopy-density variation at several scales
    bright = (1.0 + 0.10 * nz.mid + 0.07 * nz.small + 0.05 * nz.fine).astype(np.float32)
    canopy = (1.0 + 0.06 * nz.small + 0.04 * nz.fine).astype(np.float32)
    base_dry *= bright[None]
    base_delta *= bright[None]
    base_dry[3] *= canopy
    base_delta[3] *= canopy
    return base_dry, base_delta


def _fields(plan, grid, row0, col0, shape, d_main, d_trib, d_road, win) -> LandscapeTile:
    """Landscape fields from the distances to rivers and roads (m) on a window."""
    res = grid.resolution
    nz = _noise(plan.key, row0, col0, shape, res)
    water = _water_fraction(plan, d_main, d_trib, res)
    # floodplains along main rivers: wet grass, flooded when the level exceeds the height
    in_fp, flood_height, wet = _floodplain(d_main, nz)
    forest = _forest_cover(d_main, d_trib, in_fp, nz)
    weights = _cover_weights(forest, wet, nz, shape)
    _add_villages(weights, plan, grid, row0, col0, shape, win, nz)
    _add_roads(weights, d_road, res)
    # river water replaces land
    for name in weights:
        weights[name] = weights[name] * (1 - water)
    base_dry, base_delta = _base_spectra(weights, nz)

    woody = np.clip(forest + weights["woodland"] * 0.3, 0, 1).astype(np.float32)
    pheno = (0.12 * nz.mid + 0.06 * nz.small).astype(np.float32)
    return LandscapeTile(
        base_dry=base_dry,
        base_delta=base_delta,
        pheno_shift=pheno,
        water=water,
        flood_height=flood_height,
        flood_var=nz.flood_var.astype(np.float32, copy=False),
        dist_river=np.minimum(d_main, d_trib).astype(np.float32),
        woody=woody,
    )


def woody_at(plan: LandscapePlan, grid: SceneGrid, x: float, y: float) -> float:
    """Woody (forest) fraction at the point ``(x, y)`` (scene CRS, metres).

    Uses exact point-to-line distances (cheap) instead of the tile distance transform.
    """
    from shapely.geometry import Point, box

    col = int(np.floor((x - grid.x0) / grid.resolution))
    row = int(np.floor((grid.y0 - y) / grid.resolution))
    res = grid.resolution
    cx, cy = grid.x0 + (col + 0.5) * res, grid.y0 - (row + 0.5) * res
    p = Point(cx, cy)

    def dist(lines):
        d = min((g.distance(p) for g in lines), default=HALO_M)
        return np.full((1, 1), min(d, HALO_M), np.float32)

    win = box(cx - res / 2, cy - res / 2, cx + res / 2, cy + res / 2)
    tile = _fields(plan, grid, row, col, (1, 1), dist(plan.main_rivers), dist(plan.tributaries),
                   dist(plan.roads), win)
    return float(tile.woody[0, 0])
