"""Site register: stable ids, merges/splits, first detection, history, triage (issue 10 items 2-3).

Synthetic footprints (squares on a UTM grid) give exact ground truth for every rule;
the last test runs the detector on the sample tiles twice (first dates, then all).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from kpgeo.errors import ConfigError, UnknownSiteError
from kpgeo.register import (
    RegisterParams,
    label_footprints,
    set_triage,
    site_history,
    split_rejected,
    triage_counts,
    update_register,
)

ZONE = "caf-berberati"
X0, Y0 = 566_960.0, 525_240.0  # the Berberati sample grid, EPSG:32633


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 - y1, X0 + x1, Y0 - y0)


def fps(*rows):
    """Footprints like extract_footprints: (id, geometry, first, last[, state])."""
    import geopandas as gpd

    data = []
    for row in rows:
        fid, geom, first, last, *state = row
        data.append({"id": fid, "zone": ZONE, "geometry": geom, "area_ha": geom.area / 1e4,
                     "first_detected": pd.Timestamp(first), "last_active": pd.Timestamp(last),
                     "state": state[0] if state else "active", "inside_zone": True,
                     "distance_to_boundary_m": -100.0})
    return gpd.GeoDataFrame(data, geometry="geometry", crs=32633)


def run(previous, footprints, as_of, **kw):
    return update_register(previous, footprints, zone=ZONE, as_of=as_of, **kw)


def site(register, site_id):
    return register.sites.set_index("site_id").loc[site_id]


def test_ids_are_kept_by_overlap_and_first_detected_never_moves_later():
    r1 = run(None, fps(("f1", box(0, 0, 100, 100), "2019-06-10", "2019-09-01"),
                       ("f2", box(500, 0, 600, 100), "2019-07-01", "2019-09-01")), "2019-09-30")
    assert list(r1.register.sites["site_id"]) == [f"{ZONE}-s00001", f"{ZONE}-s00002"]
    # the next run numbers its footprints differently, sees A later (a detector change) and bigger
    r2 = run(r1.register, fps(("g1", box(1000, 0, 1100, 100), "2020-02-01", "2020-03-01"),
                              ("g2", box(500, 0, 600, 100), "2019-07-01", "2020-03-01"),
                              ("g3", box(0, 0, 150, 150), "2019-08-01", "2020-03-01")),
             "2020-03-31")
    reg = r2.register
    a, b, c = (site(reg, f"{ZONE}-s0000{i}") for i in (1, 2, 3))
    assert a["footprint_id"] == "g3" and a["area_ha"] == pytest.approx(2.25)
    assert a["first_detected"] == pd.Timestamp("2019-06-10")  # not 2019-08-01
    assert a["max_area_ha"] == pytest.approx(2.25) and a["first_seen"] == pd.Timestamp("2019-09-30")
    assert b["footprint_id"] == "g2" and c["footprint_id"] == "g1"
    assert c["first_detected"] == pd.Timestamp("2020-02-01") and c["status"] == "detected"
    assert dict(zip(r2.footprints["id"], r2.footprints["site_id"], strict=True)) == {
        "g1": f"{ZONE}-s00003", "g2": f"{ZONE}-s00002", "g3": f"{ZONE}-s00001"}
    assert list(reg.events["event"]) == ["new", "new", "new"]


def test_a_merge_keeps_the_earliest_id_and_records_the_other():
    r1 = run(None, fps(("a", box(0, 0, 100, 100), "2019-06-01", "2019-09-01"),
                       ("b", box(120, 0, 220, 100), "2019-03-01", "2019-09-01")), "2019-09-30")
    ids = dict(zip(r1.footprints["id"], r1.footprints["site_id"], strict=True))
    r2 = run(r1.register, fps(("m", box(0, 0, 220, 100), "2019-05-01", "2020-01-01")),
             "2020-03-31")
    kept, gone = site(r2.register, ids["b"]), site(r2.register, ids["a"])
    assert kept["status"] == "detected" and kept["footprint_id"] == "m"
    assert kept["first_detected"] == pd.Timestamp("2019-03-01")
    assert gone["status"] == "merged" and gone["merged_into"] == ids["b"]
    events = r2.register.events
    merge = events[events["event"] == "merge"].iloc[0]
    assert (merge["site_id"], merge["other_site_id"]) == (ids["a"], ids["b"])
    assert triage_counts(r2.register)["sites"] == 1


def test_a_split_keeps_the_id_on_the_larger_part_and_dates_the_other_from_its_parent():
    r1 = run(None, fps(("a", box(0, 0, 300, 100), "2019-04-01", "2019-09-01")), "2019-09-30")
    parent = r1.register.sites["site_id"].iloc[0]
    r2 = run(r1.register, fps(("l", box(0, 0, 180, 100), "2019-04-01", "2020-01-01"),
                              ("r", box(200, 0, 300, 100), "2019-11-01", "2020-01-01")),
             "2020-03-31")
    by_fp = r2.register.sites.set_index("footprint_id")
    assert by_fp.loc["l", "site_id"] == parent and pd.isna(by_fp.loc["l", "split_from"])
    part = by_fp.loc["r"]
    assert part["site_id"] == f"{ZONE}-s00002" and part["split_from"] == parent
    assert part["first_detected"] == pd.Timestamp("2019-04-01")
    assert "split" in set(r2.register.events["event"])


def test_a_site_not_detected_stays_in_the_register_and_keeps_its_id_when_seen_again():
    a, b = box(0, 0, 100, 100), box(500, 0, 600, 100)
    r1 = run(None, fps(("a", a, "2019-06-01", "2019-09-01"), ("b", b, "2019-06-01", "2019-09-01")),
             "2019-09-30")
    r2 = run(r1.register, fps(("a", a, "2019-06-01", "2019-12-01")), "2019-12-31")
    missing = site(r2.register, f"{ZONE}-s00002")
    assert missing["status"] == "not detected" and missing["last_seen"] == pd.Timestamp(
        "2019-09-30")
    r3 = run(r2.register, fps(("x", a, "2019-06-01", "2020-03-01"),
                              ("y", b, "2019-06-01", "2020-03-01")), "2020-03-31")
    assert site(r3.register, f"{ZONE}-s00002")["status"] == "detected"
    assert len(r3.register.sites) == 2
    assert "redetected" in set(r3.register.events["event"])


def test_a_run_without_footprints_keeps_the_sites_as_not_detected():
    r1 = run(None, fps(("a", box(0, 0, 100, 100), "2019-06-01", "2019-09-01")), "2019-09-30")
    empty = run(None, fps(("a", box(0, 0, 100, 100), "2019-06-01", "2019-09-01")).iloc[0:0],
                "2019-09-30")
    assert len(empty.register.sites) == 0 and len(empty.footprints) == 0
    r2 = run(r1.register, fps(("a", box(0, 0, 100, 100), "2019-06-01", "2019-09-01")).iloc[0:0],
             "2019-12-31")
    s = site(r2.register, f"{ZONE}-s00001")
    assert s["status"] == "not detected" and s["first_detected"] == pd.Timestamp("2019-06-01")
    pd.testing.assert_frame_equal(r2.register.history, r1.register.history)


def _marked():
    r1 = run(None, fps(("a", box(0, 0, 100, 100), "2019-06-01", "2019-09-01"),
                       ("b", box(500, 0, 600, 100), "2019-06-01", "2019-09-01"),
                       ("c", box(1000, 0, 1100, 100), "2019-06-01", "2019-09-01")), "2019-09-30")
    reg = set_triage(r1.register, f"{ZONE}-s00001", "verified", note="field visit",
                     date="2019-10-05", analyst="KP team")
    return set_triage(reg, f"{ZONE}-s00002", "rejected", reason="farm clearing",
                      date="2019-10-06")


def test_marks_survive_a_rerun_and_rejected_sites_leave_the_totals():
    reg = _marked()
    assert triage_counts(reg) == {"unreviewed": 1, "verified": 1, "rejected": 1, "unclear": 0,
                                  "sites": 3, "reopened": 0}
    # next run: same sites, a bit larger, and one new site
    r2 = run(reg, fps(("a", box(0, 0, 110, 100), "2019-06-01", "2019-12-01"),
                      ("b", box(500, 0, 610, 100), "2019-06-01", "2019-12-01"),
                      ("c", box(1000, 0, 1100, 100), "2019-06-01", "2019-12-01"),
                      ("d", box(2000, 0, 2100, 100), "2019-11-01", "2019-12-01")), "2019-12-31")
    counts = triage_counts(r2.register)
    assert counts == {"unreviewed": 2, "verified": 1, "rejected": 1, "unclear": 0, "sites": 4,
                      "reopened": 0}
    verified = site(r2.register, f"{ZONE}-s00001")
    assert verified["triage_status"] == "verified" and verified["triage_note"] == "field visit"
    counted, rejected = split_rejected(r2.footprints)
    assert list(rejected["id"]) == ["b"]
    relabelled = label_footprints(r2.footprints.drop(columns=["site_id", "triage_status"]),
                                  r2.register)  # a zone the next run skips
    assert relabelled[["site_id", "triage_status"]].equals(
        r2.footprints[["site_id", "triage_status"]])
    assert sorted(counted["id"]) == ["a", "c", "d"]
    assert counted["area_ha"].sum() == pytest.approx(1.1 + 1 + 1)
    mark = r2.register.triage.set_index("site_id").loc[f"{ZONE}-s00002"]
    assert mark["reason"] == "farm clearing" and mark["date"] == pd.Timestamp("2019-10-06")
    assert mark["marked_area_ha"] == pytest.approx(1.0)  # the extent when it was rejected
    import geopandas as gpd

    extent = gpd.GeoSeries([mark["geometry"]], crs=4326).to_crs(32633).iloc[0]
    assert extent.area == pytest.approx(1e4, rel=1e-6)


def test_a_rejected_site_that_grows_well_beyond_its_extent_comes_back():
    reg = _marked()
    small = run(reg, fps(("b", box(500, 0, 640, 100), "2019-06-01", "2019-12-01")), "2019-12-31")
    assert site(small.register, f"{ZONE}-s00002")["triage_status"] == "rejected"  # +0.4 ha
    big = run(small.register, fps(("b", box(500, 0, 700, 100), "2019-06-01", "2020-03-01")),
              "2020-03-31")
    back = site(big.register, f"{ZONE}-s00002")
    assert back["triage_status"] == "unreviewed" and bool(back["reopened"])
    assert "grew 1.00 ha beyond the 1.00 ha rejected on 2019-10-06 (farm clearing)" in back[
        "triage_note"]
    assert "reopened" in set(big.register.events["event"])
    counted, rejected = split_rejected(big.footprints)
    assert rejected.empty and list(counted["id"]) == ["b"]
    assert triage_counts(big.register)["reopened"] == 1


def test_regrowth_threshold_is_a_parameter():
    reg = _marked()
    strict = RegisterParams(regrow_fraction=0.2, regrow_min_ha=0.0)
    r = run(reg, fps(("b", box(500, 0, 640, 100), "2019-06-01", "2019-12-01")), "2019-12-31",
            params=strict)
    assert site(r.register, f"{ZONE}-s00002")["triage_status"] == "unreviewed"


def test_a_merge_carries_the_verified_mark_over_a_rejected_one():
    reg = _marked()
    r2 = run(reg, fps(("ab", box(0, 0, 600, 100), "2019-06-01", "2019-12-01")), "2019-12-31")
    merged = r2.register.sites.set_index("footprint_id").loc["ab"]
    assert merged["triage_status"] == "verified"


def test_set_triage_refuses_bad_marks_with_clear_errors():
    reg = _marked()
    with pytest.raises(UnknownSiteError, match="caf-berberati-s00001") as err:
        set_triage(reg, f"{ZONE}-s00099", "verified")
    assert isinstance(err.value, KeyError)
    with pytest.raises(ConfigError, match="needs a reason"):
        set_triage(reg, f"{ZONE}-s00003", "rejected")
    with pytest.raises(ConfigError, match="one of"):
        set_triage(reg, f"{ZONE}-s00003", "false alarm")
    cleared = set_triage(reg, f"{ZONE}-s00002", "unreviewed")
    assert triage_counts(cleared)["rejected"] == 0
    r = run(reg, fps(("ab", box(0, 0, 600, 100), "2019-06-01", "2019-12-01")), "2019-12-31")
    gone = r.register.sites[r.register.sites["status"] == "merged"]["site_id"].iloc[0]
    with pytest.raises(ConfigError, match="was merged into"):
        set_triage(r.register, gone, "verified")


def _day_raster(days_by_pixel):
    """A first_detected raster on the sample grid (int32 days since 1970, -1 none)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    arr = np.full((20, 20), -1, dtype="int32")
    for (row, col), day in days_by_pixel.items():
        arr[row, col] = (pd.Timestamp(day) - pd.Timestamp("1970-01-01")).days
    da = xr.DataArray(arr, dims=("y", "x"),
                      coords={"y": Y0 - 5 - 10 * np.arange(20), "x": X0 + 5 + 10 * np.arange(20)})
    return da.rio.write_crs(32633)


