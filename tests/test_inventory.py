"""The site inventory wired into ``kpgeo run`` (issue 10 items 2-4, end to end).

A run on the Berbérati sample's first 16 dates, then on all 24: the run's site
register (``OUT/kpgeo.gpkg``) keeps ids and first-detected dates; analyst marks
made with ``kpgeo triage`` carry into the next run and its totals; the run's
tables reach PostGIS (``--store``) as they are in the GeoPackage; a run whose
store write fails leaves both stores as they were.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
import sys
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kpgeo.cli import main
from kpgeo.errors import StoreError
from kpgeo.pipeline import load_config, run_pipeline
from kpgeo.store import LAYERS, SPATIAL_LAYERS, STORE_NAME, open_store, read_register

sys.path.insert(0, str(Path(__file__).parent))
from _stac_servers import postgres_unavailable, postgres_url  # noqa: E402
from test_store import _same_layers  # noqa: E402

ZONE = "caf-berberati"
SAMPLE = Path(__file__).resolve().parents[1] / "sample_tiles" / ZONE
FIRST = 16  # dates of the first run


def _config(tmp: Path, name: str, n_dates: int | None) -> Path:
    data = json.loads((SAMPLE / "items.json").read_text())
    for item in data["features"]:
        for asset in item["assets"].values():
            asset["href"] = str(SAMPLE / asset["href"])
    data["features"] = data["features"][:n_dates]
    (tmp / f"{name}.json").write_text(json.dumps(data))
    path = tmp / f"{name}.toml"
    path.write_text(f'[run]\nname = "{name}"\nring_width_m = 5000\n\n[[zones]]\nzone = "{ZONE}"\n'
                    f'items = "{tmp / (name + ".json")}"\n')
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Configs of the first 16 dates and of all dates, and a finished run of the first."""
    tmp = tmp_path_factory.mktemp("inventory")
    first, every = _config(tmp, "first", FIRST), _config(tmp, "all", None)
    out = tmp / "first-run"
    run_pipeline(load_config(first), out, report=True)
    return first, every, out


@pytest.fixture
def run_dir(runs, tmp_path):
    """A private copy of the first run's output folder."""
    out = tmp_path / "out"
    shutil.copytree(runs[2], out)
    return out


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_second_run_keeps_site_ids_and_dates_and_adds_history(runs, run_dir):
    _, every, _ = runs
    one = read_register(run_dir)
    run_pipeline(load_config(every), run_dir, report=False)
    two = read_register(run_dir)
    s1, s2 = one.sites.set_index("site_id"), two.sites.set_index("site_id")
    assert len(s1) >= 3 and len(s2) > len(s1)  # new sites after the 16th date
    assert set(s1.index) <= set(s2.index)
    for site_id, row in s1.iterrows():
        assert s2.at[site_id, "first_detected"] <= row["first_detected"], site_id
        assert s2.at[site_id, "first_seen"] == row["first_seen"]
    new = s2.loc[sorted(set(s2.index) - set(s1.index))]
    last_first = pd.Timestamp(json.loads(Path(str(runs[0]).replace(".toml", ".json")).read_text())
                              ["features"][FIRST - 1]["properties"]["datetime"][:10])
    assert (new["first_seen"] > last_first).all()
    # history: one row per site and period, up to the run's last period, matching the area
    h = two.history
    assert not h.duplicated(["site_id", "period"]).any()
    assert h["period"].max() == pd.Timestamp("2020-10-01")  # last image 2020-12-01, quarters
    for site_id, rows in h.groupby("site_id"):
        rows = rows.sort_values("period")
        assert rows["state"].iloc[0] == "new"
        assert (np.diff(rows["area_ha"]) >= -1e-9).all()
        if s2.at[site_id, "status"] == "detected":
            assert rows["area_ha"].iloc[-1] == pytest.approx(s2.at[site_id, "area_ha"], abs=1e-3)
    # run-level footprints carry their site ids, which the register knows
    fps = gpd.read_parquet(run_dir / "footprints.parquet")
    detected = s2[s2["status"] == "detected"]
    assert sorted(fps["site_id"]) == sorted(detected.index)
    assert fps.set_index("site_id")["id"].to_dict() == detected["footprint_id"].to_dict()


