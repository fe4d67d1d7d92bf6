"""Sampling design (kpgeo.sampling) and the simulated-analyst chain on a simulated scene."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from click.testing import CliRunner
from pyproj import CRS

from kpgeo.area import ALL_MINING, estimate_sheet, read_labels
from kpgeo.cli import main
from kpgeo.errors import ConfigError, CRSMismatchError, OutputExistsError
from kpgeo.sampling import (
    CLASSES,
    ChangeMap,
    Period,
    SampleSizeWarning,
    allocate,
    draw_sample,
    label_from_truth,
    labelling_sheet,
    period_class,
    plan_sample,
    read_change_map,
    sample_size,
    sample_units_layer,
    sample_zone,
    stratify,
    stratum_pixels,
)

EPOCH = dt.date(1970, 1, 1)


def day(iso):
    return (dt.date.fromisoformat(iso) - EPOCH).days


# --------------------------------------------------------------------------- Eq. (13)


def test_sample_size_olofsson_2014_example():
    # section 5: W = 0.020, 0.015, 0.320, 0.645; U = 0.70, 0.60, 0.90, 0.95; S(O) = 0.01
    w = [0.020, 0.015, 0.320, 0.645]
    u = [0.70, 0.60, 0.90, 0.95]
    assert sample_size(w, u, 0.01) == 641
    # pixel counts give the same weights
    assert sample_size([200_000, 150_000, 3_200_000, 6_450_000], u, 0.01) == 641
    # halving the target SE quadruples n (before rounding)
    assert sample_size(w, u, 0.005) == int(np.ceil(4 * 640.5359220665348))


def test_allocation_proportional_and_with_minimum():
    pixels = {"d": 200_000, "g": 150_000, "f": 3_200_000, "n": 6_450_000}
    # proportional (Olofsson et al. 2014, Table 5): 13, 10, 205, 413
    assert allocate(641, pixels, min_per_stratum=0) == {"d": 13, "g": 10, "f": 205, "n": 413}
    # 75 to each rare class, the remaining 491 in proportion: 491*0.32/0.965, 491*0.645/0.965
    assert allocate(641, pixels, min_per_stratum=75) == {"d": 75, "g": 75, "f": 163, "n": 328}
    # never more units than pixels; empty strata get none
    assert allocate(100, {"a": 3, "b": 0, "c": 10_000}, min_per_stratum=50) == {
        "a": 3, "b": 0, "c": 97}
    with pytest.raises(ConfigError, match="positive integer"):
        allocate(0, pixels)


def test_sample_size_refuses_bad_inputs():
    with pytest.raises(ConfigError, match="user's accuracies"):
        sample_size([0.5, 0.5], [0.9, 1.2], 0.01)
    with pytest.raises(ConfigError, match="same length"):
        sample_size([0.5, 0.5], [0.9], 0.01)
    with pytest.raises(ConfigError, match="target standard error"):
        sample_size([0.5, 0.5], [0.9, 0.8], 0)


# --------------------------------------------------------------------------- strata


def tiny_map():
    """9 x 12 change map: new site, stable site, a site detected after the period, no data."""
    state = np.zeros((9, 12), "uint8")
    fd = np.full((9, 12), -1, "int32")
    state[1:3, 1:3], fd[1:3, 1:3] = 1, day("2020-05-01")      # new in 2020
    state[6:8, 1:3], fd[6:8, 1:3] = 3, day("2019-03-01")      # stable (inactive now)
    state[1:3, 9:11], fd[1:3, 9:11] = 2, day("2021-02-01")    # after the period
    state[8, 6] = 255                                          # insufficient data
    return ChangeMap(state=state, first_detected=fd, transform=Affine(10, 0, 300000, 0, -10,
                                                                       500000),
                     crs=CRS.from_epsg(32633), zone="tiny")


def test_stratify_assigns_each_pixel_once():
    cmap = tiny_map()
    st = stratify(cmap, period=Period.parse("2020-01-01/2020-12-31"), buffer_px=1)
    assert (st[1:3, 1:3] == 1).all()
    assert (st[6:8, 1:3] == 2).all()
    assert st[8, 6] == 0
    # ring of width 1 around mapped mining (4-neighbours and diagonals within the disk)
    assert st[0, 1] == 3 and st[3, 2] == 3 and st[1, 3] == 3 and st[5, 1] == 3
    assert st[0, 0] == 4  # diagonal corner is outside a radius-1 disk
    # mining detected after the period is not mining at its end, and gets no buffer
    assert (st[1:3, 9:11] == 4).all() and st[0, 9] == 4
    assert stratum_pixels(st) == {"new mining": 4, "stable mining": 4,
                                  "buffer": int((st == 3).sum()),
                                  "no change": int((st == 4).sum())}
    # the whole series: everything mapped is new, and the late site too
    st_all = stratify(cmap, buffer_px=0)
    assert (st_all[1:3, 9:11] == 1).all() and (st_all[6:8, 1:3] == 1).all()
    assert not (st_all == 3).any()


def test_stratify_region_and_errors():
    import shapely
    from pyproj import Transformer

    cmap = tiny_map()
    # region: the western half (x < 300060) in lon/lat
    tr = Transformer.from_crs(32633, 4326, always_xy=True)
    (x0, x1), (y0, y1) = tr.transform([300000, 300060], [499910, 500000])
    st = stratify(cmap, region=shapely.box(x0, y0, x1, y1))
    assert (st[:, 6:] == 0).all() and (st[:, :6] > 0).sum() > 0
    with pytest.raises(ConfigError, match="buffer_px"):
        stratify(cmap, buffer_px=-1)
    with pytest.raises(ConfigError, match="after its end"):
        Period.parse("2021-01-01/2020-01-01")
    with pytest.raises(ConfigError, match="START/END"):
        Period.parse("2020-01-01")


def test_period_class_rule():
    days = np.array([day("2019-06-01"), day("2020-01-01"), day("2020-12-31"), day("2021-01-01"),
                     -1, 0])
    mined = np.array([True, True, True, True, True, False])
    cls = period_class(days, mined, Period.parse("2020-01-01/2020-12-31"))
    assert cls.tolist() == [2, 1, 1, 0, 2, 0]


def test_draw_sample_counts_uniqueness_and_seed():
    rng = np.random.default_rng(0)
    strata = rng.choice([1, 2, 3, 4], p=[0.01, 0.01, 0.03, 0.95], size=(200, 300)).astype("uint8")
    strata[:5] = 0
    n = {"new mining": 20, "stable mining": 20, "buffer": 30, "no change": 100}
    units = draw_sample(strata, n, seed=4)
    assert units["stratum"].value_counts().to_dict() == n
    codes = {"new mining": 1, "stable mining": 2, "buffer": 3, "no change": 4}
    assert (strata[units["row"], units["col"]] == units["stratum"].map(codes)).all()
    assert not units.duplicated(["row", "col"]).any()
    again = draw_sample(strata, n, seed=4)
    pd.testing.assert_frame_equal(units, again)
    assert not units.equals(draw_sample(strata, n, seed=5))
    # a census when n exceeds the stratum
    census = draw_sample(strata, {"new mining": 10**6}, seed=0)
    assert len(census) == (strata == 1).sum()


def test_plan_sample_warns_when_rare_errors_will_be_missed():
    strata = np.full((100, 100), 4, "uint8")
    strata[:10, :10] = 1
    with pytest.warns(SampleSizeWarning, match="no change"):
        plan = plan_sample(strata, n=100, min_per_stratum=20)
    assert plan["n_per_stratum"] == {"new mining": 20, "stable mining": 0, "buffer": 0,
                                     "no change": 80}
    with pytest.raises(ConfigError, match="unknown strata"):
        plan_sample(strata, users={"forest": 0.9})


def test_sheet_geometry_and_truth_labels(tmp_path):
    import rasterio
    from pyproj import Transformer

    cmap = tiny_map()
    period = Period.parse("2020-01-01/2020-12-31")
    strata = stratify(cmap, period=period, buffer_px=1)
    units = draw_sample(strata, stratum_pixels(strata), seed=1)  # every pixel
    sheet = labelling_sheet(cmap, units, period=period, stratum_pixels=stratum_pixels(strata))
    row = sheet[(sheet["row"] == 1) & (sheet["col"] == 2)].iloc[0]
    assert (row["x"], row["y"]) == (300025.0, 499985.0)
    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(300025.0, 499985.0)
    assert (row["lon"], row["lat"]) == pytest.approx((lon, lat), abs=1e-6)
    assert row["geometry"].centroid.coords[0] == (300025.0, 499985.0)
    assert row["map_class"] == "new mining" and row["period_end"] == "2020-12-31"
    assert sheet["pixel_area_ha"].eq(0.01).all()

    # truth: the new site really started in 2020 and is one pixel wider; the "stable" site
    # truly started in 2020 too; an unmapped site started in 2019
    truth = np.zeros((9, 12), "int32")
    truth[0:4, 0:4] = day("2020-04-10")
    truth[6:8, 1:3] = day("2020-02-01")
    truth[4, 8] = day("2019-01-05")
    path = tmp_path / "truth_mining_start.tif"
    with rasterio.open(path, "w", driver="GTiff", width=12, height=9, count=1, dtype="int32",
                       crs="EPSG:32633", transform=cmap.transform) as dst:
        dst.write(truth, 1)
    labelled = label_from_truth(sheet, path)
    got = dict(zip(zip(labelled["row"], labelled["col"], strict=True), labelled["ref_class"],
                   strict=True))
    assert got[(0, 0)] == "new mining" and got[(3, 3)] == "new mining"
    assert got[(6, 1)] == "new mining" and got[(4, 8)] == "stable mining"
    assert got[(5, 5)] == "no mining"
    # a census with truth labels: the estimate is the true area exactly
    est = estimate_sheet(labelled, fpc=True).area.set_index("class")
    assert est.loc["new mining", "estimated_ha"] == pytest.approx(20 * 0.01)
    assert est.loc[ALL_MINING, "estimated_ha"] == pytest.approx(21 * 0.01)
    assert est.loc[ALL_MINING, "mapped_ha"] == pytest.approx(8 * 0.01)
    assert est.loc[ALL_MINING, "se_ha"] == pytest.approx(0.0, abs=1e-12)

    layer = sample_units_layer(labelled)
    assert layer.crs.to_epsg() == 4326 and len(layer) == len(sheet)
    assert layer.loc[labelled["row"].eq(1) & labelled["col"].eq(1), "agrees"].item()
    blank = sample_units_layer(sheet)
    assert blank["ref_class"].isna().all() and blank["agrees"].isna().all()


def test_read_change_map_errors(tmp_path):
    import rasterio

    with pytest.raises(ConfigError, match="state.tif does not exist"):
        read_change_map(tmp_path)
    for name, dtype in (("state", "uint8"), ("first_detected", "int32")):
        with rasterio.open(tmp_path / f"{name}.tif", "w", driver="GTiff", width=4, height=4,
                           count=1, dtype=dtype, crs="EPSG:4326",
                           transform=Affine(0.001, 0, 15, 0, -0.001, 4)) as dst:
            dst.write(np.zeros((4, 4), dtype), 1)
    with pytest.raises(CRSMismatchError, match="geographic"):
        read_change_map(tmp_path)


# --------------------------------------------------------------------------- simulated chain


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    """A 96 x 96 simulated scene, detected; (scene, zone folder)."""
    from kpgeo.cube import load_cube
    from kpgeo.footprints import detect_footprints, write_detection
    from kpgeo.simulate import simulate_scene

    root = tmp_path_factory.mktemp("chain")
    scene = simulate_scene(root / "scene", shape=(96, 96), n_dates=24, preset="default", seed=1)
    change, fps = detect_footprints(load_cube(scene.items_path))
    write_detection(change, fps, root / "det")
    return scene, root / "det"


def test_simulated_analyst_chain(detected, tmp_path):
    import rasterio
    from PIL import Image

    scene, zone_dir = detected
    period = Period.parse("2020-01-01/2020-12-31")
    with pytest.warns(SampleSizeWarning):
        sheet, paths = sample_zone(zone_dir, tmp_path / "s", period=period,
                                   min_per_stratum=15, seed=2, truth=scene.mining_start_path,
                                   items=scene.items_path)
    assert set(paths) == {"labels.csv", "labels.gpkg", "design.json"}
    # the simulated analyst's labels are the truth at each unit (checked independently)
    with rasterio.open(scene.mining_start_path) as src:
        truth = src.read(1)
    lo, hi = day("2020-01-01"), day("2020-12-31")
    start = truth[sheet["row"], sheet["col"]]
    expect = np.where((start >= lo) & (start <= hi), "new mining",
                      np.where((start > 0) & (start < lo), "stable mining", "no mining"))
    assert (sheet["ref_class"].to_numpy() == expect).all()
    assert set(sheet["ref_class"]) <= set(CLASSES)
    # chips: one before/after PNG per unit, the unit's pixel framed at the centre
    chip = tmp_path / "s" / sheet["chip_after"].iloc[0]
    assert chip.is_file() and (tmp_path / "s" / sheet["chip_before"].iloc[0]).is_file()
    img = np.asarray(Image.open(chip))
    assert img.shape == (33 * 4, 33 * 4, 4)
    assert tuple(img[16 * 4 - 4, 16 * 4]) == (255, 0, 255, 255)
    # the sheet reads back and estimates; the estimate is not the mapped area
    est = estimate_sheet(read_labels(paths["labels.csv"])).area.set_index("class")
    mining = est.loc[ALL_MINING]
    assert mining["mapped_ha"] == pytest.approx(
        (sheet.drop_duplicates("stratum").set_index("stratum")["stratum_pixels"]
         .reindex(["new mining", "stable mining"]).fillna(0).sum()) * 0.01)
    assert mining["ci_low_ha"] <= mining["estimated_ha"] <= mining["ci_high_ha"]
    # refuses to overwrite the analyst's sheet
    with pytest.raises(OutputExistsError):
        sample_zone(zone_dir, tmp_path / "s", period=period)


def test_census_of_a_simulated_scene_gives_the_true_area(detected):
    """Sample every pixel: the estimate is the truth exactly, the map is not."""
    import rasterio

    scene, zone_dir = detected
    cmap = read_change_map(zone_dir)
    period = Period.parse("2019-06-01/2020-12-31")
    strata = stratify(cmap, period=period)
    sizes = stratum_pixels(strata)
    units = draw_sample(strata, sizes, seed=0)
    sheet = label_from_truth(labelling_sheet(cmap, units, period=period, stratum_pixels=sizes),
                             scene.mining_start_path)
    est = estimate_sheet(sheet, fpc=True).area.set_index("class")
    with rasterio.open(scene.mining_start_path) as src:
        truth = src.read(1)
    true_ha = ((truth > 0) & (truth <= day("2020-12-31")) & (strata > 0)).sum() * 0.01
    assert est.loc[ALL_MINING, "estimated_ha"] == pytest.approx(true_ha)
    assert est.loc[ALL_MINING, "mapped_ha"] < true_ha  # the detector misses pit edges


def test_cli_sample_then_area(detected, tmp_path):
    scene, zone_dir = detected
    runner = CliRunner()
    out = tmp_path / "sheet"
    res = runner.invoke(main, ["sample", "--run", str(zone_dir), "--region", "all",
                               "--window", "2020-01-01/2020-12-31", "--min-per-stratum", "10",
                               "--truth", str(scene.mining_start_path), "--no-chips",
                               "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "units (new mining 10" in res.output
    res = runner.invoke(main, ["area", "--labels", str(out / "labels.csv")])
    assert res.exit_code == 0, res.output
    assert "estimated" in res.output and "(95 % CI)" in res.output
    area = pd.read_csv(out / "area.csv")
    assert set(area["class"]) == {"new mining", "stable mining", "no mining", ALL_MINING}
    assert (out / "accuracy.csv").is_file() and (out / "error_matrix.csv").is_file()
    res = runner.invoke(main, ["area", "--labels", str(out / "labels.csv")])
    assert res.exit_code == 1 and "overwrite" in res.output
    # an unlabelled sheet is refused with the unit named
    res = runner.invoke(main, ["sample", "--run", str(zone_dir), "--region", "all", "--n", "60",
                               "--no-chips", "--out", str(tmp_path / "blank")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["area", "--labels", str(tmp_path / "blank" / "labels.csv")])
    assert res.exit_code == 1 and "have no ref_class" in res.output
    # a zone folder that is not in the zone catalogue needs --region all or --aoi
    res = runner.invoke(main, ["sample", "--run", str(zone_dir), "--no-chips",
                               "--out", str(tmp_path / "z")])
    assert res.exit_code == 2 and "--region all" in res.output


def test_zone_of_folder(tmp_path):
    from kpgeo.sampling import zone_of_folder

    assert zone_of_folder(tmp_path / "caf-nola") == "caf-nola"
    (tmp_path / "summary.json").write_text('{"zone": "civ-seguela"}')
    assert zone_of_folder(tmp_path) == "civ-seguela"
