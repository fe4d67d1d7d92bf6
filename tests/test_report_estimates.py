"""Issue 11 item 5: area estimates, sample units and production capacity in a run's outputs.

A small simulated run (96 x 96 px, 24 dates) goes through `kpgeo run` twice: first
without a sample (the outputs stay as they were), then after the simulated analyst
labelled a stratified sample of the zone. The bulletin, time series and map are checked
against the area and production modules' own outputs, recomputed here from the files
the run wrote.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _report_data import DATES, EVIL, RING_M, make_footprints, make_zone  # noqa: E402

from kpgeo.area import ALL_MINING, estimate_sheet, read_labels, zone_area_summary  # noqa: E402
from kpgeo.cli import main  # noqa: E402
from kpgeo.errors import ConfigError  # noqa: E402
from kpgeo.estimates import add_area_estimates, add_capacity, load_samples  # noqa: E402
from kpgeo.production import (  # noqa: E402
    compare_exports,
    mining_area_by_period,
    production_capacity,
    read_exports,
    read_footprints,
)
from kpgeo.timeseries import (  # noqa: E402
    CAPACITY_COLUMNS,
    CORE_COLUMNS,
    ESTIMATE_COLUMNS,
    zone_activity,
)

ZONE = "caf-berberati"
WINDOW = ("2019-01-01", "2019-12-31")
FIXED = {"gravel_thickness_m": 1.0, "grade_ct_per_m3": 0.1, "recovery": 0.5,
         "miners_per_ha": 50, "working_days_per_year": 200, "gravel_m3_per_miner_day": 0.3}
#: 2019: no exports (never above capacity); 2020: far above any capacity; 2015: no imagery
EXPORTS = "year,carats,country\n2015,10,CAF\n2019,0,CAF\n2020,1000000000000,CAF\n"


def _text(page):
    text = re.sub(r"<[^>]+>", " ", page.replace("&nbsp;", " "))
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    """A simulated one-zone run with a [production] table and exports, reported twice."""
    from kpgeo.pipeline import load_config, run_pipeline
    from kpgeo.sampling import Period, SampleSizeWarning, sample_zone
    from kpgeo.simulate import simulate_scene
    from kpgeo.zones import get_zone

    root = tmp_path_factory.mktemp("sim_run")
    scene = simulate_scene(root / "scene", zone=ZONE, shape=(96, 96), n_dates=24,
                           preset="default", seed=1)
    (root / "kp_stats.csv").write_text(EXPORTS)
    toml = root / "run.toml"
    toml.write_text(
        '[run]\nname = "sim"\noffline_map = true\nexports = "kp_stats.csv"\n'
        f'[[zones]]\nzone = "{ZONE}"\nitems = "scene/items.json"\n[production]\n'
        + "".join(f"{k} = {v}\n" for k, v in FIXED.items()))
    config = load_config(toml)
    out = root / "out"
    run_pipeline(config, out)
    before = {name: (out / name).read_text(encoding="utf-8")
              for name in ("bulletin.html", "map.html", "timeseries.csv")}
    zone = get_zone(ZONE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SampleSizeWarning)  # a small sample, on purpose
        _, paths = sample_zone(out / "zones" / ZONE, period=Period.parse("/".join(WINDOW)),
                               min_per_stratum=15, seed=2, region=zone.geometry,
                               region_name=zone.id, truth=scene.mining_start_path)
    run_pipeline(config, out)  # the zone is up to date: only the run-level outputs are redone
    return {"out": out, "config": config, "toml": toml, "labels": paths["labels.csv"],
            "exports": root / "kp_stats.csv", "before": before}


def _estimate(labels_path):
    est = estimate_sheet(read_labels(labels_path))
    return est, zone_area_summary(est.area).iloc[0]


# --------------------------------------------------------------------------- no sample yet


def test_without_a_sample_the_outputs_stay_as_they_were(sim_run):
    before = sim_run["before"]
    text = _text(before["bulletin.html"])
    assert "No labelled sample in this run" in text
    assert "kpgeo sample --run OUT --zone ID" in text and "kpgeo area --labels" in text
    assert "Error-adjusted area" not in text and "error-adjusted (ha" not in text
    assert "sample units" not in before["map.html"]
    header = before["timeseries.csv"].splitlines()[0].split(",")
    assert not set(header) & set(ESTIMATE_COLUMNS)  # no empty estimate columns
    assert set(CAPACITY_COLUMNS) <= set(header)  # the run has a [production] table


# --------------------------------------------------------------------------- with a sample


def test_bulletin_shows_mapped_and_estimated_area_with_ci(sim_run):
    est, all_mining = _estimate(sim_run["labels"])
    new = zone_area_summary(est.area, cls="new mining").iloc[0]
    acc = est.accuracy.set_index("class")
    page = (sim_run["out"] / "bulletin.html").read_text(encoding="utf-8")
    text = _text(page)
    assert all_mining["text"].startswith("mapped ") and "(95 % CI)" in all_mining["text"]
    assert f"all mining at the end of the window: {all_mining['text']}" in text
    assert f"mining that began within the window: {new['text']}" in text
    n_units = len(read_labels(sim_run["labels"]))
    assert (f"labelled sample of {n_units} units, window {WINDOW[0]} – {WINDOW[1]}, "
            "population: the imaged part of the zone" in text)
    assert (f"user's {acc.loc[ALL_MINING, 'users']:.2f}, "
            f"producer's {acc.loc[ALL_MINING, 'producers']:.2f}") in text
    cell = re.search(r'kp-estimate">([^<]*)<', page).group(1)
    assert cell == (f"{all_mining['estimated_ha']:,.1f} ± {all_mining['ci_half_ha']:,.1f} "
                    f"at {WINDOW[1]}")
    assert "No labelled sample" not in text


def test_time_series_carries_the_estimate_on_the_window_end_period(sim_run):
    _, all_mining = _estimate(sim_run["labels"])
    ts = pd.read_parquet(sim_run["out"] / "timeseries.parquet")
    assert list(ts.columns) == list(CORE_COLUMNS) + list(ESTIMATE_COLUMNS) + list(
        CAPACITY_COLUMNS)
    at_end = (ts["region"] == "zone") & (ts["period_start"] == pd.Timestamp("2019-10-01"))
    assert at_end.sum() == 1
    row = ts[at_end].iloc[0]
    for col, key in zip(ESTIMATE_COLUMNS, ("mapped_ha", "estimated_ha", "ci_low_ha",
                                           "ci_high_ha"), strict=True):
        assert row[col] == pytest.approx(all_mining[key]), col
    assert row["estimated_area_ci_low_ha"] <= row["estimated_area_ha"] \
        <= row["estimated_area_ci_high_ha"]
    assert ts.loc[~at_end, list(ESTIMATE_COLUMNS)].isna().all().all()
    meta = json.loads((sim_run["out"] / "timeseries.csv-metadata.json").read_text())
    described = {c["name"]: c for c in meta["tableSchema"]["columns"]}
    assert described["estimated_area_ha"]["schema:unitText"] == "ha"
    assert described["capacity_miners_days_ct_yr"]["schema:unitText"] == "ct/yr"


def test_time_series_capacity_columns_match_the_production_module(sim_run):
    out, params = sim_run["out"], sim_run["config"].production
    assert not params.placeholders
    cap = production_capacity(mining_area_by_period(read_footprints(out), freq="QS"), params)
    ts = pd.read_parquet(out / "timeseries.parquet")
    zone_rows = ts[ts["region"] == "zone"]
    assert ts.loc[ts["region"] == "ring", list(CAPACITY_COLUMNS)].isna().all().all()
    assert zone_rows.loc[zone_rows["low_coverage"], list(CAPACITY_COLUMNS)].isna().all().all()
    seen = zone_rows[~zone_rows["low_coverage"]]
    assert len(seen) >= 4
    for method in ("volume_grade", "miners_days"):
        per = cap[cap["method"] == method].set_index(pd.to_datetime(
            cap.loc[cap["method"] == method, "period_start"]))
        for _, row in seen.iterrows():
            expect = per["median_ct_per_year"].get(row["period_start"], 0.0)  # no mining: 0
            assert row[f"capacity_{method}_ct_yr"] == pytest.approx(expect), row["period_start"]
    assert seen["capacity_volume_grade_ct_yr"].max() > 0  # mining was detected


def test_bulletin_sets_capacity_beside_exports_and_flags_years(sim_run):
    out, params = sim_run["out"], sim_run["config"].production
    check = compare_exports(mining_area_by_period(read_footprints(out), freq="YS"),
                            read_exports(sim_run["exports"]), params)
    page = (out / "bulletin.html").read_text(encoding="utf-8")
    assert "Production capacity and KP exports" in page and "kp-placeholder" not in page
    flagged = check.groupby("year")["exceeds_capacity"].any()
    assert flagged.to_dict() == {2019: False, 2020: True}
    for year, grp in check.groupby("year"):
        row = re.search(rf"<tr( class=\"kp-flag\")?><td>CAF</td><td>{year}</td>(.*?)</tr>",
                        page, re.S)
        assert row is not None, year
        assert bool(row.group(1)) == flagged[year]
        for method in ("volume_grade", "miners_days"):
            med = grp.set_index("method").loc[method, "median_ct_per_year"]
            assert f">{med:,.0f} (" in row.group(2)
    assert "exports exceed the volume × grade and the miners × days capacity" in page
    assert "1 year(s) flagged" in page
    assert "mapped period in that year): CAF 2015." in _text(page)
    # per zone: capacity per calendar year
    assert re.search(r"<tr><td>2019</td><td class=\"num\">[\d,]+ ct/yr \(90 % interval", page)


def test_map_has_an_off_by_default_sample_units_layer(sim_run):
    page = (sim_run["out"] / "map.html").read_text(encoding="utf-8")
    labels = read_labels(sim_run["labels"])
    name = f"Berb\\u00e9rati \\u2014 sample units ({len(labels)})"
    group = re.search(rf'"{re.escape(name)}" : (feature_group_\w+)', page)
    assert group, "no sample units layer"
    assert not re.search(rf"{group.group(1)}\.addTo\(map_", page)  # hidden at first
    assert page.count("kp-unit-popup") == len(labels)
    disagree = int((labels["ref_class"] != labels["map_class"]).sum())
    assert page.count("Agreement\\u003c/th\\u003e\\u003ctd\\u003edisagrees") == disagree


def test_cli_report_reads_labels_exports_and_config(sim_run, tmp_path):
    out = sim_run["out"]
    res = CliRunner().invoke(main, [
        "report", "--run", str(out), "--out", str(tmp_path), "--offline",
        "--labels", str(sim_run["labels"]), "--exports", str(sim_run["exports"]),
        "--config", str(sim_run["toml"])], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    _, all_mining = _estimate(sim_run["labels"])
    text = _text((tmp_path / "bulletin.html").read_text(encoding="utf-8"))
    assert all_mining["text"] in text and "1 year(s) flagged" in text
    ts = pd.read_parquet(tmp_path / "timeseries.parquet")
    assert ts["estimated_area_ha"].notna().sum() == 1
    # without options: the sheet is found in the run folder, no production section
    res = CliRunner().invoke(main, ["report", "--run", str(out), "--out", str(tmp_path / "b"),
                                    "--offline"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    text = _text((tmp_path / "b" / "bulletin.html").read_text(encoding="utf-8"))
    assert all_mining["text"] in text and "Production capacity" not in text
    assert not set(CAPACITY_COLUMNS) & set(pd.read_parquet(tmp_path / "b" /
                                                           "timeseries.parquet").columns)
    # a bad parameter is one line naming the file and the key
    bad = tmp_path / "bad.toml"
    bad.write_text("[production]\nrecovery = 7\n")
    res = CliRunner().invoke(main, ["report", "--run", str(out), "--out", str(tmp_path / "c"),
                                    "--config", str(bad)])
    assert res.exit_code == 1 and "bad.toml: [production].recovery" in res.output
    assert not (tmp_path / "c" / "bulletin.html").exists()


# --------------------------------------------------------------------------- library pieces


def _sheet(zone="test-zone", blank=0):
    """A labelled sheet of 12 units in four strata near the test zone."""
    zone_obj = make_zone()
    x, y = zone_obj.geometry.centroid.x, zone_obj.geometry.centroid.y
    strata = ["new mining"] * 3 + ["stable mining"] * 3 + ["buffer"] * 3 + ["no change"] * 3
    maps = {"new mining": "new mining", "stable mining": "stable mining", "buffer": "no mining",
            "no change": "no mining"}
    refs = ["new mining", "new mining", "no mining", "stable mining", "stable mining",
            "stable mining", "no mining", "new", "no mining", "none", "no mining", "no mining"]
    pixels = {"new mining": 30, "stable mining": 20, "buffer": 100, "no change": 5000}
    df = pd.DataFrame({
        "unit_id": [f"u{i:02d}" for i in range(12)], "zone": zone,
        "period_start": "2020-01-01", "period_end": "2020-06-30",
        "lon": x + np.arange(12) * 1e-4, "lat": y, "ref_class": refs,
        "stratum": strata, "map_class": [maps[s] for s in strata],
        "stratum_pixels": [pixels[s] for s in strata], "pixel_area_ha": 0.01})
    df.loc[df.index[:blank], "ref_class"] = ""
    return df


def _write_sheet(folder, df, region):
    folder.mkdir(parents=True)
    df.to_csv(folder / "labels.csv", index=False)
    (folder / "design.json").write_text(json.dumps({"region": region}))
    return folder / "labels.csv"


def test_load_samples_estimates_finished_sheets_and_shows_unfinished_ones(tmp_path, caplog):
    done = _write_sheet(tmp_path / "zones/test-zone/sample_a", _sheet(), "test-zone")
    todo = _write_sheet(tmp_path / "zones/test-zone/sample_b", _sheet(blank=4), None)
    broken = _write_sheet(tmp_path / "zones/test-zone/sample_c",
                          _sheet().assign(ref_class="gold"), "test-zone")
    found = load_samples([done, todo, broken])
    assert "sample_c" in caplog.text and "gold" in caplog.text  # skipped, named
    rows = found.sheets.set_index("sheet")
    expect = zone_area_summary(estimate_sheet(read_labels(done)).area).iloc[0]
    assert rows.loc[str(done), "text"] == expect["text"]
    assert rows.loc[str(done), "estimated_ha"] == pytest.approx(expect["estimated_ha"])
    assert bool(rows.loc[str(done), "in_zone"]) and not bool(rows.loc[str(todo), "in_zone"])
    assert rows.loc[str(todo), "population"].endswith("zone and its outside ring")
    assert rows.loc[str(todo), "n_labelled"] == 8 and pd.isna(rows.loc[str(todo), "estimated_ha"])
    assert list(found.estimated["sheet"]) == [str(done)]
    units = found.units
    assert len(units) == 24 and units.crs.to_epsg() == 4326
    todo_units = units[units["sheet"] == str(todo)]
    assert todo_units["ref_class"].isna().sum() == 4 and todo_units["agrees"].isna().sum() == 4
    # the aliases "new" and "none" are read as classes: "new" in the buffer disagrees
    d = units[units["sheet"] == str(done)].set_index("unit_id")
    assert d.loc["u07", "ref_class"] == "new mining" and d.loc["u07", "agrees"] == False  # noqa: E712
    assert d.loc["u09", "agrees"] == True  # noqa: E712


def test_bulletin_lists_a_sheet_being_labelled(tmp_path):
    from kpgeo.report import write_report

    _write_sheet(tmp_path / "s", _sheet(blank=4), "test-zone")
    write_report(tmp_path / "out", footprints=make_footprints(), zones=[make_zone()],
                 ring_width_m=RING_M, offline=True, samples=[tmp_path / "s" / "labels.csv"])
    text = _text((tmp_path / "out" / "bulletin.html").read_text(encoding="utf-8"))
    assert "Sample being labelled (s, window 2020-01-01 – 2020-06-30): 8 of 12 units" in text
    assert "No labelled sample in this run" in text  # no estimate yet
    ts = pd.read_csv(tmp_path / "out" / "timeseries.csv")
    assert not set(ts.columns) & set(ESTIMATE_COLUMNS)
    assert "sample units (12)" in (tmp_path / "out" / "map.html").read_text(encoding="utf-8")


def test_exports_without_parameters_are_flagged_as_placeholders(tmp_path):
    from kpgeo.production import PARAM_SPECS
    from kpgeo.report import write_report

    (tmp_path / "kp.csv").write_text("year,carats\n2020,5\n")
    write_report(tmp_path / "out", footprints=make_footprints(), zones=[make_zone()],
                 ring_width_m=RING_M, offline=True, exports=tmp_path / "kp.csv")
    page = (tmp_path / "out" / "bulletin.html").read_text(encoding="utf-8")
    note = re.search(r'class="warn kp-placeholder">(.*?)</p>', page, re.S).group(1)
    assert "Illustrative figures" in note and all(key in note for key in PARAM_SPECS)
    assert re.search(r"<tr><td>all zones</td><td>2020</td>", page)


def test_a_zone_without_sample_is_named_beside_one_with_a_sample(tmp_path):
    from kpgeo.report import write_report

    zones = [make_zone(name="Zone A", zid="zone-a"), make_zone(name="Zone B", zid="zone-b")]
    fp = pd.concat([make_footprints("zone-a"), make_footprints("zone-b")], ignore_index=True)
    sheet = _write_sheet(tmp_path / "s", _sheet("zone-a"), "zone-a")
    write_report(tmp_path / "out", footprints=fp, zones=zones, ring_width_m=RING_M,
                 offline=True, samples=[sheet])
    page = (tmp_path / "out" / "bulletin.html").read_text(encoding="utf-8")
    expect = zone_area_summary(estimate_sheet(read_labels(sheet)).area).iloc[0]
    cells = re.findall(r'kp-estimate">([^<]*)<', page)
    assert cells == [f"{expect['estimated_ha']:,.1f} ± {expect['ci_half_ha']:,.1f} at 2020-06-30",
                     "–"]
    assert "No labelled sample for Zone B: areas there are mapped areas" in _text(page)
    ts = pd.read_parquet(tmp_path / "out" / "timeseries.parquet")
    filled = ts.dropna(subset=["estimated_area_ha"])
    assert list(filled["zone"]) == ["zone-a"] and list(filled["region"]) == ["zone"]
    assert filled["period_start"].iloc[0] == pd.Timestamp("2020-04-01")


def _activity():
    zone = make_zone()
    return zone_activity(make_footprints(), None, zones=[zone], ring_width_m=RING_M,
                         start=DATES[0], end=DATES[-1])


def test_estimates_go_on_the_period_holding_the_window_end():
    act = _activity()
    est = pd.DataFrame({
        "zone": "test-zone",
        "window_end": ["2020-05-15", "2020-05-31", "", "2019-06-30"],
        "mapped_ha": [1.0, 2.0, 3.0, 4.0], "estimated_ha": [1.5, 2.5, 3.5, 4.5],
        "ci_half_ha": [0.5, 0.2, 0.1, 0.1], "ci_low_ha": [1.0, 2.3, 3.4, 4.4],
        "ci_high_ha": [2.0, 2.7, 3.6, 4.6]})
    out = add_area_estimates(act, est)
    got = out.dropna(subset=["estimated_area_ha"]).set_index(["region", "period_start"])
    # Q2 holds two windows: the narrower interval is kept; the open window is the last period
    assert got["estimated_area_ha"].to_dict() == {("zone", pd.Timestamp("2020-04-01")): 2.5,
                                                  ("zone", pd.Timestamp("2020-10-01")): 3.5}
    assert got.loc[("zone", pd.Timestamp("2020-04-01")), "sample_mapped_area_ha"] == 2.0
    assert list(out.columns) == list(CORE_COLUMNS) + list(ESTIMATE_COLUMNS)


def test_capacity_needs_the_time_series_period():
    act = _activity()  # quarterly
    fp = make_footprints()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # placeholder parameters
        for freq in ("YS", "MS"):  # a year starts with a quarter, but is not one
            with pytest.raises(ConfigError, match="same period"):
                add_capacity(act, production_capacity(mining_area_by_period(fp, freq=freq)))
        cap = production_capacity(mining_area_by_period(fp, freq="QS"))
    out = add_capacity(act, cap).set_index(["region", "period_start"])
    md = cap[cap["method"] == "miners_days"].set_index(pd.to_datetime(
        cap.loc[cap["method"] == "miners_days", "period_start"]))["median_ct_per_year"]
    for start, value in md.items():
        assert out.loc[("zone", start), "capacity_miners_days_ct_yr"] == pytest.approx(value)
    assert out.loc["ring", list(CAPACITY_COLUMNS)].isna().all().all()


def test_sample_units_layer_on_the_map_is_escaped_and_coloured():
    import geopandas as gpd

    from kpgeo.webmap import make_map

    zone = make_zone(name="Berbérati " + EVIL)
    units = gpd.GeoDataFrame({
        "unit_id": ["u1", "u2", EVIL], "zone": "test-zone", "period_start": "",
        "period_end": "2020-06-30", "stratum": ["buffer", "new mining", "no change"],
        "map_class": ["no mining", "new mining", "no mining"],
        "ref_class": ["no mining", "no mining", None], "agrees": [True, False, None]},
        geometry=gpd.points_from_xy([zone.geometry.centroid.x] * 3,
                                    [zone.geometry.centroid.y] * 3), crs=4326)
    m = make_map(make_footprints(), zones=[zone], ring_width_m=RING_M, offline=True,
                 sample_units=units)
    page = m.get_root().render()
    assert "<img src=x onerror" not in page
    groups = [c for c in m._children.values() if "sample units" in getattr(c, "layer_name", "")]
    assert len(groups) == 1 and groups[0].show is False
    layer = next(iter(groups[0]._children.values()))
    props = [f["properties"] for f in layer.data["features"]]
    assert [p["agreement"] for p in props] == ["agrees", "disagrees", "not labelled yet"]
    colours = {p["agreement"]: layer.style_function({"properties": p})["fillColor"]
               for p in props}
    assert len(set(colours.values())) == 3
    assert "Stratum</th><td>new mining" in props[1]["popup_html"]
    assert "Label (analyst)</th><td>–" in props[2]["popup_html"]
    assert "&lt;img src=x" in props[2]["popup_html"]
    assert "sample unit: label disagrees with the map" in page


# --------------------------------------------------------------------------- pipeline file


def _toml(tmp_path, text):
    (tmp_path / "items.json").write_text('{"type": "FeatureCollection", "features": []}')
    path = tmp_path / "run.toml"
    path.write_text(text + '[[zones]]\nzone = "nola"\nitems = "items.json"\n')
    return path


def test_pipeline_reads_a_production_table_and_an_exports_file(tmp_path):
    from kpgeo.pipeline import _config_record, load_config

    (tmp_path / "kp.csv").write_text("year,carats\n2020,5\n")
    cfg = load_config(_toml(tmp_path, '[run]\nexports = "kp.csv"\n[production]\n'
                                      "recovery = 0.6\nseed = 3\n"))
    assert cfg.exports == (tmp_path / "kp.csv").resolve()
    assert cfg.production.ranges["recovery"].low == 0.6 and cfg.production.seed == 3
    assert "recovery" not in cfg.production.placeholders
    json.dumps(_config_record(cfg), default=str)  # done.json can record it
    assert load_config(_toml(tmp_path, "")).production is None


@pytest.mark.parametrize(("text", "match"), [
    ("[production]\nrecovery = 7\n", r"run\.toml: \[production\]\.recovery"),
    ("[production]\ncolour = 1\n", r"run\.toml: \[production\]: unknown key"),
    ("production = 3\n", r"run\.toml: \[production\] must be a table"),
    ('[run]\nexports = "nope.csv"\n', r"run\.toml: \[run\] exports file .*nope\.csv"),
    ('[run]\nexports = "bad.csv"\n', r"bad\.csv: missing column"),
])
def test_pipeline_refuses_bad_production_settings(tmp_path, text, match):
    from kpgeo.pipeline import load_config

    (tmp_path / "bad.csv").write_text("annee,carats\n2020,5\n")
    with pytest.raises(ConfigError, match=match):
        load_config(_toml(tmp_path, text))
