"""Acquisitions, clouds, shadows, haze and an imperfect 20 m SCL for the real source.

- **Revisit** (:func:`make_calendar`): the combined Sentinel-2A/B 5-day revisit
  from a random phase; single acquisitions are lost at random
  (``revisit_loss``) and outages of 2-8 revisits happen; ``n_dates`` are then
  kept, wet-season dates less often (like a user filtering on cloud cover).
- **Clouds** (:func:`plan_atmosphere`): the *shapes* are real s2cloudless
  cloud-probability fields of the eo-learn test patch (68 dates, 1 km), one
  partly cloudy date per acquisition, smoothed over 20 m (the 40 m blocks of the
  s2cloudless grid), enlarged 3-8 times, rotated/mirrored and mirror-tiled,
  with a little fractal detail; the date's cloud fraction (from
  the real ERA5 rainfall: wet-season dates are cloudier) sets the threshold.
  Opacity ramps over a per-date width, so clouds have thin edges. Shadows are
  the clouds displaced by the sun geometry and a cloud height of 0.8-3 km.
  Some dates carry thin cirrus (another real field, enlarged 8-20 times) or
  haze (additive path reflectance ~ lambda^-1.3, more often in the harmattan
  months December-February).
- **SCL** (:func:`observe`), computed at 20 m like Sen2Cor's: clouds are
  flagged where their brightness exceeds a per-date contrast, so thin edges
  are missed; shadows are flagged where the *flagged* clouds, projected with a
  wrong cloud height (±30 %), fall on dark ground, so shadow edges are missed
  and dark ground beside them is flagged; on some dates bright bare ground is
  flagged as cloud and dark ground (water, char) as shadow, in patches; haze
  is never flagged.

The true atmosphere is returned as 0 clear, 1 cloud, 2 shadow, 3 thin cloud or
dense haze, 255 outside the swath, like the procedural source.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from kpgeo.errors import ConfigError
from kpgeo.simulate.grid import Calendar, SceneGrid, parse_date
from kpgeo.simulate.noise import fbm, mix_key, normal, uniform
from kpgeo.simulate.realbase.library import MODELLED, WAVELENGTHS, rainfall
from kpgeo.simulate.realbase.params import RealParams
from kpgeo.simulate.realbase.sources import cloud_probability

__all__ = ["make_calendar", "RealDateAtmosphere", "plan_atmosphere", "observe",
           "TRUTH_NODATA"]

TRUTH_NODATA = 255
_SHADOW_DEPTH = np.array([0.45, 0.52, 0.6, 0.7, 0.74, 0.75], np.float32)
_CLOUD = MODELLED["cloud"]


def _day(d: dt.date) -> int:
    return d.toordinal() - 719163


def make_calendar(start, end, n_dates: int, *, lon: float, params: RealParams,
                  rng: np.random.Generator) -> Calendar:
    """Irregular Sentinel-2 acquisitions with losses and outages (see the module docstring)."""
    d0, d1 = parse_date(start, "start"), parse_date(end, "end")
    if d1 <= d0:
        raise ConfigError(f"end ({d1}) must be after start ({d0})")
    try:
        n = int(n_dates)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"n_dates must be an integer, got {n_dates!r}") from exc
    phase = int(rng.integers(0, 5))
    cands = [d0 + dt.timedelta(days=k) for k in range(phase, (d1 - d0).days + 1, 5)]
    if not 1 <= n <= len(cands):
        raise ConfigError(f"n_dates={n_dates!r} out of range: between {d0} and {d1} the 5-day "
                          f"revisit gives 1..{len(cands)} dates")
    lost = rng.uniform(size=len(cands)) < params.revisit_loss
    k = 0
    while k < len(cands):
        if rng.uniform() < 0.02:
            lost[k:k + int(rng.integers(2, 9))] = True
        k += 1
    wet = rainfall().wetness(np.array([_day(d) for d in cands]))
    weight = np.where(lost, 1e-6, 1.0 - 0.5 * wet)
    idx = np.sort(rng.choice(len(cands), size=n, replace=False, p=weight / weight.sum()))
    hours = 10.5 - lon / 15.0
    dates, times, platforms = [], [], []
    for i in idx:
        d = cands[int(i)]
        secs = int(hours * 3600) + int(rng.integers(0, 60))
        dates.append(d)
        times.append(dt.datetime(d.year, d.month, d.day) + dt.timedelta(seconds=secs))
        platforms.append("sentinel-2a" if (i + phase) % 2 == 0 else "sentinel-2b")
    return Calendar(tuple(dates), tuple(times), tuple(platforms))


@dataclass(frozen=True)
class CloudShape:
    """A real cloud-probability field placed on the scene: date, scale, offset, orientation."""

    clp_index: int
    metres_per_px: float
    offset: tuple[float, float]
    orient: int

    def sample(self, rows: np.ndarray, cols: np.ndarray, res: float) -> np.ndarray:
        """Bilinear, mirror-tiled field on the grid ``rows x cols`` (global pixel indices)."""
        f = _smooth_clp()[self.clp_index]
        if self.orient % 2:
            rows, cols = cols, rows
        u = (np.asarray(rows, np.float64) + 0.5) * res / self.metres_per_px + self.offset[0]
        v = (np.asarray(cols, np.float64) + 0.5) * res / self.metres_per_px + self.offset[1]
        if self.orient & 2:
            u = -u
        if self.orient & 4:
            v = -v

        def mirror(t, n):
            t = np.mod(t, 2 * (n - 1))
            return np.where(t > n - 1, 2 * (n - 1) - t, t)

        u, v = mirror(u, f.shape[0]), mirror(v, f.shape[1])
        i0 = np.minimum(np.floor(u).astype(np.int64), f.shape[0] - 2)
        j0 = np.minimum(np.floor(v).astype(np.int64), f.shape[1] - 2)
        wu = (u - i0).astype(np.float32)[:, None]
        wv = (v - j0).astype(np.float32)[None, :]
        a = f[np.ix_(i0, j0)] * (1 - wv) + f[np.ix_(i0, j0 + 1)] * wv
        b = f[np.ix_(i0 + 1, j0)] * (1 - wv) + f[np.ix_(i0 + 1, j0 + 1)] * wv
        out = a * (1 - wu) + b * wu
        return out.T if self.orient % 2 else out


@dataclass(frozen=True)
class RealDateAtmosphere:
    """Atmosphere and SCL behaviour of one acquisition of the real source."""

    index: int
    cloud_fraction: float
    cloud: CloudShape | None
    cloud_thr: float
    edge_width: float
    cirrus: CloudShape | None
    cirrus_thr: float
    cirrus_opacity: float
    shadow_drow: int
    shadow_dcol: int
    scl_drow: int
    scl_dcol: int
    haze: float
    gain: float
    thin_contrast: float
    false_cloud: bool
    false_shadow: bool
    swath: tuple | None
    sun_azimuth: float
    sun_elevation: float
    key: int


@lru_cache(maxsize=1)
def _smooth_clp() -> np.ndarray:
    """Smooth away the 40 m blocks of the cloud probabilities' computation grid."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(cloud_probability(), sigma=(0, 2.0, 2.0), mode="reflect")
    f.setflags(write=False)
    return f


