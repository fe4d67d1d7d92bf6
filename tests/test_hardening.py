"""Bad input that used to crash or mislead (issue 8, items 1, 5, 6, 8, 9).

Every case gets a one-line error naming the file/item/asset/field, never a
traceback from deep inside a library and never a silently wrong result.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner

from kpgeo.cli import main
from kpgeo.cube import load_cube
from kpgeo.errors import ImageryError, InvalidAOIError, KpgeoWarning
from kpgeo.zones import Zone, load_aoi

# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A tiny synthetic S2 scene (read-only here; tests copy its items.json)."""
    from conftest import build_s2_scene

    return build_s2_scene(tmp_path_factory.mktemp("scene"), same_day_pair=False)


def _items_dict(scene) -> dict:
    """The scene's ItemCollection with absolute hrefs, so a copy can live anywhere."""
    data = json.loads(scene.items_path.read_text())
    for feature in data["features"]:
        for asset in feature["assets"].values():
            asset["href"] = str((scene.root / asset["href"]).resolve())
    return data


def _write(data: dict, path: Path) -> Path:
    path.write_text(json.dumps(data))
    return path


def _aoi_file(scene, path: Path, **props) -> Path:
    bbox = _items_dict(scene)["features"][0]["bbox"]
    geom = shapely.box(*bbox).buffer(-0.0001)
    gpd.GeoDataFrame([props] if props else None, geometry=[geom], crs=4326).to_file(path)
    return path


def _run_config(tmp_path: Path, entries: list[tuple[Path, Path]]) -> Path:
    text = "[run]\nring_width_m = 100\n"
    for aoi, items in entries:
        text += f'[[zones]]\naoi = "{aoi}"\nitems = "{items}"\n'
    cfg = tmp_path / "run.toml"
    cfg.write_text(text)
    return cfg


# --------------------------------------------------------------------------- 1. zone ids


@pytest.mark.parametrize(
    "bad_id", ["../../../escaped", "/tmp/absolute", "a/b", "..", "with space", "x" * 81]
)
def test_unsafe_zone_id_is_refused_naming_file_and_id(scene, tmp_path, bad_id):
    aoi = _aoi_file(scene, tmp_path / "site.geojson", id=bad_id, name="Site")
    with pytest.raises(InvalidAOIError, match="cannot be used as a folder name") as info:
        load_aoi(aoi)
    assert "site.geojson" in str(info.value) and repr(bad_id) in str(info.value)


def test_run_with_traversal_id_writes_nothing_outside_out(scene, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    aoi = _aoi_file(scene, work / "evil.geojson", id="../../escaped", name="Evil")
    cfg = _run_config(work, [(aoi, scene.items_path)])
    out = work / "a" / "b" / "out"
    res = CliRunner().invoke(main, ["run", str(cfg), "--out", str(out), "--no-report"])
    assert res.exit_code == 1
    assert "folder name" in res.output and "Traceback" not in res.output
    assert not list(tmp_path.rglob("escaped")), "a zone folder was created outside --out"
    assert not (work / "a").exists()


def test_derived_zone_ids_are_slugified(scene, tmp_path):
    from kpgeo.zones import slugify

    aoi = _aoi_file(scene, tmp_path / "My Site (v2).geojson")
    assert load_aoi(aoi).id == "my-site-v2"
    named = _aoi_file(scene, tmp_path / "n.geojson", name="Séguéla nord / 2")
    assert load_aoi(named).id == "seguela-nord-2"
    assert load_aoi(shapely.box(21, 5.4, 21.01, 5.41), name="../up").id == "up"
    assert slugify("///") == "aoi"


def test_zone_dataclass_refuses_unsafe_id():
    with pytest.raises(InvalidAOIError, match="folder name"):
        Zone(id="../x", name="x", geometry=shapely.box(0, 0, 1, 1))


# --------------------------------------------------------------------------- 9. AOI / items paths


def test_null_geometry_is_named_as_such(scene, tmp_path):
    path = _aoi_file(scene, tmp_path / "aoi.geojson", id="site")
    data = json.loads(path.read_text())
    data["features"][0]["geometry"] = None
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidAOIError, match="no geometry") as info:
        load_aoi(path)
    assert "None" not in str(info.value)


