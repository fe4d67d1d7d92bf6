"""kpgeo.items (band names, scaling, reading, headers) and kpgeo.masks."""

from __future__ import annotations

import json

import numpy as np
import pystac
import pytest

from kpgeo.errors import (
    AssetReadError,
    ConfigError,
    CRSMismatchError,
    ImageryError,
    KpgeoError,
    NoDataError,
)
from kpgeo.items import (
    band_assets,
    band_scaling,
    inspect_asset,
    inspect_assets,
    item_from_files,
    mask_band,
    norm_items,
    read_items,
    write_items,
)
from kpgeo.masks import (
    MASK_SCHEMES,
    MaskScheme,
    clear_mask,
    fmask_clear,
    get_mask_scheme,
    qa_pixel_clear,
    register_mask_scheme,
    scl_clear,
)

# --------------------------------------------------------------------------- masks


def test_scl_clear_classes():
    codes = np.arange(12)
    clear = scl_clear(codes)
    assert clear.dtype == bool
    assert codes[clear].tolist() == [2, 4, 5, 6, 7]


def test_fmask_clear_codes():
    codes = np.array([0, 1, 2, 3, 4, 255, 7])
    assert fmask_clear(codes).tolist() == [True, True, False, False, False, False, False]


def test_qa_pixel_bits():
    # real Landsat C2 values: 21824 clear land, 21952 water, 22280 cloud, 23888 shadow, 1 fill,
    # 54596 cirrus (bit 2) + ... ; build from bits to be explicit
    clear_land = 1 << 6
    water = 1 << 7
    cloud = (1 << 3) | (1 << 1)
    shadow = 1 << 4
    snow = 1 << 5
    cirrus = 1 << 2
    fill = 1
    qa = np.array([clear_land, water, cloud, shadow, snow, cirrus, fill, 21824], dtype=np.uint16)
    assert qa_pixel_clear(qa).tolist() == [True, True, False, False, False, False, False, True]


def test_masks_stay_lazy_on_dask():
    da = pytest.importorskip("dask.array")
    arr = da.from_array(np.array([0, 4, 8, 5]), chunks=2)
    out = clear_mask(arr, "scl")
    assert hasattr(out, "dask")
    assert out.compute().tolist() == [False, True, False, True]


def test_mask_registry_plugs_new_scheme():
    scheme = MaskScheme("test_even", lambda m: (m % 2) == 0, 255, "even codes clear")
    register_mask_scheme(scheme)
    try:
        assert clear_mask(np.array([1, 2, 4]), "test_even").tolist() == [False, True, True]
        with pytest.raises(ConfigError, match="already registered"):
            register_mask_scheme(scheme)
    finally:
        MASK_SCHEMES.pop("test_even")
    with pytest.raises(ConfigError, match="scl"):
        get_mask_scheme("nope")


# --------------------------------------------------------------------------- band names


def _item(keys, props=None, raster=None, collection=None, item_id="x"):
    item = pystac.Item(
        item_id,
        {"type": "Point", "coordinates": [16, 5]},
        [16, 5, 16, 5],
        pystac.utils.str_to_datetime("2022-03-01T10:00:00Z"),
        dict(props or {}),
        collection=collection,
    )
    for key in keys:
        asset = pystac.Asset(f"/nowhere/{key}.tif")
        if raster and key in raster:
            asset.extra_fields["raster:bands"] = [raster[key]]
        item.add_asset(key, asset)
    return item


def test_band_assets_earth_search():
    keys = ["blue", "green", "red", "nir", "nir08", "swir16", "swir22", "scl", "visual", "red-jp2"]
    found = band_assets(_item(keys))
    assert found == {
        "blue": "blue",
        "green": "green",
        "red": "red",
        "nir": "nir",
        "swir16": "swir16",
        "swir22": "swir22",
        "scl": "scl",
    }
    assert mask_band(found) == "scl"


