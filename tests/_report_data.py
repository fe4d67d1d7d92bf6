"""Small synthetic inputs for the time-series / web-map / bulletin tests.

A 1.2 km square zone near Berbérati (UTM 33N), a 10 m cube grid covering the
zone and a 400 m outside ring, 8 dates in 2020 (the two Q2 dates cloudy), and
hand-made footprints with the column contract of
``kpgeo.footprints.extract_footprints``.
"""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from shapely.geometry import box

from kpgeo.zones import Zone, to_crs

UTM = "EPSG:32633"
X0, Y0 = 200_000.0, 470_000.0  # zone lower-left corner, UTM 33N (about 12.3 E, 4.25 N)
SIDE = 1200.0
RING_M = 400.0
RES = 10.0
DATES = pd.to_datetime(
    [
        "2020-01-10",
        "2020-02-20",
        "2020-04-15",
        "2020-05-25",
        "2020-07-10",
        "2020-08-20",
        "2020-10-05",
        "2020-11-25",
    ]
)
CLOUDY = {2, 3}  # indices of the cloudy (Q2) dates
CLOUDY_CLEAR_COLS = 70  # cloudy dates: only columns 0-69 clear (zone spans 40-159)
EVIL = "<img src=x onerror=alert(1)>"


def make_zone(name: str = "Zone Berbérati-test", zid: str = "test-zone") -> Zone:
    utm_box = box(X0, Y0, X0 + SIDE, Y0 + SIDE)
    return Zone(id=zid, name=name, geometry=to_crs(utm_box, UTM, "EPSG:4326"), country="CAF")


def make_cube(*, chunks: int = 100, poison_red: bool = True) -> xr.Dataset:
    """Lazy cube: ``clear`` (time, y, x) with cloudy Q2 dates; ``red`` raises if computed."""
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_coords

    margin = 400.0
    gbox = GeoBox.from_bbox(
        (X0 - margin, Y0 - margin, X0 + SIDE + margin, Y0 + SIDE + margin), crs=UTM, resolution=RES
    )
    ny, nx = gbox.shape
    clear = np.ones((len(DATES), ny, nx), dtype=bool)
    for i in CLOUDY:
        clear[i, :, CLOUDY_CLEAR_COLS:] = False
    coords = xr_coords(gbox, crs_coord_name="spatial_ref")
    clear_da = da.from_array(clear, chunks=(-1, chunks, chunks))

    def _boom(block):
        raise RuntimeError("reflectance was computed")

    red = da.zeros((len(DATES), ny, nx), dtype="float32", chunks=(-1, chunks, chunks))
    if poison_red:
        red = red.map_blocks(_boom, dtype="float32")
    ds = xr.Dataset(
        {
            "clear": (("time", "y", "x"), clear_da),
            "red": (("time", "y", "x"), red),
        },
        coords={"time": DATES.values, **coords},
    )
    return ds


def make_rgb_cube() -> xr.Dataset:
    """Small cube with real (computable) reflectance for composites."""
    ds = make_cube(poison_red=False)
    rng = np.random.default_rng(0)
    shape = ds["clear"].shape
    for band, base in (("red", 0.12), ("green", 0.10), ("blue", 0.07)):
        arr = (base + 0.02 * rng.standard_normal(shape)).astype("float32")
        # a bright bare pit appearing in the second half of the year
        arr[4:, 60:90, 60:90] = 0.3
        ds[band] = (("time", "y", "x"), da.from_array(arr, chunks=(-1, 100, 100)))
        ds[band] = ds[band].where(ds["clear"])
    return ds


def _fp(geom, zone, first, last, state, inside, dist, water=0.0, conf=0.9):
    return {
        "zone": zone,
        "geometry": geom,
        "first_detected": pd.Timestamp(first),
        "last_active": pd.Timestamp(last),
        "state": state,
        "confidence": conf,
        "water_fraction": water,
        "mean_ndvi": 0.1,
        "mean_mndwi": -0.2,
        "mean_bsi": 0.2,
        "distance_to_boundary_m": dist,
        "inside_zone": inside,
    }


def make_footprints(zone_id: str = "test-zone", *, crs: str = UTM) -> gpd.GeoDataFrame:
    """Nine footprints: seven inside (two overlapping), two in the ring."""
    b = lambda x, y, w, h: box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)  # noqa: E731
    rows = [
        _fp(b(100, 100, 100, 100), zone_id, "2020-01-10", "2020-11-25", "active", True, -100),
        _fp(b(300, 100, 50, 80), zone_id, "2020-02-20", "2020-05-25", "inactive", True, -100),
        _fp(b(500, 500, 120, 60), zone_id, "2020-07-10", "2020-11-25", "active", True, -500, 0.4),
        _fp(b(540, 520, 120, 60), zone_id, "2020-10-05", "2020-11-25", "new", True, -520, 0.0),
        _fp(b(800, 900, 70, 70), zone_id, "2020-10-05", "2020-11-25", "new", True, -230),
        _fp(b(900, 200, 60, 90), zone_id, "2020-11-25", "2020-11-25", "new", True, -200),
        _fp(b(150, 800, 40, 40), zone_id, "2020-05-25", "2020-08-20", "revegetating", True, -150),
        _fp(b(-250, 300, 100, 100), zone_id, "2020-07-10", "2020-11-25", "active", False, 150),
        _fp(b(1300, 1000, 60, 60), zone_id, "2020-10-05", "2020-11-25", "new", False, 100),
    ]
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=UTM)
    gdf.insert(0, "id", [f"fp-{i:03d}" for i in range(len(gdf))])
    gdf["area_ha"] = gdf.geometry.area / 10_000.0
    return gdf.to_crs(crs)