def test_items_path_that_is_a_folder(scene, tmp_path):
    from kpgeo.errors import AssetReadError, ConfigError
    from kpgeo.items import read_items
    from kpgeo.pipeline import load_config

    with pytest.raises(AssetReadError, match="is a folder"):
        read_items(scene.root)
    aoi = _aoi_file(scene, tmp_path / "aoi.geojson", id="site")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(_run_config(tmp_path, [(aoi, scene.root)]))


def test_detect_leaves_no_empty_out_when_input_is_bad(scene, tmp_path):
    data = _items_dict(scene)
    data["features"][1]["assets"]["red"]["href"] = str(tmp_path / "missing.tif")
    items = _write(data, tmp_path / "items.json")
    aoi = _aoi_file(scene, tmp_path / "aoi.geojson", id="site")
    out = tmp_path / "new" / "out"
    res = CliRunner().invoke(
        main, ["detect", "--items", str(items), "--aoi", str(aoi), "--out", str(out)]
    )
    assert res.exit_code == 1 and "missing.tif" in res.output
    assert not out.exists()


def test_detect_shows_dropped_band_warning_and_no_library_warning(scene, tmp_path):
    data = _items_dict(scene)
    del data["features"][2]["assets"]["swir22"]
    items = _write(data, tmp_path / "items.json")
    aoi = _aoi_file(scene, tmp_path / "aoi.geojson", id="site")
    res = CliRunner().invoke(
        main, ["detect", "--items", str(items), "--aoi", str(aoi), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    lacking = data["features"][2]["id"]
    assert "swir22" in res.stderr and lacking in res.stderr
    assert "NotGeoreferencedWarning" not in res.stderr
    assert "Warning" not in res.stdout and "warning" not in res.stdout


# --------------------------------------------------------------------------- 5. item fields


def _red(feature):
    return feature["assets"]["red"]


def _first_band(feature):
    return _red(feature)["raster:bands"][0]


FIELD_FAULTS = {
    "raster:bands is an object": (
        lambda f: _red(f).__setitem__("raster:bands", {"scale": 1}),
        "raster:bands must be a list",
    ),
    "raster:bands holds a string": (
        lambda f: _red(f).__setitem__("raster:bands", ["x"]),
        "raster:bands must be a list",
    ),
    "scale is a string": (lambda f: _first_band(f).__setitem__("scale", "abc"), "scale"),
    "scale is an object": (lambda f: _first_band(f).__setitem__("scale", {"a": 1}), "scale"),
    "offset is a string": (lambda f: _first_band(f).__setitem__("offset", "-0.1"), "offset"),
    "scale is zero": (lambda f: _first_band(f).__setitem__("scale", 0), "scale is 0"),
    "scale is NaN": (lambda f: _first_band(f).__setitem__("scale", float("nan")), "finite"),
    "offset is infinite": (
        lambda f: _first_band(f).__setitem__("offset", float("inf")),
        "finite",
    ),
    "unknown data_type": (
        lambda f: _first_band(f).__setitem__("data_type", "uint99"),
        "data_type",
    ),
    "data_type contradicts the file": (
        lambda f: _first_band(f).__setitem__("data_type", "float32"),
        "holds uint16",
    ),
}


@pytest.mark.parametrize("fault", sorted(FIELD_FAULTS))
def test_bad_asset_field_names_item_asset_and_field(scene, tmp_path, fault):
    damage, needle = FIELD_FAULTS[fault]
    data = _items_dict(scene)
    feature = data["features"][1]
    damage(feature)
    items = _write(data, tmp_path / "items.json")
    with pytest.raises(ImageryError) as info:
        load_cube(items)
    message = str(info.value)
    assert feature["id"] in message and "'red'" in message and needle in message


ITEM_FAULTS = {
    "datetime 9999-12-31": (
        lambda f: f["properties"].__setitem__("datetime", "9999-12-31T00:00:00Z"),
        "datetime 9999-12-31",
    ),
    "datetime 1900": (
        lambda f: f["properties"].__setitem__("datetime", "1900-01-01T00:00:00Z"),
        "datetime 1900-01-01",
    ),
    "datetime unparseable": (
        lambda f: f["properties"].__setitem__("datetime", "yesterday"),
        "not a valid STAC Item",
    ),
    "geometry broken": (
        lambda f: f.__setitem__("geometry", {"type": "Polygon", "coordinates": "x"}),
        "geometry",
    ),
    "bbox a string": (lambda f: f.__setitem__("bbox", "x"), "bbox"),
    "asset href a number": (lambda f: _red(f).__setitem__("href", 5), "'href'"),
    "eo:bands a string": (
        lambda f: f["assets"].__setitem__("b8", {**_red(f), "eo:bands": "nir"}),
        "eo:bands",
    ),
}


@pytest.mark.parametrize("fault", sorted(ITEM_FAULTS))
def test_bad_item_field_names_file_item_and_field(scene, tmp_path, fault):
    damage, needle = ITEM_FAULTS[fault]
    data = _items_dict(scene)
    feature = data["features"][2]
    damage(feature)
    items = _write(data, tmp_path / "items.json")
    with pytest.raises(ImageryError) as info:
        load_cube(items)
    assert feature["id"] in str(info.value) and needle in str(info.value)


def test_bad_item_in_one_zone_fails_that_zone_only(scene, tmp_path, monkeypatch):
    """A malformed item and an unexpected bug each fail their zone; the third zone completes."""
    import kpgeo.pipeline

    bad = copy.deepcopy(_items_dict(scene))
    _red(bad["features"][0])["raster:bands"] = {"scale": 1}
    bad_items = _write(bad, tmp_path / "bad.json")
    good_items = _write(_items_dict(scene), tmp_path / "good.json")
    zones = [_aoi_file(scene, tmp_path / f"{z}.geojson", id=z) for z in ("bad", "bug", "ok")]
    cfg = _run_config(
        tmp_path, [(zones[0], bad_items), (zones[1], good_items), (zones[2], good_items)]
    )
    real = kpgeo.pipeline.process_zone

    def buggy(items, zone, **kw):
        if zone.id == "bug":
            raise TypeError("something kpgeo did not expect")
        return real(items, zone, **kw)

    monkeypatch.setattr(kpgeo.pipeline, "process_zone", buggy)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(cfg), "--out", str(out), "--no-report"])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "bad" in res.stderr and "raster:bands must be a list" in res.stderr
    assert "unexpected TypeError" in res.stderr
    assert (out / "zones" / "ok" / "done.json").is_file()
    assert not (out / "zones" / "bad" / "done.json").exists()
    assert not (out / "zones" / "bug" / "done.json").exists()
    assert (out / "run.json").is_file()