def test_band_assets_planetary_computer():
    keys = ["B01", "B02", "B03", "B04", "B05", "B08", "B8A", "B11", "B12", "SCL", "AOT", "visual"]
    found = band_assets(_item(keys))
    assert found == {
        "blue": "B02",
        "green": "B03",
        "red": "B04",
        "nir": "B08",
        "swir16": "B11",
        "swir22": "B12",
        "scl": "SCL",
    }


def test_band_assets_landsat_c2():
    keys = ["coastal", "blue", "green", "red", "nir08", "swir16", "swir22", "qa_pixel", "lwir11"]
    found = band_assets(_item(keys))
    assert found["nir"] == "nir08"
    assert found["red"] == "red"
    assert mask_band(found) == "qa_pixel"


def test_band_assets_eo_common_name_fallback():
    item = _item(["SR_B4", "SR_B5"])
    item.assets["SR_B4"].extra_fields["eo:bands"] = [{"name": "SR_B4", "common_name": "red"}]
    item.assets["SR_B5"].extra_fields["eo:bands"] = [{"name": "SR_B5", "common_name": "nir08"}]
    assert band_assets(item) == {"red": "SR_B4", "nir": "SR_B5"}


# --------------------------------------------------------------------------- scaling


def test_scaling_from_raster_bands():
    item = _item(["red"], raster={"red": {"scale": 0.0001, "offset": -0.1, "nodata": 0}})
    assert band_scaling(item, "red") == pytest.approx((1e-4, -0.1))


@pytest.mark.parametrize(
    ("props", "expected_offset"),
    [
        ({"s2:processing_baseline": "04.00"}, -0.1),
        ({"s2:processing_baseline": "05.09"}, -0.1),
        ({"s2:processing_baseline": "02.14"}, 0.0),
        ({"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": True}, 0.0),
        ({}, 0.0),
    ],
)
def test_scaling_sentinel2_fallback(props, expected_offset):
    item = _item(["B04"], props={"platform": "Sentinel-2A", **props}, collection="sentinel-2-l2a")
    scale, offset = band_scaling(item, "B04")
    assert scale == pytest.approx(1e-4)
    assert offset == pytest.approx(expected_offset)


def test_scaling_landsat_c2_fallback_and_unknown():
    item = _item(["red"], collection="landsat-c2-l2", props={"platform": "landsat-8"})
    assert band_scaling(item, "red") == pytest.approx((2.75e-5, -0.2))
    assert band_scaling(_item(["red"], props={"platform": "mystery"}), "red") is None


# --------------------------------------------------------------------------- reading


def test_read_items_resolves_relative_hrefs(s2_scene):
    items = read_items(s2_scene.items_path)
    assert [i.id for i in items] == s2_scene.ids
    raw = json.loads(s2_scene.items_path.read_text())
    assert not raw["features"][0]["assets"]["red"]["href"].startswith("/")  # written relative
    href = items[0].assets["red"].href
    assert href == str(s2_scene.files[0]["red"])


def test_read_items_file_urls_become_local_paths(s2_scene, tmp_path):
    raw = json.loads(s2_scene.items_path.read_text())
    src = s2_scene.files[0]["red"]
    spaced = tmp_path / "a dir" / "red.tif"
    spaced.parent.mkdir()
    spaced.write_bytes(src.read_bytes())
    raw["features"][0]["assets"]["red"]["href"] = spaced.as_uri()  # file:///.../a%20dir/red.tif
    raw["features"][1]["assets"]["red"]["href"] = src.as_uri()
    path = tmp_path / "elsewhere" / "items.json"
    path.parent.mkdir()
    path.write_text(json.dumps(raw))
    items = read_items(path)
    assert items[0].assets["red"].href == str(spaced)
    assert items[1].assets["red"].href == str(src)
    assert inspect_asset(items[0].assets["red"].href).shape == (30, 40)


