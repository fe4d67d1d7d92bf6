"""The footprint mask: confirmed pixels cleaned, grown over pending ones, ponds kept.

Small pure functions on boolean rasters, used by :func:`kpgeo.footprints.objects_from_level`
(steps 1 and 2 of :mod:`kpgeo.footprints`): a closing and the minimum mapping unit as
scikit-image's ``closing`` / ``remove_small_objects`` / ``remove_small_holes`` would
give them, hysteresis growth as ``apply_hysteresis_threshold`` would, with fewer
temporaries (these zone-wide masks are what grows with the zone), and water-filled pits
kept below the mapping unit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["footprint_mask"]


def _clean_mask(mask: np.ndarray, *, min_pixels: int, closing_radius: int) -> np.ndarray:
    """Close, then remove objects (8-connected) and fill holes (4-connected) below ``min_pixels``.

    What ``skimage.morphology`` ``closing``, ``remove_small_objects`` and
    ``remove_small_holes`` give, with ~7 instead of ~13 bytes of temporaries per
    pixel (:func:`_small_components`): these zone-wide masks are what grows with the zone.
    """
    out = _closing(mask, closing_radius) if closing_radius > 0 else mask.copy()
    if min_pixels > 1:
        out &= ~_small_components(out, min_pixels - 1, connectivity=2)
        out |= _small_components(~out, min_pixels - 1, connectivity=1)
    return out


def _closing(mask: np.ndarray, radius: int) -> np.ndarray:
    """``skimage.morphology.closing(mask, disk(radius))`` (outside the grid: ignored).

    Radius 1 (the default) is the 4-neighbour cross: shifted ORs then ANDs, ~15x faster
    than the general grey-level filters on a zone-wide mask, same result.
    """
    if radius != 1:
        from skimage import morphology

        return morphology.closing(mask, morphology.disk(radius))
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    out = grown.copy()  # erosion: a pixel off the grid never removes one on it
    out[1:] &= grown[:-1]
    out[:-1] &= grown[1:]
    out[:, 1:] &= grown[:, :-1]
    out[:, :-1] &= grown[:, 1:]
    return out


#: rows per band when counting component sizes (np.bincount copies its input to int64)
_BAND_ROWS = 256


def _small_components(mask: np.ndarray, max_size: int, *, connectivity: int) -> np.ndarray:
    """Pixels of the connected components of ``mask`` that have at most ``max_size`` pixels."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, ndimage.generate_binary_structure(2, connectivity),
                              output=np.int32)
    small = _label_sizes(labels, n) <= max_size
    small[0] = False
    return small[labels]


def _label_sizes(labels: np.ndarray, n: int, where: np.ndarray | None = None) -> np.ndarray:
    """Pixels per label 0..n (only those in ``where``), counted band by band.

    ``np.bincount`` of the whole label raster would copy it to int64.
    """
    sizes = np.zeros(n + 1, np.int64)
    for r in range(0, labels.shape[0], _BAND_ROWS):
        band = labels[r:r + _BAND_ROWS]
        band = band[where[r:r + _BAND_ROWS]] if where is not None else band.ravel()
        sizes += np.bincount(band, minlength=n + 1)
    return sizes


def _grow_into(core: np.ndarray, pending: np.ndarray) -> np.ndarray:
    """Components (4-connected) of ``core | pending`` that hold a ``core`` pixel.

    ``skimage.filters.apply_hysteresis_threshold`` of ``2 core + pending`` at 0.5
    and 1.5, with ~6 instead of ~22 bytes of temporaries per pixel (it sums
    float64 copies per label).
    """
    from scipy import ndimage

    labels, n = ndimage.label(core | pending, output=np.int32)
    hit = np.zeros(n + 1, bool)
    hit[np.unique(labels[core])] = True
    hit[0] = False
    return hit[labels]


def footprint_mask(confirmed: np.ndarray, pending: np.ndarray | None = None, *,
                   min_pixels: int, closing_radius: int = 1, pond: np.ndarray | None = None,
                   min_pond_pixels: int = 0) -> np.ndarray:
    """Footprint mask from confirmed and pending pixels (see the module docstring).

    Parameters
    ----------
    confirmed : numpy.ndarray of bool
        Pixels in a mining state.
    pending : numpy.ndarray of bool, optional
        Pixels whose mining-like run is too short to confirm yet; they join
        the confirmed objects they touch, never form one alone.
    min_pixels : int
        Minimum mapping unit in pixels (objects and holes below it are removed).
    closing_radius : int
        Radius (pixels) of the morphological closing; 0 disables it.
    pond, min_pond_pixels
        Confirmed pixels mostly under water, and the size from which a group of
        them (8-connected confirmed pixels, at least half ``pond``) is kept below
        the mapping unit: a water-filled pit
        (:data:`kpgeo.footprints.POND_MIN_AREA_HA`). 0: none.
    """
    core = _clean_mask(confirmed, min_pixels=min_pixels, closing_radius=closing_radius)
    if pending is not None and core.any():
        grown = _grow_into(core, np.asarray(pending, bool))
        core = _clean_mask(grown, min_pixels=min_pixels, closing_radius=closing_radius)
    if pond is not None and 0 < min_pond_pixels < min_pixels:
        core |= _ponds(confirmed, pond, min_pond_pixels, min_pixels)
    return core


def _ponds(confirmed: np.ndarray, pond: np.ndarray, min_size: int, max_size: int) -> np.ndarray:
    """Return the pond groups: ``min_size`` to ``max_size - 1`` confirmed pixels, half pond.

    Groups are 8-connected confirmed pixels; at least half of their pixels are ``pond``.
    """
    from scipy import ndimage

    labels, n = ndimage.label(confirmed, structure=np.ones((3, 3), int), output=np.int32)
    size = _label_sizes(labels, n)
    wet = _label_sizes(labels, n, where=pond)
    keep = (size >= min_size) & (size < max_size) & (2 * wet >= size)
    keep[0] = False
    return keep[labels]