# --------------------------------------------------------------------------- 6. encodings


def _as_float_reflectance(path: Path) -> None:
    """Rewrite a uint16 DN band as float32 reflectance (DN * 1e-4 - 0.1), nodata NaN."""
    with rasterio.open(path) as src:
        dn = src.read(1)
        profile = src.profile
    refl = np.where(dn == 0, np.nan, dn * 1e-4 - 0.1).astype("float32")
    profile.update(dtype="float32", nodata=float("nan"))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(refl, 1)


def test_float_reflectance_file_with_uint16_item_is_refused(make_s2_scene):
    scene = make_s2_scene(same_day_pair=False)
    red = scene.files[1]["red"]
    _as_float_reflectance(red)  # items.json still says uint16 with scale 1e-4, offset -0.1
    with pytest.raises(ImageryError) as info:
        load_cube(scene.items_path)
    message = str(info.value)
    assert scene.ids[1] in message and "'red'" in message and "float32" in message
    assert str(red) in message


def test_float_reflectance_scaled_as_dns_warns(make_s2_scene, tmp_path):
    from kpgeo.items import item_from_files

    scene = make_s2_scene(same_day_pair=False)
    files = dict(scene.files[0])
    _as_float_reflectance(files["red"])
    # the item agrees with the file (float32) but scales it as if it held DNs
    item = item_from_files(files, datetime=scene.datetimes[0], id="gee-export", scale=1e-4,
                           offset=-0.1)
    with pytest.warns(KpgeoWarning, match="looks like reflectance already") as record:
        load_cube([item])
    assert any("'red'" in str(w.message) for w in record)


