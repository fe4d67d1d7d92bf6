"""Land-change events: artisanal mining sites and their confounders.

- **mining**: a site is a cluster of pits, gravel patches and spoil heaps
  strung along a river or its floodplain. Pits open one after another from the
  site's start date (the cluster grows outwards over months); an abandoned
  site revegetates slowly (time constant of months to a year) and its pits
  clear and silt up.
- **farm**: slash-and-burn clearing, rectangular-ish, cleared in the dry
  season (ash, then bare soil) and regrowing (crop) within the wet season.
- **burn**: savanna fire scar in the dry season, dark with low NIR and
  relatively high SWIR2, recovering within weeks; forest does not burn.
- seasonal floods are part of the landscape (:mod:`~kpgeo.simulate.landscape`).

Events are vectors in the scene's UTM CRS with their timelines (days since
1970-01-01); :func:`event_tile` rasterises them on one tile and
:func:`apply_events` paints a date's surface reflectance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from kpgeo.simulate.grid import Calendar, SceneGrid
from kpgeo.simulate.noise import fbm, mix_key
from kpgeo.simulate.presets import SimParams
from kpgeo.simulate.spectra import SPECTRA, greenness, water_spectrum

__all__ = ["Pit", "MiningSite", "Farm", "Burn", "EventPlan", "plan_events", "event_tile",
           "apply_events", "truth_features"]

_NEVER = np.int64(2**40)
_KIND_WATER, _KIND_GRAVEL, _KIND_SPOIL = 0, 1, 2


@dataclass(frozen=True)
class Pit:
    """One pit / gravel patch / spoil heap of a mining site."""

    geom: object
    start: int
    kind: int
    turbidity: float


@dataclass
class MiningSite:
    """A cluster of pits with one timeline."""

    site_id: str
    pits: list
    start: int
    end: int | None
    tau: float
    inside_zone: bool | None = None
    growth: list = field(default_factory=list)
    ground: str | None = None
    """``bank`` / ``channel`` / ``cleared`` with domain randomisation (else None)."""
    pre_clear: int | None = None
    """Day the ground was laid bare before the first pit (``channel``: sand bar exposed)."""


@dataclass(frozen=True)
class Farm:
    """Slash-and-burn clearing."""

    site_id: str
    geom: object
    start: int
    bare_days: int
    grow_days: int

    @property
    def end(self) -> int:
        """Day the vegetation has regrown."""
        return self.start + self.bare_days + self.grow_days


@dataclass(frozen=True)
class Burn:
    """Savanna burn scar."""

    site_id: str
    geom: object
    start: int
    tau: float
    severity: float
    lag: int = 10
    """Days the scar stays fully dark before it starts to fade."""

    @property
    def end(self) -> int:
        """Day the scar has faded (about 95 % recovered)."""
        return int(self.start + self.lag + 3 * self.tau)


@dataclass
class EventPlan:
    """All events of a scene."""

    sites: list
    farms: list
    burns: list
    key: int
    gravel_brightness: float = 1.0

    @property
    def pits(self) -> list:
        """Flat list of (site index, pit)."""
        return [(i, p) for i, s in enumerate(self.sites) for p in s.pits]

    def tables(self) -> dict:
        """Per-pit / per-site / per-event attribute arrays (built once, cached)."""
        cached = self.__dict__.get("_tables")
        if cached is None:
            pits = self.pits
            cached = {
                "pit_start": np.array([p.start for _, p in pits], np.int64),
                "pit_kind": np.array([p.kind for _, p in pits], np.int64),
                "pit_turb": np.array([p.turbidity for _, p in pits], np.float64),
                "pit_site": np.array([s for s, _ in pits], np.int64),
                "farm_start": np.array([f.start for f in self.farms], np.int64),
                "farm_bare": np.array([f.bare_days for f in self.farms], np.int64),
                "farm_grow": np.array([f.grow_days for f in self.farms], np.int64),
                "burn_sev": np.array([b.severity for b in self.burns], np.float64),
                "site_preclear": np.array([_NEVER if s.pre_clear is None else s.pre_clear
                                           for s in self.sites], np.int64),
                "site_channel": np.array([s.ground == "channel" for s in self.sites], bool),
            }
            self.__dict__["_tables"] = cached
        return cached


def _day(d: dt.date) -> int:
    return d.toordinal() - 719163


def _iso(day: int | None) -> str | None:
    if day is None:
        return None
    return dt.date.fromordinal(int(day) + 719163).isoformat()


def _logu(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _blob(rng, cx, cy, area_m2, *, elong=(1.0, 2.2), jitter=0.15, harmonics=0, n=16):
    """Irregular closed polygon of about ``area_m2`` around ``(cx, cy)``."""
    from shapely.geometry import Polygon
    from shapely.validation import make_valid

    e = rng.uniform(*elong)
    ang = rng.uniform(0, np.pi)
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1.0 + rng.uniform(-jitter, jitter, n)
    for k in range(2, 2 + harmonics):
        r += (0.3 / k) * np.cos(k * th + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.35, None)
    x, y = r * np.cos(th) * np.sqrt(e), r * np.sin(th) / np.sqrt(e)
    xr, yr = x * np.cos(ang) - y * np.sin(ang), x * np.sin(ang) + y * np.cos(ang)
    poly = Polygon(np.c_[xr, yr])
    scale = np.sqrt(area_m2 / max(poly.area, 1e-9))
    poly = Polygon(np.c_[cx + xr * scale, cy + yr * scale])
    return poly if poly.is_valid else make_valid(poly).buffer(0)


def _rect(rng, cx, cy, area_m2):
    from shapely.geometry import Polygon

    aspect = rng.uniform(1.0, 2.5)
    a = np.sqrt(area_m2 * aspect) / 2
    b = np.sqrt(area_m2 / aspect) / 2
    ang = rng.uniform(0, np.pi)
    corners = np.array([[-a, -b], [a, -b], [a, b], [-a, b]]) * rng.uniform(0.93, 1.07, (4, 2))
    c, s = np.cos(ang), np.sin(ang)
    pts = np.c_[cx + corners[:, 0] * c - corners[:, 1] * s,
                cy + corners[:, 0] * s + corners[:, 1] * c]
    return Polygon(pts)


def plan_events(grid: SceneGrid, *, cal: Calendar, land, params: SimParams, seed: int,
                zone_utm=None, woody_at=None) -> EventPlan:
    """Draw mining sites, farms and burns for the scene (deterministic in ``seed``).

    ``zone_utm`` (shapely, scene CRS), when given, is used to put mining
    sites on both sides of the zone boundary. ``woody_at(x, y)`` (forest
    fraction at a point) keeps burns and farms out of forest.
    """
    from shapely.geometry import box
    from shapely.ops import unary_union

    rng = np.random.default_rng(mix_key(seed, 201))
    scene = box(*grid.bounds)
    all_rivers = unary_union(list(land.main_rivers) + list(land.tributaries))
    sites = _plan_sites(rng, grid, cal, land, params, scene, zone_utm)
    years = sorted({d.year for d in cal.dates})
    farms = _plan_farms(rng, grid, cal, land, params, years, all_rivers, woody_at)
    burns = _plan_burns(rng, grid, cal, params, years, scene, all_rivers, woody_at)
    plan = EventPlan(sites=sites, farms=farms, burns=burns, key=mix_key(seed, 202),
                     gravel_brightness=params.gravel_brightness)
    for s in sites:
        s.growth = _growth(s, cal)
    return plan


def _plan_sites(rng, grid: SceneGrid, cal: Calendar, land, params: SimParams, scene,
                zone_utm) -> list[MiningSite]:
    """Place and schedule the mining sites (first draws of the scene's event generator)."""
    from shapely.ops import unary_union

    left, bottom, right, top = grid.bounds
    first, last = int(cal.days[0]), int(cal.days[-1])
    span = max(last - first, 1)
    rivers_main = [g for g in land.main_rivers if g.intersects(scene)]
    rivers_trib = [g for g in land.tributaries if g.intersects(scene)]
    inner = scene.buffer(-min(right - left, top - bottom) * 0.08)
    n_sites = max(params.min_mining_sites,
                  int(rng.poisson(params.mining_sites_per_100km2 * grid.area_ha / 10_000.0)))
    sides = None
    if zone_utm is not None and not zone_utm.is_empty:
        ins = zone_utm.intersection(inner).area / max(inner.area, 1)
        if 0.05 < ins < 0.95:
            sides = [True, False]
    sites: list[MiningSite] = []
    extents: list = []  # buffered maximal extents of the sites placed so far
    for i in range(n_sites):
        # the first site (one per side of a zone boundary) is always a cluster that starts
        # after the baseline period, so every scene has a growing new mine to look at
        n_core = 2 if sides else 1
        single = i >= n_core and rng.uniform() < params.single_pit_fraction
        if single:
            target = rng.uniform(0.05, 0.15) * 1e4
        else:
            target = _logu(rng, *params.site_area_ha) * 1e4
        target = min(target, params.max_site_fraction * grid.area_ha * 1e4)
        want_inside = sides[i % 2] if sides else None
        ground = "bank" if params.nongreen_site_fraction > 0 else None
        if ground and rng.uniform() < params.nongreen_site_fraction:
            ground = "channel" if rng.uniform() < 0.5 else "cleared"
        placed = None
        for _try in range(_SITE_TRIES):
            centre = _site_centre(rng, rivers_main, rivers_trib, inner, zone_utm, want_inside)
            if centre is None:
                break
            pits = _site_pits(rng, land, centre, target=target, single=single, params=params,
                              channel=ground == "channel")
            extent = unary_union([g for g, *_ in pits]).buffer(_SITE_GAP_M / 2)
            # sites never share ground: the maximal extent of a new site (all its pits,
            # buffered) must not touch an existing one, so a footprint on one site cannot
            # "detect" another (sites may still be neighbours a few tens of metres apart)
            if any(extent.intersects(e) for e in extents):
                continue
            placed = (pits, extent)
            break
        if placed is None:
            continue
        pits, extent = placed
        start, end, kept = _schedule_pits(rng, pits, core=i < n_core, params=params,
                                          first=first, last=last, span=span)
        if not kept:
            continue
        inside = None if zone_utm is None else bool(zone_utm.contains(unary_union(
            [p.geom for p in kept]).centroid))
        pre_clear = None
        if ground in ("channel", "cleared"):
            pre_clear = int(min(p.start for p in kept) - rng.uniform(60, 400))
        sites.append(MiningSite(site_id=f"mine-{len(sites) + 1:03d}", pits=kept, start=start,
                                end=end, tau=float(rng.uniform(150, 400)), inside_zone=inside,
                                ground=ground, pre_clear=pre_clear))
        extents.append(extent)
    return sites


def _schedule_pits(rng, pits: list, *, core: bool, params: SimParams, first: int, last: int,
                   span: int) -> tuple[int, int | None, list[Pit]]:
    """(start, end, pits opened by the last date) of a site: pits open outward over its growth."""
    if core:
        start = int(first + rng.uniform(*_CORE_START) * span)
    elif rng.uniform() < params.early_site_fraction:
        start = int(first + rng.uniform(*_EARLY_START) * span)  # pre-existing / early
    else:
        start = int(first + rng.uniform(*params.site_start) * span)
    grow = float(rng.uniform(*params.growth_months) * 30.44)
    order = np.argsort([p[1] for p in pits], kind="stable")
    n = len(pits)
    end = None
    if rng.uniform() < params.abandon_probability:
        end = int(start + grow + rng.uniform(30, 240))
        if end > last:
            end = None
    kept = []
    for rank, j in enumerate(order):
        geom, _, kind, turb = pits[j]
        ps = int(start + grow * (rank / max(n, 1)) ** 0.8)
        if ps <= last:
            kept.append(Pit(geom=geom, start=ps, kind=kind, turbidity=float(turb)))
    return start, end, kept


def _plan_farms(rng, grid: SceneGrid, cal: Calendar, land, params: SimParams, years: list,
                all_rivers, woody_at) -> list[Farm]:
    """Rectangular fields near villages and roads, away from rivers and forest."""
    from shapely.geometry import Point
    from shapely.ops import unary_union

    left, bottom, right, top = grid.bounds
    first, last = int(cal.days[0]), int(cal.days[-1])
    n_farms = max(params.min_farms,
                  int(rng.poisson(params.farms_per_100km2 * grid.area_ha / 10_000.0)))
    villages = unary_union(list(land.villages)) if land.villages else None
    roads = unary_union(list(land.roads)) if land.roads else None
    farms = []
    for _ in range(n_farms * 20):
        if len(farms) >= n_farms:
            break
        a = _logu(rng, *params.farm_area_ha) * 1e4
        half = np.sqrt(a)
        p = Point(rng.uniform(left + half, right - half), rng.uniform(bottom + half, top - half))
        if all_rivers.distance(p) < 120.0 + half:
            continue
        if woody_at is not None and woody_at(p.x, p.y) > 0.6:
            continue
        if villages is not None and villages.distance(p) < half:
            continue
        near = min(villages.distance(p) if villages is not None else 1e9,
                   roads.distance(p) if roads is not None else 1e9)
        if rng.uniform() > np.exp(-near / 1500.0):
            continue
        year = years[int(rng.integers(len(years)))]
        start = _day(dt.date(year, 1, 5)) + int(rng.integers(0, 95))
        if start > last - 20 or start < first - 200:
            continue
        farms.append(Farm(site_id=f"farm-{len(farms) + 1:03d}", geom=_rect(rng, p.x, p.y, a),
                          start=start, bare_days=int(rng.integers(30, 90)),
                          grow_days=int(rng.integers(60, 120))))
    return farms


def _plan_burns(rng, grid: SceneGrid, cal: Calendar, params: SimParams, years: list, scene,
                all_rivers, woody_at) -> list[Burn]:
    """Dry-season savanna fires: elongated blobs away from rivers and forest."""
    from shapely.geometry import Point

    left, bottom, right, top = grid.bounds
    first, last = int(cal.days[0]), int(cal.days[-1])
    scene_ha = grid.area_ha
    n_burns = max(params.min_burns,
                  int(rng.poisson(params.burns_per_100km2 * scene_ha / 10_000.0)))
    burns = []
    for _ in range(n_burns * 20):
        if len(burns) >= n_burns:
            break
        a = min(_logu(rng, *params.burn_area_ha) * 1e4, params.max_burn_fraction * scene_ha * 1e4)
        p = Point(rng.uniform(left, right), rng.uniform(bottom, top))
        if all_rivers.distance(p) < 100.0:
            continue
        year = years[int(rng.integers(len(years)))] + int(rng.integers(0, 2))
        start = _day(dt.date(year - 1, 12, 1)) + int(rng.integers(0, 90))
        if start > last - 5 or start < first - 20:
            continue
        geom = _blob(rng, p.x, p.y, a, elong=(1.0, 3.0), jitter=0.1, harmonics=5, n=48)
        geom = geom.intersection(scene)
        if geom.is_empty or geom.area < 0.2 * a:
            continue
        if woody_at is not None and woody_at(p.x, p.y) > 0.35:
            continue  # fires run through savanna, not forest
        burns.append(Burn(site_id=f"burn-{len(burns) + 1:03d}", geom=geom, start=start,
                          tau=float(rng.uniform(6, 15)), severity=float(rng.uniform(0.7, 1.0)),
                          lag=int(rng.integers(5, 21))))
    return burns


#: minimum gap (m) between the pits of two different mining sites
_SITE_GAP_M = 60.0
#: placement attempts per site before it is dropped
_SITE_TRIES = 40
#: start of the core (always present) sites, as a fraction of the period
_CORE_START = (0.2, 0.6)
#: start of pre-existing / early sites, as a fraction of the period
_EARLY_START = (-0.3, 0.15)


def _site_centre(rng, rivers_main, rivers_trib, inner, zone_utm, want_inside):
    """Pick a point on a river for a site centre: ``(line, s, point)`` or None."""
    for attempt in range(300):
        pool = rivers_main if (rivers_main and (rng.uniform() < 0.65 or not rivers_trib)) \
            else (rivers_trib or rivers_main)
        if not pool:
            return None
        line = pool[int(rng.integers(len(pool)))]
        s = rng.uniform(0, line.length)
        p = line.interpolate(s)
        if not inner.contains(p):
            continue
        if want_inside is not None and attempt < 250 and \
                bool(zone_utm.contains(p)) != want_inside:
            continue
        return line, s, p
    return None


def _site_pits(rng, land, centre, *, target, single, params, channel=False) -> list:
    """Pits of one site strung along its river: ``[(geom, dist to centre, kind, turb)]``.

    ``channel``: the pits are dug into the river bed and its sand bars (small enough to
    stay mostly within the channel; mostly gravel).
    """
    line, s0, p0 = centre
    hw = land.main_half_width if line in land.main_rivers else land.trib_half_width
    pits = []
    total = 0.0
    spread_l = float(np.clip(np.sqrt(target) * 2.0, 20.0, 3000.0))
    spread_w = float(np.clip(np.sqrt(target) * 0.25, 10.0, 150.0))
    while total < target * 1.2:
        a = target if single else min(_logu(rng, *params.pit_area_ha) * 1e4, target)
        if channel:
            a = min(a, np.pi * (hw + 8.0) ** 2)
        if pits:
            si = float(np.clip(s0 + rng.normal(0, spread_l / 3), 0, line.length))
        else:
            si = s0
        pa = line.interpolate(si)
        pb = line.interpolate(min(si + 5.0, line.length))
        pc = line.interpolate(max(si - 5.0, 0.0))
        tx, ty = pb.x - pc.x, pb.y - pc.y
        nrm = np.hypot(tx, ty) or 1.0
        nx, ny = -ty / nrm, tx / nrm
        off = rng.choice([-1, 1]) * (hw + np.sqrt(a / np.pi) * 0.6
                                     + abs(rng.normal(0, spread_w)))
        if pits and rng.uniform() < 0.15:
            off = rng.normal(0, hw)  # working the river bed itself
        if channel:
            off = rng.normal(0, 0.4 * hw)
        cx, cy = pa.x + nx * off, pa.y + ny * off
        kind_r = rng.uniform()
        kind = _KIND_WATER if kind_r < 0.45 else (_KIND_GRAVEL if kind_r < 0.8 else _KIND_SPOIL)
        if single:
            kind = _KIND_WATER if kind_r < 0.6 else _KIND_GRAVEL
        if channel:
            kind = _KIND_WATER if kind_r < 0.3 else (_KIND_GRAVEL if kind_r < 0.9 else _KIND_SPOIL)
        geom = _blob(rng, cx, cy, a)
        pits.append((geom, float(np.hypot(cx - p0.x, cy - p0.y)), kind,
                     rng.uniform(*params.pit_turbidity)))
        total += geom.area
        if single:
            break
    return pits


def _growth(site: MiningSite, cal: Calendar) -> list:
    from shapely.ops import unary_union

    out = []
    for d, day in zip(cal.dates, cal.days, strict=True):
        active = [p.geom for p in site.pits if p.start <= day]
        area = unary_union(active).area / 1e4 if active else 0.0
        out.append([d.isoformat(), round(float(area), 4)])
    return out


@dataclass
class EventTile:
    """Events rasterised on one tile."""

    pit_index: np.ndarray  # int32, 0 none, else 1 + index into plan.pits
    farm_index: np.ndarray
    burn_index: np.ndarray
    texture: np.ndarray  # float32 fine-scale texture in [0, 1]


def event_tile(plan: EventPlan, *, grid: SceneGrid, row0: int, col0: int,
               shape: tuple[int, int]) -> EventTile:
    """Rasterise the events on a tile (earliest pit wins where pits overlap)."""
    from rasterio.features import rasterize
    from shapely.geometry import box

    tr = grid.window_transform(row0, col0)
    res = grid.resolution
    left, top = grid.x0 + col0 * res, grid.y0 - row0 * res
    win = box(left, top - shape[0] * res, left + shape[1] * res, top)

    def burn_in(items):
        shapes = [(g, v) for g, v in items if g.intersects(win)]  # cheap bbox-level filter
        if not shapes:
            return np.zeros(shape, np.int32)
        return rasterize(shapes, out_shape=shape, transform=tr, fill=0, dtype="int32")

    pits = plan.pits
    order = sorted(range(len(pits)), key=lambda i: -pits[i][1].start)
    pit_index = burn_in([(pits[i][1].geom, i + 1) for i in order])
    farm_index = burn_in([(f.geom, i + 1) for i, f in enumerate(plan.farms)])
    burn_index = burn_in([(b.geom, i + 1) for i, b in enumerate(plan.burns)])
    tex = 0.5 + 0.5 * fbm(
        mix_key(plan.key, 1), row0=row0, col0=col0, shape=shape, scale=3.0, octaves=2, min_scale=1.0
    )
    return EventTile(pit_index, farm_index, burn_index, np.clip(tex, 0, 1).astype(np.float32))


def _mix(a, b, f):
    return a * (1 - f)[None] + b * f[None]


def apply_events(surf: np.ndarray, ev: EventTile, plan: EventPlan, *, day: int, doy: int,
                 green: np.ndarray, woody: np.ndarray, date_index: int) -> None:
    """Paint the events' surface reflectance for one date into ``surf`` (6, h, w), in place.

    ``green`` is the per-pixel greenness of the date; ``woody`` the forest fraction.
    """
    g_crop = float(greenness(np.array([doy]))[0])
    _paint_burns(surf, ev, plan, day=day, woody=woody)
    _paint_farms(surf, ev, plan, day=day, g_crop=g_crop)
    _paint_mining(surf, ev, plan, day=day, g_crop=g_crop, date_index=date_index)


def _burn_decay(plan: EventPlan, day: int) -> np.ndarray:
    """Per-burn fading of the char on ``day`` (0 before the fire, 1 until its lag ends)."""
    # transcendental functions on the per-event table only (not per pixel): their SIMD
    # code paths differ with array length, which would make output depend on tiling
    age_t = np.array([day - b.start for b in plan.burns], np.float64)
    lag = np.array([b.lag for b in plan.burns], np.float64)
    return np.where(age_t >= 0, np.exp(-np.maximum(age_t - lag, 0) / np.array(
        [b.tau for b in plan.burns])), 0.0)


def _paint_burns(surf, ev: EventTile, plan: EventPlan, *, day: int, woody) -> None:
    """Blend char into burn-scar pixels (savanna only), in place."""
    m = ev.burn_index > 0
    if not m.any():
        return
    bi = ev.burn_index[m] - 1
    decay = _burn_decay(plan, day)
    sev = plan.tables()["burn_sev"][bi]
    f = decay[bi]
    f = f * sev * (1 - woody[m]) * np.clip(0.55 + 0.6 * ev.texture[m], 0, 1)
    if (f > 0).any():
        surf[:, m] = _mix(surf[:, m], SPECTRA["char"][:, None] * np.ones_like(f)[None],
                          f.astype(np.float32))


def _farm_target(tex, age, bare, grow, g_crop: float):
    """Farm reflectance by age: ash, then bare soil, then a growing crop."""
    soil = (0.55 * SPECTRA["laterite"] + 0.45 * SPECTRA["grass_dry"])[:, None]
    soil = soil * (0.9 + 0.2 * tex)[None]
    ash_f = np.clip(1 - age / 20.0, 0, 1)
    ground = _mix(soil, SPECTRA["ash"][:, None] * np.ones_like(ash_f)[None], ash_f)
    crop = SPECTRA["crop_dry"] + g_crop * (SPECTRA["crop_wet"] - SPECTRA["crop_dry"])
    cf = np.clip((age - bare) / np.maximum(grow, 1), 0, 1)
    return _mix(ground, crop[:, None] * np.ones_like(cf)[None], cf)


def _paint_farms(surf, ev: EventTile, plan: EventPlan, *, day: int, g_crop: float) -> None:
    """Replace the pixels of farms cleared by ``day`` with their clearing/crop, in place."""
    m = ev.farm_index > 0
    if not m.any():
        return
    fi = ev.farm_index[m] - 1
    tb = plan.tables()
    starts, bare, grow = tb["farm_start"][fi], tb["farm_bare"][fi], tb["farm_grow"][fi]
    age = day - starts
    sel = age >= 0
    if sel.any():
        target = _farm_target(ev.texture[m], age, bare, grow, g_crop)
        cur = surf[:, m]
        cur[:, sel] = target[:, sel]
        surf[:, m] = cur


def _site_timelines(plan: EventPlan, day: int) -> dict[str, np.ndarray]:
    """Per-site end days and regrowth / turbidity-decay factors on ``day``."""
    ends = np.array([s.end if s.end is not None else _NEVER for s in plan.sites], np.int64)
    taus = np.array([s.tau for s in plan.sites])
    since_t = np.maximum(day - ends, 0).astype(np.float64)
    # per-site tables (see _burn_decay): bare regrowth, water regrowth, turbidity decay
    return {"ends": ends, "regrow_bare": 1 - np.exp(-since_t / taus),
            "regrow_water": 1 - np.exp(-since_t / (2 * taus)),
            "clear": np.exp(-since_t / 60.0)}


def _site_jitter(plan: EventPlan, date_index: int) -> np.ndarray:
    """Per-site turbidity jitter in [-0.5, 0.5) of the date (mining stirs the water)."""
    return np.array([((mix_key(plan.key, 7, date_index, s) >> 11) / 2.0**53) - 0.5
                     for s in range(len(plan.sites))])


def _pit_ground(tex, g_crop: float, brightness: float):
    """Spectra (6, n) of the bare gravel/laterite and the spoil heaps of pit pixels."""
    wet = float(np.clip(g_crop, 0, 1))
    bare = _mix(SPECTRA["laterite"][:, None] * np.ones_like(tex)[None],
                SPECTRA["gravel"][:, None] * np.ones_like(tex)[None], tex)
    bare = _mix(bare, SPECTRA["wet_laterite"][:, None] * np.ones_like(tex)[None],
                np.full_like(tex, 0.35 * wet))
    spoil = SPECTRA["spoil"][:, None] * (0.9 + 0.2 * tex)[None]
    if brightness != 1.0:  # domain randomisation
        bare = bare * np.float32(brightness)
        spoil = spoil * np.float32(brightness)
    return bare, spoil


def _pit_material(plan: EventPlan, tb: dict, pi, tex, *, day: int, g_crop: float,
                  date_index: int, tl: dict):
    """Spectra (6, n) of the pit pixels: muddy water, bare gravel or spoil by pit kind."""
    kind, turb, site = tb["pit_kind"][pi], tb["pit_turb"][pi], tb["pit_site"][pi]
    jit = _site_jitter(plan, date_index)[site]
    abandoned = day >= tl["ends"][site]
    t_now = np.where(abandoned, turb * tl["clear"][site],
                     np.clip(turb + 0.5 * jit, 0.05, 1.0))
    bare, spoil = _pit_ground(tex, g_crop, plan.gravel_brightness)
    water = water_spectrum(t_now).T
    return np.where(kind[None] == _KIND_WATER, water,
                    np.where(kind[None] == _KIND_GRAVEL, bare, spoil))


def _pit_background(tb: dict, pi, tex, *, day: int, tl: dict):
    """Fraction of background kept in pit pixels: sub-pixel edges plus regrowth."""
    kind, site = tb["pit_kind"][pi], tb["pit_site"][pi]
    abandoned = day >= tl["ends"][site]
    # small pits are sub-pixel mixtures at their edges: keep 10-30 % background
    keep = 0.1 + 0.2 * (1 - tex)
    regrow = np.where(abandoned, np.where(kind == _KIND_WATER, tl["regrow_water"][site],
                                          tl["regrow_bare"][site]), 0.0)
    return np.clip(keep + (1 - keep) * 0.9 * regrow, 0, 1)


def _paint_mining(surf, ev: EventTile, plan: EventPlan, *, day: int, g_crop: float,
                  date_index: int) -> None:
    """Paint pre-cleared ground and the open (or abandoned) pits of ``day``, in place."""
    m = ev.pit_index > 0
    if not m.any():
        return
    tb = plan.tables()
    pi = ev.pit_index[m] - 1
    pstart = tb["pit_start"][pi]
    _paint_pre_clear(surf, m, ev, plan, pi, pstart, day)
    sel = pstart <= day
    if not sel.any():
        return
    tex = ev.texture[m]
    tl = _site_timelines(plan, day)
    mat = _pit_material(plan, tb, pi, tex, day=day, g_crop=g_crop, date_index=date_index, tl=tl)
    bgf = _pit_background(tb, pi, tex, day=day, tl=tl)
    cur = surf[:, m]
    new = _mix(mat, cur, bgf)
    cur[:, sel] = new[:, sel]
    surf[:, m] = cur


def _paint_pre_clear(surf, m, ev, plan, pi, pstart, day) -> None:
    """Ground laid bare before its pit opens (domain randomisation's non-green sites)."""
    tb = plan.tables()
    site = tb["pit_site"][pi]
    pre = (tb["site_preclear"][site] <= day) & (pstart > day)
    if not pre.any():
        return
    tex = ev.texture[m][pre]
    soil = 0.55 * SPECTRA["laterite"] + 0.45 * SPECTRA["grass_dry"]
    sand = SPECTRA["gravel"] * np.float32(plan.gravel_brightness)
    mat = np.where(tb["site_channel"][site][pre][None], sand[:, None], soil[:, None])
    mat = (mat * (0.9 + 0.2 * tex)[None]).astype(np.float32)
    cur = surf[:, m]
    cur[:, pre] = _mix(cur[:, pre], mat, np.full(pre.sum(), 0.9, np.float32))
    surf[:, m] = cur


def truth_features(plan: EventPlan, grid: SceneGrid, *, last_day: int) -> list[dict]:
    """GeoJSON features (EPSG:4326) of all events, in the documented truth schema.

    ``end_date`` is null when the abandonment / regrowth happens after ``last_day``
    (the last image date).
    """

    def end_iso(day):
        return _iso(day) if day is not None and day <= last_day else None

    from shapely.geometry import mapping
    from shapely.ops import unary_union

    feats = []

    def feat(geom, props):
        g = grid.to_lonlat(geom)
        feats.append({"type": "Feature", "geometry": mapping(g), "properties": props})

    for s in plan.sites:
        geom = unary_union([p.geom for p in s.pits])
        props = {
            "class": "mining",
            "site_id": s.site_id,
            "start_date": _iso(min(p.start for p in s.pits)),
            "end_date": end_iso(s.end),
            "area_ha": round(geom.area / 1e4, 4),
            "n_pits": len(s.pits),
            "growth": s.growth,
        }
        if s.inside_zone is not None:
            props["inside_zone"] = s.inside_zone
        if s.ground is not None:
            props["ground"] = s.ground
        feat(geom, props)
    for f in plan.farms:
        feat(f.geom, {"class": "farm", "site_id": f.site_id, "start_date": _iso(f.start),
                      "end_date": end_iso(f.end), "area_ha": round(f.geom.area / 1e4, 4)})
    for b in plan.burns:
        feat(b.geom, {"class": "burn", "site_id": b.site_id, "start_date": _iso(b.start),
                      "end_date": end_iso(b.end), "area_ha": round(b.geom.area / 1e4, 4)})
    return feats
