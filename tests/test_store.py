"""Stores of a run: GeoPackage, PostGIS, triage through them, STAC catalog (issue 10 items 3-5).

PostGIS tests use the cluster of ``bash tests/postgis_setup.sh`` (Debian's
postgresql + postgis on 127.0.0.1) and skip, saying why, when it does not answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner

from kpgeo.cli import main
from kpgeo.errors import StoreError
from kpgeo.register import set_triage, triage_counts, update_register
from kpgeo.store import (
    LAYERS,
    SPATIAL_LAYERS,
    GeoPackageStore,
    PostGISStore,
    mark_site,
    open_store,
    read_register,
    run_tables,
    write_stac_catalog,
)
from kpgeo.zones import get_zone

sys.path.insert(0, str(Path(__file__).parent))
from _stac_servers import postgres_unavailable, postgres_url  # noqa: E402
from test_register import ZONE, box, fps  # noqa: E402


def _tables(triaged: bool = True):
    r = update_register(None, fps(("a", box(0, 0, 100, 100), "2019-06-01", "2019-09-01"),
                                  ("b", box(500, 0, 600, 100), "2019-06-01", "2019-09-01"),
                                  ("c", box(1000, 0, 1100, 200), "2019-07-01", "2019-09-01")),
                        zone=ZONE, as_of="2019-09-30")
    reg = r.register
    if triaged:
        reg = set_triage(reg, f"{ZONE}-s00002", "rejected", reason="farm clearing",
                         note="seen on a field visit", date="2019-10-06", analyst="KP team")
    timeseries = pd.DataFrame({"region": [ZONE, f"{ZONE}:ring"],
                               "period": pd.to_datetime(["2019-07-01", "2019-07-01"]),
                               "cumulative_area_ha": [3.0, 0.0], "low_coverage": [False, True]})
    left_out = fps(("x", box(2000, 0, 2100, 100), "2019-06-01", "2019-09-01")).assign(
        kind="clearing")
    return run_tables(reg, zones=[get_zone(ZONE)], ring_width_m=5000, footprints=r.footprints,
                      timeseries=timeseries, left_out=left_out)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def gpkg(tmp_path):
    store = GeoPackageStore(tmp_path / "kpgeo.gpkg")
    store.write(_tables())
    return store


@pytest.fixture
def pg_url():
    why = postgres_unavailable()
    if why:
        pytest.skip(why)
    schema = f"t_{uuid.uuid4().hex[:10]}"
    url = f"{postgres_url()}?schema={schema}"
    yield url
    import psycopg

    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_geopackage_has_every_layer_with_a_spatial_index(gpkg):
    import pyogrio

    layers = dict(pyogrio.list_layers(gpkg.path))
    assert set(LAYERS) <= set(layers)
    for layer in SPATIAL_LAYERS:
        assert layers[layer] == "MultiPolygon", layer
    assert layers["site_history"] is None and layers["timeseries"] is None  # attribute tables
    with sqlite3.connect(gpkg.path) as con:
        indexed = {t for t, in con.execute(
            "SELECT table_name FROM gpkg_extensions WHERE extension_name = 'gpkg_rtree_index'")}
        assert indexed == set(SPATIAL_LAYERS)
        for layer in SPATIAL_LAYERS:
            n = con.execute(f'SELECT count(*) FROM "{layer}"').fetchone()[0]
            n_index = con.execute(f'SELECT count(*) FROM "rtree_{layer}_geom"').fetchone()[0]
            assert n == n_index > 0, layer
        (status,), = con.execute(f"SELECT status FROM triage WHERE site_id = '{ZONE}-s00002'")
        assert status == "rejected"


def test_geopackage_gives_back_what_was_written(gpkg):
    tables = _tables()
    back = gpkg.read()
    sites = back["sites"].set_index("site_id")
    assert list(sites.index) == list(tables["sites"]["site_id"])
    assert sites["first_detected"].dtype == "datetime64[ns]"
    assert sites.loc[f"{ZONE}-s00003", "first_detected"] == pd.Timestamp("2019-07-01")
    assert sites["inside_zone"].dtype == bool and sites["reopened"].dtype == bool
    assert sites.loc[f"{ZONE}-s00002", "triage_reason"] == "farm clearing"
    assert sites.loc[f"{ZONE}-s00001", "triage_reason"] is None
    assert back["left_out"]["kind"].tolist() == ["clearing"]
    assert back["left_out"]["first_detected"].tolist() == [pd.Timestamp("2019-06-01")]
    assert back["timeseries"]["low_coverage"].tolist() == [False, True]
    assert back["timeseries"]["period"].tolist() == list(tables["timeseries"]["period"])
    areas = back["sites"].to_crs(32633).area / 1e4
    assert areas.tolist() == pytest.approx(tables["sites"]["area_ha"].tolist(), rel=1e-6)
    register = read_register(gpkg.path)
    assert triage_counts(register) == triage_counts(_register_of(tables))


def _register_of(tables):
    from kpgeo.store import tables_register

    return tables_register(tables)


def test_a_failed_write_leaves_the_geopackage_as_it_was(gpkg, monkeypatch):
    import pyogrio

    before = _digest(gpkg.path)
    real = pyogrio.write_dataframe

    def failing(frame, path, layer=None, **kw):
        if layer == "footprints":
            raise RuntimeError("disk trouble")
        return real(frame, path, layer=layer, **kw)

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    with pytest.raises(StoreError, match="cannot write layer footprints of .*kpgeo.gpkg"):
        gpkg.write(_tables(triaged=False))
    assert _digest(gpkg.path) == before
    assert sorted(p.name for p in gpkg.path.parent.iterdir()) == ["kpgeo.gpkg"]


_KILLER = """
import os, pickle, signal, sys
import pandas as pd
import pyogrio
from kpgeo.store import open_store

