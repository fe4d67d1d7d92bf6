import json

import pytest
from click.testing import CliRunner

from kpgeo.cli import main


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from kpgeo.simulate import simulate_scene

    return simulate_scene(tmp_path_factory.mktemp("sim") / "s", shape=(64, 64), n_dates=24,
                          preset="default", seed=1)


@pytest.fixture(scope="module")
def aoi_file(scene, tmp_path_factory):
    import geopandas as gpd
    import shapely

    items = json.loads(scene.items_path.read_text())
    bbox = items["features"][0]["bbox"]
    path = tmp_path_factory.mktemp("aoi") / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(*bbox)], crs=4326).to_file(path)
    return path


def test_detect_writes_outputs(scene, aoi_file, tmp_path):
    import geopandas as gpd
    import rasterio

    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(main, ["detect", "--items", str(scene.items_path), "--aoi", str(aoi_file),
                               "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    gj = json.loads((out / "footprints.geojson").read_text())
    assert gj["features"], "expected footprints on a scene with mining"
    props = gj["features"][0]["properties"]
    assert len(props["first_detected"]) == 10 and props["first_detected"][4] == "-"
    assert props["area_ha"] > 0
    gdf = gpd.read_file(out / "footprints.geojson")
    assert gdf.crs.to_epsg() == 4326
    pq = gpd.read_parquet(out / "footprints.parquet")
    assert len(pq) == len(gdf) and pq.crs is not None
    for name in ("first_detected", "last_active", "confidence", "state"):
        with rasterio.open(out / f"{name}.tif") as src:
            assert src.crs is not None
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.read(1).shape == (src.height, src.width)
    with rasterio.open(out / "first_detected.tif") as src:
        fd = src.read(1)
        assert src.dtypes[0] == "int32" and src.nodata == -1
    assert (fd[fd != -1] > 17000).all()  # days since 1970 in 2019-2020

    # refuses to overwrite, then evaluates
    res = runner.invoke(main, ["detect", "--items", str(scene.items_path), "--aoi", str(aoi_file),
                               "--out", str(out), "--no-progress"])
    assert res.exit_code == 1 and "overwrite" in res.output
    metrics = tmp_path / "m.json"
    res = runner.invoke(main, ["evaluate", "--truth", str(scene.truth_path), "--footprints",
                               str(out / "footprints.geojson"), "--labels",
                               str(scene.labels_path), "--out", str(metrics),
                               "--baseline-obs", "4", "--confirm-obs", "3"])
    assert res.exit_code == 0, res.output
    assert "don't-care" in res.output
    m = json.loads(metrics.read_text())
    assert {"object", "pixel", "area", "latency", "false_alarm"} <= set(m)
    assert 0 <= m["pixel"]["specificity"] <= 1
    assert m["protocol"] == {"baseline_obs": 4, "confirm_obs": 3}
    assert {s["status"] for s in m["sites"]} <= {"new", "pre-existing", "pending"}


def test_detect_needs_zone_or_aoi(scene, tmp_path):
    res = CliRunner().invoke(main, ["detect", "--items", str(scene.items_path),
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code == 2


@pytest.mark.slow
def test_detect_zone_watches_the_ring_and_writes_reports(tmp_path):
    """`kpgeo detect --zone` on the CAR sample: footprints inside and outside, plus reports."""
    from pathlib import Path

    import geopandas as gpd

    items = Path(__file__).parents[1] / "sample_tiles" / "caf-berberati" / "items.json"
    truth = gpd.read_file(items.parent / "truth.geojson")
    assert set(truth.loc[truth["class"] == "mining", "inside_zone"]) == {True, False}
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["detect", "--items", str(items), "--zone", "Berbérati",
                                    "--out", str(out), "--offline", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Berbérati (caf-berberati)" in res.output and "bulletin.html" in res.output
    for name in ("coverage.csv", "summary.json", "timeseries.csv", "map.html", "bulletin.html",
                 "map_caf-berberati.png"):
        assert (out / name).is_file(), name
    fps = gpd.read_file(out / "footprints.geojson")
    outside = fps[~fps["inside_zone"]]
    assert len(outside) and (outside["distance_to_boundary_m"] > 0).all()
    assert (fps.loc[fps["inside_zone"], "distance_to_boundary_m"] <= 0).all()
    # footprints outside the zone lie on the truth's outside mining, not elsewhere
    mining_out = truth[(truth["class"] == "mining") & ~truth["inside_zone"].astype(bool)]
    assert outside.to_crs(3857).intersects(mining_out.to_crs(3857).union_all()).any()