def _inside_total(out: Path) -> float:
    series = pd.read_csv(out / "timeseries.csv")
    zone = series[series["region"] == "zone"].sort_values("period_start")
    return float(zone["cumulative_area_ha"].iloc[-1])


def test_triage_marks_survive_a_rerun_and_change_the_totals(runs, run_dir):
    first, _, _ = runs
    sites = read_register(run_dir).sites
    inside = sites[sites["inside_zone"].astype(bool)].sort_values("area_ha", ascending=False)
    rejected, verified = inside["site_id"].iloc[0], inside["site_id"].iloc[1]
    total_before = _inside_total(run_dir)
    for args in ((rejected, "--status", "rejected", "--reason", "farm clearing"),
                 (verified, "--status", "verified", "--note", "field visit")):
        res = _cli("triage", *args, "--run", str(run_dir))
        assert res.exit_code == 0, res.output
    run_pipeline(load_config(first), run_dir, report=True)  # zone up to date: register only
    after = read_register(run_dir).sites.set_index("site_id")
    assert after.at[rejected, "triage_status"] == "rejected"
    assert after.at[rejected, "triage_reason"] == "farm clearing"
    assert after.at[verified, "triage_status"] == "verified"
    area = float(inside["area_ha"].iloc[0])
    assert _inside_total(run_dir) == pytest.approx(total_before - area, abs=0.02)
    fps = gpd.read_parquet(run_dir / "footprints.parquet").set_index("site_id")
    assert fps.at[rejected, "triage_status"] == "rejected"
    page = " ".join((run_dir / "bulletin.html").read_text().split())
    assert "1 verified</b>, 1 rejected" in page and f"{len(after) - 2} unreviewed" in page
    assert f"{rejected}" in page.split("Site history")[1]  # the history table lists it
    html = (run_dir / "map.html").read_text()
    assert "rejected by analyst (1)" in html and html.count("kp-rejected") == 1
    # `kpgeo report --run` reads the register too: a mark made since is used
    res = _cli("triage", rejected, "--status", "unreviewed", "--run", str(run_dir))
    assert res.exit_code == 0, res.output
    res = _cli("-q", "report", "--run", str(run_dir), "--out", str(run_dir / "rep"))
    assert res.exit_code == 0, res.output
    assert _inside_total(run_dir / "rep") == pytest.approx(total_before, abs=0.02)


def test_the_run_geopackage_has_every_layer_with_a_spatial_index(runs):
    import pyogrio

    path = runs[2] / STORE_NAME
    layers = dict(pyogrio.list_layers(path))
    assert set(LAYERS) <= set(layers)
    for layer in SPATIAL_LAYERS:
        assert layers[layer] == "MultiPolygon", layer
        assert pyogrio.read_info(path, layer=layer)["crs"] == "EPSG:4326"
    with sqlite3.connect(path) as db:
        indexed = {t for t, in db.execute("SELECT table_name FROM gpkg_extensions "
                                          "WHERE extension_name = 'gpkg_rtree_index'")}
    assert indexed == set(SPATIAL_LAYERS)
    counts = {layer: pyogrio.read_info(path, layer=layer)["features"] for layer in LAYERS}
    fps = gpd.read_parquet(runs[2] / "footprints.parquet")
    assert counts["footprints"] == len(fps) == counts["sites"] == counts["triage"] > 0
    assert counts["timeseries"] == len(pd.read_csv(runs[2] / "timeseries.csv"))
    assert counts["zones"] == counts["rings"] == 1
    rejected = gpd.read_file(runs[2] / "zones" / ZONE / "rejected.geojson")
    assert counts["left_out"] == len(rejected) > 0
    left_out = pyogrio.read_dataframe(path, layer="left_out")
    assert sorted(left_out["id"]) == sorted(rejected["id"])
    assert set(left_out["kind"]) <= {"clearing", "shoreline"}
    catalog = json.loads((runs[2] / "catalog.json").read_text())
    assert {link["href"] for link in catalog["links"] if link["rel"] == "item"} == {
        f"./stac/{ZONE}.json", "./stac/run.json"}


