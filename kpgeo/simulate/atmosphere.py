"""Clouds, cloud shadows, haze, illumination, sensor noise and an imperfect SCL.

Per date, :func:`plan_atmosphere` draws a cloud fraction (seasonal: the wet
season is much cloudier), a fractal cloud field (thick cores with thin edges),
an optional thin-cirrus layer, the sun geometry that offsets shadows from
clouds, an illumination gain (±5 %), haze, and the ways the scene
classification (SCL) will be wrong that day. :func:`atmosphere_tile` then
evaluates it on a tile from global pixel coordinates.

The true atmosphere is returned as classes 0 clear, 1 cloud, 2 shadow,
3 thin cloud (255 outside the swath). The SCL, like Sen2Cor's, is
informative but imperfect: part of the thin cloud and of the shadows are not
flagged (in spatially coherent patches), bright bare ground (mines, villages,
roads) is sometimes flagged as cloud and dark surfaces (water, burn scars)
as cloud shadow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpgeo.simulate.grid import Calendar, SceneGrid
from kpgeo.simulate.noise import fbm, fbm_quantile, mix_key, normal, uniform
from kpgeo.simulate.presets import SimParams
from kpgeo.simulate.spectra import SPECTRA, cloudiness

__all__ = ["DateAtmosphere", "plan_atmosphere", "atmosphere_tile", "TRUTH_NODATA"]

TRUTH_NODATA = 255
_OCT = 7
_SHADOW_DEPTH = np.array([0.50, 0.56, 0.62, 0.72, 0.75, 0.75], np.float32)


@dataclass(frozen=True)
class DateAtmosphere:
    """Atmosphere and SCL behaviour of one acquisition."""

    index: int
    cloud_fraction: float
    cloud_key: int
    cloud_scale: float
    cloud_thr: float | None
    cirrus_key: int
    cirrus_thr: float | None
    cirrus_scale: float
    cirrus_opacity: float
    shadow_drow: int
    shadow_dcol: int
    gain: float
    haze: float
    miss_key: int
    miss_scale: float
    miss_thin_thr: float
    miss_shadow_thr: float
    false_cloud: bool
    false_shadow: bool
    swath: tuple | None
    sun_azimuth: float
    sun_elevation: float
    noise_key: int


def plan_atmosphere(grid: SceneGrid, *, cal: Calendar, params: SimParams, seed: int) -> list:
    """Draw the atmosphere of every date (deterministic in ``seed``)."""
    rng = np.random.default_rng(mix_key(seed, 301))
    res = grid.resolution
    out = []
    cw = cloudiness(cal.doy)
    for i, doy in enumerate(cal.doy):
        mean = params.cloud_dry + (params.cloud_wet - params.cloud_dry) * float(cw[i])
        if rng.uniform() < params.clear_date_probability or mean <= 0:
            cf = 0.0
        else:
            k = 4.0
            cf = float(rng.beta(max(mean * k, 0.05), max((1 - mean) * k, 0.05)))
            cf = float(np.clip(cf, 0.0, 0.98))
        scale = rng.uniform(1200.0, 4000.0) / res
        ck = mix_key(seed, 302, i)
        thr = None
        if cf > 0.005:
            thr = fbm_quantile(ck, shape=grid.shape, scale=scale, q=1 - cf, octaves=_OCT,
                               persistence=0.55)
        cirrus = rng.uniform() < params.cirrus_probability
        cik = mix_key(seed, 303, i)
        cscale = rng.uniform(3000.0, 8000.0) / res
        cthr = fbm_quantile(cik, shape=grid.shape, scale=cscale, q=rng.uniform(0.3, 0.85),
                            octaves=4) \
            if cirrus else None
        # sun: south-east in December, north-east in June, ~10:30 local
        az = 102.0 - 43.0 * np.sin(2 * np.pi * (doy - 80) / 365.25)
        zen = 30.0 + 8.0 * np.cos(2 * np.pi * (doy - 172) / 365.25) + rng.normal(0, 2)
        height = rng.uniform(800.0, 3000.0)
        d = height * np.tan(np.radians(zen))
        east, north = -d * np.sin(np.radians(az)), -d * np.cos(np.radians(az))
        mk = mix_key(seed, 304, i)
        miss_scale = 600.0 / res
        swath = None
        if rng.uniform() < params.swath_edge_probability:
            a = rng.uniform(0, 2 * np.pi)
            h, w = grid.shape
            proj = [np.cos(a) * c + np.sin(a) * r for r, c in ((0, 0), (0, w), (h, 0), (h, w))]
            lo, hi = min(proj), max(proj)
            cut = float(hi - rng.uniform(0.1, 0.45) * (hi - lo))
            swath = (float(np.cos(a)), float(np.sin(a)), cut)
        out.append(DateAtmosphere(
            index=i,
            cloud_fraction=cf,
            cloud_key=ck,
            cloud_scale=float(scale),
            cloud_thr=thr,
            cirrus_key=cik,
            cirrus_thr=cthr,
            cirrus_scale=float(cscale),
            cirrus_opacity=float(rng.uniform(0.08, 0.3)),
            shadow_drow=int(round(-north / res)),
            shadow_dcol=int(round(east / res)),
            gain=float(np.clip(1.0 + rng.normal(0, params.gain_sd), 0.95, 1.05)),
            haze=float(rng.uniform(0.0, 0.02)),
            miss_key=mk,
            miss_scale=float(miss_scale),
            miss_thin_thr=fbm_quantile(mk, shape=grid.shape, scale=miss_scale,
                                       q=params.scl_miss_thin),
            miss_shadow_thr=fbm_quantile(
                mix_key(mk, 1), shape=grid.shape, scale=miss_scale, q=params.scl_miss_shadow
            ),
            false_cloud=bool(rng.uniform() < params.scl_false_cloud),
            false_shadow=bool(rng.uniform() < params.scl_false_shadow),
            swath=swath,
            sun_azimuth=float(az % 360),
            sun_elevation=float(90 - zen),
            noise_key=mix_key(seed, 305, i),
        ))
    return out


def _opacity(atm: DateAtmosphere, row0: int, col0: int, shape) -> np.ndarray:
    if atm.cloud_thr is None:
        return np.zeros(shape, np.float32)
    n = fbm(atm.cloud_key, row0=row0, col0=col0, shape=shape, scale=atm.cloud_scale,
            octaves=_OCT, persistence=0.55)
    return np.clip((n - atm.cloud_thr) / 0.07, 0.0, 1.0).astype(np.float32)


def atmosphere_tile(surf: np.ndarray, *, atm: DateAtmosphere, params: SimParams, row0: int,
                    col0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observe ``surf`` (6, h, w) through the atmosphere of one date.

    Returns
    -------
    obs : (6, h, w) float32 reflectance, NaN outside the swath
    truth : (h, w) uint8 true atmosphere (0 clear, 1 cloud, 2 shadow, 3 thin, 255 no data)
    scl : (h, w) uint8 scene classification at 10 m (the writer subsamples to 20 m)
    """
    shape = surf.shape[1:]
    o = _opacity(atm, row0, col0, shape)
    o_sh = _opacity(atm, row0 - atm.shadow_drow, col0 - atm.shadow_dcol, shape)
    if atm.cirrus_thr is not None:
        nc = fbm(atm.cirrus_key, row0=row0, col0=col0, shape=shape, scale=atm.cirrus_scale,
                 octaves=4)
        ci = np.clip((nc - atm.cirrus_thr) / 0.25, 0, 1) * np.float32(atm.cirrus_opacity)
    else:
        ci = np.zeros(shape, np.float32)
    bright = 0.85 + 0.25 * fbm(mix_key(atm.cloud_key, 9), row0=row0, col0=col0, shape=shape,
                               scale=40.0, octaves=2)

    shadow = np.clip(o_sh * 1.4, 0, 1) * (1 - o)
    x = surf * (1 - shadow[None] * _SHADOW_DEPTH[:, None, None])
    x = x * (1 - o)[None] + (o * bright)[None] * SPECTRA["cloud"][:, None, None]
    x = x * (1 - ci)[None] + ci[None] * SPECTRA["cirrus"][:, None, None]
    x[0] += np.float32(atm.haze)
    x[1] += np.float32(atm.haze * 0.5)
    x *= np.float32(atm.gain)
    noise = normal(atm.noise_key, row0=row0, col0=col0, shape=shape, n=6)
    for b in range(6):
        sd = np.sqrt(params.noise_sigma**2 + (params.noise_relative * x[b]) ** 2)
        x[b] += sd * noise[b]

    truth = np.zeros(shape, np.uint8)
    thin = ((o > 0.02) & (o < 0.5)) | (ci > 0.04)
    truth[thin] = 3
    truth[shadow > 0.35] = 2
    truth[o >= 0.5] = 1

    # ----- SCL -----------------------------------------------------------
    blue, green, red, nir, sw1 = x[0], x[1], x[2], x[3], x[4]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-3)
    ndwi = (green - nir) / np.maximum(green + nir, 1e-3)
    scl = np.full(shape, 5, np.uint8)
    scl[ndvi > 0.4] = 4
    dark = (nir + sw1 + red) < 0.22
    scl[dark] = 2
    scl[(ndwi > 0.05) & (nir < 0.15)] = 6
    u = uniform(mix_key(atm.miss_key, 5), row0=row0, col0=col0, shape=shape)
    scl[u < 0.004] = 7
    m_thin = fbm(atm.miss_key, row0=row0, col0=col0, shape=shape, scale=atm.miss_scale)
    m_sh = fbm(mix_key(atm.miss_key, 1), row0=row0, col0=col0, shape=shape, scale=atm.miss_scale)
    if atm.false_shadow:
        fp = fbm(mix_key(atm.miss_key, 2), row0=row0, col0=col0, shape=shape, scale=30.0) > 0.0
        scl[(dark | (scl == 6)) & fp & (truth == 0)] = 3
    if atm.false_cloud:
        fp = fbm(mix_key(atm.miss_key, 3), row0=row0, col0=col0, shape=shape, scale=30.0) > 0.05
        bright_bare = (blue > 0.09) & (red > 0.16) & (ndvi < 0.3)
        scl[bright_bare & fp] = 8
    flag_thin = (truth == 3) & (m_thin > atm.miss_thin_thr)
    scl[flag_thin] = np.where(ci[flag_thin] > 0.04, 10, 8)
    scl[(truth == 2) & (m_sh > atm.miss_shadow_thr)] = 3
    cl = truth == 1
    scl[cl] = np.where(o[cl] > 0.9, 9, 8)

    if atm.swath is not None:
        a, b, c = atm.swath
        rows = np.arange(row0, row0 + shape[0])[:, None]
        cols = np.arange(col0, col0 + shape[1])[None, :]
        out = (a * (cols + 0.5) + b * (rows + 0.5)) > c
        x[:, out] = np.nan
        truth[out] = TRUTH_NODATA
        scl[out] = 0
    return x, truth, scl
