"""Tropical surface reflectance from real imagery: seasonal templates and end members.

All spectra are in the simulator's band order (blue, green, red, nir, swir16,
swir22) and approximate surface reflectance. They come from real top-of-
atmosphere data through two simple, documented steps:

1. **Cloud screening** (monthly series only): a pixel-month is rejected when its
   blue reflectance exceeds the 20th percentile of that month by more than 0.03
   (residual cloud in the GEE mosaic), or the whole month when that percentile is
   above 0.16 (harmattan haze, cloud-filled month); rejected values are filled by
   periodic linear interpolation in time from the pixel's own clear months.
2. **Dark-object subtraction** (Chavez 1988, improved DOS): path reflectance
   ``p * (lambda / 0.49 um) ** -2`` with ``p`` = the dark-object blue reflectance
   (2nd percentile, per month for the monthly series) minus 0.02.

The Landsat 7 ETM+ scene (Olinda) is first converted from DN to TOA reflectance
with the published ETM+ low-gain LMIN/LMAX and ESUN values (Landsat 7 Science
Data Users Handbook) at an assumed solar zenith of 35 deg.

Sources (``data/SOURCE.md``): Togo 2019 (12 thirty-day steps) = savanna
templates, green-crop and dry-stubble end members; Honduras 2017-2018 (24
months) = woody templates (forest, woodland, wetland); Olinda = tropical town
(roofs, streets), bare reddish soil, bright sand and coastal (turbid) water; the
Brandenburg S2 lake = clear water. Burn char, wet soil, cloud, the least reflectance of
clear water and the infrared of turbid water are modelled (values in
:data:`MODELLED` and :func:`_turbid_infrared`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from kpgeo.simulate.realbase import sources

__all__ = ["WAVELENGTHS", "Templates", "Library", "spectral_library", "dos_path",
           "clean_series", "MODELLED", "ndvi"]

WAVELENGTHS = np.array([0.49, 0.56, 0.665, 0.842, 1.61, 2.19], np.float32)
_DARK_BLUE = 0.02
_DOS_EXPONENT = 2.0
#: ETM+ bands 1, 2, 3, 4, 5, 7: low-gain LMIN / LMAX (W m-2 sr-1 um-1) and ESUN
_ETM_LMIN = np.array([-6.2, -6.4, -5.0, -5.1, -1.0, -0.35])
_ETM_LMAX = np.array([293.7, 300.9, 234.4, 241.1, 47.57, 16.54])
_ETM_ESUN = np.array([1970.0, 1842.0, 1547.0, 1044.0, 225.7, 82.06])
_ETM_ZENITH = 35.0

#: modelled spectra (no real sample in the shipped data)
MODELLED: dict[str, np.ndarray] = {
    # fresh savanna burn char: dark, flat, SWIR2 above NIR (NBR < 0); Trigg & Flasse 2000
    "char": np.array([0.030, 0.036, 0.042, 0.060, 0.085, 0.080], np.float32),
    # moisture darkens soil, more in the SWIR (water absorption); Lobell & Asner 2002
    "wet_factor": np.array([0.70, 0.70, 0.68, 0.66, 0.48, 0.45], np.float32),
    # least reflectance of clear inland water (dark-object subtraction of the hazy winter
    # lake removes too much; Landsat 8-bit DN cannot resolve water in the infrared)
    "water_floor": np.array([0.020, 0.020, 0.010, 0.006, 0.002, 0.001], np.float32),
    # thick cloud top
    "cloud": np.array([0.48, 0.47, 0.46, 0.48, 0.36, 0.26], np.float32),
}


def ndvi(refl: np.ndarray) -> np.ndarray:
    """NDVI of reflectance with bands on the last axis."""
    nir, red = refl[..., 3], refl[..., 2]
    return (nir - red) / np.maximum(nir + red, 1e-4)


def dos_path(dark_blue: float) -> np.ndarray:
    """Path reflectance (6,) for a dark-object blue reflectance (improved DOS, lambda^-2)."""
    p = max(float(dark_blue) - _DARK_BLUE, 0.0)
    return (p * (WAVELENGTHS / WAVELENGTHS[0]) ** -_DOS_EXPONENT).astype(np.float32)


def clean_series(toa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cloud-screen, haze-correct and gap-fill a monthly series ``(pixels, steps, 6)``.

    Returns the surface-reflectance series (same shape, float32) and the fraction
    of each pixel's months that passed the screen.
    """
    blue = toa[..., 0]
    p20 = np.percentile(blue, 20, axis=0)
    bad = (blue > p20[None] + 0.03) | (p20[None] > 0.16)
    n_px, n_steps, _ = toa.shape
    path = np.full((n_steps, 6), np.nan, np.float32)
    for k in range(n_steps):
        ok = ~bad[:, k]
        if ok.sum() >= 10:
            path[k] = dos_path(np.percentile(blue[ok, k], 2))
    fill = np.nanmean(path, axis=0)
    path = np.where(np.isnan(path), fill[None], path)
    boa = np.clip(toa - path[None], 0.003, None).astype(np.float32)
    steps = np.arange(n_steps, dtype=np.float64)
    out = boa.copy()
    for i in range(n_px):
        ok = ~bad[i]
        if ok.sum() < 2:
            continue
        for b in range(6):
            out[i, ~ok, b] = np.interp(steps[~ok], steps[ok], boa[i, ok, b], period=n_steps)
    return out, (~bad).mean(axis=1)


