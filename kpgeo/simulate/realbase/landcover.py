"""Tropical land cover of the real source: seasonal vegetation, villages, water and floods.

Each land-use parcel of the real base map takes its reflectance from real
tropical pixels (:mod:`~kpgeo.simulate.realbase.library`) and keeps the real
texture as a relative factor:

- grass (and fallow fields): a Togo savanna pixel's 2019 season, plus up to
  half of a second one in smooth patches; woodland: half savanna, half a
  Honduras pixel; forest: one of the greenest third of the Honduras pixels,
  with its seasonal swing damped to 30-50 %; wetland: a Honduras pixel;
  village: Olinda town pixels (roofs, streets) with 35 % of tree cover;
- per parcel a timing shift (sd 12 days) and amplitude (0.85-1.15), per pixel
  a smooth shift (about ±6 days), per scene a shift and amplitude (``RealParams``);
- water: clear (lake) to turbid (coastal) water, more turbid in the rains,
  varying from one water body to the next;
- seasonal floods on the real shores: a ring around every water and wetland
  parcel (40-220 m wide, varying along the shore) floods when the level, driven
  by the real ERA5 rainfall of the month and the two before, exceeds the ground's
  height; the shallow edge of the water falls dry at low water (wet sand and
  mud). Open-water cover and turbidity vary per date and from reach to reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpgeo.simulate.noise import _hash2d, fbm, mix_key, uniform
from kpgeo.simulate.realbase.basemap import (
    FOREST,
    GRASS,
    VILLAGE,
    WATER,
    WETLAND,
    WOODLAND,
    BlockLayout,
    base_window,
)
from kpgeo.simulate.realbase.library import MODELLED, Library, rainfall

__all__ = ["SceneLook", "LandTile", "land_tile", "vegetation", "water_and_floods",
           "parcel_uniform", "final_classes", "FLOOD_HALO", "water_spectrum", "flood_fraction",
           "flood_level", "is_flooded"]

#: halo (px) around a tile for the flood-ring distances
FLOOD_HALO = 32
_RING_MAX_M = 300.0


def parcel_uniform(key: int, ids: np.ndarray, k: int) -> np.ndarray:
    """Uniform [0, 1) value number ``k`` of each parcel / object id (vectorised hash)."""
    ids = np.asarray(ids, np.int64)
    h = _hash2d(mix_key(key, k), ids, np.zeros_like(ids))
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**53


@dataclass(frozen=True)
class SceneLook:
    """Scene-wide draws of the real source (per seed)."""

    key: int
    layout: BlockLayout
    pheno_shift: float
    pheno_amp: float
    flood_amp: dict
    """Peak flood level per calendar year."""
    flood_cover: np.ndarray
    """Per date: open-water cover of deep flooded ground."""
    flood_margin: np.ndarray
    """Per date: level rise over which cover ramps up (shallow margins)."""
    flood_turbidity: np.ndarray
    """Per date: turbidity of flood and river water (0 clear .. 1 turbid)."""
    ring_m: tuple[float, float]
    woodland_probability: float


def final_classes(cls: np.ndarray, parcel: np.ndarray, look: SceneLook) -> np.ndarray:
    """Land-use classes after the per-seed re-mapping (some grass parcels become woodland)."""
    wood = (cls == GRASS) & (parcel_uniform(look.key, parcel, 1) < look.woodland_probability)
    return np.where(wood, np.uint8(WOODLAND), cls)


@dataclass
class LandTile:
    """Static per-pixel land-cover fields of one tile."""

    cls: np.ndarray
    parcel: np.ndarray
    texture: np.ndarray
    savanna: tuple
    """(donor 1, donor 2, weight of 2, amplitude) for the savanna template."""
    woody: tuple
    woody_weight: np.ndarray
    shift: np.ndarray
    urban: np.ndarray | None
    flood_height: np.ndarray
    flood_var: np.ndarray
    water_turb: np.ndarray


def _donors(look, parcel, cls, lib: Library, row0, col0, shape):
    u = [parcel_uniform(look.key, parcel, k) for k in range(2, 9)]
    n_s, n_w = lib.savanna.n_donors, lib.woody.n_donors
    mix2 = np.clip(0.5 * fbm(mix_key(look.key, 11), row0=row0, col0=col0, shape=shape,
                             scale=15.0, octaves=3) + 0.25, 0, 0.5).astype(np.float32)
    sav = ((u[0] * n_s).astype(np.int64), (u[1] * n_s).astype(np.int64), mix2,
           (0.85 + 0.3 * u[2]) * look.pheno_amp)
    forest = cls == FOREST
    top = np.where(forest, 0.35 * n_w, n_w)
    wamp = np.where(forest, 0.3 + 0.2 * u[3], 0.85 + 0.3 * u[3]) * look.pheno_amp
    woody = ((u[4] * top).astype(np.int64), (u[5] * top).astype(np.int64), mix2, wamp)
    weight = np.select([forest | (cls == WETLAND), cls == WOODLAND, cls == VILLAGE],
                       [1.0, 0.5, 0.35], 0.0).astype(np.float32)
    # parcel timing: sd 12 days (sum of three uniforms: plain arithmetic, so the result
    # cannot depend on how a tile's arrays are vectorised), plus a smooth per-pixel part
    z = (u[6] + u[2] + u[0] - 1.5) * 2.0
    shift = look.pheno_shift + 12.0 * z + 6.0 * fbm(mix_key(look.key, 12), row0=row0,
                                                     col0=col0, shape=shape, scale=20.0)
    return sav, woody, weight, shift.astype(np.float32)


def _flood_fields(look, cls_halo, row0, col0, shape, res):
    """Flood height (inf = never) and reach-to-reach variation on the tile."""
    from scipy.ndimage import distance_transform_edt

    water = cls_halo == WATER
    wet = cls_halo == WETLAND
    sl = (slice(FLOOD_HALO, FLOOD_HALO + shape[0]), slice(FLOOD_HALO, FLOOD_HALO + shape[1]))
    d_out = distance_transform_edt(~(water | wet))[sl] * res if (water | wet).any() else \
        np.full(shape, np.inf)
    d_in = distance_transform_edt(water)[sl] * res if water.any() else np.zeros(shape)
    n1 = fbm(mix_key(look.key, 13), row0=row0, col0=col0, shape=shape, scale=50.0, octaves=3)
    n2 = fbm(mix_key(look.key, 14), row0=row0, col0=col0, shape=shape, scale=12.0, octaves=3)
    lo, hi = look.ring_m
    ring = lo + (hi - lo) * np.clip(0.5 + n1, 0, 1)
    h = np.where(d_out <= _RING_MAX_M, d_out / ring + 0.25 + 0.2 * n2, np.inf)
    h = np.where(wet[sl], 0.1 + 0.35 * np.clip(0.5 + n2, 0, 1), h)
    h = np.where(water[sl], -0.15 - d_in / 60.0, h)
    h = np.where(cls_halo[sl] == VILLAGE, np.inf, h)  # villages stand above the floods
    var = fbm(mix_key(look.key, 15), row0=row0, col0=col0, shape=shape, scale=60.0, octaves=2)
    return h.astype(np.float32), var.astype(np.float32)


def land_tile(look: SceneLook, lib: Library, *, row0: int, col0: int, shape,
              res: float) -> LandTile:
    """Evaluate the static land-cover fields of the tile ``(row0, col0, shape)``."""
    hh, ww = shape[0] + 2 * FLOOD_HALO, shape[1] + 2 * FLOOD_HALO
    big = base_window(look.layout, row0 - FLOOD_HALO, col0 - FLOOD_HALO, (hh, ww))
    sl = (slice(FLOOD_HALO, FLOOD_HALO + shape[0]), slice(FLOOD_HALO, FLOOD_HALO + shape[1]))
    parcel = big.parcel[sl]
    cls = final_classes(big.cls[sl], parcel, look)
    sav, woody, weight, shift = _donors(look, parcel, cls, lib, row0, col0, shape)
    urban = None
    if (cls == VILLAGE).any():
        u = uniform(mix_key(look.key, 16), row0=row0, col0=col0, shape=shape)
        urban = (u * len(lib.urban)).astype(np.int64)
    h, var = _flood_fields(look, big.cls, row0, col0, shape, res)
    turb = (parcel_uniform(look.key, parcel, 9) - 0.5).astype(np.float32) * 0.3
    tex = big.texture[(slice(None), *sl)]
    tex = np.where((cls == WATER)[None], np.clip(tex, 0.8, 1.25), tex)
    return LandTile(cls=cls, parcel=parcel, texture=tex, savanna=sav, woody=woody,
                    woody_weight=weight, shift=shift, urban=urban, flood_height=h,
                    flood_var=var, water_turb=turb)


def _template(tpl, donors, day_shifted) -> np.ndarray:
    d1, d2, w2, amp = donors
    ph = tpl.phase(day_shifted)
    a = tpl.at(d1, ph)
    b = tpl.at(d2, ph)
    mean = tpl.refl.mean(axis=1)
    v = a * (1 - w2) + b * w2
    m = np.moveaxis(mean[d1], -1, 0) * (1 - w2) + np.moveaxis(mean[d2], -1, 0) * w2
    return (m + amp.astype(np.float32) * (v - m)).astype(np.float32)


def vegetation(lt: LandTile, lib: Library, day: int) -> np.ndarray:
    """Surface reflectance (6, h, w) of the vegetation and villages on ``day`` (no events)."""
    t = day + lt.shift
    w = lt.woody_weight
    vil = lt.cls == VILLAGE
    surf = _template(lib.savanna, lt.savanna, t) * np.where(vil, 0, 1 - w)[None]
    if (w > 0).any():
        surf += _template(lib.woody, lt.woody, t) * w[None]
    if lt.urban is not None and vil.any():
        surf[:, vil] += (1 - w[vil]) * lib.urban[lt.urban[vil]].T
    return np.maximum(surf, 0.003) * lt.texture


def water_spectrum(lib: Library, turbidity) -> np.ndarray:
    """Water reflectance (6, ...) for turbidity 0 (clear) .. 1 (turbid) .. 1.5 (laterite-laden).

    Above 1 the sediment-laden water mixes in wet bare soil (up to 35 %).
    """
    t = np.clip(np.asarray(turbidity, np.float32), 0, 1.5)
    flat = t.reshape(1, -1)
    tt = np.minimum(flat, 1.0)
    w = lib.water_clear[:, None] * (1 - tt) + lib.water_turbid[:, None] * tt
    soil = (np.median(lib.bare, axis=0) * MODELLED["wet_factor"])[:, None]
    s = 0.7 * np.clip(flat - 1.0, 0, 0.5)
    return (w * (1 - s) + soil * s).reshape(6, *t.shape).astype(np.float32)


def flood_fraction(lt: LandTile, look: SceneLook, level: float, i: int) -> np.ndarray:
    """Open-water fraction (h, w) on date ``i`` at flood ``level`` (see the module docstring)."""
    ramp = np.clip((level - lt.flood_height) / np.float32(look.flood_margin[i]), 0, 1)
    cover = np.clip(look.flood_cover[i] * (1 + 0.2 * lt.flood_var), 0.3, 1.0)
    cover = np.where(lt.cls == WATER, 1.0, cover)
    canopy = np.where(lt.cls == FOREST, 0.7, 0.0)
    return (ramp * cover * (1 - canopy)).astype(np.float32)


def flood_level(look: SceneLook, day: int, year: int) -> float:
    """Water level on ``day``: -0.3 (low water) .. about 1 (ring edge) at the yearly peak."""
    return float(-0.3 + 1.3 * rainfall().flood(day) * look.flood_amp[year])


def water_and_floods(surf: np.ndarray, lt: LandTile, look: SceneLook, lib: Library, *,
                     day: int, year: int, i: int) -> None:
    """Paint rivers, lakes and seasonal floods into ``surf`` (6, h, w), in place."""
    f = flood_fraction(lt, look, flood_level(look, day, year), i)
    water = lt.cls == WATER
    turb = np.clip(look.flood_turbidity[i] + lt.water_turb - 0.15 * lt.flood_var, 0, 1.2)
    if water.any():
        # the shallow bed falls dry at low water: wet sand and mud
        bed = 0.5 * lib.sand + 0.5 * np.median(lib.bare, axis=0)
        bed = (bed * MODELLED["wet_factor"])[:, None]
        fw = f[water]
        surf[:, water] = water_spectrum(lib, turb[water]) * lt.texture[:, water] * fw \
            + bed * (1 - fw)
    land = (f > 0) & ~water
    if land.any():
        fl = f[land]
        surf[:, land] = surf[:, land] * (1 - fl) + water_spectrum(lib, turb[land]) * fl


def is_flooded(lt: LandTile, look: SceneLook, levels) -> np.ndarray:
    """Truth flood mask: open water >= 20 % on some date and < 80 % on another."""
    fmax = np.zeros(lt.cls.shape, np.float32)
    fmin = np.ones(lt.cls.shape, np.float32)
    for i, lvl in enumerate(levels):
        f = flood_fraction(lt, look, lvl, i)
        fmax = np.maximum(fmax, f)
        fmin = np.minimum(fmin, f)
    return (fmax > 0.2) & (fmin < 0.8)