@pytest.fixture
def pg_url():
    why = postgres_unavailable()
    if why:
        pytest.skip(why)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    yield f"{postgres_url()}?schema={schema}"
    import psycopg

    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _fail_on(layer: str, real, error=OSError):
    """``real`` (a table writer), failing on ``layer`` as a full disk or a lost server would."""
    def write(frame, *args, **kwargs):
        if layer in (*args[:1], kwargs.get("layer"), kwargs.get("name")):
            raise error(f"simulated failure while writing {layer}")
        return real(frame, *args, **kwargs)
    return write


def _lost_server(message):
    import sqlalchemy

    return sqlalchemy.exc.OperationalError("INSERT", {}, Exception(message))


def test_postgis_store_equals_the_geopackage_and_a_failed_write_changes_neither(
        runs, run_dir, pg_url, monkeypatch):
    first, every, _ = runs
    res = _cli("-q", "run", str(first), "--out", str(run_dir), "--no-report", "--store", pg_url)
    assert res.exit_code == 0, res.output
    _same_layers(open_store(pg_url).read(), open_store(run_dir).read())
    # a mark made in the team's database carries into the next run (and its GeoPackage)
    site_id = read_register(pg_url).sites["site_id"].iloc[0]
    res = _cli("triage", site_id, "--status", "unclear", "--note", "cloud?", "--store", pg_url)
    assert res.exit_code == 0, res.output
    run_pipeline(dataclasses.replace(load_config(first), store=pg_url), run_dir, report=False)
    for store in (pg_url, run_dir):
        marks = read_register(store).sites.set_index("site_id")
        assert marks.at[site_id, "triage_status"] == "unclear", store
        assert marks.at[site_id, "triage_note"] == "cloud?"
    _same_layers(open_store(pg_url).read(), open_store(run_dir).read())
    gpkg, pg = _digest(run_dir / STORE_NAME), open_store(pg_url).read()
    footprints = _digest(run_dir / "footprints.parquet")
    # the next run (new dates) fails in the middle of the PostGIS transaction
    monkeypatch.setattr(pd.DataFrame, "to_sql", _fail_on("timeseries", pd.DataFrame.to_sql,
                                                            _lost_server))
    with pytest.raises(StoreError, match="PostGIS store"):
        run_pipeline(dataclasses.replace(load_config(every), store=pg_url), run_dir,
                     report=False)
    monkeypatch.undo()
    assert _digest(run_dir / STORE_NAME) == gpkg
    assert _digest(run_dir / "footprints.parquet") == footprints
    _same_layers(open_store(pg_url).read(), pg)


def test_a_failed_geopackage_write_leaves_the_previous_one(runs, run_dir, monkeypatch):
    import pyogrio

    gpkg = _digest(run_dir / STORE_NAME)
    listing = sorted(p.name for p in run_dir.iterdir())
    monkeypatch.setattr(pyogrio, "write_dataframe",
                        _fail_on("site_history", pyogrio.write_dataframe))
    with pytest.raises(StoreError, match="cannot write layer site_history"):
        run_pipeline(load_config(runs[1]), run_dir, report=False)
    assert _digest(run_dir / STORE_NAME) == gpkg
    assert sorted(p.name for p in run_dir.iterdir()) == listing  # no temporary file left


def test_zone_rasters_carry_nodata_a_colour_table_and_day_units(runs):
    import rasterio

    zone_dir = runs[2] / "zones" / ZONE
    with rasterio.open(zone_dir / "state.tif") as src:
        state = src.read(1)
        assert src.nodata == 255 and src.descriptions == ("state",)
        assert src.colormap(1)[1] == (228, 26, 28, 255)  # new: red
    with rasterio.open(zone_dir / "confidence.tif") as src:
        confidence = src.read(1)
        assert src.nodata == -1
    assert (state == 255).any()  # some pixels lack clear observations...
    assert ((confidence == -1) == (state == 255)).all()  # ...and have no confidence
    assert ((confidence >= 0) & (confidence <= 1))[state != 255].all()
    with rasterio.open(zone_dir / "first_detected.tif") as src:
        days = src.read(1)
        assert src.nodata == -1 and src.tags()["units"] == "days since 1970-01-01"
    fps = gpd.read_file(zone_dir / "footprints.geojson")  # ISO dates there
    first = np.datetime64("1970-01-01") + int(days[days >= 0].min())
    assert str(first) == min(fps["first_detected"].astype(str))