@dataclass(frozen=True)
class Templates:
    """Seasonal reflectance trajectories of real pixels (``donors``) on uniform steps.

    ``refl[d, k]`` is donor ``d``'s spectrum at step ``k``, centred on
    ``origin + (k + 0.5) * step_days``; the sequence repeats every
    ``len(steps) * step_days`` days.
    """

    refl: np.ndarray
    origin_day: float
    """Start of step 0 (days since 1970-01-01)."""
    step_days: float
    name: str

    @property
    def n_donors(self) -> int:
        """Number of real pixels."""
        return self.refl.shape[0]

    @property
    def period(self) -> float:
        """Cycle length in days."""
        return self.refl.shape[1] * self.step_days

    def phase(self, day: np.ndarray) -> np.ndarray:
        """Fractional step index (0..n_steps) of ``day``, periodic."""
        u = (np.asarray(day, np.float64) - self.origin_day) / self.step_days - 0.5
        return np.mod(u, self.refl.shape[1])

    def at(self, donor: np.ndarray, phase: np.ndarray) -> np.ndarray:
        """Reflectance ``(6, *donor.shape)`` of donors at fractional steps ``phase``."""
        n = self.refl.shape[1]
        k0 = np.floor(phase).astype(np.int64) % n
        w = (phase - np.floor(phase)).astype(np.float32)[..., None]
        a = self.refl[donor, k0]
        b = self.refl[donor, (k0 + 1) % n]
        return np.moveaxis(a * (1 - w) + b * w, -1, 0)


@dataclass(frozen=True)
class Library:
    """Real-data spectral library of the real scene source."""

    savanna: Templates
    """Togo 2019 pixels: grass savanna, fallow and crop-mosaic seasons (annual)."""
    woody: Templates
    """Honduras 2017-2018 pixels, greenest first: forest, woodland, wetland (two years)."""
    crop: np.ndarray
    """(k, 6) green crop at its peak (Togo pixel-months, NDVI >= 90th percentile)."""
    stubble: np.ndarray
    """(k, 6) dry stubble / dry-season grass remnants (Togo pixel-months, lowest NDVI)."""
    bare: np.ndarray
    """(k, 6) bare reddish soil and clay surfaces (Olinda, NDVI < 0.15, red/blue > 1.5)."""
    urban: np.ndarray
    """(k, 6) tropical town: roofs, streets, yards (Olinda, NDVI < 0.25)."""
    sand: np.ndarray
    """(6,) bright sand / bare ground (Olinda: brightest 2 % of the land, NDVI 0..0.25)."""
    water_clear: np.ndarray
    """(6,) clear water (Brandenburg lake, darkest near-infrared)."""
    water_turbid: np.ndarray
    """(6,) sediment-laden water (Olinda coastal water, brightest green; infrared modelled)."""


def _day(d: dt.date) -> float:
    return float(d.toordinal() - 719163)


def _landsat_boa() -> np.ndarray:
    dn = sources.landsat_olinda().astype(np.float64)
    gain = (_ETM_LMAX - _ETM_LMIN) / 255.0
    rad = _ETM_LMIN[:, None, None] + gain[:, None, None] * dn
    toa = np.pi * rad / (_ETM_ESUN[:, None, None] * np.cos(np.radians(_ETM_ZENITH)))
    path = dos_path(np.percentile(toa[0], 2))
    return np.clip(toa - path[:, None, None], 0.002, None).astype(np.float32)


def _sample(pixels: np.ndarray, n: int = 400) -> np.ndarray:
    """At most ``n`` rows of ``pixels`` (k, 6), picked deterministically."""
    rng = np.random.default_rng(0)
    if len(pixels) > n:
        pixels = pixels[np.sort(rng.choice(len(pixels), size=n, replace=False))]
    return np.ascontiguousarray(pixels, np.float32)


