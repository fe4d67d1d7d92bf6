"""Streamed zone runs: equal to the in-memory path, exact across block seams, incremental = full."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio

from kpgeo.pipeline import process_zone
from kpgeo.stream import DETECTION_BANDS, RASTERS, plan_windows
from kpgeo.zones import get_zone

RING_M = 500
ZONE = get_zone("caf-boda")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 128 x 128 px scene on the Boda boundary, 24 dates; sites that grow after date 14."""
    from kpgeo.simulate import simulate_scene

    return simulate_scene(tmp_path_factory.mktemp("stream-scene"), zone="caf-boda",
                          shape=(128, 128), n_dates=24, preset="default", seed=1)


def _first_dates(scene, n, folder):
    """An items.json with the first ``n`` dates of the scene (hrefs still into the scene)."""
    items = json.loads(scene.items_path.read_text())
    items["features"] = sorted(items["features"], key=lambda f: f["properties"]["datetime"])[:n]
    for feature in items["features"]:
        for asset in feature["assets"].values():
            asset["href"] = str((scene.items_path.parent / asset["href"]).resolve())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"items_{n}.json"
    path.write_text(json.dumps(items))
    return path


@pytest.fixture(scope="module")
def in_memory(scene, tmp_path_factory):
    """The in-memory path: load_cube -> detect_changes -> extract_footprints -> write_detection."""
    import warnings

    from kpgeo.change import detect_changes
    from kpgeo.cube import load_cube
    from kpgeo.footprints import extract_footprints, write_detection
    from kpgeo.timeseries import clear_coverage, zone_regions

    out = tmp_path_factory.mktemp("in-memory")
    cube = load_cube(scene.items_path, aoi=ZONE.geometry.union(ZONE.ring(RING_M)),
                     bands=DETECTION_BANDS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        change = detect_changes(cube)
    footprints = extract_footprints(change, zone=ZONE)
    write_detection(change, footprints, out, overwrite=True)
    coverage = clear_coverage(cube, zone_regions([ZONE], ring_width_m=RING_M))
    return {"out": out, "footprints": footprints, "coverage": coverage,
            "shape": cube.odc.geobox.shape}


def _cutting_block(footprints, shape):
    """A block side whose edges cut one of the footprints (the grid starts on the files' grid)."""
    for block in (24, 32, 40, 48, 56, 64):
        edges = np.arange(block, max(shape), block)
        for c0, r0, c1, r1 in footprints["_px"]:
            if any(r0 < e < r1 for e in edges) or any(c0 < e < c1 for e in edges):
                return block
    pytest.skip("no block size in 24..64 cuts a footprint of this scene")


def _pixel_bounds(footprints, raster):
    with rasterio.open(raster) as src:
        inv = ~src.transform
    out = footprints.copy()
    boxes = []
    for geom in out.geometry:
        xmin, ymin, xmax, ymax = geom.bounds
        c0, r0 = inv * (xmin, ymax)
        c1, r1 = inv * (xmax, ymin)
        boxes.append((round(c0), round(r0), round(c1), round(r1)))
    out["_px"] = boxes
    return out


@pytest.fixture(scope="module")
def block(in_memory):
    fps = _pixel_bounds(in_memory["footprints"], in_memory["out"] / "state.tif")
    return _cutting_block(fps, in_memory["shape"])


@pytest.fixture(scope="module")
def streamed(scene, block, tmp_path_factory):
    out = tmp_path_factory.mktemp("streamed")
    result = process_zone(scene.items_path, ZONE, out_dir=out, ring_width_m=RING_M, block=block)
    return {"out": out, "result": result}


def _canonical(footprints):
    return footprints.sort_values("id").reset_index(drop=True)


def assert_same_footprints(a, b):
    a, b = _canonical(a), _canonical(b)
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"),
                                  check_exact=True)
    assert list(a.geometry.to_wkb()) == list(b.geometry.to_wkb())


def assert_same_rasters(dir_a, dir_b):
    for name in RASTERS:
        with rasterio.open(dir_a / f"{name}.tif") as a, rasterio.open(dir_b / f"{name}.tif") as b:
            assert a.crs == b.crs and a.transform == b.transform, name
            assert a.nodata == b.nodata and a.dtypes == b.dtypes, name
            np.testing.assert_array_equal(a.read(), b.read(), err_msg=name)


def test_streamed_equals_in_memory(streamed, in_memory):
    """Rasters, footprints (after a canonical sort) and coverage equal the in-memory path's."""
    result = streamed["result"]
    assert len(result.footprints) >= 2
    assert_same_rasters(streamed["out"], in_memory["out"])
    assert_same_footprints(result.footprints, in_memory["footprints"])
    pd.testing.assert_frame_equal(result.coverage, in_memory["coverage"])
    with rasterio.open(streamed["out"] / "state.tif") as src:
        assert src.driver == "GTiff" and src.profile["tiled"]  # a COG: tiled GeoTIFF
        assert src.tags()["flag_meanings"].startswith("no_change new active")


