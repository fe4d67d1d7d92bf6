"""End-to-end monitoring run: outputs, resume after interruption, incremental re-runs."""

from __future__ import annotations

import json
import os

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner

from kpgeo.cli import main
from kpgeo.pipeline import ZONE_OUTPUTS, load_config, run_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from kpgeo.simulate import simulate_scene

    out = tmp_path_factory.mktemp("scene")
    return simulate_scene(out, zone="caf-boda", shape=(96, 96), n_dates=14, preset="clean", seed=3)


@pytest.fixture
def config_file(tmp_path, scene):
    path = tmp_path / "run.toml"
    path.write_text(
        f"""
[run]
name = "test run"
ring_width_m = 1000
min_area_ha = 0.05
[[zones]]
zone = "Boda"
items = "{scene.items_path}"
"""
    )
    return path


def test_run_writes_zone_and_run_outputs(tmp_path, config_file):
    out = tmp_path / "out"
    result = run_pipeline(load_config(config_file), out, report=False)
    zone_dir = out / "zones" / "caf-boda"
    for name in ZONE_OUTPUTS + ("done.json",):
        assert (zone_dir / name).is_file(), name
    summary = result["zones"][0]
    assert summary["n_dates"] == 14
    assert 0 < summary["zone_clear_fraction_mean"] <= 1
    fps = gpd.read_file(out / "footprints.geojson")
    assert fps.crs.to_epsg() == 4326
    assert len(fps) == summary["footprints"]
    rejected = gpd.read_file(zone_dir / "rejected.geojson")
    assert {"id", "kind", "area_ha"} <= set(rejected.columns)
    assert set(rejected["kind"]) <= {"clearing", "shoreline"}
    assert not set(rejected["id"]) & set(fps["id"])
    coverage = pd.read_csv(out / "coverage.csv")
    assert set(coverage["region"]) == {"caf-boda", "caf-boda:ring"}
    assert not list(out.rglob("*.tmp*")), "temporary files left behind"


