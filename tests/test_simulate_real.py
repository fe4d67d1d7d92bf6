"""Tests of the real-data scene source (``simulate_scene(..., source="real")``)."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio

from kpgeo.errors import ConfigError
from kpgeo.simulate import DEFAULT_CENTER, simulate_scene

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
TRUTH_KEYS = {"class", "site_id", "start_date", "end_date", "area_ha"}


def _day(text) -> int:
    return dt.date.fromisoformat(str(text)[:10]).toordinal() - 719163


def _rasters(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*.tif")):
        with rasterio.open(p) as ds:
            out[str(p.relative_to(root))] = (ds.read(), ds.profile, ds.descriptions)
    return out


def _stack(scene):
    """(t, band, y, x) reflectance (NaN at nodata) and the true atmosphere (t, y, x)."""
    refl = []
    for i in range(len(scene.dates)):
        bands = []
        for b in BANDS:
            with rasterio.open(scene.asset_path(i, b)) as ds:
                a = ds.read(1).astype(np.float32)
            bands.append(np.where(a == 0, np.nan, a * 1e-4 - 0.1))
        refl.append(np.stack(bands))
    with rasterio.open(scene.cloud_path) as ds:
        cloud = ds.read()
    return np.stack(refl), cloud


def _plan(seed, shape=(256, 256), params="default"):
    from kpgeo.simulate.grid import make_grid
    from kpgeo.simulate.realbase import REAL_PRESETS, plan_real_scene

    p = REAL_PRESETS[params] if isinstance(params, str) else params
    grid = make_grid(DEFAULT_CENTER, shape, 10.0)
    return plan_real_scene(grid, lon=DEFAULT_CENTER[0], start="2019-01-01", end="2020-12-31",
                           n_dates=36, params=p, seed=seed)


def _test_params():
    from kpgeo.simulate.realbase import REAL_PRESETS

    return REAL_PRESETS["clean"].replace(name="test", min_sites=8, min_burns=2,
                                         ground_weights=(0.25, 0.25, 0.25, 0.25))


@pytest.fixture(scope="module")
def real_scene(tmp_path_factory):
    """A mostly clear real-source scene with several sites of every kind."""
    out = tmp_path_factory.mktemp("real_scene")
    scene = simulate_scene(out, shape=(160, 160), n_dates=30, preset=_test_params(), seed=4,
                           source="real", tile_size=128)
    return (scene, *_stack(scene))


def _land_use(scene):
    """Land-use classes of a scene (re-drawn from its plan: same seed and parameters)."""
    from kpgeo.simulate.grid import make_grid
    from kpgeo.simulate.realbase import plan_real_scene
    from kpgeo.simulate.realbase.basemap import base_window
    from kpgeo.simulate.realbase.landcover import final_classes

    grid = make_grid(DEFAULT_CENTER, scene.shape, 10.0)
    inp = plan_real_scene(grid, lon=DEFAULT_CENTER[0], start="2019-01-01", end="2020-12-31",
                          n_dates=len(scene.dates), params=_test_params(), seed=scene.seed)
    b = base_window(inp.look.layout, 0, 0, scene.shape)
    return final_classes(b.cls, b.parcel, inp.look)


# --------------------------------------------------------------------------- schema


def test_same_files_and_schema_as_procedural(tmp_path):
    kw = {"shape": (64, 64), "n_dates": 3, "seed": 1, "preset": "default"}
    proc = simulate_scene(tmp_path / "p", **kw)
    real = simulate_scene(tmp_path / "r", source="real", **kw)
    assert real.source == "real" and proc.source == "procedural"
    rp, rr = _rasters(proc.out_dir), _rasters(real.out_dir)

    def pattern(keys):
        return sorted(k.split("/", 1)[-1] if k.startswith("S2_") else k for k in keys)

    assert pattern(rp) == pattern(rr) and len(rr) == 3 * 7 + 4
    for kp, kr in zip(sorted(rp), sorted(rr), strict=True):
        (ap, pp, _), (ar, pr, _) = rp[kp], rr[kr]
        for key in ("dtype", "count", "nodata", "crs"):
            assert pp[key] == pr[key], (kr, key)
        assert (pp["transform"].a, pp["transform"].e) == (pr["transform"].a, pr["transform"].e)
        assert ar.shape == ap.shape, kr
    assert rr["truth_cloud.tif"][2] == tuple(d.isoformat() for d in real.dates)
    assert set(np.unique(rr["truth_labels.tif"][0])) <= {0, 1, 2, 3, 4}
    assert set(np.unique(rr["truth_cloud.tif"][0])) <= {0, 1, 2, 3, 255}
    scl = np.concatenate([v[0].ravel() for k, v in rr.items() if k.endswith("scl.tif")])
    assert set(np.unique(scl)) <= set(range(12))

    ip = json.loads(proc.items_path.read_text())["features"]
    ir = json.loads(real.items_path.read_text())["features"]
    assert len(ir) == 3
    for a, b in zip(ip, ir, strict=True):
        assert set(b["properties"]) == set(a["properties"]) | {"kpgeo:source"}
        assert set(b["assets"]) == set(a["assets"]) == {*BANDS, "scl"}
        for k in a["assets"]:
            assert set(b["assets"][k]) == set(a["assets"][k])
            assert b["assets"][k]["raster:bands"][0].keys() == a["assets"][k]["raster:bands"][0]\
                .keys()
        assert b["assets"]["nir"]["raster:bands"][0]["scale"] == 0.0001
        assert b["assets"]["nir"]["raster:bands"][0]["offset"] == -0.1
        assert b["assets"]["scl"]["gsd"] == 20.0
    truth = json.loads(real.truth_path.read_text())
    for f in truth["features"]:
        assert TRUTH_KEYS <= set(f["properties"])
        if f["properties"]["class"] == "mining":
            assert {"growth", "ground", "n_pits"} <= set(f["properties"])


def test_deterministic_in_seed_and_tiling(tmp_path):
    kw = {"shape": (128, 96), "n_dates": 4, "source": "real", "preset": "default"}
    a = simulate_scene(tmp_path / "a", seed=5, tile_size=64, **kw)
    b = simulate_scene(tmp_path / "b", seed=5, tile_size=128, **kw)
    c = simulate_scene(tmp_path / "c", seed=6, tile_size=64, **kw)
    ra, rb, rc = _rasters(a.out_dir), _rasters(b.out_dir), _rasters(c.out_dir)
    assert ra.keys() == rb.keys()
    for k in ra:
        assert ra[k][0].tobytes() == rb[k][0].tobytes(), k
    assert a.truth_path.read_text() == b.truth_path.read_text()
    assert a.items_path.read_text() == b.items_path.read_text()
    nir_a = next(v[0] for k, v in ra.items() if k.endswith("nir.tif"))
    nir_c = next(v[0] for k, v in rc.items() if k.endswith("nir.tif"))
    assert not np.array_equal(nir_a, nir_c)


def test_bad_source_and_randomize_with_real(tmp_path):
    with pytest.raises(ConfigError, match="procedural"):
        simulate_scene(tmp_path, source="satellite")
    with pytest.raises(ConfigError, match="randomize"):
        simulate_scene(tmp_path, source="real", randomize=True)
    with pytest.raises(ConfigError, match="small-pits"):
        simulate_scene(tmp_path, source="real", preset="nope")
    assert not (tmp_path / "items.json").exists()


# --------------------------------------------------------------------------- truth


def test_truth_consistent_with_rasters(real_scene):
    scene = real_scene[0]
    with rasterio.open(scene.labels_path) as ds:
        labels = ds.read(1)
    with rasterio.open(scene.mining_start_path) as ds:
        mstart = ds.read(1)
    with rasterio.open(scene.confounders_path) as ds:
        conf = ds.read(1)
    days = [_day(d.isoformat()) for d in scene.dates]
    truth = json.loads(scene.truth_path.read_text())["features"]
    mines = [f["properties"] for f in truth if f["properties"]["class"] == "mining"]
    assert len(mines) >= 6
    px_ha = 0.01
    assert sum(m["area_ha"] for m in mines) == pytest.approx((labels == 1).sum() * px_ha)
    assert ((mstart > 0) == (labels == 1)).all()
    assert set(np.unique(mstart[mstart > 0])) <= set(days)  # first image date of mining
    for m in mines:
        areas = [a for _, a in m["growth"]]
        assert [d for d, _ in m["growth"]] == [d.isoformat() for d in scene.dates]
        assert areas == sorted(areas) and areas[-1] == pytest.approx(m["area_ha"])
        assert _day(m["start_date"]) <= days[-1]
        if m["end_date"] is not None:
            assert _day(m["start_date"]) < _day(m["end_date"]) <= days[-1]
    # confounder bits agree with the label precedence mining > flood > farm > burn
    farm, burn, flood = (conf & 1) > 0, (conf & 2) > 0, (conf & 4) > 0
    assert farm.any() and burn.any()
    assert ((labels == 4) == (flood & (labels != 1))).all()
    assert ((labels == 2) == (farm & ~flood & (labels != 1))).all()
    assert ((labels == 3) == (burn & ~farm & ~flood & (labels != 1))).all()
    # farm and burn features cover the pixels their bits mark
    for cls, bit in (("farm", farm), ("burn", burn)):
        area = sum(f["properties"]["area_ha"] for f in truth if f["properties"]["class"] == cls)
        assert area >= bit.sum() * px_ha - 1e-6


def test_sites_on_every_ground_grow_outward_and_start_spread():
    grounds = Counter()
    starts, corr = [], []
    for seed in range(4):
        inp = _plan(seed)
        first, last = int(inp.calendar.days[0]), int(inp.calendar.days[-1])
        for s in inp.sites:
            grounds[s.ground] += 1
            rr, cc = np.nonzero(s.open_day <= last)
            od = s.open_day[rr, cc]
            starts.append((od.min() - first) / (last - first))
            if len(od) >= 30 and np.ptp(od) > 0:
                k = np.argmin(od)
                dist = np.hypot(rr - rr[k], cc - cc[k])
                rank = np.argsort(np.argsort(od))
                corr.append(np.corrcoef(np.argsort(np.argsort(dist)), rank)[0, 1])
        assert len(inp.sites) >= 8
    assert set(grounds) == {"vegetated", "river", "bare", "reworked"}, grounds
    starts = np.array(starts)
    assert (starts <= 0.03).sum() >= 2  # before / at the first date
    assert (starts >= 0.88).sum() >= 2  # in the last dates
    assert ((starts > 0.1) & (starts < 0.85)).mean() > 0.5
    assert np.median(corr) > 0.5  # late pixels lie far from the first pit


def test_site_sizes_are_artisanal():
    areas = []
    for seed in range(3):
        inp = _plan(seed)
        areas += [float((s.open_day < 2**40).sum()) * 0.01 for s in inp.sites]
    areas = np.array(areas)
    assert areas.max() <= 16.0 and areas.min() >= 0.03
    assert (areas < 1.0).sum() >= 3
    assert 8 <= len(areas) / 3 <= 20  # about 14 per 256 x 256 px scene


def test_pixels_follow_the_ground_of_each_site(real_scene):
    """Vegetated ground loses NDVI when dug; bare ground is bare before; rivers are water."""
    scene, refl, cloud = real_scene
    ndvi = (refl[:, 3] - refl[:, 2]) / (refl[:, 3] + refl[:, 2])
    mndwi = (refl[:, 1] - refl[:, 4]) / (refl[:, 1] + refl[:, 4])
    import geopandas as gpd
    from rasterio.features import geometry_mask

    with rasterio.open(scene.mining_start_path) as ds:
        mstart = ds.read(1)
    gdf = gpd.read_file(scene.truth_path).to_crs(scene.crs)
    days = np.array([_day(d.isoformat()) for d in scene.dates])
    checked = Counter()
    for _, row in gdf[gdf["class"] == "mining"].iterrows():
        m = ~geometry_mask([row.geometry], out_shape=scene.shape, transform=scene.transform)
        m &= mstart > 0
        if m.sum() < 6:
            continue
        clear = [(cloud[i][m] == 0).mean() > 0.9 for i in range(len(days))]
        before = [i for i in range(len(days)) if clear[i] and days[i] < mstart[m].min()]
        after = [i for i in range(len(days)) if clear[i] and days[i] >= mstart[m].max()]
        if not before or not after:
            continue
        nb = np.nanmean(ndvi[before[-1]][m])
        na = np.nanmean(ndvi[after[0]][m])
        if row["ground"] == "vegetated":
            assert nb - na > 0.2, row["site_id"]
        elif row["ground"] == "bare":
            assert nb < 0.3 and na < 0.3, row["site_id"]  # no vegetation to lose
        elif row["ground"] == "river":
            # water before digging (channel; the bank too when flooded), gravel bars after
            assert (mndwi[before[-1]][m] > 0).mean() > 0.1, row["site_id"]
            assert (mndwi[after[0]][m] < 0).mean() > 0.3, row["site_id"]
        checked[row["ground"]] += 1
        # every dug pixel is water-like, bare or sparse once opened
        bsi = ((refl[after[0], 4] + refl[after[0], 2]) - (refl[after[0], 3] + refl[after[0], 0]))
        disturbed = (mndwi[after[0]][m] > 0) | (bsi[m] > 0) | (ndvi[after[0]][m] < 0.3)
        assert disturbed.mean() > 0.8, row["site_id"]
    assert len(checked) >= 2, checked


def test_seasons_fields_and_floods_behave(real_scene):
    scene, refl, cloud = real_scene
    with rasterio.open(scene.labels_path) as ds:
        labels = ds.read(1)
    ndvi = (refl[:, 3] - refl[:, 2]) / (refl[:, 3] + refl[:, 2])
    months = np.array([d.month for d in scene.dates])
    from kpgeo.simulate.realbase.basemap import GRASS, WOODLAND

    clear = cloud == 0
    savanna = np.isin(_land_use(scene), (GRASS, WOODLAND))
    assert savanna.sum() > 500
    bg = clear & ((labels == 0) & savanna)[None]
    dry = np.nanmedian(np.where(bg[np.isin(months, [1, 2, 3])], ndvi[np.isin(months, [1, 2, 3])],
                                np.nan))
    wet = np.nanmedian(np.where(bg[np.isin(months, [8, 9, 10])],
                                ndvi[np.isin(months, [8, 9, 10])], np.nan))
    assert 0.15 < dry < wet - 0.1 and 0.5 < wet < 0.92  # the savanna browns in the dry season
    vals = refl[np.broadcast_to(clear[:, None], refl.shape)]
    assert np.nanmin(vals) > -0.05 and np.nanmax(vals) < 0.8
    # fields: somewhere a field pixel is bare (NDVI < 0.25) on one clear date, green on another
    farm = labels == 2
    nd_f = np.where(clear & farm[None], ndvi, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cycled = (np.nanmin(nd_f, axis=0) < 0.25) & (np.nanmax(nd_f, axis=0) > 0.6)
    assert cycled.sum() > 20
    # flood pixels are open water (NDVI < 0) on some clear date and not on another
    # (flooded ground, or a shore falling dry at low water)
    flood = labels == 4
    assert flood.sum() > 10
    nd_w = np.where(clear & flood[None], ndvi, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels never seen clear
        lo, hi = np.nanmin(nd_w, axis=0), np.nanmax(nd_w, axis=0)
    assert ((lo < 0) & (hi - lo > 0.3))[flood].mean() > 0.5
    assert np.nanpercentile(ndvi[clear], 0.1) > -1.0


def test_scl_is_informative_but_imperfect(tmp_path):
    scene = simulate_scene(tmp_path, shape=(128, 128), n_dates=12, preset="cloudy", seed=2,
                           source="real")
    scl = np.stack([rasterio.open(scene.asset_path(i, "scl")).read(1)
                    for i in range(len(scene.dates))])
    with rasterio.open(scene.cloud_path) as ds:
        truth = ds.read()[:, ::2, ::2]
    valid = scl > 0
    flagged = np.isin(scl, (3, 8, 9, 10))
    cloud = (truth == 1) & valid
    assert cloud.sum() > 500 and flagged[cloud].mean() > 0.9
    subtle = np.isin(truth, (2, 3)) & valid
    assert subtle.sum() > 200 and 0.1 < flagged[subtle].mean() < 0.95
    clear = (truth == 0) & valid
    assert flagged[clear].mean() < 0.1
    cc = [f["properties"]["eo:cloud_cover"]
          for f in json.loads(scene.items_path.read_text())["features"]]
    assert np.mean(cc) > 15


# --------------------------------------------------------------------------- data, cube, CLI


def test_real_data_shipped_with_sources():
    from kpgeo.simulate.realbase import sources

    text = (sources.DATA_DIR / "SOURCE.md").read_text()
    total = 0
    for name in sources.DATA_FILES.values():
        p = sources.DATA_DIR / name
        assert p.is_file(), p
        total += p.stat().st_size
        stem = name.split("_B")[0] if name.endswith(".jp2") else name
        assert stem in text, name
    assert total < 6e6
    assert "licence" in text.lower() or "license" in text.lower()
    for py in Path(sources.__file__).parent.glob("*.py"):
        if py.name != "make_data.py":
            assert "/work/shared" not in py.read_text(), py


def test_real_scene_loads_as_a_cube_and_evaluates(tmp_path, real_scene):
    import geopandas as gpd

    from kpgeo.cube import load_cube
    from kpgeo.evaluate import evaluate_files

    scene = real_scene[0]
    cube = load_cube(scene.items_path)
    assert cube.sizes["time"] == len(scene.dates)
    assert (cube.sizes["y"], cube.sizes["x"]) == scene.shape
    assert set(BANDS) <= set(cube.data_vars) and "clear" in cube
    clear = cube["clear"].values
    assert 0.3 < clear.mean() < 1.0
    nir = cube["nir"].values
    assert np.isnan(nir[~clear]).all()
    assert 0.02 < np.nanmedian(nir) < 0.6 and np.nanmax(nir) < 1.5  # scale/offset applied
    # footprints = the truth itself: evaluate must find every site
    gdf = gpd.read_file(scene.truth_path)
    fp = tmp_path / "fp.geojson"
    gdf[gdf["class"] == "mining"][["geometry"]].to_file(fp, driver="GeoJSON")
    m = evaluate_files(scene.truth_path, fp, labels=scene.labels_path)
    assert m["object"]["recall"] == 1.0 and m["object"]["precision"] == 1.0
    assert m["pixel"]["fp"] == 0 and m["pixel"]["fn"] == 0


def test_cli_source_real(tmp_path):
    from click.testing import CliRunner

    from kpgeo.cli import main

    out = tmp_path / "scene"
    res = CliRunner().invoke(main, ["simulate", "--out", str(out), "--size", "64", "--dates",
                                    "3", "--seed", "1", "--source", "real"])
    assert res.exit_code == 0, res.output
    assert "real source" in res.output
    assert len(list(out.glob("S2_*/scl.tif"))) == 3
    items = json.loads((out / "items.json").read_text())["features"]
    assert {f["properties"]["kpgeo:source"] for f in items} == {"real"}