def test_a_site_cut_by_block_edges_is_one_footprint(streamed, in_memory, block):
    """The block size cuts a site; it is still one footprint with one id, none duplicated."""
    fps = streamed["result"].footprints
    assert fps["id"].is_unique
    windows = plan_windows(in_memory["shape"], block)
    assert len(windows) > 4
    px = _pixel_bounds(fps, streamed["out"] / "state.tif")
    edges = {w[0] for w in windows} | {w[2] for w in windows}
    cut = [b for b in px["_px"] if any(b[1] < e < b[3] or b[0] < e < b[2] for e in edges)]
    assert cut, "the test needs a footprint cut by a block edge"
    assert len(fps) == len(in_memory["footprints"])


def test_objects_cut_by_any_windows_are_the_same(tmp_path):
    """One L-shaped site across four windows, a pit touching it diagonally: the same objects."""
    from affine import Affine
    from pyproj import CRS
    from test_footprints import make_change  # noqa: E402

    from kpgeo.footprints import concat_records, objects_from_level, pixel_records

    state = np.zeros((40, 40), "uint8")
    state[5:25, 8:12] = 2
    state[20:24, 8:30] = 2
    state[24:27, 30:33] = 1  # touches the L at a corner only
    change, _ = make_change(state)
    level = np.where(state > 0, 2, 0).astype("uint8")
    records = concat_records([pixel_records(change)])
    kw = {"crs": CRS.from_epsg(32634), "transform": Affine(10, 0, 500000, 0, -10, 400400),
          "has_pending": False, "min_area_ha": 0.05, "closing_radius": 0}
    whole = objects_from_level(level, records, **kw)
    for side in (7, 10, 13, 22):
        cut = objects_from_level(level, records, windows=plan_windows((40, 40), side), **kw)
        assert_same_footprints(cut, whole)
    assert len(whole) == 1  # 8-connected: the diagonal pit is part of the site
    assert whole.geometry.iloc[0].area == pytest.approx((20 * 4 + 4 * 18 + 9) * 100)


def test_incremental_run_equals_the_full_run(scene, streamed, block, tmp_path, caplog):
    """First 14 dates, then all 24 = all 24 at once; ids kept, first_detected never later."""
    from kpgeo.timeseries import zone_activity

    out = tmp_path / "zone"
    first = process_zone(_first_dates(scene, 14, tmp_path / "items"), ZONE, out_dir=out,
                         ring_width_m=RING_M, block=block)
    assert first.new_dates == 14 and len(first.footprints) >= 1
    with caplog.at_level(logging.INFO, logger="kpgeo"):
        second = process_zone(scene.items_path, ZONE, out_dir=out, ring_width_m=RING_M,
                              block=block)
    assert second.new_dates == 10 and second.redo_reason is None
    assert "continuing the stored state of 14 date(s); 10 new date(s)" in caplog.text
    full = streamed["result"]
    assert_same_footprints(second.footprints, full.footprints)
    pd.testing.assert_frame_equal(second.coverage, full.coverage)
    assert_same_rasters(out, streamed["out"])
    ts = [zone_activity(r.footprints, r.coverage, zones=[ZONE], ring_width_m=RING_M)
          for r in (second, full)]
    pd.testing.assert_frame_equal(ts[0], ts[1])
    # a site seen in the first run keeps its id and its first_detected date, never later
    before = first.footprints.set_index("id")
    after = second.footprints.set_index("id")
    assert set(before.index) <= set(after.index)
    assert (after.loc[before.index, "first_detected"] <= before["first_detected"]).all()
    assert (after.loc[before.index, "area_ha"] >= before["area_ha"] - 1e-9).all()


def test_a_run_with_no_new_date_reads_no_imagery(scene, streamed, block, tmp_path):
    out = tmp_path / "zone"
    shutil.copytree(streamed["out"], out)
    again = process_zone(scene.items_path, ZONE, out_dir=out, ring_width_m=RING_M, block=block)
    assert again.new_dates == 0
    assert_same_footprints(again.footprints, streamed["result"].footprints)
    assert_same_rasters(out, streamed["out"])


def _assert_redone(result, caplog, why):
    assert result.new_dates == 24
    assert why in result.redo_reason
    assert "the stored detector state cannot be continued" in caplog.text and why in caplog.text


def test_changed_parameters_redo_the_zone(scene, streamed, block, tmp_path, caplog):
    from kpgeo.change import ChangeParams

    out = tmp_path / "zone"
    shutil.copytree(streamed["out"], out)
    with caplog.at_level(logging.WARNING, logger="kpgeo"):
        redone = process_zone(scene.items_path, ZONE, out_dir=out, ring_width_m=RING_M,
                              block=block, params=ChangeParams(persistence=4))
    _assert_redone(redone, caplog, "change parameters")