tables = pickle.load(open(sys.argv[2], "rb"))
count = {"n": 0}

def die_after_three(*args, **kwargs):
    count["n"] += 1
    if count["n"] == 4:
        os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of the write

real_file, real_sql = pyogrio.write_dataframe, pd.DataFrame.to_sql
def file_writer(*a, **k):
    die_after_three()
    return real_file(*a, **k)
def sql_writer(self, *a, **k):
    die_after_three()
    return real_sql(self, *a, **k)
pyogrio.write_dataframe = file_writer
pd.DataFrame.to_sql = sql_writer
open_store(sys.argv[1]).write(tables)
"""


def _write_killed(target: str, tables, tmp_path: Path) -> int:
    blob = tmp_path / "tables.pickle"
    blob.write_bytes(pickle.dumps(tables))
    res = subprocess.run([sys.executable, "-c", _KILLER, target, str(blob)], timeout=120,
                         capture_output=True, text=True, env=dict(os.environ))
    return res.returncode


def _newer_tables():
    tables = _tables()
    register = _register_of(tables)
    r = update_register(register, fps(("z", box(3000, 0, 3100, 100), "2019-11-01", "2019-12-01")),
                        zone=ZONE, as_of="2019-12-31")
    return run_tables(r.register, zones=[get_zone(ZONE)], ring_width_m=5000,
                      footprints=r.footprints)


def test_a_run_killed_mid_write_leaves_the_geopackage_unchanged(gpkg, tmp_path):
    before = _digest(gpkg.path)
    assert _write_killed(str(gpkg.path), _newer_tables(), tmp_path) == -9
    assert _digest(gpkg.path) == before
    assert triage_counts(read_register(gpkg.path))["sites"] == 3
    from kpgeo.io import is_temp_name, remove_temp_files

    leftovers = [p for p in gpkg.path.parent.iterdir() if p.name != "kpgeo.gpkg"
                 and p.name != "tables.pickle"]
    assert leftovers and all(is_temp_name(p.name) for p in leftovers)  # the next run cleans up
    remove_temp_files(gpkg.path.parent)
    assert not any(is_temp_name(p.name) for p in gpkg.path.parent.iterdir())


def _same_layers(a: dict, b: dict) -> None:
    for layer in LAYERS:
        x, y = a[layer], b[layer]
        assert sorted(x.columns) == sorted(y.columns), layer
        key = [c for c in ("site_id", "id", "zone", "region", "period", "as_of", "event")
               if c in x.columns]
        x = x[sorted(x.columns)].sort_values(key).reset_index(drop=True)
        y = y[sorted(y.columns)].sort_values(key).reset_index(drop=True)
        if "geometry" in x:
            assert x.geometry.geom_equals_exact(y.geometry, tolerance=1e-9).all(), layer
            x, y = x.drop(columns="geometry"), y.drop(columns="geometry")
        pd.testing.assert_frame_equal(pd.DataFrame(x), pd.DataFrame(y), check_dtype=False,
                                      obj=layer)


def test_postgis_round_trip_equals_the_geopackage(gpkg, pg_url):
    store = open_store(pg_url)
    assert isinstance(store, PostGISStore) and "?schema=" in str(store)
    store.write(_tables())
    _same_layers(store.read(), gpkg.read())
    import psycopg

    with psycopg.connect(postgres_url()) as conn:
        indexed = {t for t, in conn.execute(
            "SELECT tablename FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE "
            "'%%USING gist%%'", (store.schema,))}
    assert indexed == set(SPATIAL_LAYERS)


def test_a_run_killed_mid_write_leaves_postgis_unchanged(pg_url, tmp_path):
    store = open_store(pg_url)
    store.write(_tables())
    before = store.read()
    assert _write_killed(pg_url, _newer_tables(), tmp_path) == -9
    _same_layers(store.read(), before)


def test_postgis_store_errors_name_the_server():
    store = open_store("postgresql://nobody@127.0.0.1:9/none?schema=x")
    with pytest.raises(StoreError, match=r"PostGIS store postgresql://127\.0\.0\.1:9/none"):
        store.read()


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_triage_from_the_cli_survives_a_rerun_and_changes_the_totals(gpkg):
    run_dir = gpkg.path.parent
    res = _cli("triage", f"{ZONE}-s00003", "--run", str(run_dir), "--status", "verified",
               "--note", "pits seen", "--date", "2019-10-07", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "verified"
    listing = _cli("triage", "--run", str(run_dir))
    assert f"{ZONE}-s00002" in listing.output and "rejected (farm clearing)" in listing.output
    # the next run reads the register from the store: marks carried, rejected out of the totals
    r2 = update_register(read_register(gpkg.path), fps(
        ("a", box(0, 0, 100, 100), "2019-06-01", "2019-12-01"),
        ("b", box(500, 0, 600, 100), "2019-06-01", "2019-12-01"),
        ("c", box(1000, 0, 1100, 200), "2019-07-01", "2019-12-01")), zone=ZONE,
        as_of="2019-12-31")
    assert triage_counts(r2.register) == {"unreviewed": 1, "verified": 1, "rejected": 1,
                                          "unclear": 0, "sites": 3, "reopened": 0}
    stored = gpkg.read()["footprints"].set_index("site_id")["triage_status"]
    assert stored[f"{ZONE}-s00003"] == "verified"  # the store's footprints follow the mark


def test_a_store_of_an_older_kpgeo_without_a_layer_added_since_can_be_marked(tmp_path):
    import pyogrio

    from kpgeo.store import left_out_columns, mark_site

    tables = _tables()
    del tables["left_out"]  # what a kpgeo before the left_out layer wrote
    store = GeoPackageStore(tmp_path / "kpgeo.gpkg")
    store.write(tables)
    with sqlite3.connect(store.path) as con:  # and not even an empty layer of it
        con.execute('DROP TABLE "left_out"')
        con.execute("DELETE FROM gpkg_contents WHERE table_name = 'left_out'")
        con.execute("DELETE FROM gpkg_geometry_columns WHERE table_name = 'left_out'")
    assert "left_out" not in dict(pyogrio.list_layers(store.path))
    back = store.read()["left_out"]
    assert len(back) == 0 and back.crs.to_epsg() == 4326
    assert set(left_out_columns()) <= set(back.columns)
    row = mark_site(store, f"{ZONE}-s00001", "verified", date="2019-10-07")
    assert row["status"] == "verified"
    assert read_register(store.path).triage.set_index("site_id").loc[
        f"{ZONE}-s00001", "status"] == "verified"
    assert pyogrio.read_info(store.path, layer="left_out")["features"] == 0


def test_an_empty_left_out_layer_keeps_its_columns(tmp_path):
    import pyogrio

    from kpgeo.store import left_out_columns

    tables = _tables()
    tables["left_out"] = run_tables(_register_of(tables), zones=[get_zone(ZONE)],
                                    ring_width_m=5000, footprints=tables["footprints"])["left_out"]
    store = GeoPackageStore(tmp_path / "kpgeo.gpkg")
    store.write(tables)
    info = pyogrio.read_info(store.path, layer="left_out")
    assert info["features"] == 0
    assert set(info["fields"]) == set(left_out_columns()) - {"geometry"}


def test_triage_cli_refuses_bad_marks_in_one_line(gpkg):
    run_dir = str(gpkg.path.parent)
    before = _digest(gpkg.path)
    res = _cli("triage", f"{ZONE}-s00001", "--run", run_dir, "--status", "rejected")
    assert res.exit_code == 1 and "needs a reason" in res.output
    res = _cli("triage", f"{ZONE}-s00042", "--run", run_dir, "--status", "verified")
    assert res.exit_code == 1 and "UnknownSiteError" in res.output
    assert f"{ZONE}-s00001" in res.output
    res = _cli("triage", f"{ZONE}-s00001", "--status", "verified")
    assert res.exit_code == 2
    assert _digest(gpkg.path) == before


def test_a_mark_edited_in_the_triage_layer_like_qgis_does_is_read(gpkg):
    import pyogrio

    # what QGIS's attribute editor does through GDAL: the triage layer rewritten, edited
    layer = pyogrio.read_dataframe(gpkg.path, layer="triage")
    layer.loc[layer["site_id"] == f"{ZONE}-s00001", ["status", "note"]] = ["Unclear",
                                                                            "clouded image"]
    pyogrio.write_dataframe(layer, gpkg.path, layer="triage", driver="GPKG",
                            layer_options={"OVERWRITE": "YES"})
    register = read_register(gpkg.path)
    assert register.triage.set_index("site_id").loc[f"{ZONE}-s00001", "status"] == "unclear"
    r2 = update_register(register, fps(("a", box(0, 0, 100, 100), "2019-06-01", "2019-12-01")),
                         zone=ZONE, as_of="2019-12-31")
    assert r2.register.sites.set_index("site_id").loc[f"{ZONE}-s00001",
                                                       "triage_status"] == "unclear"


def test_triage_through_postgis(pg_url):
    open_store(pg_url).write(_tables())
    res = _cli("triage", f"{ZONE}-s00001", "--store", pg_url, "--status", "verified")
    assert res.exit_code == 0, res.output
    row = mark_site(pg_url, f"{ZONE}-s00003", "unclear", note="check again")
    assert row["status"] == "unclear"
    counts = triage_counts(read_register(pg_url))
    assert counts == {"unreviewed": 0, "verified": 1, "rejected": 1, "unclear": 1, "sites": 3,
                      "reopened": 0}


def test_stac_catalog_describes_the_run_outputs(gpkg):
    import pystac

    out = gpkg.path.parent
    zone_dir = out / "zones" / ZONE
    zone_dir.mkdir(parents=True)
    for name in ("first_detected.tif", "state.tif", "footprints.parquet"):
        (zone_dir / name).write_bytes(b"x")
    (out / "bulletin.html").write_text("<html></html>")
    path = write_stac_catalog(out, zones=[get_zone(ZONE)], as_of="2019-12-31", title="t")
    catalog = pystac.Catalog.from_file(str(path))
    items = {it.id: it for it in catalog.get_items()}
    assert set(items) == {ZONE, "run"}
    assert items[ZONE].datetime.isoformat().startswith("2019-12-31")
    assert set(items[ZONE].assets) == {"first_detected_tif", "state_tif", "footprints_parquet"}
    assert "days since 1970-01-01" in items[ZONE].assets["first_detected_tif"].title
    assert set(items["run"].assets) == {"kpgeo_gpkg", "bulletin_html"}
    for item in items.values():
        for asset in item.assets.values():
            assert Path(asset.get_absolute_href()).is_file(), asset.href


def test_geojson_layer_is_named_after_the_file_and_converts_to_a_geopackage(tmp_path):
    import geopandas as gpd
    import pyogrio

    from kpgeo.io import write_vector

    frame = gpd.GeoDataFrame({"id": ["x"], "first_detected": pd.to_datetime(["2019-06-01"])},
                             geometry=[shapely.box(15.6, 4.7, 15.61, 4.71)], crs=4326)
    path = write_vector(frame, tmp_path / "footprints.geojson")
    assert [name for name, _ in pyogrio.list_layers(path)] == ["footprints"]
    assert json.loads(path.read_text())["name"] == "footprints"
    # what `ogr2ogr -f GPKG x.gpkg footprints.geojson` does: the layer keeps its name
    pyogrio.write_dataframe(pyogrio.read_dataframe(path), tmp_path / "x.gpkg",
                            layer=pyogrio.list_layers(path)[0][0])
    dates = pyogrio.read_dataframe(tmp_path / "x.gpkg", layer="footprints")["first_detected"]
    assert [pd.Timestamp(d) for d in dates] == [pd.Timestamp("2019-06-01")]


def test_write_cog_writes_a_colour_table_nodata_and_a_description(tmp_path):
    import rasterio
    import rioxarray  # noqa: F401
    import xarray as xr

    from kpgeo.errors import ConfigError
    from kpgeo.io import write_cog

    da = xr.DataArray(np.array([[0, 1], [2, 255]], dtype="uint8"), dims=("y", "x"),
                      coords={"y": [5.0, -5.0], "x": [5.0, 15.0]}, name="state")
    da = da.rio.write_crs(32633)
    colours = {0: (0, 0, 0, 0), 1: (230, 30, 30, 255), 2: (250, 150, 0, 255),
               255: (128, 128, 128, 0)}
    path = write_cog(da, tmp_path / "state.tif", nodata=255, colormap=colours)
    with rasterio.open(path) as src:
        assert src.nodata == 255 and src.descriptions == ("state",)
        assert src.colormap(1)[1] == (230, 30, 30, 255)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.read(1).tolist() == [[0, 1], [2, 255]]
    with pytest.raises(ConfigError, match="uint8"):
        write_cog(da.astype("float32"), tmp_path / "c.tif", colormap=colours)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.tif"]


def test_a_mistyped_status_in_the_triage_layer_is_named(gpkg):
    import pyogrio

    from kpgeo.errors import ConfigError

    layer = pyogrio.read_dataframe(gpkg.path, layer="triage")
    layer.loc[layer["site_id"] == f"{ZONE}-s00003", "status"] = "false alarm"
    pyogrio.write_dataframe(layer, gpkg.path, layer="triage", driver="GPKG",
                            layer_options={"OVERWRITE": "YES"})
    with pytest.raises(ConfigError, match=rf"site {ZONE}-s00003: status 'false alarm' is not"):
        read_register(gpkg.path)
