import numpy as np
import pytest
import xarray as xr

from kpgeo import indices
from kpgeo.errors import ConfigError, MissingBandError


def test_ndvi_known_values():
    assert indices.ndvi(0.1, 0.5) == pytest.approx(0.4 / 0.6)
    np.testing.assert_allclose(indices.ndvi(np.array([0.04, 0.2]), np.array([0.3, 0.2])),
                               [0.26 / 0.34, 0.0])


def test_zero_denominator_and_nan_give_nan():
    out = indices.ndvi(np.array([0.0, np.nan]), np.array([0.0, 0.3]))
    assert np.isnan(out).all()
    assert np.isnan(indices.ndvi(0.0, 0.0))


def test_mndwi_and_fallback():
    assert indices.mndwi(0.06, 0.008) == pytest.approx(0.052 / 0.068)
    # no green: red/SWIR1 stand-in keeps the sign (water > 0, soil < 0)
    assert indices.water_index(swir16=0.008, red=0.035) > 0
    assert indices.water_index(swir16=0.35, red=0.2) < 0
    with pytest.raises(ConfigError):
        indices.water_index(swir16=0.1)


def test_bsi_nbr_brightness():
    # gravel (blue .14 red .225 nir .285 swir16 .33)
    v = indices.bsi(red=0.225, nir=0.285, swir16=0.33, blue=0.14)
    assert v == pytest.approx((0.555 - 0.425) / (0.555 + 0.425))
    assert indices.bsi(red=0.024, nir=0.34, swir16=0.16, blue=0.022) < 0  # forest
    assert indices.nbr(nir=0.075, swir22=0.11) < 0  # char
    assert indices.nbr(nir=0.34, swir16=0.16) > 0
    assert indices.brightness(red=0.3, nir=0.3, swir16=0.3) == pytest.approx(0.3)


def test_compute_indices_xarray_lazy_and_missing_band():
    da = xr.DataArray(np.full((2, 3, 3), 0.2, "float32"), dims=("time", "y", "x"))
    ds = xr.Dataset({"red": da, "nir": da * 2, "swir16": da * 1.5}).chunk({"time": 1})
    out = indices.compute_indices(ds)
    assert set(out.data_vars) == {"ndvi", "mndwi", "bsi", "nbr", "brightness"}
    assert out["ndvi"].chunks is not None  # stays lazy
    np.testing.assert_allclose(out["ndvi"].values, 1 / 3, rtol=1e-6)
    with pytest.raises(MissingBandError, match="swir16"):
        indices.compute_indices(ds.drop_vars("swir16"))
