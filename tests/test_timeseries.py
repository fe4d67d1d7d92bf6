"""Per-zone activity time series: numbers agree with footprints, coverage and simulator truth."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

sys.path.insert(0, str(Path(__file__).parent))
from _report_data import (  # noqa: E402
    CLOUDY,
    DATES,
    RING_M,
    make_cube,
    make_footprints,
    make_zone,
)

from kpgeo.errors import ConfigError  # noqa: E402
from kpgeo.timeseries import (  # noqa: E402
    ACTIVITY_COLUMNS,
    clear_coverage,
    zone_activity,
    zone_regions,
)
from kpgeo.timeseries_output import plot_activity, write_timeseries  # noqa: E402


@pytest.fixture(scope="module")
def zone():
    return make_zone()


@pytest.fixture(scope="module")
def coverage(zone):
    return clear_coverage(make_cube(), zone_regions([zone], ring_width_m=RING_M))


def test_clear_coverage_matches_mask_and_stays_lazy(zone, coverage):
    # make_cube's `red` raises if computed: clear_coverage must only reduce `clear`
    assert list(coverage.columns[:3]) == ["date", "region", "clear_fraction"]
    assert set(coverage["region"]) == {"test-zone", "test-zone:ring"}
    assert coverage["clear_fraction"].between(0, 1).all()
    z = coverage[coverage["region"] == "test-zone"].set_index("date")["clear_fraction"]
    for i, d in enumerate(DATES):
        # zone = columns 40..159; cloudy dates are clear only in columns 0..69 -> 30/120
        expected = 0.25 if i in CLOUDY else 1.0
        assert z.loc[d] == pytest.approx(expected, abs=1e-9)
    ring = coverage[coverage["region"] == "test-zone:ring"].set_index("date")["clear_fraction"]
    assert (ring.iloc[sorted(CLOUDY)] < 0.5).all() and (
        ring.drop(ring.index[sorted(CLOUDY)]) == 1
    ).all()
    # the zone has 120 x 120 pixels of 10 m: 144 ha imaged (geodesic; UTM scale error < 0.1 %)
    assert coverage.loc[coverage["region"] == "test-zone", "n_pixels"].iloc[0] == 120 * 120
    imaged = coverage.loc[coverage["region"] == "test-zone", "imaged_area_ha"]
    assert imaged.nunique() == 1 and imaged.iloc[0] == pytest.approx(144.0, rel=2e-3)


def test_clear_coverage_accepts_geodataframe_and_rejects_bad_input(zone):
    import geopandas as gpd

    gdf = gpd.GeoDataFrame({"name": ["a"]}, geometry=[zone.geometry], crs=4326).to_crs(3857)
    cov = clear_coverage(make_cube(), gdf)
    assert set(cov["region"]) == {"a"} and len(cov) == len(DATES)
    with pytest.raises(ConfigError, match="clear"):
        clear_coverage(make_cube().drop_vars("clear"), {"a": zone.geometry})
    with pytest.raises(ConfigError, match="regions"):
        clear_coverage(make_cube(), [zone.geometry])


def test_cumulative_area_agrees_with_footprints(zone, coverage):
    fp = make_footprints()
    act = zone_activity(fp, coverage, zones=[zone], ring_width_m=RING_M, mask_low_coverage=False)
    for region, inside in (("zone", True), ("ring", False)):
        r = act[act["region"] == region].sort_values("period_start")
        cum = r["cumulative_area_ha"].to_numpy()
        assert np.all(np.diff(cum) >= -1e-9), "cumulative area must never decrease"
        union_ha = shapely.union_all(fp[fp["inside_zone"] == inside].geometry.to_numpy()).area / 1e4
        assert cum[-1] == pytest.approx(union_ha, rel=0.01)
        assert r["new_area_ha"].sum() == pytest.approx(cum[-1], rel=1e-9)
        assert r["new_sites"].sum() == (fp["inside_zone"] == inside).sum()
    # the two overlapping footprints are counted once (union, not sum)
    inside_sum = fp.loc[fp["inside_zone"], "area_ha"].sum()
    final_inside = act[act["region"] == "zone"]["cumulative_area_ha"].iloc[-1]
    assert final_inside < inside_sum - 0.1
    # quarterly periods by default
    assert list(act[act["region"] == "zone"]["period_start"]) == list(
        pd.to_datetime(["2020-01-01", "2020-04-01", "2020-07-01", "2020-10-01"])
    )


def test_footprints_that_only_touch_add_up_like_their_union(zone, coverage):
    """Pixel-edge neighbours (one label raster) take the no-union path; same areas as unions."""
    from kpgeo.timeseries import _overlap_free

    fp = make_footprints()
    inside = fp[fp["inside_zone"]].to_crs(fp.estimate_utm_crs())
    a = inside.geometry.iloc[0]
    x0, y0, x1, y1 = a.bounds
    # a neighbour sharing a's right edge, a second one sharing only a corner with it
    touching = [a, shapely.box(x1, y0, x1 + 120, y1), shapely.box(x1 + 120, y1, x1 + 200, y1 + 50)]
    assert _overlap_free(touching)
    assert not _overlap_free([a, shapely.box(x0, y0, x0 + 30, y0 + 30)])
    fps = inside.iloc[[0, 0, 0]].copy()
    fps["geometry"] = touching
    fps["id"] = ["t-1", "t-2", "t-3"]
    fps["first_detected"] = pd.to_datetime(["2020-02-01", "2020-05-01", "2020-05-02"])
    fps = fps.set_geometry("geometry").to_crs(fp.crs)
    act = zone_activity(fps, coverage, zones=[zone], ring_width_m=RING_M,
                        mask_low_coverage=False)
    r = act[act["region"] == "zone"].sort_values("period_start")
    union = shapely.union_all(touching).area / 1e4
    assert r["cumulative_area_ha"].iloc[-1] == pytest.approx(union, rel=1e-6)
    assert r["new_area_ha"].iloc[1] == pytest.approx(shapely.union_all(touching[1:]).area / 1e4,
                                                     rel=1e-6)


def test_active_and_water_areas(zone, coverage):
    fp = make_footprints()
    act = zone_activity(fp, coverage, zones=[zone], ring_width_m=RING_M, mask_low_coverage=False)
    q1 = act[(act["region"] == "zone")].iloc[0]
    # Q1: fp-000 and fp-001 both first detected and active
    assert q1["active_sites"] == 2 and q1["active_area_ha"] == pytest.approx(1.0 + 0.4)
    q4 = act[(act["region"] == "zone")].iloc[-1]
    # Q4 active: everything with last_active >= 2020-10-01 (fp-001 and fp-006 stopped earlier)
    assert q4["active_sites"] == 5
    assert q4["water_area_ha"] == pytest.approx(0.72 * 0.4)


def test_cloudy_period_is_missing_data_not_less_mining(zone, coverage):
    fp = make_footprints()
    act = zone_activity(fp, coverage, zones=[zone], ring_width_m=RING_M, min_coverage=0.3)
    z = act[act["region"] == "zone"].set_index("period_start")
    q2 = z.loc[pd.Timestamp("2020-04-01")]
    assert q2["low_coverage"] and q2["clear_fraction"] == pytest.approx(0.25)
    for col in ACTIVITY_COLUMNS:
        assert pd.isna(q2[col]), col
    assert not q2[["cumulative_area_ha"]].isna().any()  # state is kept
    assert not z.drop(pd.Timestamp("2020-04-01"))["low_coverage"].any()
    # a lower threshold accepts the same period
    act2 = zone_activity(fp, coverage, zones=[zone], ring_width_m=RING_M, min_coverage=0.2)
    assert not act2["low_coverage"].any()
    # no coverage at all: nothing flagged, coverage NaN
    act3 = zone_activity(fp, None, zones=[zone], ring_width_m=RING_M)
    assert act3["clear_fraction"].isna().all() and not act3["low_coverage"].any()


def test_footprints_in_4326_and_monthly(zone, coverage):
    fp = make_footprints(crs="EPSG:4326")
    act = zone_activity(
        fp, coverage, zones=[zone], ring_width_m=RING_M, freq="MS", mask_low_coverage=False
    )
    z = act[act["region"] == "zone"]
    assert len(z) == 11  # Jan..Nov 2020
    union_ha = (
        shapely.union_all(make_footprints()[lambda d: d["inside_zone"]].geometry.to_numpy()).area
        / 1e4
    )
    assert z["cumulative_area_ha"].iloc[-1] == pytest.approx(union_ha, rel=0.01)


def test_bad_inputs(zone, coverage):
    fp = make_footprints()
    with pytest.raises(ConfigError, match="first_detected"):
        zone_activity(fp.drop(columns="first_detected"), coverage)
    with pytest.raises(ConfigError, match="freq"):
        zone_activity(fp, coverage, freq="fortnightly")
    with pytest.raises(ConfigError, match="min_coverage"):
        zone_activity(fp, coverage, min_coverage=2)


def test_write_and_plot(tmp_path, zone, coverage):
    act = zone_activity(make_footprints(), coverage, zones=[zone], ring_width_m=RING_M)
    paths = write_timeseries(act, tmp_path)
    back = pd.read_parquet(paths["parquet"])
    pd.testing.assert_frame_equal(back, act, check_dtype=False)
    csv = pd.read_csv(paths["csv"])
    assert csv["period_start"].iloc[0] == "2020-01-01" and len(csv) == len(act)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary file
    fig = plot_activity(act, title="Berbérati $x$ <b>")
    from kpgeo.staticmap import figure_png

    png = figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    with pytest.raises(ConfigError, match="zone"):
        plot_activity(pd.concat([act, act.assign(zone="other")]))


# --------------------------------------------------------------------------- simulator truth
@pytest.mark.slow
def test_time_series_against_simulator_truth(tmp_path):
    """Truth mining polygons as footprints -> final cumulative equals the truth label raster.

    The simulator's truth polygons are the maximal extents of its mining sites
    and ``truth_labels.tif`` their 10 m rasterisation on the scene grid; the time
    series must reproduce that area. Tolerance 5 %: the raster counts whole
    10 m pixels whose centre falls in a polygon, so a site of area A and
    perimeter P differs by up to about P x 5 m (a few % for 1-13 ha sites).
    """
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    from kpgeo.simulate import simulate_scene
    from kpgeo.zones import get_zone

    scene = simulate_scene(
        tmp_path / "sim", zone="caf-berberati", shape=(160, 160), n_dates=12, seed=1
    )
    zone = get_zone("caf-berberati")
    with rasterio.open(scene.labels_path) as src:
        labels = src.read(1)
        bounds, crs = src.bounds, src.crs
    truth = gpd.read_file(scene.truth_path).to_crs(crs)
    mining = truth[truth["class"] == "mining"].copy()
    assert len(mining) >= 1
    mining["geometry"] = mining.geometry.intersection(box(*bounds))
    fp = gpd.GeoDataFrame(
        {
            "id": mining["site_id"],
            "zone": zone.id,
            "first_detected": pd.to_datetime(mining["start_date"]),
            "last_active": pd.to_datetime(mining["end_date"]).fillna(pd.Timestamp(scene.dates[-1])),
            "inside_zone": mining["inside_zone"].astype(bool),
            "area_ha": mining.geometry.area / 1e4,
        },
        geometry=mining.geometry.to_numpy(),
        crs=crs,
    )
    act = zone_activity(
        fp, None, zones=[zone], mask_low_coverage=False, start=scene.dates[0], end=scene.dates[-1]
    )
    final = act.sort_values("period_start").groupby("region")["cumulative_area_ha"].last().sum()
    truth_ha = float((labels == 1).sum()) * 0.01
    assert final == pytest.approx(truth_ha, rel=0.05)
    # each site is new exactly in the period of its truth start date
    for _, site in fp.iterrows():
        region = "zone" if site["inside_zone"] else "ring"
        r = act[act["region"] == region]
        hit = r[
            (r["period_start"] <= site["first_detected"])
            & (r["period_end"] >= site["first_detected"].normalize())
        ]
        assert len(hit) == 1 and hit["new_area_ha"].iloc[0] >= site["area_ha"] - 1e-6


def test_start_nets_first_period_against_earlier_detections(zone, coverage):
    fp = make_footprints()
    act = zone_activity(
        fp,
        coverage,
        zones=[zone],
        ring_width_m=RING_M,
        start="2020-10-01",
        mask_low_coverage=False,
    )
    q4 = act[act["region"] == "zone"].iloc[0]
    assert q4["period_start"] == pd.Timestamp("2020-10-01")
    inside = fp[fp["inside_zone"]]
    before = shapely.union_all(inside[inside["first_detected"] < "2020-10-01"].geometry.to_numpy())
    every = shapely.union_all(inside.geometry.to_numpy())
    # fp-003 overlaps fp-002 (detected in July): only its uncovered part is new
    assert q4["new_area_ha"] == pytest.approx(every.difference(before).area / 1e4, rel=1e-9)
    assert (
        q4["new_area_ha"] < inside[inside["first_detected"] >= "2020-10-01"]["area_ha"].sum() - 0.1
    )
    assert q4["cumulative_area_ha"] == pytest.approx(every.area / 1e4, rel=1e-9)


def test_garbage_dates_are_config_errors(zone, coverage):
    fp = make_footprints()
    fp["first_detected"] = fp["first_detected"].astype(object)
    fp.loc[fp.index[0], "first_detected"] = "not-a-date"
    with pytest.raises(ConfigError, match="first_detected.*not-a-date"):
        zone_activity(fp, coverage, zones=[zone], ring_width_m=RING_M)
    cov = coverage.astype({"date": object})
    cov.loc[cov.index[0], "date"] = "31/31/2020"
    with pytest.raises(ConfigError, match="coverage date"):
        zone_activity(make_footprints(), cov, zones=[zone], ring_width_m=RING_M)


def test_clear_coverage_needs_a_georeferenced_cube():
    cube = make_cube().drop_vars("spatial_ref")
    cube = cube.assign_coords(x=cube.x.values, y=cube.y.values)  # no CRS anywhere
    with pytest.raises(ConfigError, match="georeference"):
        clear_coverage(cube, {"a": make_zone().geometry})


# ------------------------------------------------------------ outputs (issue 8, item 18)
def test_active_area_follows_last_active_and_state(zone, coverage):
    fp = make_footprints()
    # fp-000: still mined at the end but without a last_active date -> active to the last image
    fp.loc[0, "last_active"] = pd.NaT
    # fp-002: stopped in July, now inactive -> active in Q3 only (detected 2020-07-10)
    fp.loc[2, "last_active"] = pd.Timestamp("2020-07-10")
    fp.loc[2, "state"] = "inactive"
    act = zone_activity(fp, coverage, zones=[zone], ring_width_m=RING_M, mask_low_coverage=False)
    z = act[act["region"] == "zone"].set_index("period_start")
    q3, q4 = z.loc[pd.Timestamp("2020-07-01")], z.loc[pd.Timestamp("2020-10-01")]
    inside = fp[fp["inside_zone"]].set_index("id")

    def union_ha(ids):
        return shapely.union_all(inside.loc[ids].geometry.to_numpy()).area / 1e4

    # Q4: fp-000 (state active, no last_active), fp-003, fp-004, fp-005 (detected in Q4)
    assert q4["active_sites"] == 4
    assert q4["active_area_ha"] == pytest.approx(union_ha(["fp-000", "fp-003", "fp-004", "fp-005"]))
    assert q4["active_area_ha"] < q4["cumulative_area_ha"] - 0.5
    # Q3: fp-000, fp-002 (active until 2020-07-10) and fp-006 (until 2020-08-20)
    assert q3["active_sites"] == 3
    assert q3["active_area_ha"] == pytest.approx(union_ha(["fp-000", "fp-002", "fp-006"]))
    # water of active footprints only: fp-002 (0.72 ha x 0.4) in Q3, none left in Q4
    assert q3["water_area_ha"] == pytest.approx(0.72 * 0.4)
    assert q4["water_area_ha"] == pytest.approx(0.0)


def test_no_data_period_carries_no_water_area(zone, coverage):
    fp = make_footprints()
    fp.loc[1, "water_fraction"] = 0.5  # fp-001 (Q1-Q2) holds water
    act = zone_activity(fp, coverage, zones=[zone], ring_width_m=RING_M)
    z = act[act["region"] == "zone"].set_index("period_start")
    assert z.loc[pd.Timestamp("2020-01-01"), "water_area_ha"] == pytest.approx(0.4 * 0.5)
    assert z.loc[pd.Timestamp("2020-04-01"), "low_coverage"]
    assert pd.isna(z.loc[pd.Timestamp("2020-04-01"), "water_area_ha"])


def test_csv_has_integer_counts_rounded_areas_and_a_data_dictionary(tmp_path, zone, coverage):
    import json
    import re

    from kpgeo.timeseries import CORE_COLUMNS

    act = zone_activity(make_footprints(), coverage, zones=[zone], ring_width_m=RING_M)
    assert str(act["new_sites"].dtype) == "Int64" and str(act["n_dates"].dtype) == "Int64"
    paths = write_timeseries(act, tmp_path)
    text = paths["csv"].read_text()
    header, *lines = text.strip().splitlines()
    cols = header.split(",")
    assert cols == list(CORE_COLUMNS)  # no sample, no production: no optional column
    rows = [dict(zip(cols, line.split(","), strict=True)) for line in lines]
    for row in rows:
        for col in ("new_sites", "active_sites", "n_dates"):
            assert re.fullmatch(r"\d*", row[col]), (col, row[col])  # '3', or '' when missing
        for col in ("new_area_ha", "cumulative_area_ha", "active_area_ha", "water_area_ha"):
            assert re.fullmatch(r"(\d+(\.\d{1,2})?)?", row[col]), (col, row[col])
    assert any(row["new_sites"] == "" for row in rows)  # the cloudy quarter: missing, not 0
    back = pd.read_csv(paths["csv"])
    assert back["cumulative_area_ha"].to_numpy() == pytest.approx(
        act["cumulative_area_ha"].to_numpy(), abs=0.005
    )
    # CSVW sidecar: every CSV column with datatype, unit and meaning
    meta = json.loads(paths["csv-metadata.json"].read_text())
    assert paths["csv-metadata.json"].name == "timeseries.csv-metadata.json"
    assert meta["url"] == "timeseries.csv"
    described = {c["name"]: c for c in meta["tableSchema"]["columns"]}
    assert list(described) == cols
    for name, col in described.items():
        assert col["dc:description"], name
    assert described["new_area_ha"]["schema:unitText"] == "ha"
    assert described["new_sites"]["datatype"] == "integer"


def test_docs_data_dictionary_matches_the_code():
    from kpgeo.timeseries import TIMESERIES_COLUMNS

    doc = (Path(__file__).parents[1] / "docs" / "outputs.md").read_text(encoding="utf-8")
    for name, (_, unit, _) in TIMESERIES_COLUMNS.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/outputs.md does not describe {name}"
        assert f"| {unit or '–'} |" in row, (name, unit, row)
