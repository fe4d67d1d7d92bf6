"""Bulletin, static maps, write_report and the `kpgeo report` command."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from _report_data import EVIL, RING_M, make_footprints, make_rgb_cube, make_zone  # noqa: E402

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
        lat, lon = (float(v) for v in re.findall(r">(-?\d+\.\d{5})<", row))
        assert lat == pytest.approx(geom.centroid.y, abs=2e-5)
        assert lon == pytest.approx(geom.centroid.x, abs=2e-5)
    assert "outside (ring)" in page and "low clear-sky coverage" in page


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
