"""Surface reflectance of the land-cover and event materials, and seasonality.

Reflectances are Sentinel-2 L2A surface reflectance (0–1) in the band order
:data:`BANDS` = blue, green, red, nir, swir16, swir22. Values follow published
spectra of West/Central African savanna, forest, laterite and water:

- dense gallery forest NDVI ≈ 0.8 all year (slightly lower in the dry season);
- grass savanna NDVI ≈ 0.6 in the wet season, ≈ 0.3 in the dry season;
- bare laterite / gravel: red ≈ 0.2, nir ≈ 0.27, swir16 ≈ 0.35;
- clear water nir < 0.05; turbid (laterite-laden) water has a high red;
- burn scar: dark in all bands, swir22 high relative to nir (NBR < 0).

The climate of the Kimberley Process zones (south-west CAR, central Côte
d'Ivoire) has one dry season, about December to March: :func:`greenness`
is 0 at the heart of the dry season and 1 in the wet season.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BANDS",
    "SPECTRA",
    "greenness",
    "cloudiness",
    "flood_level",
    "water_spectrum",
    "LANDCOVER",
]

BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")


def _s(*v: float) -> np.ndarray:
    return np.array(v, np.float32)


#: material -> reflectance (6 bands). ``*_dry`` / ``*_wet`` are seasonal end members.
SPECTRA: dict[str, np.ndarray] = {
    "forest_wet": _s(0.022, 0.048, 0.024, 0.340, 0.160, 0.070),
    "forest_dry": _s(0.028, 0.055, 0.036, 0.300, 0.180, 0.085),
    "woodland_wet": _s(0.030, 0.060, 0.038, 0.320, 0.190, 0.090),
    "woodland_dry": _s(0.050, 0.078, 0.085, 0.260, 0.270, 0.160),
    "grass_wet": _s(0.040, 0.072, 0.072, 0.300, 0.230, 0.120),
    "grass_dry": _s(0.072, 0.100, 0.140, 0.260, 0.340, 0.240),
    "wetgrass_wet": _s(0.032, 0.068, 0.045, 0.330, 0.200, 0.095),
    "wetgrass_dry": _s(0.055, 0.085, 0.095, 0.280, 0.280, 0.180),
    "laterite": _s(0.085, 0.135, 0.200, 0.280, 0.350, 0.280),
    "gravel": _s(0.140, 0.180, 0.225, 0.285, 0.330, 0.270),
    "spoil": _s(0.075, 0.115, 0.170, 0.250, 0.320, 0.270),
    "wet_laterite": _s(0.060, 0.095, 0.140, 0.200, 0.230, 0.170),
    "roof": _s(0.210, 0.225, 0.240, 0.270, 0.290, 0.250),
    "compound": _s(0.090, 0.125, 0.170, 0.240, 0.310, 0.260),
    "ash": _s(0.040, 0.050, 0.060, 0.090, 0.140, 0.125),
    "char": _s(0.030, 0.038, 0.045, 0.075, 0.120, 0.110),
    "crop_wet": _s(0.035, 0.075, 0.045, 0.360, 0.220, 0.100),
    "crop_dry": _s(0.065, 0.095, 0.120, 0.250, 0.320, 0.230),
    "water_clear": _s(0.055, 0.060, 0.035, 0.020, 0.008, 0.005),
    "water_turbid": _s(0.085, 0.120, 0.160, 0.090, 0.025, 0.012),
    "cloud": _s(0.460, 0.455, 0.450, 0.470, 0.380, 0.280),
    "cirrus": _s(0.300, 0.295, 0.290, 0.300, 0.240, 0.180),
}

#: land-cover components mixed per pixel (order of the weight stack in ``landscape``)
LANDCOVER: tuple[str, ...] = ("forest", "woodland", "grass", "wetgrass", "laterite", "roof",
                              "compound")


def _seasonal(doy: np.ndarray, phase: float) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * (np.asarray(doy, np.float64) - phase) / 365.25)


def greenness(doy: np.ndarray, shift_days: np.ndarray | float = 0.0) -> np.ndarray:
    """Vegetation greenness 0 (dry-season low, mid-February) .. 1 (wet season, Jun–Oct)."""
    s = _seasonal(np.asarray(doy, np.float64) - shift_days, 45.0)
    return np.clip(1.6 * s - 0.15, 0.0, 1.0)


def cloudiness(doy: np.ndarray) -> np.ndarray:
    """Relative cloudiness 0 (late January) .. 1 (late July)."""
    return _seasonal(doy, 30.0)


def flood_level(doy: np.ndarray, amplitude: np.ndarray | float = 1.0) -> np.ndarray:
    """Floodplain water level 0 (dry, Dec–May) .. ~1 (peak flood, Sep–Oct)."""
    s = _seasonal(doy, 80.0)
    return np.clip((1.6 * s - 0.7) * amplitude, 0.0, 1.0)


def water_spectrum(turbidity: np.ndarray | float) -> np.ndarray:
    """Water reflectance for turbidity 0 (clear) .. 1 (laterite-laden); shape (..., 6)."""
    t = np.asarray(turbidity, np.float32)[..., None]
    return SPECTRA["water_clear"] * (1 - t) + SPECTRA["water_turbid"] * t
