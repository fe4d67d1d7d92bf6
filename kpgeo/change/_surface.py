"""What one clear observation shows: a surface class from its reflectance.

Pure per-observation functions, compiled with numba (and callable from Python).
Inputs are surface reflectance (0-1); ``blue`` and ``green`` may be NaN
(Landsat red/NIR/SWIR1 stacks), then the water index is ``(red - swir16) /
(red + swir16)`` and the haze test uses SWIR1 below NIR instead of a flat
blue-to-red spectrum.

Classes (tested in this order):

``WATER``
    water index above ``water_threshold``, NIR below ``water_max_nir`` and
    NDVI at most ``bare_max_ndvi``: open, turbid (laterite-laden) or pit water,
    flooded bare ground. Clouds and thin cirrus are bright in NIR, so they are
    not water; flooded grass still green is vegetation.
``VEG``
    NDVI above ``bare_max_ndvi``.
``HAZE``
    a flat spectrum (blue >= ``max_blue_red`` x red) brighter than
    ``haze_min_brightness``; without blue, that bright with SWIR1 below NIR:
    cloud, thin cloud or haze the mask missed. Neutral.
``DARK``
    not vegetated and red below ``bare_min_red``: char and ash of a burn, a
    cloud shadow, dark wet soil. Neutral: it neither counts as mining nor ends
    a run.
``WET``
    not vegetated, not water, but a water index within ``dry_margin`` of the
    water threshold: mud left by a receding flood, a flood margin, the wet rim
    of a pit, a mixed water/gravel pixel. Neutral, like dark.
``BARE``
    bright, dry bare mineral ground: gravel, sand, laterite, spoil — and
    dry-season grass or a ploughed field, which only the time series tells
    apart.
"""

from __future__ import annotations

from kpgeo.change._jit import njit
from kpgeo.change._state import (
    P_BARE_NDVI,
    P_BARE_RED,
    P_BLUE_RED,
    P_DRY_MARGIN,
    P_HAZE_BRIGHT,
    P_W_NIR,
    P_W_THR,
)

__all__ = ["VEG", "BARE", "WATER", "DARK", "HAZE", "WET", "CLASS_NAMES",
           "normalized_difference", "surface_class", "is_mining_like", "is_neutral"]

VEG, BARE, WATER, DARK, HAZE, WET = 0, 1, 2, 3, 4, 5
CLASS_NAMES = {VEG: "vegetation", BARE: "bare", WATER: "water", DARK: "dark", HAZE: "haze",
               WET: "wet"}


@njit
def normalized_difference(a: float, b: float) -> float:
    """Return ``(a - b) / (a + b)``; NaN where the sum is 0 or an input is NaN."""
    s = a + b
    if s == 0.0 or s != s:
        return float("nan")
    return (a - b) / s


@njit(inline="always")
def surface_class(blue: float, red: float, nir: float, swir16: float, ndvi: float, wi: float,
                  p) -> int:
    """Surface class of one observation (see the module docstring)."""
    if wi > p[P_W_THR] and nir < p[P_W_NIR] and ndvi <= p[P_BARE_NDVI]:
        return WATER
    if ndvi > p[P_BARE_NDVI]:
        return VEG
    bright = (red + nir + swir16) / 3.0
    if blue == blue:
        if blue >= p[P_BLUE_RED] * red and bright >= p[P_HAZE_BRIGHT]:
            return HAZE
    elif swir16 < nir and bright >= p[P_HAZE_BRIGHT] + 0.1:
        return HAZE
    if red < p[P_BARE_RED]:
        return DARK
    if wi > p[P_W_THR] - p[P_DRY_MARGIN]:
        return WET
    return BARE


@njit
def is_mining_like(cls: int) -> bool:
    """Bare mineral ground or water: what a mining site is made of."""
    return cls == BARE or cls == WATER


@njit
def is_neutral(cls: int) -> bool:
    """Observations that say nothing sure about the ground: skipped by the decision."""
    return cls == DARK or cls == HAZE or cls == WET