def test_read_items_errors(tmp_path):
    with pytest.raises(AssetReadError, match="nothere.json"):
        read_items(tmp_path / "nothere.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ImageryError, match="bad.json.*not valid JSON"):
        read_items(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ImageryError, match="other.json.*not a STAC ItemCollection"):
        read_items(other)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(NoDataError, match="empty.json"):
        read_items(empty)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature"}]}))
    with pytest.raises(ImageryError, match="broken.json"):
        read_items(broken)


def test_norm_items_inputs(s2_scene):
    items = read_items(s2_scene.items_path)
    assert len(norm_items(pystac.ItemCollection(items))) == len(items)
    assert len(norm_items(items[0])) == 1
    assert norm_items([items[0].to_dict()])[0].id == items[0].id
    with pytest.raises(NoDataError):
        norm_items([])
    with pytest.raises(ImageryError, match="int"):
        norm_items([3])


# --------------------------------------------------------------------------- headers / building


def test_inspect_asset_reads_header(s2_scene):
    hdr = inspect_asset(str(s2_scene.files[0]["swir16"]))
    assert hdr.epsg == 32634
    assert hdr.shape == (15, 20)
    assert hdr.transform == tuple(s2_scene.transform20)[:6]
    assert hdr.dtype == "uint16" and hdr.nodata == 0


def test_inspect_assets_header_cache_follows_the_file(tmp_path, s2_scene):
    import shutil

    path = tmp_path / "red.tif"
    shutil.copy(s2_scene.files[0]["red"], path)
    cache: dict = {}
    first = inspect_assets([str(path)], cache=cache)[0]
    assert first == inspect_asset(str(path))
    assert cache[f"header:{path}"][4]["shape"] == (30, 40)
    assert inspect_assets([str(path)], cache=json.loads(json.dumps(cache)))[0] == first
    # the same name, other bytes (a 20 m band): the cached header is not reused
    shutil.copy(s2_scene.files[0]["swir16"], path)
    assert inspect_assets([str(path)], cache=cache)[0].shape == (15, 20)
    # a damaged file is refused even though a header of that name is cached
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(AssetReadError, match="red.tif"):
        inspect_assets([str(path)], cache=cache)


def test_inspect_asset_damaged_files(tmp_path, s2_scene):
    src = s2_scene.files[0]["red"].read_bytes()
    half = tmp_path / "half.tif"
    half.write_bytes(src[: len(src) // 2])
    junk = tmp_path / "junk.tif"
    junk.write_bytes(np.random.default_rng(1).bytes(4000))
    for path in (half, junk, tmp_path / "absent.tif"):
        with pytest.raises(AssetReadError, match=path.name) as info:
            inspect_asset(str(path), label="item 'x' band red")
        assert "item 'x' band red" in str(info.value)
        assert isinstance(info.value, OSError) and isinstance(info.value, KpgeoError)


def test_item_from_files_roundtrip(tmp_path, s2_scene):
    files = {"red": s2_scene.files[0]["red"], "scl": s2_scene.files[0]["scl"]}
    item = item_from_files(files, datetime="2021-06-01", scale=1e-4, offset=-0.1, platform="s2")
    assert item.datetime.isoformat() == "2021-06-01T00:00:00+00:00"
    red = item.assets["red"].extra_fields
    assert red["proj:epsg"] == 32634 and red["proj:shape"] == [30, 40]
    assert red["raster:bands"][0] == {
        "data_type": "uint16",
        "nodata": 0,
        "scale": 1e-4,
        "offset": -0.1,
    }
    assert "scale" not in item.assets["scl"].extra_fields["raster:bands"][0]
    lon0, lat0, lon1, lat1 = item.bbox
    assert 20.9 < lon0 < lon1 < 21.1 and 5.3 < lat0 < lat1 < 5.5  # UTM 34N, x 500000 = 21°E
    path = write_items([item], tmp_path / "sub" / "items.json")
    again = read_items(path)
    assert again[0].assets["red"].href == str(files["red"])
    assert again[0].datetime == item.datetime


def test_item_from_files_refuses_file_without_crs(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "nocrs.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="uint16",
        transform=from_origin(0, 40, 10, 10),
    ) as dst:
        dst.write(np.ones((1, 4, 4), np.uint16))
    with pytest.raises(CRSMismatchError, match="nocrs.tif"):
        item_from_files({"red": path}, datetime="2020-01-01")