def _partial_dates() -> np.ndarray:
    clp = cloud_probability()
    m = clp.reshape(len(clp), -1).mean(axis=1)
    return np.flatnonzero((m > 0.05) & (m < 0.95))


def _shape(rng, metres: tuple[float, float]) -> CloudShape:
    dates = _partial_dates()
    return CloudShape(clp_index=int(dates[rng.integers(len(dates))]),
                      metres_per_px=float(rng.uniform(*metres)),
                      offset=(float(rng.uniform(0, 400)), float(rng.uniform(0, 400))),
                      orient=int(rng.integers(8)))


def _threshold(shape: CloudShape, grid: SceneGrid, q: float) -> float:
    """Return the ``q`` quantile of a cloud field over the scene (at least 3 km across)."""
    ext = max(max(grid.shape), 3000.0 / grid.resolution)
    s = np.linspace(0, ext, 64)
    return float(np.quantile(shape.sample(s, s, grid.resolution), q))


def plan_atmosphere(grid: SceneGrid, *, cal: Calendar, params: RealParams,
                    seed: int) -> list[RealDateAtmosphere]:
    """Draw the atmosphere of every date (deterministic in ``seed``)."""
    rng = np.random.default_rng(mix_key(seed, 701))
    res = grid.resolution
    wet = rainfall().wetness(cal.days)
    out = []
    for i, d in enumerate(cal.dates):
        mean = params.cloud_dry + (params.cloud_wet - params.cloud_dry) * float(wet[i]) ** 0.6
        clear = rng.uniform() < params.clear_date_probability * (1.2 - float(wet[i]))
        cf = 0.0 if clear else float(np.clip(rng.beta(max(mean * 3, 0.05),
                                                      max((1 - mean) * 3, 0.05)), 0, 0.97))
        cloud = _shape(rng, (30.0, 80.0))
        thr = _threshold(cloud, grid, 1 - cf) if cf > 0.005 else np.inf
        cirrus = _shape(rng, (80.0, 200.0)) if rng.uniform() < params.cirrus_probability \
            else None
        cthr = _threshold(cirrus, grid, rng.uniform(0.3, 0.8)) if cirrus else np.inf
        harmattan = d.month in (12, 1, 2)
        p_haze = params.haze_probability[1] if harmattan else params.haze_probability[0]
        haze = float(rng.uniform(0.015, 0.07)) if rng.uniform() < p_haze else 0.0
        doy = d.timetuple().tm_yday
        az = 102.0 - 43.0 * np.sin(2 * np.pi * (doy - 80) / 365.25)
        zen = 30.0 + 8.0 * np.cos(2 * np.pi * (doy - 172) / 365.25) + rng.normal(0, 2)
        height = rng.uniform(800.0, 3000.0)
        dist = height * np.tan(np.radians(zen))
        east, north = -dist * np.sin(np.radians(az)), -dist * np.cos(np.radians(az))
        err = 1 + rng.uniform(-params.scl_height_error, params.scl_height_error)
        swath = None
        if rng.uniform() < params.swath_edge_probability:
            a = rng.uniform(0, 2 * np.pi)
            h, w = grid.shape
            proj = [np.cos(a) * c + np.sin(a) * r for r, c in ((0, 0), (0, w), (h, 0), (h, w))]
            cut = float(max(proj) - rng.uniform(0.1, 0.45) * (max(proj) - min(proj)))
            swath = (float(np.cos(a)), float(np.sin(a)), cut)
        out.append(RealDateAtmosphere(
            index=i, cloud_fraction=cf, cloud=cloud if cf > 0.005 else None,
            cloud_thr=float(thr), edge_width=float(rng.uniform(0.05, 0.2)),
            cirrus=cirrus, cirrus_thr=float(cthr),
            cirrus_opacity=float(rng.uniform(0.06, 0.25)),
            # the shadow is the cloud displaced by (east, north) metres: rows grow southwards
            shadow_drow=int(round(-north / res)), shadow_dcol=int(round(east / res)),
            scl_drow=int(round(-north * err / res)), scl_dcol=int(round(east * err / res)),
            haze=haze, gain=float(rng.uniform(0.97, 1.03)),
            thin_contrast=float(rng.uniform(*params.scl_thin_contrast)),
            false_cloud=bool(rng.uniform() < params.scl_false_cloud),
            false_shadow=bool(rng.uniform() < params.scl_false_shadow),
            swath=swath, sun_azimuth=float(az % 360), sun_elevation=float(90 - zen),
            key=mix_key(seed, 702, i),
        ))
    return out