def test_float_dns_are_accepted_silently(make_s2_scene):
    """Floats holding DNs (some exports do that) with a DN scale are fine."""
    from kpgeo.items import item_from_files

    scene = make_s2_scene(same_day_pair=False)
    files = dict(scene.files[0])
    with rasterio.open(files["red"]) as src:
        dn, profile = src.read(1), src.profile
    profile.update(dtype="float32")
    with rasterio.open(files["red"], "w", **profile) as dst:
        dst.write(dn.astype("float32"), 1)
    item = item_from_files(files, datetime=scene.datetimes[0], id="floats", scale=1e-4,
                           offset=-0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KpgeoWarning)
        cube = load_cube([item])
    assert float(cube.red.max()) > 0.1


# --------------------------------------------------------------------------- 8. lon/lat imagery


def _reproject_scene(scene, out: Path, crs: str = "EPSG:4326", which=None) -> Path:
    """Copy of the scene's items with (some) items' files reprojected to ``crs``."""
    import pystac
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    from kpgeo.items import item_from_files, read_items, write_items

    new = []
    for i, item in enumerate(read_items(scene.items_path)):
        if which is not None and i not in which:
            new.append(item)
            continue
        files = {}
        for key, asset in item.assets.items():
            with rasterio.open(asset.href) as src:
                transform, w, h = calculate_default_transform(
                    src.crs, crs, src.width, src.height, *src.bounds
                )
                profile = src.profile | {"crs": crs, "transform": transform, "width": w,
                                         "height": h}
                path = out / item.id / f"{key}.tif"
                path.parent.mkdir(parents=True, exist_ok=True)
                with rasterio.open(path, "w", **profile) as dst:
                    reproject(rasterio.band(src, 1), rasterio.band(dst, 1),
                              resampling=Resampling.nearest)
            files[key] = path
        new.append(item_from_files(files, datetime=item.datetime, id=item.id,
                                   collection="sentinel-2-l2a", scale=1e-4, offset=-0.1))
    return write_items(pystac.ItemCollection(new), out / "items.json", relative=False)


def test_lonlat_imagery_goes_on_the_zone_utm_grid(scene, tmp_path):
    """EPSG:4326 exports (Earth Engine, Sentinel Hub) load on the zone's UTM at ~10 m."""
    from kpgeo.summary import cube_summary
    from kpgeo.timeseries import clear_coverage, zone_regions

    items = _reproject_scene(scene, tmp_path / "ll")
    with rasterio.open(json.loads(items.read_text())["features"][0]["assets"]["red"]["href"]) as s:
        assert s.crs.to_epsg() == 4326
    zone = load_aoi(_aoi_file(scene, tmp_path / "aoi.geojson", id="site"))
    cube = load_cube(items, zone)
    assert cube.odc.geobox.crs.epsg == zone.utm_crs.to_epsg() == 32634
    assert cube.attrs["resolution"] == pytest.approx(10.0)
    reference = load_cube(scene.items_path, zone)
    a, b = cube.red.mean().compute(), reference.red.mean().compute()
    assert float(a) == pytest.approx(float(b), rel=0.05)
    coverage = clear_coverage(cube, zone_regions([zone], ring_width_m=100))
    assert cube_summary(cube, coverage, zone=zone)["crs"] == "EPSG:32634"


def test_lonlat_imagery_without_zone_uses_the_imagery_utm(scene, tmp_path):
    items = _reproject_scene(scene, tmp_path / "ll")
    cube = load_cube(items)
    assert cube.odc.geobox.crs.epsg == 32634
    assert cube.attrs["resolution"] == pytest.approx(10.0)


def test_mixed_lonlat_and_utm_items_share_the_utm_grid(scene, tmp_path):
    items = _reproject_scene(scene, tmp_path / "mix", which={0, 2})
    cube = load_cube(items)
    assert cube.odc.geobox.crs.epsg == 32634
    assert cube.sizes["time"] == len(scene.ids)
    assert int(cube.clear.isel(time=0).sum()) > 0
