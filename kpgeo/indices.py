"""Spectral indices used by the change science.

Pure, element-wise functions: they accept numpy arrays, xarray DataArrays
(numpy- or dask-backed) or scalars, never touch files, and propagate ``NaN``
(a masked/cloudy observation stays ``NaN``). Inputs are surface reflectance
(0-1, scale/offset already applied). Division by a zero sum gives ``NaN``.

Indices
-------
NDVI
    ``(nir - red) / (nir + red)``: vegetation (Tucker 1979).
MNDWI
    ``(green - swir16) / (green + swir16)``: open water (Xu 2006). When
    ``green`` is absent (Landsat red/NIR/SWIR1 stacks) :func:`water_index`
    falls back to ``(red - swir16) / (red + swir16)``: water is the only common
    surface where red reflectance exceeds SWIR1, so the sign test is kept.
BSI
    ``((swir16 + red) - (nir + blue)) / ((swir16 + red) + (nir + blue))``: bare
    soil (Rikimaru et al. 2002). Without ``blue``, ``red`` stands in for it
    (documented approximation; values are comparable in sign, not in scale).
NBR
    ``(nir - swir22) / (nir + swir22)`` (falls back to ``swir16`` when ``swir22``
    is absent): burn severity (Key & Benson 2006).
Brightness
    Mean of ``red``, ``nir`` and ``swir16``: separates dark char and shadow from
    bright gravel and soil.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["normalized_difference", "ndvi", "mndwi", "water_index", "bsi", "nbr", "brightness",
           "compute_indices"]


def normalized_difference(a: Any, b: Any) -> Any:
    """Return ``(a - b) / (a + b)``, ``NaN`` where the sum is zero.

    Parameters
    ----------
    a, b : array-like
        Reflectances (numpy, xarray or scalars), broadcastable.

    Returns
    -------
    array-like
        Same type as the inputs, float.
    """
    num = a - b
    den = a + b
    if hasattr(den, "where"):  # xarray
        return (num / den).where(den != 0)
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
    return out if out.ndim else float(out)


def ndvi(red: Any, nir: Any) -> Any:
    """Normalised Difference Vegetation Index ``(nir - red) / (nir + red)``."""
    return normalized_difference(nir, red)


def mndwi(green: Any, swir16: Any) -> Any:
    """Return MNDWI ``(green - swir16) / (green + swir16)`` (Xu 2006)."""
    return normalized_difference(green, swir16)


def water_index(*, swir16: Any, green: Any = None, red: Any = None) -> Any:
    """MNDWI, or its red/SWIR1 stand-in when ``green`` is missing.

    Parameters
    ----------
    swir16 : array-like
        SWIR1 reflectance.
    green, red : array-like, optional
        ``green`` is used when given, else ``red``.

    Raises
    ------
    kpgeo.errors.ConfigError
        Neither ``green`` nor ``red`` given.
    """
    if green is not None:
        return mndwi(green, swir16)
    if red is None:
        from kpgeo.errors import ConfigError

        raise ConfigError("water_index needs `green` or `red` besides `swir16`.")
    return normalized_difference(red, swir16)


def bsi(*, red: Any, nir: Any, swir16: Any, blue: Any = None) -> Any:
    """Bare Soil Index; ``red`` substitutes for ``blue`` when ``blue`` is None."""
    b = red if blue is None else blue
    return normalized_difference(swir16 + red, nir + b)


def nbr(*, nir: Any, swir22: Any = None, swir16: Any = None) -> Any:
    """Normalised Burn Ratio ``(nir - swir22) / (nir + swir22)`` (``swir16`` fallback)."""
    swir = swir22 if swir22 is not None else swir16
    if swir is None:
        from kpgeo.errors import ConfigError

        raise ConfigError("nbr needs `swir22` or `swir16`.")
    return normalized_difference(nir, swir)


def brightness(*, red: Any, nir: Any, swir16: Any) -> Any:
    """Mean reflectance of red, NIR and SWIR1."""
    return (red + nir + swir16) / 3.0


def compute_indices(cube: Any) -> Any:
    """Add ``ndvi, mndwi, bsi, nbr, brightness`` to a reflectance Dataset.

    Parameters
    ----------
    cube : xarray.Dataset
        Needs ``red``, ``nir`` and ``swir16``; uses ``green``, ``blue`` and
        ``swir22`` when present (see the module docstring for the fallbacks).

    Returns
    -------
    xarray.Dataset
        The five index variables (float32), lazy if the input is.

    Raises
    ------
    kpgeo.errors.MissingBandError
        ``red``, ``nir`` or ``swir16`` is missing.
    """
    import xarray as xr

    from kpgeo.errors import MissingBandError

    missing = [b for b in ("red", "nir", "swir16") if b not in cube.data_vars]
    if missing:
        raise MissingBandError(
            f"The cube lacks band(s) {missing}; change detection needs red, nir and swir16 "
            f"(has {sorted(cube.data_vars)})."
        )
    get = cube.data_vars.get
    red, nir, swir16 = cube["red"], cube["nir"], cube["swir16"]
    out = {
        "ndvi": ndvi(red, nir),
        "mndwi": water_index(swir16=swir16, green=get("green"), red=red),
        "bsi": bsi(red=red, nir=nir, swir16=swir16, blue=get("blue")),
        "nbr": nbr(nir=nir, swir22=get("swir22"), swir16=swir16),
        "brightness": brightness(red=red, nir=nir, swir16=swir16),
    }
    return xr.Dataset({k: v.astype("float32") for k, v in out.items()})
