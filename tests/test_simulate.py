"""Tests of the scene simulator (kpgeo.simulate) and its CLI."""

from __future__ import annotations

import datetime as dt
import json
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio

from kpgeo.errors import ConfigError, OutputExistsError
from kpgeo.simulate import PRESETS, simulate_scene

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")


def _read_all(scene):
    """Every raster of a scene as {relative path: array}."""
    out = {}
    for p in sorted(scene.out_dir.rglob("*.tif")):
        with rasterio.open(p) as ds:
            out[str(p.relative_to(scene.out_dir))] = ds.read()
    return out


def _day(value):
    """Days since 1970-01-01 of an ISO string / Timestamp; None for null."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return dt.date.fromisoformat(str(value)[:10]).toordinal() - 719163


def _stack(scene):
    """(t, band, y, x) reflectance (NaN at nodata), truth cloud (t, y, x), SCL (t, y2, x2)."""
    refl, scl = [], []
    for i in range(len(scene.dates)):
        bands = []
        for b in BANDS:
            with rasterio.open(scene.asset_path(i, b)) as ds:
                a = ds.read(1).astype(np.float32)
            bands.append(np.where(a == 0, np.nan, a * 1e-4 - 0.1))
        refl.append(np.stack(bands))
        with rasterio.open(scene.asset_path(i, "scl")) as ds:
            scl.append(ds.read(1))
    with rasterio.open(scene.cloud_path) as ds:
        cloud = ds.read()
    return np.stack(refl), cloud, np.stack(scl)


def _feature_masks(scene, cls):
    """[(properties, bool mask)] for the truth features of one class, on the scene grid."""
    import geopandas as gpd
    from rasterio.features import geometry_mask

    gdf = gpd.read_file(scene.truth_path).to_crs(scene.crs)
    out = []
    for _, row in gdf[gdf["class"] == cls].iterrows():
        m = ~geometry_mask([row.geometry], out_shape=scene.shape, transform=scene.transform)
        out.append((row, m))
    return out


def _ndvi(r):
    return (r[:, 3] - r[:, 2]) / (r[:, 3] + r[:, 2])


@pytest.fixture(scope="module")
def truth_scene(tmp_path_factory):
    """A scene rich in events and mostly clear, to check truth against pixels."""
    params = PRESETS["default"].replace(
        name="test", min_mining_sites=4, min_farms=6, min_burns=4, farms_per_100km2=0,
        burns_per_100km2=0, mining_sites_per_100km2=0, cloud_dry=0.05, cloud_wet=0.2,
        burn_area_ha=(1.0, 8.0), single_pit_fraction=0.0,
    )
    out = tmp_path_factory.mktemp("truth_scene")
    scene = simulate_scene(out, shape=(192, 192), n_dates=60, preset=params, seed=12,
                           tile_size=128)
    refl, cloud, scl = _stack(scene)
    return scene, refl, cloud, scl


@pytest.fixture(scope="module")
def cloudy_scene(tmp_path_factory):
    out = tmp_path_factory.mktemp("cloudy_scene")
    scene = simulate_scene(out, shape=(256, 256), n_dates=16, preset="cloudy", seed=4)
    return (scene, *_stack(scene))


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_and_tiling_invariant(tmp_path):
    a = simulate_scene(tmp_path / "a", shape=(128, 96), n_dates=4, seed=5, tile_size=64,
                       preset="default")
    b = simulate_scene(tmp_path / "b", shape=(128, 96), n_dates=4, seed=5, tile_size=128,
                       preset="default")
    c = simulate_scene(tmp_path / "c", shape=(128, 96), n_dates=4, seed=6, tile_size=64,
                       preset="default")
    ra, rb, rc = _read_all(a), _read_all(b), _read_all(c)
    assert ra.keys() == rb.keys() and len(ra) == 4 * 7 + 4
    for k in ra:
        assert ra[k].tobytes() == rb[k].tobytes(), k  # same seed, other tiling: identical
    assert (a.out_dir / "truth.geojson").read_text() == (b.out_dir / "truth.geojson").read_text()
    assert a.dates == b.dates
    assert a.dates != c.dates or any(
        not np.array_equal(ra[k], rc[k]) for k in ra if k in rc
    )
    nir_a = [v for k, v in ra.items() if k.endswith("nir.tif")]
    nir_c = [v for k, v in rc.items() if k.endswith("nir.tif")]
    assert not np.array_equal(nir_a[0], nir_c[0])


# --------------------------------------------------------------------------- files / STAC


def test_items_load_with_pystac_and_assets_match(truth_scene):
    import pystac

    scene = truth_scene[0]
    items = pystac.ItemCollection.from_file(str(scene.items_path))
    assert len(items) == len(scene.dates) == 60
    times = [it.datetime for it in items]
    assert times == sorted(times)
    raw = json.loads(scene.items_path.read_text())
    for item, d in zip(items, raw["features"], strict=True):
        props = d["properties"]
        assert props["datetime"].endswith("Z")
        assert item.collection_id == "sentinel-2-l2a"
        assert props["platform"] in ("sentinel-2a", "sentinel-2b")
        assert props["s2:processing_baseline"] == "05.00"
        assert 0 <= props["eo:cloud_cover"] <= 100
        assert props["proj:code"] == scene.crs == f"EPSG:{props['proj:epsg']}"
        assert set(item.assets) == {*BANDS, "scl"}
        for key in item.assets:
            rel = d["assets"][key]["href"]
            assert not rel.startswith("/")  # relative to items.json
            href = scene.items_path.parent / rel
            with rasterio.open(href) as ds:
                assert ds.crs.to_epsg() == props["proj:epsg"]
                assert list(ds.transform)[:6] == pytest.approx(d["assets"][key]["proj:transform"])
                assert list(ds.shape) == d["assets"][key]["proj:shape"]
                rb = d["assets"][key]["raster:bands"][0]
                assert ds.nodata == rb["nodata"] == 0
                if key == "scl":
                    assert ds.dtypes[0] == "uint8" and ds.res == (20.0, 20.0)
                    assert set(np.unique(ds.read(1))) <= {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
                else:
                    assert ds.dtypes[0] == "uint16" and ds.res == (10.0, 10.0)
                    assert (rb["scale"], rb["offset"]) == (0.0001, -0.1)
                    assert ds.profile["compress"].lower() == "deflate"
                    assert ds.profile["tiled"]
    with rasterio.open(scene.cloud_path) as ds:
        assert ds.count == 60
        assert list(ds.descriptions) == [d.isoformat() for d in scene.dates]
    with rasterio.open(scene.mining_start_path) as ds:
        assert ds.dtypes[0] == "int32"


def test_reflectance_is_realistic(truth_scene):
    scene, refl, cloud, _ = truth_scene
    with rasterio.open(scene.labels_path) as ds:
        labels = ds.read(1)
    clear = (cloud == 0) & (labels == 0)[None]
    ndvi = _ndvi(refl)
    doy = np.array([d.timetuple().tm_yday for d in scene.dates])
    dry = np.isin([d.month for d in scene.dates], [1, 2, 3])
    wet = np.isin([d.month for d in scene.dates], [7, 8, 9])
    assert dry.any() and wet.any() and doy.size == 60
    ndvi_dry = np.nanmedian(np.where(clear[dry], ndvi[dry], np.nan))
    ndvi_wet = np.nanmedian(np.where(clear[wet], ndvi[wet], np.nan))
    assert 0.2 < ndvi_dry < 0.55 < ndvi_wet < 0.85  # savanna browns in the dry season
    vals = refl[np.broadcast_to(clear[:, None], refl.shape)]
    assert np.nanmin(vals) > -0.05 and np.nanmax(vals) < 0.7


# --------------------------------------------------------------------------- truth vs pixels


def test_mining_pixels_lose_vegetation_after_start(truth_scene):
    scene, refl, cloud, _ = truth_scene
    with rasterio.open(scene.mining_start_path) as ds:
        mstart = ds.read(1)
    days = np.array([_day(d.isoformat()) for d in scene.dates])
    mine = mstart > 0
    assert mine.sum() >= 20
    before = (days[:, None, None] < mstart[None]) & mine[None] & (cloud == 0)
    after = (days[:, None, None] >= mstart[None]) & mine[None] & (cloud == 0)
    assert before.sum() > 50 and after.sum() > 50
    ndvi = _ndvi(refl)
    r = refl
    mndwi = (r[:, 1] - r[:, 4]) / (r[:, 1] + r[:, 4])
    bsi = ((r[:, 4] + r[:, 2]) - (r[:, 3] + r[:, 0])) / ((r[:, 4] + r[:, 2]) + (r[:, 3] + r[:, 0]))
    assert np.nanmean(ndvi[before]) - np.nanmean(ndvi[after]) > 0.2
    # each pixel after its start is water-like or bare-soil-like
    disturbed = (mndwi[after] > 0.0) | (bsi[after] > 0.0) | (ndvi[after] < 0.25)
    assert disturbed.mean() > 0.8
    # non-mining pixels at the same dates do not show that drop
    other = (~mine)[None] & (cloud == 0)
    assert np.nanmean(ndvi[other]) > np.nanmean(ndvi[after]) + 0.2
    # growth series is consistent with the label raster
    truth = json.loads(scene.truth_path.read_text())
    mines = [f for f in truth["features"] if f["properties"]["class"] == "mining"]
    assert mines
    for f in mines:
        g = f["properties"]["growth"]
        areas = [a for _, a in g]
        assert [d for d, _ in g] == [d.isoformat() for d in scene.dates]
        assert areas == sorted(areas) and areas[-1] == pytest.approx(f["properties"]["area_ha"],
                                                                       rel=1e-3)
    total_final = sum(f["properties"]["area_ha"] for f in mines)
    assert mine.sum() * 0.01 == pytest.approx(total_final, rel=0.35)


def test_farms_are_bare_then_regrow(truth_scene):
    scene, refl, cloud, _ = truth_scene
    days = np.array([_day(d.isoformat()) for d in scene.dates])
    ndvi = _ndvi(refl)
    checked = 0
    for props, m in _feature_masks(scene, "farm"):
        if _day(props["end_date"]) is None or m.sum() < 4:
            continue
        s, e = _day(props["start_date"]), _day(props["end_date"])
        bare = [i for i in range(len(days)) if s + 5 <= days[i] <= s + 30
                and (cloud[i][m] == 0).mean() > 0.8]
        regrown = [i for i in range(len(days)) if e <= days[i] <= e + 60
                   and (cloud[i][m] == 0).mean() > 0.8]
        if not bare or not regrown:
            continue
        nb = np.nanmean([np.nanmean(ndvi[i][m]) for i in bare])
        nr = np.nanmean([np.nanmean(ndvi[i][m]) for i in regrown])
        assert nr - nb > 0.2, props["site_id"]
        checked += 1
    assert checked >= 1


def test_burn_scars_are_dark_and_recover(truth_scene):
    from scipy.ndimage import binary_dilation

    scene, refl, cloud, _ = truth_scene
    with rasterio.open(scene.labels_path) as ds:
        labels = ds.read(1)
    days = np.array([_day(d.isoformat()) for d in scene.dates])
    nbr = (refl[:, 3] - refl[:, 5]) / (refl[:, 3] + refl[:, 5])
    checked = 0
    for props, poly in _feature_masks(scene, "burn"):
        m = poly & (labels == 3)
        ring = binary_dilation(poly, iterations=15) & ~poly & (labels == 0)
        if m.sum() < 20 or ring.sum() < 20:
            continue
        s, e = _day(props["start_date"]), _day(props["end_date"]) or _day("2100-01-01")

        def ok(i, m=m, ring=ring):
            return (cloud[i][m] == 0).mean() > 0.9 and (cloud[i][ring] == 0).mean() > 0.9

        pre = [i for i in range(len(days)) if s - 40 <= days[i] < s and ok(i)]
        fresh = [i for i in range(len(days)) if s <= days[i] <= s + 10 and ok(i)]
        later = [i for i in range(len(days)) if e <= days[i] <= e + 60 and ok(i)]
        if not (pre and fresh and later):
            continue

        def gap(i, idx, m=m, ring=ring):  # how much darker / lower the scar is than around it
            return np.nanmedian(idx[i][ring]) - np.nanmedian(idx[i][m])

        for idx, min_drop in ((refl[:, 3], 0.04), (nbr, 0.08)):
            drop = gap(fresh[0], idx) - gap(pre[-1], idx)
            assert drop > min_drop, props["site_id"]
            assert gap(later[0], idx) - gap(pre[-1], idx) < 0.5 * drop, props["site_id"]
        assert np.nanmedian(refl[fresh[0], 5][m]) > 0.6 * np.nanmedian(refl[fresh[0], 3][m])
        checked += 1
    assert checked >= 1


# --------------------------------------------------------------------------- atmosphere


def test_scl_is_informative_but_imperfect(cloudy_scene):
    scene, refl, cloud, scl = cloudy_scene
    t = cloud[:, ::2, ::2]
    valid = scl > 0
    flagged = np.isin(scl, (3, 8, 9, 10))
    true_cloud = (t == 1) & valid
    assert true_cloud.sum() > 1000
    assert flagged[true_cloud].mean() > 0.95
    subtle = np.isin(t, (2, 3)) & valid
    assert subtle.sum() > 500
    assert 0.2 < flagged[subtle].mean() < 0.95  # thin clouds and shadows partly missed
    clear = (t == 0) & valid
    assert 0.0 < flagged[clear].mean() < 0.05  # a few false alarms
    # cloudy preset is much cloudier than clean
    cc = [it["properties"]["eo:cloud_cover"]
          for it in json.loads(scene.items_path.read_text())["features"]]
    assert np.mean(cc) > 25
    # clouds are bright, shadows dark
    assert np.nanmean(refl[:, 0][cloud == 1]) > 0.25
    assert np.nanmean(refl[:, 3][cloud == 2]) < np.nanmean(refl[:, 3][cloud == 0])


def test_clean_preset_is_clearer(tmp_path):
    s = simulate_scene(tmp_path, shape=(128, 128), n_dates=16, preset="clean", seed=4)
    with rasterio.open(s.cloud_path) as ds:
        clean = (ds.read() == 1).mean()
    assert clean < 0.2


# --------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_large_scene_memory_is_bounded(tmp_path):
    shape, n_dates = (1536, 1536), 2
    full_stack = shape[0] * shape[1] * 6 * n_dates * 4  # float32 reflectance stack
    tracemalloc.start()
    try:
        scene = simulate_scene(tmp_path, shape=shape, n_dates=n_dates, tile_size=256,
                               preset="default", seed=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < full_stack / 4, f"peak {peak / 2**20:.0f} MiB"
    with rasterio.open(scene.asset_path(1, "nir")) as ds:
        assert ds.shape == shape
        assert ds.overviews(1)  # COG with overviews
        assert ds.read(1, window=((1000, 1100), (1000, 1100))).min() > 0


# --------------------------------------------------------------------------- errors / zone / CLI


@pytest.mark.parametrize(
    "kwargs",
    [
        {"preset": "nope"},
        {"shape": (8, 8)},
        {"shape": (64, "x")},
        {"n_dates": 0},
        {"n_dates": 10_000},
        {"start": "2020-01-01", "end": "2019-01-01"},
        {"start": "yesterday"},
        {"tile_size": 100},
        {"bbox": (10, 5, 9, 6)},
    ],
)
def test_bad_parameters_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        simulate_scene(tmp_path, **kwargs)
    assert not (tmp_path / "items.json").exists()


def test_unknown_preset_lists_valid_names(tmp_path):
    with pytest.raises(ConfigError, match="small-pits"):
        simulate_scene(tmp_path, preset="mines-everywhere")


def test_refuses_existing_scene_without_overwrite(tmp_path):
    simulate_scene(tmp_path, shape=(64, 64), n_dates=2)
    with pytest.raises(OutputExistsError):
        simulate_scene(tmp_path, shape=(64, 64), n_dates=2, overwrite=False)


def test_zone_scene_straddles_boundary(tmp_path):
    zones = pytest.importorskip("kpgeo.zones")
    import geopandas as gpd
    from shapely.geometry import box

    zone = zones.get_zone("caf-berberati")
    scene = simulate_scene(tmp_path, zone="caf-berberati", shape=(128, 128), n_dates=4, seed=0)
    fp = gpd.GeoSeries([box(*rasterio.open(scene.asset_path(0, "red")).bounds)],
                       crs=scene.crs).to_crs(4326).iloc[0]
    inside = fp.intersection(zone.geometry).area / fp.area
    assert 0.05 < inside < 0.95
    truth = json.loads(scene.truth_path.read_text())
    sides = {f["properties"].get("inside_zone") for f in truth["features"]
             if f["properties"]["class"] == "mining"}
    assert sides == {True, False}


def test_cli_writes_and_refuses_non_empty(tmp_path):
    from click.testing import CliRunner

    from kpgeo.cli import main

    runner = CliRunner()
    out = tmp_path / "scene"
    args = ["simulate", "--out", str(out), "--size", "64", "--dates", "3", "--seed", "1",
            "--bbox", "15.7", "4.2", "15.72", "4.22"]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "items.json" in res.output
    assert len(list(out.glob("S2_*/nir.tif"))) == 3
    res = runner.invoke(main, args)
    assert res.exit_code == 1 and "--overwrite" in res.output
    res = runner.invoke(main, [*args, "--overwrite", "--preset", "bogus"])
    assert res.exit_code == 1 and "ConfigError" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert Path(out / "truth.geojson").exists()


# --------------------------------------------------------------------------- realism fixes


def _plan(preset, seed, shape=(256, 256), n_dates=30):
    """Event plan and calendar of a scene, without rendering it."""
    from kpgeo.simulate import DEFAULT_CENTER
    from kpgeo.simulate.events import plan_events
    from kpgeo.simulate.grid import make_calendar, make_grid
    from kpgeo.simulate.landscape import plan_landscape, woody_at
    from kpgeo.simulate.noise import mix_key

    params = PRESETS[preset] if isinstance(preset, str) else preset
    grid = make_grid(DEFAULT_CENTER, shape, 10.0)
    cal = make_calendar("2019-01-01", "2020-12-31", n_dates, lon=DEFAULT_CENTER[0],
                        rng=np.random.default_rng(mix_key(seed, 1)))
    land = plan_landscape(grid, seed=seed)
    ev = plan_events(grid, cal=cal, land=land, params=params, seed=seed,
                     woody_at=lambda x, y: woody_at(land, grid, x, y))
    return ev, cal


def test_mining_sites_never_overlap():
    from itertools import combinations

    from shapely.ops import unary_union

    params = PRESETS["small-pits"].replace(min_mining_sites=8)
    n_pairs = 0
    for seed in range(4):
        ev, _ = _plan(params, seed)
        assert len(ev.sites) >= 6  # placement rarely gives up
        ext = [unary_union([p.geom for p in s.pits]) for s in ev.sites]
        for a, b in combinations(ext, 2):
            n_pairs += 1
            assert a.distance(b) >= 59.0  # 60 m gap between the pits of two sites
    assert n_pairs > 50


def test_most_sites_start_after_a_baseline_in_every_preset():
    for name in ("default", "cloudy", "small-pits"):
        fr = []
        for seed in range(12):
            ev, cal = _plan(name, seed)
            span = cal.days[-1] - cal.days[0]
            fr += [(min(p.start for p in s.pits) - cal.days[0]) / span for s in ev.sites]
        fr = np.array(fr)
        assert (fr >= 0.19).mean() > 0.7, (name, fr)  # mostly new sites after a baseline
        assert (fr < 0.19).any() or name == "cloudy"  # a few pre-existing / early ones remain
        assert fr.max() <= 0.86


def test_flood_cover_and_turbidity_vary(tmp_path):
    scene = simulate_scene(tmp_path, shape=(256, 256), n_dates=24, preset="clean", seed=2)
    refl, cloud, _ = _stack(scene)
    with rasterio.open(scene.confounders_path) as ds:
        conf = ds.read(1)
    flood = (conf & 4) > 0
    assert flood.sum() > 500
    wet = [i for i, d in enumerate(scene.dates) if 7 <= d.month <= 11]
    dry = [i for i, d in enumerate(scene.dates) if d.month in (2, 3)]
    assert wet and dry
    ndvi = _ndvi(refl)
    # per-date median NDVI of the flood pixels (open water < 0 < wet grass)
    ok = (cloud == 0)
    per_date = []
    for i in wet:
        m = flood & ok[i]
        if m.sum() > 200:
            per_date.append(np.nanmedian(ndvi[i][m]))
    assert len(per_date) >= 2
    # some flooded pixels are (almost) fully open water: NDVI clearly below zero
    lowest = min(np.nanpercentile(ndvi[i][flood & ok[i]], 5) for i in wet
                 if (flood & ok[i]).sum() > 200)
    assert lowest < -0.1
    # and the flood signal differs from date to date and place to place
    assert np.ptp(per_date) > 0.05 or np.nanstd(ndvi[wet[0]][flood & ok[wet[0]]]) > 0.1


def test_label_precedence_mining_flood_farm_burn(tmp_path):
    from kpgeo.simulate.writer import label_precedence

    z = np.zeros((1, 5), bool)
    mining, flood, farm, burn = z.copy(), z.copy(), z.copy(), z.copy()
    burn[:] = True
    farm[0, 1:] = True
    flood[0, 2:] = True
    mining[0, 3:4] = True
    lab = label_precedence(mining=mining, flood=flood, farm=farm, burn=burn)
    assert lab.tolist() == [[3, 2, 4, 1, 4]]
    scene = simulate_scene(tmp_path, shape=(128, 128), n_dates=6,
                           preset=PRESETS["burn-heavy"].replace(burns_per_100km2=400.0), seed=1)
    with rasterio.open(scene.labels_path) as ds:
        lab = ds.read(1)
    with rasterio.open(scene.confounders_path) as ds:
        conf = ds.read(1)
    farm_b, burn_b, flood_b = (conf & 1) > 0, (conf & 2) > 0, (conf & 4) > 0
    assert burn_b.any() and flood_b.any()
    assert ((lab == 3) == (burn_b & ~farm_b & ~flood_b & (lab != 1))).all()
    assert ((flood_b & (lab != 1)) == (lab == 4)).all()
    assert ((lab == 2) == (farm_b & ~flood_b & (lab != 1))).all()


# --------------------------------------------------------------------------- domain randomisation


def test_randomisation_is_off_by_default(tmp_path):
    from kpgeo.simulate.presets import RANDOM_RANGES

    assert not any(p.randomize for p in PRESETS.values())
    scene = simulate_scene(tmp_path, shape=(64, 64), n_dates=3, seed=3, preset="default")
    assert scene.params == PRESETS["default"] and scene.source == "procedural"
    truth = json.loads(scene.truth_path.read_text())
    assert "sim_params" not in truth
    assert all("ground" not in f["properties"] for f in truth["features"])
    # every randomised field has a documented range
    fields = set(RANDOM_RANGES["absolute"]) | set(RANDOM_RANGES["relative"])
    assert {"greenness_offset", "pheno_amplitude", "pheno_shift_days", "gravel_brightness",
            "revisit_gap_fraction", "nongreen_site_fraction", "cloud_dry"} <= fields


def test_default_output_reproduces_the_sample_tiles(tmp_path):
    """The committed sample tiles are what the default simulator writes today."""
    import importlib.util

    root = Path(__file__).resolve().parents[1] / "sample_tiles"
    spec = importlib.util.spec_from_file_location("make_tiles", root / "make_tiles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    zone = "caf-berberati"
    out = tmp_path / zone
    simulate_scene(out, zone=zone, **mod.COMMON, **mod.SCENES[zone])
    ref = root / zone
    names = sorted(str(p.relative_to(ref)) for p in ref.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    for name in names:
        if name.endswith(".tif"):
            with rasterio.open(ref / name) as a, rasterio.open(out / name) as b:
                assert np.array_equal(a.read(), b.read()), name
        else:
            assert (ref / name).read_text() == (out / name).read_text(), name


def test_randomisation_draws_parameters_per_seed():
    from kpgeo.simulate.presets import RANDOM_RANGES, randomize_params

    base = PRESETS["default"]
    drawn = [randomize_params(base, s) for s in range(6)]
    assert randomize_params(base, 2) == drawn[2]  # deterministic
    for name, (lo, hi) in RANDOM_RANGES["absolute"].items():
        if name.startswith("pit_turbidity"):
            continue
        vals = [getattr(p, name) for p in drawn]
        assert all(lo <= v <= hi for v in vals), name
        assert len(set(vals)) == 6, name  # changes with the seed
    for name, (lo, hi) in RANDOM_RANGES["relative"].items():
        ref = getattr(base, name)
        vals = [getattr(p, name) for p in drawn]
        if name != "cloud_wet":  # raised to cloud_dry when the draw falls below it
            assert all(min(ref * lo, 0.95) - 1e-12 <= v <= min(ref * hi, 0.95) + 1e-12
                       for v in vals), name
        assert len(set(vals)) == 6, name
    assert all(p.randomize and p.name == "default+random" for p in drawn)
    assert all(p.cloud_wet >= p.cloud_dry for p in drawn)
    assert all(0 <= p.pit_turbidity[0] < p.pit_turbidity[1] <= 1 for p in drawn)
    # the relative jitter keeps the presets apart on average
    clean = [randomize_params(PRESETS["clean"], s).cloud_wet for s in range(6)]
    cloudy = [randomize_params(PRESETS["cloudy"], s).cloud_wet for s in range(6)]
    assert np.mean(clean) < np.mean([p.cloud_wet for p in drawn]) < np.mean(cloudy)


def test_randomised_scene_varies_and_digs_non_green_ground(tmp_path):
    a = simulate_scene(tmp_path / "a", shape=(96, 96), n_dates=6, seed=4, preset="default",
                       randomize=True)
    b = simulate_scene(tmp_path / "b", shape=(96, 96), n_dates=6, seed=4, preset="default")
    assert a.params.randomize and a.preset == "default+random"
    truth = json.loads(a.truth_path.read_text())
    assert truth["sim_params"]["greenness_offset"] == a.params.greenness_offset
    with rasterio.open(a.asset_path(0, "nir")) as da, rasterio.open(b.asset_path(0, "nir")) as db:
        assert not np.array_equal(da.read(), db.read())
    grounds = Counter()
    for seed in range(8):
        params = PRESETS["default"].replace(nongreen_site_fraction=0.6)
        ev, cal = _plan(params, seed)
        for s in ev.sites:
            grounds[s.ground] += 1
            if s.ground in ("channel", "cleared"):
                assert s.pre_clear is not None and s.pre_clear < min(p.start for p in s.pits)
    assert grounds["channel"] > 0 and grounds["cleared"] > 0 and grounds["bank"] > 0


def test_cleared_ground_is_bare_before_the_first_pit(tmp_path):
    # the non-green placement alone (randomize=True would draw the fraction)
    params = PRESETS["default"].replace(name="cleared", nongreen_site_fraction=1.0,
                                        min_mining_sites=4,
                                        cloud_dry=0.0, cloud_wet=0.0, cirrus_probability=0.0)
    scene = simulate_scene(tmp_path, shape=(128, 128), n_dates=24, seed=1, preset=params)
    refl, cloud, _ = _stack(scene)
    ndvi = _ndvi(refl)
    with rasterio.open(scene.mining_start_path) as ds:
        mstart = ds.read(1)
    days = np.array([_day(d.isoformat()) for d in scene.dates])
    checked = 0
    for props, m in _feature_masks(scene, "mining"):
        m = m & (mstart > 0)
        first_pit = mstart[m].min() if m.any() else None
        if props["ground"] != "cleared" or first_pit is None:
            continue
        before = [i for i in range(len(days)) if days[i] < first_pit
                  and (cloud[i][m] == 0).mean() > 0.9]
        if not before:
            continue
        assert np.nanmean(ndvi[before[-1]][m]) < 0.3, props["site_id"]  # already bare
        checked += 1
    assert checked >= 1


def test_revisit_gaps_keep_n_dates():
    from kpgeo.simulate.grid import make_calendar

    plain = make_calendar("2019-01-01", "2020-12-31", 30, lon=15.0,
                          rng=np.random.default_rng(3))
    gaps = make_calendar("2019-01-01", "2020-12-31", 30, lon=15.0,
                         rng=np.random.default_rng(3), gap_fraction=0.35)
    assert len(gaps.dates) == 30 and list(gaps.dates) == sorted(set(gaps.dates))
    assert plain.dates != gaps.dates
    full = make_calendar("2019-01-01", "2019-03-01", 12, lon=15.0,
                         rng=np.random.default_rng(3), gap_fraction=0.9)
    assert len(full.dates) == 12  # never fewer than asked