def _opacity(atm: RealDateAtmosphere, row0: int, col0: int, shape, res: float) -> np.ndarray:
    if atm.cloud is None:
        return np.zeros(shape, np.float32)
    rows = np.arange(row0, row0 + shape[0])
    cols = np.arange(col0, col0 + shape[1])
    p = atm.cloud.sample(rows, cols, res)
    p = p + 0.08 * fbm(mix_key(atm.key, 1), row0=row0, col0=col0, shape=shape, scale=12.0,
                       octaves=3)
    return np.clip((p - atm.cloud_thr) / atm.edge_width + 0.5, 0, 1).astype(np.float32)


def _cirrus(atm, row0, col0, shape, res) -> np.ndarray:
    if atm.cirrus is None:
        return np.zeros(shape, np.float32)
    p = atm.cirrus.sample(np.arange(row0, row0 + shape[0]), np.arange(col0, col0 + shape[1]),
                          res)
    return (np.clip((p - atm.cirrus_thr) / 0.25, 0, 1) * atm.cirrus_opacity).astype(np.float32)


def _mean20(a: np.ndarray) -> np.ndarray:
    """2 x 2 block mean over the last two axes (edge-padded to even size)."""
    h, w = a.shape[-2:]
    pad = [(0, 0)] * (a.ndim - 2) + [(0, h % 2), (0, w % 2)]
    a = np.pad(a, pad, mode="edge")
    s = a.shape
    return a.reshape(*s[:-2], s[-2] // 2, 2, s[-1] // 2, 2).mean(axis=(-3, -1))


def observe(surf: np.ndarray, *, atm: RealDateAtmosphere, params: RealParams, res: float,
            row0: int, col0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observe ``surf`` (6, h, w) through the atmosphere of one date.

    Returns reflectance (6, h, w; NaN outside the swath), the true atmosphere (h, w)
    and the SCL at 20 m (ceil(h/2), ceil(w/2)). ``row0``/``col0`` must be even.
    """
    shape = surf.shape[1:]
    o = _opacity(atm, row0, col0, shape, res)
    o_sh = _opacity(atm, row0 - atm.shadow_drow, col0 - atm.shadow_dcol, shape, res)
    ci = _cirrus(atm, row0, col0, shape, res)
    shadow = np.clip(o_sh * 1.3, 0, 1) * (1 - o)
    bright = 0.88 + 0.2 * fbm(mix_key(atm.key, 2), row0=row0, col0=col0, shape=shape,
                              scale=30.0, octaves=2)
    x = surf * (1 - shadow[None] * _SHADOW_DEPTH[:, None, None])
    x = x * (1 - o)[None] + (o * bright)[None] * _CLOUD[:, None, None]
    x = x * (1 - ci)[None] + ci[None] * (0.65 * _CLOUD)[:, None, None]
    haze = np.float32(0.0)
    if atm.haze > 0:
        hz = atm.haze * (1 + 0.3 * fbm(mix_key(atm.key, 3), row0=row0, col0=col0, shape=shape,
                                       scale=300.0, octaves=2))
        haze = hz.astype(np.float32)
        x = x + haze[None] * ((WAVELENGTHS / WAVELENGTHS[0]) ** -1.3)[:, None, None]
    x = x * np.float32(atm.gain)
    noise = normal(mix_key(atm.key, 4), row0=row0, col0=col0, shape=shape, n=6)
    for b in range(6):
        x[b] += np.sqrt(params.noise_sigma**2 + (params.noise_relative * x[b]) ** 2) * noise[b]

    truth = np.zeros(shape, np.uint8)
    truth[((o > 0.02) & (o < 0.5)) | (ci > 0.04) | (haze > 0.06)] = 3
    truth[shadow > 0.35] = 2
    truth[o >= 0.5] = 1
    scl = _scl(x, o, ci, atm=atm, res=res, row0=row0, col0=col0)
    if atm.swath is not None:
        a, b, c = atm.swath
        rows = np.arange(row0, row0 + shape[0])[:, None]
        cols = np.arange(col0, col0 + shape[1])[None, :]
        out = (a * (cols + 0.5) + b * (rows + 0.5)) > c
        x[:, out] = np.nan
        truth[out] = TRUTH_NODATA
        out20 = _mean20(out.astype(np.float32)) >= 0.5
        scl[out20] = 0
    return x.astype(np.float32), truth, scl


def _scl(x, o, ci, *, atm, res, row0, col0) -> np.ndarray:
    """Sen2Cor-like scene classification at 20 m (see the module docstring)."""
    x20 = _mean20(x)
    o20, ci20 = _mean20(o), _mean20(ci)
    shape20 = o20.shape
    blue, green, red, nir, sw1 = x20[0], x20[1], x20[2], x20[3], x20[4]
    nd = (nir - red) / np.maximum(nir + red, 1e-3)
    ndwi = (green - nir) / np.maximum(green + nir, 1e-3)
    scl = np.full(shape20, 5, np.uint8)
    scl[nd > 0.35] = 4
    dark = (red + nir + sw1) < 0.2
    scl[dark] = 2
    scl[(ndwi > 0.05) & (nir < 0.12)] = 6
    r20, c20 = row0 // 2, col0 // 2
    u = uniform(mix_key(atm.key, 5), row0=r20, col0=c20, shape=shape20)
    scl[u < 0.003] = 7
    patches = fbm(mix_key(atm.key, 6), row0=r20, col0=c20, shape=shape20, scale=15.0)
    if atm.false_shadow:
        scl[(dark | (scl == 6)) & (patches > 0.1)] = 3
    # shadows of the *flagged* clouds, projected with a wrong cloud height
    o_proj = _mean20(_opacity(atm, row0 - atm.scl_drow, col0 - atm.scl_dcol, o.shape, res))
    scl[(o_proj * _CLOUD[0] > atm.thin_contrast) & (nir < 0.22)] = 3
    scl[ci20 > 0.08] = 10
    if atm.false_cloud:
        bright_bare = (blue > 0.14) & (red > 0.15) & (nd < 0.25)
        scl[bright_bare & (patches < -0.05)] = 8
    cloud = o20 * _CLOUD[0] > atm.thin_contrast
    scl[cloud] = np.where(o20[cloud] > 0.85, 9, 8)
    return scl
