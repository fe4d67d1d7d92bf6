"""Bulletin, static maps, write_report and the `kpgeo report` command."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _report_data import (  # noqa: E402
    EVIL,
    RING_M,
    UTM,
    X0,
    Y0,
    make_cube,
    make_footprints,
    make_rgb_cube,
    make_zone,
)

from kpgeo.report import REPORT_OUTPUTS, render_bulletin, write_report, zone_file_stem  # noqa: E402


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    zone = make_zone(name="Berbérati " + EVIL)
    outputs = write_report(
        out,
        footprints=make_footprints(),
        zones=[zone],
        cube=make_rgb_cube(),
        ring_width_m=RING_M,
        offline=True,
        title="Run " + EVIL,
    )
    return out, outputs, zone


def test_write_report_outputs(report_dir):
    out, outputs, zone = report_dir
    for name in REPORT_OUTPUTS + ("map_test-zone.png",):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert outputs[name] == out / name
    ts = pd.read_csv(out / "timeseries.csv")
    assert set(ts["region"]) == {"zone", "ring"}
    assert ts["clear_fraction"].notna().all()  # coverage computed from the cube
    assert ts["low_coverage"].any()  # the cloudy quarter
    assert (out / "timeseries.png").read_bytes()[:4] == b"\x89PNG"


def test_bulletin_content_and_escaping(report_dir):
    out, _, zone = report_dir
    page = (out / "bulletin.html").read_text(encoding="utf-8")
    assert "<img src=x onerror" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "Berbérati" in page
    # self-contained: images inlined, nothing external
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    assert page.count("data:image/png;base64,") == 2  # chart + static map
    # every site listed, with centroid coordinates
    fp = make_footprints(crs="EPSG:4326")
    for sid, geom in zip(fp["id"], fp.geometry, strict=True):
        row = re.search(rf"<td>{sid}</td>(.*?)</tr>", page, re.S).group(1)
        lat, lon = (float(v) for v in re.findall(r">(-?\d+\.\d{6})<", row))
        assert lat == pytest.approx(geom.centroid.y, abs=2e-6)
        assert lon == pytest.approx(geom.centroid.x, abs=2e-6)
    assert "outside (ring)" in page and "low clear-sky coverage" in page


def test_without_sample_or_production_nothing_is_added_but_a_hint(report_dir):
    from kpgeo.timeseries import CORE_COLUMNS

    out, _, _ = report_dir
    page = (out / "bulletin.html").read_text(encoding="utf-8")
    text = _text(page)
    # one line on how to get an area estimate; no empty estimate or production section
    assert len(re.findall(r"kp-sample-note", page)) == 1
    assert "No labelled sample in this run" in text and "kpgeo sample --run OUT" in text
    assert "Error-adjusted" not in text and "error-adjusted (ha" not in text
    assert "Production capacity" not in text and "KP exports" not in text
    assert list(pd.read_csv(out / "timeseries.csv").columns) == list(CORE_COLUMNS)
    assert "sample units" not in (out / "map.html").read_text(encoding="utf-8")


def test_bulletin_escapes_every_field():
    zone = make_zone(name=EVIL, zid="z")
    fp = make_footprints("z")
    fp.loc[0, "state"] = "<script>alert(2)</script>"
    from kpgeo.timeseries import zone_activity

    act = zone_activity(fp, None, zones=[zone], ring_width_m=RING_M)
    page = render_bulletin(zones=[zone], footprints=fp, activity=act, title="<b>t</b>")
    assert "<script>alert(2)" not in page and "<b>t</b>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_static_zone_map(tmp_path):
    from kpgeo.staticmap import true_colour, write_zone_map

    zone = make_zone(name="Zone $x$ " + EVIL)  # '$' must not trigger mathtext
    bg = true_colour(make_rgb_cube(), start="2020-07-01")
    assert bg.dtype == "uint8" and bg.shape[-1] == 4
    assert bg.values[..., 3].min() == 255  # every pixel had a clear observation
    path = write_zone_map(
        tmp_path / "m.png", make_footprints(), zone, background=bg, ring_width_m=RING_M
    )
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[0] > 500 and img.shape[1] > 500


def test_zone_file_stem():
    assert zone_file_stem("caf-berberati") == "caf-berberati"
    assert "/" not in zone_file_stem("../x/<y>") and zone_file_stem("../x/<y>")


def test_refuses_to_overwrite(report_dir):
    from kpgeo.errors import OutputExistsError

    out, _, zone = report_dir
    with pytest.raises(OutputExistsError):
        write_report(out, footprints=make_footprints(), zones=[zone], overwrite=False)


# --------------------------------------------------------------------------- CLI
def _cli(args):
    from kpgeo.cli import main

    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_cli_report_errors(tmp_path):
    res = _cli(["report", "--run", str(tmp_path)])
    assert (
        res.exit_code == 1 and "footprints.parquet" in res.output and "Traceback" not in res.output
    )
    (tmp_path / "footprints.geojson").write_text("not json")
    res = _cli(["report", "--run", str(tmp_path)])
    assert res.exit_code == 1 and "footprints.geojson" in res.output


def test_cli_report_from_geojson(tmp_path):
    from kpgeo.io import write_vector

    fp = make_footprints("caf-berberati")
    write_vector(fp, tmp_path / "footprints.geojson")
    res = _cli(["report", "--run", str(tmp_path), "--offline", "--ring-width-m", "400"])
    assert res.exit_code == 0, res.output
    for name in REPORT_OUTPUTS + ("map_caf-berberati.png",):
        assert (tmp_path / name).is_file(), name
    res = _cli(["report", "--run", str(tmp_path)])
    assert res.exit_code == 1 and "--overwrite" in res.output


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("not-a-date,caf-berberati,0.9", r"date of .*coverage\.csv: 'not-a-date'"),
        ("2020-03-01,caf-berberati,cloudy", r"clear_fraction of .*coverage\.csv: 'cloudy'"),
    ],
)
def test_cli_report_garbage_coverage_is_one_line_error(tmp_path, row, match):
    import re

    from kpgeo.io import write_vector

    write_vector(make_footprints("caf-berberati"), tmp_path / "footprints.geojson")
    (tmp_path / "coverage.csv").write_text(
        f"date,region,clear_fraction\n2020-01-05,caf-berberati,1.0\n{row}\n"
    )
    res = _cli(["report", "--run", str(tmp_path), "--offline"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert re.search(match, res.output), res.output
    assert not (tmp_path / "bulletin.html").exists()


def test_cli_report_garbage_footprint_date(tmp_path):
    from kpgeo.io import write_vector

    fp = make_footprints("caf-berberati")
    fp["first_detected"] = fp["first_detected"].dt.strftime("%Y-%m-%d")
    fp.loc[fp.index[2], "first_detected"] = "someday"
    write_vector(fp, tmp_path / "footprints.geojson")
    res = _cli(["report", "--run", str(tmp_path), "--offline"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "first_detected of" in res.output and "footprints.geojson" in res.output
    assert "'someday'" in res.output


@pytest.mark.slow
def test_simulate_detect_report_end_to_end(tmp_path):
    """simulator -> `kpgeo detect` outputs -> `kpgeo report` with imagery composites."""
    import geopandas as gpd
    import shapely

    from kpgeo.pipeline import process_zone
    from kpgeo.simulate import simulate_scene
    from kpgeo.zones import get_zone

    scene = simulate_scene(
        tmp_path / "sim", zone="caf-berberati", shape=(128, 128), n_dates=10, seed=1
    )
    run = tmp_path / "run"
    process_zone(scene.items_path, get_zone("caf-berberati"), out_dir=run)
    res = _cli(["report", "--run", str(run), "--items", str(scene.items_path), "--offline"])
    assert res.exit_code == 0, res.output
    fp = gpd.read_parquet(run / "footprints.parquet")
    ts = pd.read_parquet(run / "timeseries.parquet")
    last = ts.sort_values("period_start").groupby("region")["cumulative_area_ha"].last()
    union_ha = (
        shapely.union_all(fp.to_crs(fp.estimate_utm_crs()).geometry.to_numpy()).area / 1e4
        if len(fp)
        else 0.0
    )
    assert last.sum() == pytest.approx(union_ha, rel=0.01, abs=1e-6)
    assert ts["clear_fraction"].notna().any()  # coverage from the items' cube
    page = (run / "map.html").read_text(encoding="utf-8")
    assert "True colour after" in page


@pytest.mark.slow
def test_cli_report_compare_date_splits_before_after_views(tmp_path):
    import re
    from pathlib import Path

    from kpgeo.pipeline import process_zone
    from kpgeo.zones import get_zone

    items = Path(__file__).parents[1] / "sample_tiles" / "civ-seguela" / "items.json"
    run = tmp_path / "run"
    process_zone(items, get_zone("civ-seguela"), out_dir=run)
    res = _cli(["report", "--run", str(run), "--items", str(items), "--offline",
                "--compare-date", "2020-03-01"])
    assert res.exit_code == 0, res.output
    page = (run / "map.html").read_text(encoding="utf-8")
    before = re.search(r"True colour before: (\d{4}-\d\d-\d\d) \\u2013 (\d{4}-\d\d-\d\d)", page)
    after = re.search(r"True colour after: (\d{4}-\d\d-\d\d) \\u2013 (\d{4}-\d\d-\d\d)", page)
    assert before and after, "before/after overlays missing"
    assert before.group(2) < "2020-03-01" <= after.group(1)


# ------------------------------------------------------------ issue 8, items 15 and 16
def test_bulletin_states_imaged_area_and_last_image_not_period_span():
    from kpgeo.timeseries import clear_coverage, zone_activity, zone_regions

    zone = make_zone(zid="z")
    cov = clear_coverage(make_cube(), zone_regions([zone], ring_width_m=RING_M))
    fp = make_footprints("z")
    act = zone_activity(fp, cov, zones=[zone], ring_width_m=RING_M)
    page = render_bulletin(zones=[zone], footprints=fp, activity=act, coverage=cov)
    text = _text(page)
    # the 120 x 120 px grid part of the zone: 144 ha imaged, about all of this small zone
    share = 100 * 144.0 / zone.area_ha
    assert f"Imaged: 144 ha of {zone.area_ha:,.0f} ha ({share:.0f} % of the zone)" in text
    assert "last image 2020-11-25" in text
    assert "2020-12-31" not in text and "2020-01-01" not in text  # no period span


def test_bulletin_share_of_a_large_zone_is_small():
    from kpgeo.timeseries import clear_coverage, zone_activity, zone_regions
    from kpgeo.zones import get_zone

    zone = get_zone("caf-berberati")
    cov = clear_coverage(make_cube(), zone_regions([make_zone()], ring_width_m=RING_M))
    cov["region"] = cov["region"].str.replace("test-zone", zone.id)
    fp = make_footprints(zone.id)
    act = zone_activity(fp, cov, zones=[zone], ring_width_m=RING_M)
    page = render_bulletin(zones=[zone], footprints=fp, activity=act, coverage=cov)
    share = 100 * 144.0 / zone.area_ha  # 144 ha of about 900,000 ha
    assert re.search(rf"kp-imaged-share\">{share:.2g}&nbsp;%", page), share


def test_bulletin_first_detected_is_not_called_new():
    from kpgeo.timeseries import zone_activity

    zone = make_zone(zid="z")
    fp = make_footprints("z")
    act = zone_activity(fp, None, zones=[zone], ring_width_m=RING_M)
    page = render_bulletin(zones=[zone], footprints=fp, activity=act)
    headers = re.findall(r"<th>(.*?)</th>", page, re.S)
    assert not [h for h in headers if re.search(r"\bnew\b", h, re.I)], headers
    assert "First detected in 2020Q4 (ha)" in headers
    q4 = act[(act["region"] == "zone")].iloc[-1]
    assert q4["new_sites"] == 3  # fp-003, fp-004, fp-005
    assert f"first detected in 2020Q4: {q4['new_area_ha']:.2f} ha (3 site(s))" in _text(page)
    # the state "new" is defined, and distinguished from "first detected in a period"
    assert "<i>new</i> — its disturbance began only" in page
    assert "not necessarily in state <i>new</i>" in page


def test_compare_dates_are_clear_dates_next_to_the_split():
    from kpgeo.report import zone_compare_dates

    cube = make_rgb_cube()
    fp = make_footprints()
    late = fp[fp["first_detected"] >= "2020-07-01"]  # earliest detection 2020-07-10
    before, after = zone_compare_dates(cube, late)
    # before: clear dates just before the first detection (cloudy Q2 dates left out)
    assert list(before.strftime("%Y-%m-%d")) == ["2020-01-10", "2020-02-20"]
    # after: the three most recent clear dates
    assert list(after.strftime("%Y-%m-%d")) == ["2020-08-20", "2020-10-05", "2020-11-25"]
    # a user-chosen date: the three clear dates on each side of it
    before, after = zone_compare_dates(cube, late, compare_date="2020-10-01")
    assert list(before.strftime("%Y-%m-%d")) == ["2020-02-20", "2020-07-10", "2020-08-20"]
    assert list(after.strftime("%Y-%m-%d")) == ["2020-10-05", "2020-11-25"]


def test_footprint_chips_show_the_change_at_its_first_detection():
    import geopandas as gpd
    import numpy as np
    from shapely.geometry import box

    from kpgeo.staticmap import footprint_chips

    # make_rgb_cube's bright pit appears on 2020-07-10 (x 200-500 m, y 700-1000 m of the zone)
    pit = gpd.GeoDataFrame(
        {"id": ["pit"], "first_detected": [pd.Timestamp("2020-07-10")], "area_ha": [4.0]},
        geometry=[box(X0 + 250, Y0 + 750, X0 + 450, Y0 + 950)],
        crs=UTM,
    )
    chips = footprint_chips(make_rgb_cube(), pit)["pit"]
    assert chips["before"]["dates"].max() < pd.Timestamp("2020-07-10")
    assert chips["after"]["dates"].min() == pd.Timestamp("2020-07-10")
    assert len(chips["before"]["dates"]) == len(chips["after"]["dates"]) == 2

    def centre_brightness(rgba):
        h, w = rgba.shape[:2]
        return float(np.mean(rgba[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3, :3]))

    assert centre_brightness(chips["after"]["rgba"]) > centre_brightness(
        chips["before"]["rgba"]
    ) + 60


def test_report_map_has_chips_swipe_and_short_windows(report_dir):
    out, _, _ = report_dir
    page = (out / "map.html").read_text(encoding="utf-8")
    assert page.count("kp-chip-before") >= 5 and "kp-swipe-control" in page
    # the before view is the few clear dates before the first detection (2020-01-10): none here
    labels = re.findall(r"True colour (before|after): (\d{4}-\d\d-\d\d) \\u2013 (\d{4}-\d\d-\d\d)",
                        page)
    assert labels == [("after", "2020-08-20", "2020-11-25")]


def _text(page):
    """Visible text of an HTML page, whitespace collapsed."""
    text = re.sub(r"<[^>]+>", " ", page.replace("&nbsp;", " "))
    return re.sub(r"\s+", " ", text)


def test_left_out_objects_are_read_from_every_zone_of_a_run(tmp_path):
    from kpgeo.io import write_vector
    from kpgeo.report import left_out_objects

    assert left_out_objects(tmp_path) is None  # nothing there
    fps = make_footprints()
    for zid, rows, kind in (("a", fps.iloc[:2], "clearing"), ("b", fps.iloc[2:3], "shoreline"),
                            ("c", fps.iloc[:0], "clearing")):
        folder = tmp_path / "zones" / zid
        folder.mkdir(parents=True)
        write_vector(rows.assign(zone=zid, kind=kind), folder / "rejected.geojson")
    got = left_out_objects(tmp_path)
    assert sorted(got["zone"]) == ["a", "a", "b"]
    assert got.crs.to_epsg() == 4326
    assert left_out_objects(tmp_path / "zones" / "b")["kind"].tolist() == ["shoreline"]