def test_rerun_skips_finished_zone_and_redoes_changed_imagery(tmp_path, scene):
    """The fingerprint follows file content: `touch` keeps the result, new bytes redo it."""
    import shutil

    import numpy as np
    import rasterio

    scene_copy = tmp_path / "scene"
    shutil.copytree(scene.out_dir, scene_copy)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[[zones]]\nzone = "caf-boda"\nitems = "{scene_copy / "items.json"}"\n')
    config = load_config(cfg)
    out = tmp_path / "out"
    run_pipeline(config, out, report=False)
    stamp = out / "zones" / "caf-boda" / "done.json"
    first = json.loads(stamp.read_text())

    again = run_pipeline(config, out, report=False)
    assert again["zones"][0].get("skipped") is True

    # a copy or `touch` changes the times, not the content: still up to date
    asset = scene_copy / scene.asset_path(0, "red").relative_to(scene.out_dir)
    os.utime(asset, ns=(asset.stat().st_atime_ns, asset.stat().st_mtime_ns + 10**9))
    assert run_pipeline(config, out, report=False)["zones"][0].get("skipped") is True

    # new imagery for a date (here: the asset rewritten) invalidates the zone
    with rasterio.open(asset, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        dst.write(np.flipud(dst.read(1)), 1)
    redone = run_pipeline(config, out, report=False)
    assert not redone["zones"][0].get("skipped")
    assert json.loads(stamp.read_text())["fingerprint"] != first["fingerprint"]


def test_new_footprint_rules_redo_a_zone_that_keeps_its_state(tmp_path, config_file,
                                                              monkeypatch):
    """Other object-test code at the same version: the zone is not up to date, state kept."""
    import kpgeo.pipeline

    config = load_config(config_file)
    out = tmp_path / "out"
    run_pipeline(config, out, report=False)
    assert run_pipeline(config, out, report=False)["zones"][0].get("skipped") is True
    monkeypatch.setattr(kpgeo.pipeline, "footprint_code_digest", lambda: "other rules")
    redone = run_pipeline(config, out, report=False)["zones"][0]
    assert not redone.get("skipped")
    assert redone["dates_read"] == 0  # the stored detector state was continued, no date re-read


def test_fingerprint_hashes_only_the_files_a_run_reads(tmp_path, scene):
    """New bytes in swir22 (never read by a zone run) keep the result; in the mask, redo it."""
    import shutil

    import numpy as np
    import rasterio

    scene_copy = tmp_path / "scene"
    shutil.copytree(scene.out_dir, scene_copy)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[[zones]]\nzone = "caf-boda"\nitems = "{scene_copy / "items.json"}"\n')
    config = load_config(cfg)
    out = tmp_path / "out"
    run_pipeline(config, out, report=False)
    for band, skipped in (("swir22", True), ("scl", False)):
        asset = scene_copy / scene.asset_path(0, band).relative_to(scene.out_dir)
        with rasterio.open(asset, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
            dst.write(np.flipud(dst.read(1)), 1)
        assert bool(run_pipeline(config, out, report=False)["zones"][0].get("skipped")) is skipped


def test_interrupted_zone_is_resumed(tmp_path, config_file):
    out = tmp_path / "out"
    config = load_config(config_file)
    run_pipeline(config, out, report=False)
    zone_dir = out / "zones" / "caf-boda"
    # an interruption before the stamp: outputs may be partial, done.json absent
    (zone_dir / "done.json").unlink()
    (zone_dir / "state.tif").unlink()
    resumed = run_pipeline(config, out, report=False)
    assert not resumed["zones"][0].get("skipped")
    assert (zone_dir / "state.tif").is_file() and (zone_dir / "done.json").is_file()


def test_cli_run_and_summary(tmp_path, config_file, scene):
    runner = CliRunner()
    out = tmp_path / "cli-out"
    result = runner.invoke(main, ["run", str(config_file), "--out", str(out), "--no-report"])
    assert result.exit_code == 0, result.output
    assert "Boda (caf-boda)" in result.output and "dates      : 14" in result.output
    result = runner.invoke(
        main, ["summary", "--items", str(scene.items_path), "--zone", "caf-boda", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["n_dates"] == 14 and summary["crs"].startswith("EPSG:326")


def test_cli_run_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[zones]]\nzone='atlantis'\nitems='x.json'\n")
    result = CliRunner().invoke(main, ["run", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "bad.toml" in result.output and "Traceback" not in result.output


def test_run_on_a_process_cluster_matches_threads(tmp_path, config_file):
    """Tasks carry paths, not open datasets: the run works on worker processes.

    The workers keep glibc's adaptive malloc (distributed's MALLOC_TRIM_THRESHOLD_
    turns it off: a fresh mmap, page faults, for every block array).
    """
    pytest.importorskip("distributed")
    from kpgeo.pipeline import dask_scheduler

    config = load_config(config_file)
    threads = run_pipeline(config, tmp_path / "threads", report=False)
    expected = os.environ.get("MALLOC_TRIM_THRESHOLD_")  # a user's own setting is kept
    with dask_scheduler("local") as client:
        trim = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        cluster = run_pipeline(config, tmp_path / "cluster", report=False)
    assert trim and set(trim.values()) == {expected}
    a = gpd.read_parquet(tmp_path / "threads" / "footprints.parquet")
    b = gpd.read_parquet(tmp_path / "cluster" / "footprints.parquet")
    assert (
        len(a) == len(b) == threads["zones"][0]["footprints"] == cluster["zones"][0]["footprints"]
    )
    assert a["area_ha"].sum() == pytest.approx(b["area_ha"].sum())


def test_unknown_scheduler_is_a_config_error():
    from kpgeo.errors import ConfigError
    from kpgeo.pipeline import dask_scheduler

    with pytest.raises(ConfigError, match="unknown scheduler"):
        with dask_scheduler("carrier-pigeon"):
            pass


def test_changed_item_metadata_invalidates_the_zone(tmp_path, scene):
    """Editing items.json (here: the reflectance scale) must redo the zone, not skip it."""
    import shutil

    scene_copy = tmp_path / "scene"
    shutil.copytree(scene.out_dir, scene_copy)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[[zones]]\nzone = "caf-boda"\nitems = "{scene_copy / "items.json"}"\n')
    out = tmp_path / "out"
    run_pipeline(load_config(cfg), out, report=False)
    items = json.loads((scene_copy / "items.json").read_text())
    for feature in items["features"]:
        for asset in feature["assets"].values():
            for band in asset.get("raster:bands", []):
                if "scale" in band:
                    band["scale"] = band["scale"] * 2
    (scene_copy / "items.json").write_text(json.dumps(items))
    again = run_pipeline(load_config(cfg), out, report=False)
    assert not again["zones"][0].get("skipped")


def test_all_cloud_zone_fails_alone_and_is_retried(tmp_path, scene):
    """An all-cloud zone gets a clear error, no done stamp, and the other zones still run."""
    import shutil

    import numpy as np
    import rasterio

    cloudy = tmp_path / "cloudy"
    shutil.copytree(scene.out_dir, cloudy)
    for scl in cloudy.glob("*/scl.tif"):
        with rasterio.open(scl, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
            dst.write(np.full((dst.height, dst.width), 9, dtype=dst.dtypes[0]), 1)
    from kpgeo.zones import get_zone

    boda = get_zone("caf-boda").to_geodataframe()
    boda["id"] = boda["name"] = "boda-cloudy"
    boda[["id", "name", "geometry"]].to_file(tmp_path / "boda-cloudy.geojson")
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        f'[[zones]]\nzone = "caf-boda"\nitems = "{scene.items_path}"\n'
        f'[[zones]]\naoi = "boda-cloudy.geojson"\nitems = "{cloudy / "items.json"}"\n'
    )
    out = tmp_path / "out"
    result = run_pipeline(load_config(cfg), out, report=False)
    by_zone = {s["zone"]: s for s in result["zones"]}
    assert by_zone["boda-cloudy"]["status"] == "failed"
    assert "NoDataError" in by_zone["boda-cloudy"]["error"]
    assert "no clear observation" in by_zone["boda-cloudy"]["error"]
    assert not (out / "zones" / "boda-cloudy" / "done.json").exists()
    assert (out / "zones" / "caf-boda" / "done.json").exists()

    cli = CliRunner().invoke(main, ["run", str(cfg), "--out", str(tmp_path / "cli"), "--no-report"])
    assert cli.exit_code == 1
    assert "boda-cloudy" in cli.output and "retried" in cli.output and "Traceback" not in cli.output