def test_history_gives_area_and_state_per_period_from_the_first_detected_raster():
    pixels = {(r, c): "2019-02-10" for r in range(2) for c in range(10)}  # 20 px in Q1
    pixels |= {(r, c): "2019-05-05" for r in range(2, 5) for c in range(10)}  # 30 px in Q2
    raster = _day_raster(pixels)
    footprint = fps(("f", box(0, 0, 100, 50), "2019-02-10", "2019-06-01"))
    r = run(None, footprint, "2019-12-31", first_detected=raster)
    h = r.register.history
    assert list(h["period"].dt.strftime("%Y-%m-%d")) == ["2019-01-01", "2019-04-01",
                                                         "2019-07-01", "2019-10-01"]
    assert list(h["area_ha"]) == pytest.approx([0.2, 0.5, 0.5, 0.5])
    assert list(h["new_area_ha"]) == pytest.approx([0.2, 0.3, 0.0, 0.0])
    assert list(h["state"]) == ["new", "active", "inactive", "inactive"]
    # the same site revegetating at the end; and without the raster, the whole area
    reveg = fps(("f", box(0, 0, 100, 50), "2019-02-10", "2019-06-01", "revegetating"))
    h2 = run(None, reveg, "2019-12-31").register.history
    assert list(h2["area_ha"]) == pytest.approx([0.5] * 4)
    assert list(h2["state"]) == ["new", "active", "inactive", "revegetating"]  # active to June