def test_a_replaced_old_date_redoes_the_zone(scene, streamed, block, tmp_path, caplog):
    """New bytes in a date already processed (same name, same size) redo the zone."""
    copy = tmp_path / "scene"
    shutil.copytree(scene.out_dir, copy)
    out = tmp_path / "zone"
    shutil.copytree(streamed["out"], out)
    red = copy / scene.asset_path(3, "red").relative_to(scene.out_dir)
    with rasterio.open(red, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        dst.write(np.flipud(dst.read(1)), 1)
    with caplog.at_level(logging.WARNING, logger="kpgeo"):
        redone = process_zone(copy / "items.json", ZONE, out_dir=out, ring_width_m=RING_M,
                              block=block)
    _assert_redone(redone, caplog, "was replaced")


def test_a_date_added_before_the_last_redoes_the_zone(scene, block, tmp_path, caplog):
    items = json.loads(_first_dates(scene, 24, tmp_path / "items").read_text())
    feats = items["features"]
    gap = dict(items, features=feats[:10] + feats[11:])
    (tmp_path / "gap.json").write_text(json.dumps(gap))
    out = tmp_path / "zone"
    process_zone(tmp_path / "gap.json", ZONE, out_dir=out, ring_width_m=RING_M, block=block)
    with caplog.at_level(logging.WARNING, logger="kpgeo"):
        redone = process_zone(_first_dates(scene, 24, tmp_path / "items"), ZONE, out_dir=out,
                              ring_width_m=RING_M, block=block)
    _assert_redone(redone, caplog, "the dates changed")


def test_a_damaged_state_store_redoes_the_zone(scene, streamed, block, tmp_path, caplog):
    out = tmp_path / "zone"
    shutil.copytree(streamed["out"], out)
    (out / "state.zarr" / "zarr.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="kpgeo"):
        redone = process_zone(scene.items_path, ZONE, out_dir=out, ring_width_m=RING_M,
                              block=block)
    _assert_redone(redone, caplog, "unreadable")
    assert_same_footprints(redone.footprints, streamed["result"].footprints)


def test_a_damaged_state_chunk_redoes_the_zone(scene, streamed, block, tmp_path, caplog):
    """A chunk file of the old state lost or cut short: found by a block task, zone redone."""
    out = tmp_path / "zone"
    shutil.copytree(_first_run(scene, block, tmp_path), out)
    chunk = sorted((out / "state.zarr" / "fstate" / "c").rglob("*"))[-1]
    chunk.write_bytes(chunk.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="kpgeo"):
        redone = process_zone(scene.items_path, ZONE, out_dir=out, ring_width_m=RING_M,
                              block=block)
    _assert_redone(redone, caplog, "state store is damaged")
    assert_same_footprints(redone.footprints, streamed["result"].footprints)
    assert_same_rasters(out, streamed["out"])
    assert not [p for p in out.iterdir() if ".kpgeo.tmp" in p.name]


def _first_run(scene, block, tmp_path):
    """Output folder of a run over the first 14 dates."""
    out = tmp_path / "first14"
    process_zone(_first_dates(scene, 14, tmp_path / "items"), ZONE, out_dir=out,
                 ring_width_m=RING_M, block=block)
    return out


def test_a_failed_run_keeps_the_previous_state_and_leaves_no_temporary_file(
        scene, streamed, in_memory, block, tmp_path, monkeypatch):
    """A read failure in the last block: old state and rasters kept, no temporary file left."""
    import kpgeo.stream
    from kpgeo.errors import AssetReadError

    out = tmp_path / "zone"
    shutil.copytree(streamed["out"], out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    windows = plan_windows(in_memory["shape"], block)
    real = kpgeo.stream.process_block

    def failing(task, window):
        if window == windows[-1]:
            raise AssetReadError("cannot read raster asset /x/nir.tif: corrupt (test)")
        return real(task, window)

    monkeypatch.setattr(kpgeo.stream, "process_block", failing)
    with pytest.raises(AssetReadError, match="nir.tif"):
        process_zone(scene.items_path, ZONE, out_dir=out, ring_width_m=RING_M, block=block,
                     incremental=False)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.slow
def test_distributed_run_equals_threaded(scene, streamed, block, tmp_path):
    """A LocalCluster of 2 worker processes gives the threaded run's outputs."""
    pytest.importorskip("distributed")
    from kpgeo.pipeline import dask_scheduler

    out = tmp_path / "zone"
    with dask_scheduler("local:2"):
        result = process_zone(scene.items_path, ZONE, out_dir=out, ring_width_m=RING_M,
                              block=block)
    assert_same_footprints(result.footprints, streamed["result"].footprints)
    pd.testing.assert_frame_equal(result.coverage, streamed["result"].coverage)
    assert_same_rasters(out, streamed["out"])