def _olinda_members() -> dict[str, np.ndarray]:
    x = _landsat_boa()
    dn = sources.landsat_olinda()
    water = (dn[3] < 20) & (dn[4] < 20)
    nd = (x[3] - x[2]) / np.maximum(x[3] + x[2], 1e-4)
    land = ~water
    vis = x[:4].sum(0)
    return {
        "urban": _sample(x[:, land & (nd < 0.25)].T),
        "bare": _sample(x[:, land & (nd < 0.15) & (x[2] > 1.5 * x[0])].T),
        # bright sand / bare ground: the brightest 2 % of the land, without the roofs
        # and paved surfaces whose NIR falls below their red
        "sand": np.median(x[:, land & (vis > np.percentile(vis[land], 98)) & (nd >= 0)
                            & (nd < 0.25)], axis=1).astype(np.float32),
        "turbid": np.median(x[:, water & (x[1] > np.percentile(x[1][water], 80))], axis=1)
        .astype(np.float32),
    }


def _clear_water() -> np.ndarray:
    x = sources.texture_source().refl
    path = dos_path(np.percentile(x[0], 2))
    nd = (x[3] - x[2]) / np.maximum(x[3] + x[2], 1e-4)
    water = (nd < -0.05) & (x[3] < 0.09)
    nir = x[3][water]
    dark = water & (x[3] <= np.percentile(nir, 10))
    w = np.median(x[:, dark], axis=1) - path
    return np.maximum(w, MODELLED["water_floor"]).astype(np.float32)


def _turbid_infrared(w: np.ndarray) -> np.ndarray:
    """Keep the measured visible bands; NIR = 0.35 x red, SWIR 0.012 / 0.006 (modelled).

    Sediment-laden water reflects about a third of its red in the NIR (Doxaran et al.
    2002); the 8-bit Landsat DN of water are below their quantisation step there.
    """
    out = w.copy()
    out[3] = max(w[3], 0.35 * w[2])
    out[4], out[5] = max(w[4], 0.012), max(w[5], 0.006)
    return out.astype(np.float32)


@lru_cache(maxsize=1)
def spectral_library() -> Library:
    """Build (once) the library from the shipped real data."""
    togo_toa, togo_starts = sources.monthly_series("togo")
    togo, togo_ok = clean_series(togo_toa)
    togo = togo[togo_ok >= 0.5]
    hond_toa, _ = sources.monthly_series("honduras")
    hond, hond_ok = clean_series(hond_toa)
    hond = hond[hond_ok >= 0.5]
    hond = hond[np.argsort(-ndvi(hond).mean(axis=1), kind="stable")]

    pm = togo.reshape(-1, 6)
    nd = ndvi(pm)
    olinda = _olinda_members()
    return Library(
        savanna=Templates(togo, origin_day=_day(togo_starts[0]), step_days=365.25 / 12,
                          name="togo-2019"),
        woody=Templates(hond, origin_day=_day(dt.date(2017, 1, 1)), step_days=730.5 / 24,
                        name="honduras-2017-2018"),
        crop=_sample(pm[nd >= np.percentile(nd, 90)]),
        stubble=_sample(pm[nd <= np.percentile(nd, 4)]),
        bare=olinda["bare"],
        urban=olinda["urban"],
        sand=olinda["sand"],
        water_clear=_clear_water(),
        water_turbid=_turbid_infrared(olinda["turbid"]),
    )


@dataclass(frozen=True)
class Rainfall:
    """Real monthly rainfall (ERA5 of the central Togo series, 2019) as a seasonal index.

    West African monsoon climate like the Kimberley Process zones' (dry December to
    February, rains April to October), and the same place and year as
    :attr:`Library.savanna`, so vegetation, floods and clouds share one calendar.
    Repeats every year.
    """

    mm_per_day: np.ndarray
    origin_day: float
    step_days: float

    def _interp(self, values: np.ndarray, day) -> np.ndarray:
        n = len(values)
        u = (np.asarray(day, np.float64) - self.origin_day) / self.step_days - 0.5
        return np.interp(np.mod(u, n), np.arange(n), values, period=n)

    def wetness(self, day) -> np.ndarray:
        """0 (driest month) .. 1 (wettest), two-month running mean."""
        r = self.mm_per_day
        sm = (r + np.roll(r, 1)) / 2
        return self._interp((sm - sm.min()) / (sm.max() - sm.min()), day)

    def flood(self, day) -> np.ndarray:
        """0..1 flood index: rain of the month and the two before (rivers lag the rains)."""
        r = self.mm_per_day
        acc = (r + np.roll(r, 1) + np.roll(r, 2)) / 3
        return self._interp((acc - acc.min()) / (acc.max() - acc.min()), day)


@lru_cache(maxsize=1)
def rainfall() -> Rainfall:
    """Return the :class:`Rainfall` of the shipped Togo series."""
    _, starts = sources.monthly_series("togo")
    return Rainfall(sources.monthly_precipitation("togo"), origin_day=_day(starts[0]),
                    step_days=365.25 / 12)