def test_a_later_run_replaces_its_periods_and_keeps_the_older_ones():
    a = box(0, 0, 100, 100)
    r1 = run(None, fps(("a", a, "2019-02-01", "2019-09-01"),
                       ("b", box(500, 0, 600, 100), "2019-02-01", "2019-09-01")), "2019-09-30")
    assert len(r1.register.history) == 6  # two sites, Q1-Q3
    r2 = run(r1.register, fps(("a", box(0, 0, 200, 100), "2019-02-01", "2019-12-01")),
             "2019-12-31")
    h = r2.register.history
    assert not h.duplicated(["site_id", "period"]).any()
    a_rows = h[h["site_id"] == f"{ZONE}-s00001"]
    assert len(a_rows) == 4 and set(a_rows["as_of"]) == {pd.Timestamp("2019-12-31")}
    b_rows = h[h["site_id"] == f"{ZONE}-s00002"]  # not detected now: its history is kept
    assert len(b_rows) == 3 and set(b_rows["as_of"]) == {pd.Timestamp("2019-09-30")}


def test_site_history_periods_follow_the_period_setting():
    sites = fps(("f", box(0, 0, 100, 100), "2019-02-10", "2019-12-01"))
    sites = sites.rename(columns={"id": "footprint_id"}).assign(site_id="s", zone=ZONE)
    monthly = site_history(sites.to_crs(4326), as_of="2019-04-15", period="MS")
    assert list(monthly["period"].dt.month) == [2, 3, 4]
    yearly = site_history(sites.to_crs(4326), as_of="2020-04-15", period="YS")
    assert list(yearly["period"].dt.year) == [2019, 2020]


