"""The footprint mask's lean mask operations give exactly what scikit-image's give."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import filters, morphology

from kpgeo.footprint_mask import _clean_mask, _grow_into, footprint_mask


def _reference_clean(mask, min_pixels, closing_radius):
    out = mask.copy()
    if closing_radius > 0:
        out = morphology.closing(out, morphology.disk(closing_radius))
    if min_pixels > 1:
        out = morphology.remove_small_objects(out, max_size=min_pixels - 1, connectivity=2)
        out = morphology.remove_small_holes(out, max_size=min_pixels - 1)
    return out


def _reference_mask(confirmed, pending, min_pixels, closing_radius):
    core = _reference_clean(confirmed, min_pixels, closing_radius)
    if pending is None or not core.any():
        return core
    level = core.astype("uint8") * 2 + (pending & ~core).astype("uint8")
    grown = filters.apply_hysteresis_threshold(level, 0.5, 1.5)
    return _reference_clean(grown, min_pixels, closing_radius)


def _blobs(rng, shape, density):
    """Random clumpy masks: objects and holes of many sizes, some on the edges."""
    from scipy import ndimage

    noise = ndimage.gaussian_filter(rng.random(shape), 1.5)
    return noise > np.quantile(noise, 1 - density)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("min_pixels", "closing_radius"), [(5, 1), (2, 0), (12, 2), (1, 1)])
def test_clean_mask_equals_scikit_image(seed, min_pixels, closing_radius):
    rng = np.random.default_rng(seed)
    for density in (0.02, 0.3, 0.7):
        mask = _blobs(rng, (301, 517), density)  # more rows than a band of the look-ups
        got = _clean_mask(mask, min_pixels=min_pixels, closing_radius=closing_radius)
        np.testing.assert_array_equal(got, _reference_clean(mask, min_pixels, closing_radius))


@pytest.mark.parametrize("seed", range(4))
def test_footprint_mask_equals_scikit_image(seed):
    rng = np.random.default_rng(10 + seed)
    confirmed = _blobs(rng, (300, 280), 0.05)
    pending = _blobs(rng, (300, 280), 0.2)
    got = footprint_mask(confirmed, pending, min_pixels=5, closing_radius=1)
    want = _reference_mask(confirmed, pending, 5, 1)
    assert want.sum() > confirmed.sum() // 2  # the growth step did something
    np.testing.assert_array_equal(got, want)


def test_growth_keeps_only_components_that_touch_the_core():
    core = np.zeros((5, 7), bool)
    core[1, 1] = True
    pending = np.zeros((5, 7), bool)
    pending[1, 2] = pending[2, 2] = True  # touches the core (4-connected)
    pending[3, 5] = True  # alone
    pending[0, 0] = True  # diagonal to the core only: not joined (4-connectivity)
    got = _grow_into(core, pending)
    assert got.sum() == 3 and got[1, 1] and got[1, 2] and got[2, 2]
