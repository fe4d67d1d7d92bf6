"""kpgeo.cube.load_cube on synthetic Sentinel-2 scenes written in code (see conftest.py)."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import dask
import numpy as np
import pystac
import pytest
import rasterio
import shapely
from pyproj import Transformer

from kpgeo.cube import DEFAULT_CHUNKS, check_clear, load_cube
from kpgeo.errors import (
    AssetReadError,
    ConfigError,
    CRSMismatchError,
    ImageryError,
    InvalidAOIError,
    KpgeoWarning,
    MissingBandError,
    NoDataError,
)
from kpgeo.items import read_items, write_items
from kpgeo.masks import scl_clear

TEN_M = ("blue", "green", "red", "nir")
TWENTY_M = ("swir16", "swir22")


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1)


def _up(a):
    """20 m -> 10 m nearest (pixel replication)."""
    return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)


def _expected(files, scale=1e-4, offset=-0.1, use_scl=True):
    """Expected reflectance and clear arrays of one item, from direct rasterio reads."""
    dn = {b: _read(files[b]) for b in TEN_M}
    dn.update({b: _up(_read(files[b])) for b in TWENTY_M})
    clear = np.ones_like(dn["red"], bool)
    for a in dn.values():
        clear &= a != 0
    if use_scl:
        clear &= scl_clear(_up(_read(files["scl"])))
    refl = {
        b: np.where(clear, a.astype(np.float64) * scale + offset, np.nan) for b, a in dn.items()
    }
    return refl, clear


def _utm_to_lonlat(geom, crs="EPSG:32634"):
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return shapely.transform(geom.segmentize(5), lambda xy: np.column_stack(tr.transform(*xy.T)))


class _RaiseOnCompute:
    """dask scheduler that fails the test when anything is computed."""

    calls = 0

    def __call__(self, dsk, keys, **kwargs):
        type(self).calls += 1
        raise RuntimeError("load_cube computed dask data; it must stay lazy")


# --------------------------------------------------------------------------- structure


def test_cube_is_lazy(s2_scene):
    with dask.config.set(scheduler=_RaiseOnCompute()):
        ds = load_cube(s2_scene.items_path)
        for name, var in ds.data_vars.items():
            assert dask.is_dask_collection(var.data), name
        with pytest.raises(RuntimeError, match="stay lazy"):
            ds.red.values  # the guard itself works  # noqa: B018


def test_cube_grid_crs_and_coords(s2_scene):
    ds = load_cube(s2_scene.items_path)
    gbox = ds.odc.geobox
    assert gbox.crs.epsg == 32634
    assert tuple(gbox.transform)[:6] == tuple(s2_scene.transform10)[:6]
    assert gbox.shape == s2_scene.shape10
    assert ds.x.values[0] == 500005.0 and ds.y.values[0] == 599995.0  # pixel centres
    assert "spatial_ref" in ds.coords
    assert ds.attrs["mask_scheme"] == "scl"
    assert ds.attrs["platform"] == "sentinel-2a"
    assert ds.attrs["collection"] == "sentinel-2-l2a"
    for b in TEN_M + TWENTY_M:
        assert ds[b].dims == ("time", "y", "x") and ds[b].dtype == np.float32
    assert ds.clear.dtype == bool and ds.clear.dims == ("time", "y", "x")
    assert ds.aoi_mask.dims == ("y", "x") and bool(ds.aoi_mask.all())
    # the CRS coordinate survives arithmetic
    assert (ds.nir - ds.red).odc.geobox == gbox


def test_cube_dates_grouped_by_solar_day(s2_scene):
    ds = load_cube(s2_scene.items_path)
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    expected = sorted({d.replace(tzinfo=None) for d in s2_scene.datetimes[:-1]})  # pair -> first
    assert [np.datetime64(d, "ns") for d in expected] == list(ds.time.values)
    assert len(s2_scene.ids) == 5 and ds.sizes["time"] == 4


def test_cube_default_and_custom_chunks(s2_scene):
    ds = load_cube(s2_scene.items_path)
    assert DEFAULT_CHUNKS == {"time": -1, "y": 512, "x": 512}
    assert ds.red.chunks[0] == (4,)
    small = load_cube(s2_scene.items_path, chunks={"y": 16, "x": 16, "time": 2})
    assert small.red.chunks == ((2, 2), (16, 14), (16, 16, 8))
    assert small.aoi_mask.chunks == ((16, 14), (16, 16, 8))
    np.testing.assert_array_equal(small.red.values, ds.red.values)
    with pytest.raises(ConfigError, match="chunks"):
        load_cube(s2_scene.items_path, chunks={"band": 3})


# --------------------------------------------------------------------------- values


def test_reflectance_and_masks_match_files(s2_scene):
    ds = load_cube(s2_scene.items_path).compute()
    for t in range(3):  # single-item dates
        refl, clear = _expected(s2_scene.files[t])
        np.testing.assert_array_equal(ds.clear.values[t], clear)
        for b in TEN_M + TWENTY_M:
            np.testing.assert_allclose(ds[b].values[t], refl[b], rtol=0, atol=1e-6, err_msg=b)
    # spot checks written by hand: DN -> DN * 1e-4 - 0.1
    dn = _read(s2_scene.files[0]["red"])[10, 11]
    assert ds.red.values[0, 10, 11] == pytest.approx(dn * 1e-4 - 0.1, abs=1e-6)
    c = ds.clear.values
    assert not c[:, 0, 0].any()  # nodata DN 0
    for (r, col), code in [
        ((1, 1), 8),
        ((1, 2), 9),
        ((2, 1), 3),
        ((2, 2), 10),
        ((3, 3), 11),
        ((4, 4), 1),
    ]:
        assert not c[:, 2 * r, 2 * col].any(), code
        assert np.isnan(ds.nir.values[:, 2 * r + 1, 2 * col + 1]).all(), code
    for r, col in [(5, 5), (5, 6), (6, 6)]:  # SCL 2 dark area, 6 water, 7 unclassified kept
        assert c[:, 2 * r, 2 * col].all()
    assert not c[:, 28:, :].any()  # SCL nodata row


def test_same_day_items_are_fused(s2_scene):
    ds = load_cube(s2_scene.items_path, bands=["red", "swir16"]).compute()
    west, east = s2_scene.files[3], s2_scene.files[4]
    rw, cw = _expected(west)
    re_, ce = _expected(east)
    assert list(ds.data_vars) == ["red", "swir16", "clear", "aoi_mask"]
    np.testing.assert_allclose(ds.red.values[3][:, :20], rw["red"][:, :20], atol=1e-6)
    np.testing.assert_allclose(ds.red.values[3][:, 20:], re_["red"][:, 20:], atol=1e-6)
    np.testing.assert_array_equal(ds.clear.values[3], np.hstack([cw[:, :20], ce[:, 20:]]))


def test_mask_clouds_false_keeps_clouds_but_not_nodata(s2_scene):
    ds = load_cube(s2_scene.items_path, mask_clouds=False).compute()
    assert ds.attrs["mask_scheme"] == "none"
    refl, clear = _expected(s2_scene.files[0], use_scl=False)
    np.testing.assert_array_equal(ds.clear.values[0], clear)
    assert ds.clear.values[0, 2, 2] and not ds.clear.values[0, 0, 0]
    np.testing.assert_allclose(ds.swir22.values[0], refl["swir22"], atol=1e-6)


def _as_planetary_computer(items, baseline_by_index):
    keymap = {
        "blue": "B02",
        "green": "B03",
        "red": "B04",
        "nir": "B08",
        "swir16": "B11",
        "swir22": "B12",
        "scl": "SCL",
    }
    out = []
    for i, item in enumerate(items):
        item = item.clone()
        item.collection_id = "sentinel-2-l2a"
        item.properties["platform"] = "Sentinel-2A"
        item.properties["s2:processing_baseline"] = baseline_by_index(i)
        for key, new in keymap.items():
            asset = item.assets.pop(key)
            asset.extra_fields["raster:bands"] = [{"nodata": 0}]  # PC gives no scale/offset
            item.assets[new] = asset
        out.append(item)
    return out


def test_planetary_computer_keys_and_baseline_offsets(s2_scene):
    items = read_items(s2_scene.items_path)
    pc = _as_planetary_computer(items, lambda i: "02.14" if i < 2 else "04.00")
    ds = load_cube(pc).compute()
    ref = load_cube(s2_scene.items_path).compute()
    assert list(ds.data_vars) == list(ref.data_vars)
    np.testing.assert_array_equal(ds.clear.values, ref.clear.values)
    # dates 0-1: old baseline, no offset; later dates: -0.1 like the raster:bands originals
    np.testing.assert_allclose(ds.nir.values[:2], ref.nir.values[:2] + 0.1, atol=1e-6)
    np.testing.assert_allclose(ds.nir.values[2:], ref.nir.values[2:], atol=1e-6)


# --------------------------------------------------------------------------- AOI


def test_aoi_subsets_grid_and_masks_outside(s2_scene):
    # L-shaped AOI in UTM: x 500100-500300, y 599850-599950 minus its north-east quarter
    full = shapely.box(500101, 599851, 500299, 599949)
    ne = shapely.box(500200, 599900, 500300, 600000)
    aoi = _utm_to_lonlat(full.difference(ne))
    ds = load_cube(s2_scene.items_path, aoi).compute()
    gbox = ds.odc.geobox
    assert gbox.shape == (10, 20)
    assert tuple(gbox.transform)[2] == 500100 and tuple(gbox.transform)[5] == 599950
    m = ds.aoi_mask.values
    assert m[6:, :].all() and m[:, :10].all()  # south half and west half inside
    assert not m[:5, 10:].any()  # north-east quarter outside
    assert not ds.clear.values[:, :5, 10:].any() and np.isnan(ds.red.values[:, :5, 10:]).all()
    full_ds = load_cube(s2_scene.items_path).compute()
    inner = full_ds.red.values[:, 5:15, 10:30]
    np.testing.assert_array_equal(ds.red.values[:, 6:, :], inner[:, 6:, :])


def test_huge_aoi_gives_scene_sized_cube(s2_scene):
    zone = shapely.box(20.5, 5.0, 21.5, 5.8)  # ~ 9,800 km² around a 400 m × 300 m scene
    ds = load_cube(s2_scene.items_path, SimpleNamespace(geometry=zone, id="big"))
    assert ds.odc.geobox.shape == s2_scene.shape10
    assert bool(ds.aoi_mask.all())


def test_aoi_input_forms(s2_scene, tmp_path):
    import geopandas as gpd

    box_utm = shapely.box(500101, 599801, 500199, 599899)
    gdf = gpd.GeoDataFrame(geometry=[box_utm], crs="EPSG:32634")
    path = tmp_path / "aoi.geojson"
    gdf.to_crs(4326).to_file(path)
    shapes = set()
    for aoi in (gdf, gdf.geometry, path, str(path), gdf.to_crs(4326).geometry.iloc[0]):
        ds = load_cube(s2_scene.items_path, aoi, bands=["red"])
        shapes.add((tuple(ds.odc.geobox.shape), tuple(ds.odc.geobox.transform)[:6]))
    assert shapes == {((10, 10), (10.0, 0.0, 500100.0, 0.0, -10.0, 599900.0))}


@pytest.mark.parametrize(
    ("aoi", "match"),
    [
        (shapely.box(30.0, 5.0, 30.1, 5.1), "does not overlap"),
        (
            shapely.Polygon([(20.99, 5.41), (21.01, 5.43), (21.01, 5.41), (20.99, 5.43)]),
            "make_valid",
        ),
        (shapely.Polygon(), "empty"),
        (shapely.Point(21.0, 5.42), "Polygon"),
        ("no_such_zone_file.geojson", "no_such_zone_file.geojson"),
    ],
    ids=["no-overlap", "bowtie", "empty", "point", "missing-file"],
)
def test_bad_aoi(s2_scene, aoi, match):
    with pytest.raises(InvalidAOIError, match=match):
        load_cube(s2_scene.items_path, aoi)


# --------------------------------------------------------------------------- CRS


def test_mixed_crs_items_are_reprojected(s2_scene, make_s2_scene):
    tr = Transformer.from_crs("EPSG:32634", "EPSG:32633", always_xy=True)
    x, y = tr.transform(500000.0, 600000.0)
    other = make_s2_scene(
        "utm33",
        crs="EPSG:32633",
        origin=(round(x, -1) - 100, round(y, -1) + 100),
        n_dates=1,
        same_day_pair=False,
        seed=7,
        start=dt.datetime(2022, 3, 1, 9, 50),
    )
    items = read_items(s2_scene.items_path) + read_items(other.items_path)
    ds = load_cube(items, bands=["red"]).compute()
    assert ds.odc.geobox.crs.epsg == 32634  # the majority CRS
    assert ds.sizes["time"] == 5
    last = ds.red.values[-1]
    assert np.isfinite(last).sum() > 100  # reprojected data landed on the grid
    src_dn = np.unique(_read(other.files[0]["red"]))
    dn = np.unique(np.round((last[np.isfinite(last)].astype(np.float64) + 0.1) / 1e-4))
    assert np.isin(dn, src_dn).all()  # nearest resampling: only source values
    forced = load_cube(items, bands=["red"], crs="EPSG:32633")
    assert forced.odc.geobox.crs.epsg == 32633


def test_item_without_crs(make_s2_scene):
    scene = make_s2_scene(n_dates=2, same_day_pair=False)
    path = scene.files[1]["red"]
    data = _read(path)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype,
        transform=scene.transform10,
        nodata=0,
    ) as dst:
        dst.write(data, 1)
    raw = json.loads(scene.items_path.read_text())
    for key in ("proj:epsg", "proj:code"):
        raw["features"][1]["assets"]["red"].pop(key)
    scene.items_path.write_text(json.dumps(raw))
    with pytest.raises(CRSMismatchError, match=f"{scene.ids[1]}.*red.tif.*no CRS"):
        load_cube(scene.items_path)


# --------------------------------------------------------------------------- bad inputs


def test_missing_items_file_and_empty_collection(tmp_path):
    with pytest.raises(AssetReadError, match="missing_items.json"):
        load_cube(tmp_path / "missing_items.json")
    bad = tmp_path / "garbage.json"
    bad.write_text("]]")
    with pytest.raises(ImageryError, match="garbage.json"):
        load_cube(bad)
    with pytest.raises(NoDataError):
        load_cube([])
    with pytest.raises(NoDataError):
        load_cube(pystac.ItemCollection([]))


@pytest.mark.parametrize("damage", ["missing", "truncated", "random-bytes"])
def test_damaged_asset_fails_at_load_time(make_s2_scene, damage):
    scene = make_s2_scene(n_dates=2, same_day_pair=False)
    path = scene.files[1]["nir"]
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(np.random.default_rng(3).bytes(path.stat().st_size))
    with dask.config.set(scheduler=_RaiseOnCompute()), pytest.raises(AssetReadError) as info:
        load_cube(scene.items_path)
    msg = str(info.value)
    assert str(path) in msg and scene.ids[1] in msg


def test_damage_after_load_raises_asset_error_at_compute(make_s2_scene):
    scene = make_s2_scene(n_dates=2, same_day_pair=False)
    ds = load_cube(scene.items_path)
    path = scene.files[0]["green"]
    path.write_bytes(b"II*\x00" + np.random.default_rng(5).bytes(2000))
    with pytest.raises(AssetReadError, match="green.tif"):
        ds.green.compute()


def test_missing_band_lists_present_bands(s2_scene, tmp_path):
    items = read_items(s2_scene.items_path)
    del items[2].assets["swir22"]
    with pytest.raises(
        MissingBandError, match=r"swir22.*present bands: blue, green, nir, red, scl"
    ):
        load_cube(items, bands=["red", "swir22"])
    with pytest.warns(KpgeoWarning, match=rf"swir22 \(missing from item\(s\) '{items[2].id}'\)"):
        ds = load_cube(items)  # default: the bands every item has, others dropped loudly
    assert "swir22" not in ds and "swir16" in ds
    with pytest.raises(ConfigError, match="rededge"):
        load_cube(items, bands=["rededge"])


def test_missing_mask_band(s2_scene):
    items = read_items(s2_scene.items_path)
    del items[0].assets["scl"]
    with pytest.raises(MissingBandError, match=f"{items[0].id}.*no mask band.*mask_clouds=False"):
        load_cube(items)
    assert load_cube(items, mask_clouds=False).attrs["mask_scheme"] == "none"


def test_check_clear(s2_scene, make_s2_scene):
    ds = load_cube(s2_scene.items_path)
    assert check_clear(ds) == int(ds.clear.sum())
    scene = make_s2_scene(n_dates=2, same_day_pair=False)
    for files in scene.files:
        with rasterio.open(files["scl"], "r+") as dst:
            dst.write(np.full((dst.height, dst.width), 9, np.uint8), 1)
    cloudy = load_cube(scene.items_path)  # loads fine
    assert cloudy.sizes["time"] == 2
    with pytest.raises(NoDataError, match="no clear observation"):
        check_clear(cloudy)


def test_write_items_roundtrip_loads_identically(s2_scene, tmp_path):
    items = read_items(s2_scene.items_path)
    path = write_items(items, tmp_path / "copy" / "items.json", relative=False)
    a = load_cube(path, bands=["red"]).red.values
    b = load_cube(s2_scene.items_path, bands=["red"]).red.values
    np.testing.assert_array_equal(a, b)


def test_simulator_integration(tmp_path):
    from kpgeo.simulate import simulate_scene

    scene = simulate_scene(tmp_path / "sim", shape=(64, 64), n_dates=3, seed=1)
    ds = load_cube(scene.items_path)
    assert ds.sizes["time"] == 3
    assert ds.odc.geobox.shape == (64, 64)
    assert ds.attrs["mask_scheme"] == "scl"
    check_clear(ds)


def test_blocks_are_read_one_at_a_time(s2_scene):
    """Memory follows the chunk, not the cube: few block reads are held at once."""
    from dask.callbacks import Callback

    class Held(Callback):
        peak = 0

        def _posttask(self, key, result, dsk, state, id):
            held = [k for k in state["cache"] if isinstance(k, tuple) and "kpgeo-read" in k[0]]
            self.peak = max(self.peak, len(held))

    ds = load_cube(s2_scene.items_path, chunks={"y": 16, "x": 16})
    assert ds.red.data.numblocks == (1, 2, 3)
    held = Held()
    with held, dask.config.set(scheduler="sync"):
        (ds.nir - ds.red).mean("time").compute()
    assert 1 <= held.peak <= 2


def test_block_spec_is_one_graph_key(s2_scene):
    """The item clones/footprints sit in the graph once, referenced by every read task."""
    from kpgeo._cube_read import BlockSpec

    ds = load_cube(s2_scene.items_path, chunks={"y": 16, "x": 16})
    graph = dict(ds.red.data.__dask_graph__())
    specs = [k for k, v in graph.items() if isinstance(v, BlockSpec)]
    assert len(specs) == 1
    reads = [k for k in graph if isinstance(k, tuple) and "kpgeo-read" in k[0]]
    assert len(reads) == 6
    for k in reads:
        assert not any(isinstance(a, BlockSpec) for a in _task_args(graph[k]))
    assert ds.red.isel(time=0).notnull().any().compute()


def _task_args(task):
    args = getattr(task, "args", None)
    if args is not None:  # dask >= 2025 Task objects
        return [getattr(a, "value", a) for a in args]
    return list(task[1:])


def test_region_mask_pixel_centres_and_reprojection(s2_scene):
    from odc.geo.geobox import GeoBox

    from kpgeo.cube import region_mask

    ds = load_cube(s2_scene.items_path, bands=["red"])
    gbox = ds.odc.geobox
    # a box in grid coordinates covering columns 2..4 (centres) and rows 1..2
    x0, y0 = gbox.transform * (2.0, 1.0)
    x1, y1 = gbox.transform * (5.0, 3.0)
    box = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    expect = np.zeros(gbox.shape, bool)
    expect[1:3, 2:5] = True
    np.testing.assert_array_equal(region_mask(box, gbox, crs=gbox.crs), expect)
    # the same box given in lon/lat (densified, reprojected) selects the same pixels
    tr = Transformer.from_crs(gbox.crs.proj, 4326, always_xy=True)
    ll = shapely.transform(
        box.buffer(-0.01 * gbox.resolution.x),
        lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])),
    )
    np.testing.assert_array_equal(region_mask(ll, gbox), expect)
    assert isinstance(gbox[1:3, 2:5], GeoBox)
    np.testing.assert_array_equal(region_mask(box, gbox[1:3, 2:5], crs=gbox.crs), expect[1:3, 2:5])
    assert not region_mask(shapely.Polygon(), gbox).any()


def test_aoi_mask_matches_region_mask(s2_scene):
    from kpgeo.cube import region_mask

    aoi = _utm_to_lonlat(shapely.Point(500203, 599853).buffer(95))  # crosses 8 px blocks
    ds = load_cube(s2_scene.items_path, aoi, bands=["red"], chunks={"y": 8, "x": 8})
    gbox = ds.odc.geobox
    expect = region_mask(aoi, gbox)
    assert 0 < expect.sum() < expect.size
    np.testing.assert_array_equal(ds.aoi_mask.values, expect)
    assert not ds.clear.values[:, ~expect].any()  # outside-AOI pixels never clear