@pytest.mark.slow
def test_two_real_runs_first_dates_then_all_keep_ids_and_dates(tmp_path):
    """Detector on the Berberati sample: first 16 dates, then all 24."""
    import geopandas as gpd
    import rioxarray

    from kpgeo.pipeline import process_zone
    from kpgeo.zones import get_zone

    root = Path(__file__).resolve().parents[1] / "sample_tiles" / ZONE
    data = json.loads((root / "items.json").read_text())
    for item in data["features"]:
        for asset in item["assets"].values():
            asset["href"] = str(root / asset["href"])
    first = dict(data, features=data["features"][:16])
    (tmp_path / "first.json").write_text(json.dumps(first))
    zone = get_zone(ZONE)
    regs = []
    for name, items in (("first", tmp_path / "first.json"), ("all", root / "items.json")):
        out = tmp_path / name
        process_zone(items, zone, out_dir=out)
        footprints = gpd.read_parquet(out / "footprints.parquet")
        raster = rioxarray.open_rasterio(out / "first_detected.tif").squeeze(drop=True)
        as_of = max(pd.Timestamp(f["properties"]["datetime"][:10])
                    for f in json.loads(Path(items).read_text())["features"])
        regs.append(update_register(regs[-1].register if regs else None, footprints, zone=ZONE,
                                    as_of=as_of, first_detected=raster))
    one, two = (r.register.sites.set_index("site_id") for r in regs)
    assert len(one) >= 2 and len(two) > len(one)
    for site_id, row in one.iterrows():
        later = two.loc[site_id]  # every site of the first run is still in the register
        assert later["first_detected"] <= row["first_detected"]
        if later["status"] == "detected":
            footprint = regs[1].footprints.set_index("site_id").loc[site_id]
            assert shapely.intersects(footprint.geometry, regs[0].footprints.set_index(
                "site_id").loc[site_id].geometry)
    h = regs[1].register.history
    assert not h.duplicated(["site_id", "period"]).any()
    for site_id, rows in h.groupby("site_id"):
        rows = rows.sort_values("period")
        assert (np.diff(rows["area_ha"]) >= -1e-9).all()  # mapped extent never shrinks
        if two.loc[site_id, "status"] == "detected":
            assert rows["area_ha"].iloc[-1] == pytest.approx(two.loc[site_id, "area_ha"], abs=1e-3)
        start = pd.Period(two.loc[site_id, "first_detected"], "Q").start_time
        assert rows["period"].iloc[0] >= start
        assert rows.loc[rows["period"] == start, "state"].tolist() in ([], ["new"])
