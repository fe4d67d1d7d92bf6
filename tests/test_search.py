"""Finding scenes through a real STAC API on 127.0.0.1 (issue 10 item 1).

The STAC API is stac-fastapi-pgstac (what Planetary Computer runs) over a pgstac
database in the PostgreSQL test cluster (``bash tests/postgis_setup.sh``),
holding the sample items of both sample zones; their COGs are served over HTTP
with byte ranges from 127.0.0.1, so ``kpgeo search`` + ``kpgeo run`` go through
pystac-client and GDAL's /vsicurl/ exactly as against Earth Search. Nothing here
touches the internet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kpgeo.cli import main
from kpgeo.errors import ConfigError, StacSearchError
from kpgeo.search import PLANETARY_COMPUTER, SearchConfig, search_items
from kpgeo.zones import get_zone

sys.path.insert(0, str(Path(__file__).parent))
from _stac_servers import RangeServer, free_port, postgres_unavailable, start_pgstac_api, stop  # noqa: E402, I001

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_tiles"
ZONE = "caf-berberati"


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """A copy of the Berberati sample tiles served with byte ranges on 127.0.0.1."""
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(SAMPLES / ZONE, root / ZONE)
    server = RangeServer(root)
    yield server, root
    server.close()


def _remote_items(zone: str, base_url: str) -> list[dict]:
    data = json.loads((SAMPLES / zone / "items.json").read_text())
    for item in data["features"]:
        for asset in item["assets"].values():
            asset["href"] = f"{base_url}/{zone}/{asset['href'].removeprefix('./')}"
    return data["features"]


@pytest.fixture(scope="session")
def stac_api(served):
    """stac-fastapi-pgstac on 127.0.0.1 with the items of both sample zones."""
    why = postgres_unavailable()
    if why:
        pytest.skip(why)
    pytest.importorskip("stac_fastapi.pgstac", reason="pip install 'kpgeo[test]'")
    pytest.importorskip("pystac_client", reason="pip install 'kpgeo[stac]'")
    server, _ = served
    items = _remote_items(ZONE, server.url) + _remote_items("civ-seguela", server.url)
    collection = {
        "type": "Collection", "stac_version": "1.0.0", "id": "sentinel-2-l2a",
        "description": "kpgeo sample tiles (simulated Sentinel-2 L2A)", "license": "MIT",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2019-01-01T00:00:00Z", None]]}},
        "links": [],
    }
    url, proc = start_pgstac_api(collection, items)
    yield url
    stop(proc)


@pytest.fixture
def quick_retries(monkeypatch):
    """HTTP retries (STAC requests and GDAL reads) short enough for a test."""
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")


def _expected_ids(start: str, end: str, max_cloud: float) -> list[str]:
    """Ground truth from the sample items.json: date range, cloud limit (all cover the zone)."""
    data = json.loads((SAMPLES / ZONE / "items.json").read_text())
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    keep = [(f["properties"]["datetime"], f["id"]) for f in data["features"]
            if first <= dt.date.fromisoformat(f["properties"]["datetime"][:10]) <= last
            and f["properties"]["eo:cloud_cover"] <= max_cloud]
    return [i for _, i in sorted(keep)]


def test_search_returns_exactly_the_sample_items_for_zone_dates_cloud(stac_api):
    zone = get_zone(ZONE)
    config = SearchConfig(url=stac_api, start="2019-03-01", end="2020-06-30",
                          max_cloud_cover=30)
    found = search_items(config, zone.geometry.union(zone.ring(5000)))
    expected = _expected_ids("2019-03-01", "2020-06-30", 30)
    assert 3 <= len(expected) < 24  # the query really filters dates and clouds
    assert [it.id for it in found] == expected  # Séguéla's scenes are elsewhere: not found
    assert all(it.assets["red"].href.startswith("http://127.0.0.1:") for it in found)


def test_cloud_limit_is_sent_as_the_server_declares(stac_api):
    from pystac_client import Client

    from kpgeo.search import _cloud_params

    config = SearchConfig(url=stac_api, start="2019-01-01", max_cloud_cover=10)
    params = _cloud_params(Client.open(stac_api), config)
    assert params == {"query": {"eo:cloud_cover": {"lte": 10.0}}}  # pgstac declares query
    found = Client.open(stac_api).search(collections=["sentinel-2-l2a"], **params,
                                         datetime="2019-01-01/2020-12-31", max_items=100)
    clouds = [it.properties["eo:cloud_cover"] for it in found.items()]
    assert clouds and max(clouds) <= 10  # the server applied it, not only kpgeo


def test_cli_search_saves_the_items_and_the_search(stac_api, tmp_path):
    from kpgeo.items import read_items

    out = tmp_path / "items.json"
    res = _cli("search", "--url", stac_api, "--zone", ZONE, "--start", "2019-01-01",
               "--end", "2019-12-31", "--max-cloud-cover", "100", "--save", str(out), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    expected = _expected_ids("2019-01-01", "2019-12-31", 100)
    assert summary["items"] == len(expected)
    assert [it.id for it in read_items(out)] == expected
    saved = json.loads(out.read_text())["kpgeo:search"]
    assert saved["url"] == stac_api and saved["matched"] == len(expected)
    assert saved["datetime"] == "2019-01-01T00:00:00Z/2019-12-31T23:59:59Z"


def _toml(path: Path, items: Path) -> Path:
    path.write_text(f'[run]\nname = "t"\n\n[[zones]]\nzone = "{ZONE}"\nitems = "{items}"\n')
    return path


def test_run_from_the_search_equals_the_run_from_the_local_items(stac_api, served, tmp_path):
    import geopandas as gpd
    import rasterio

    items = tmp_path / "found.json"
    res = _cli("search", "--url", stac_api, "--zone", ZONE, "--start", "2019-01-01",
               "--end", "2020-12-31", "--max-cloud-cover", "100", "--save", str(items))
    assert res.exit_code == 0, res.output
    server, _ = served
    before = len(server.requests)
    remote = _cli("-q", "run", str(_toml(tmp_path / "remote.toml", items)), "--out",
                  str(tmp_path / "remote"), "--no-report")
    assert remote.exit_code == 0, remote.output
    assert len(server.requests) - before > 24 * 7  # every band was read over HTTP
    local = _cli("-q", "run", str(_toml(tmp_path / "local.toml", SAMPLES / ZONE / "items.json")),
                 "--out", str(tmp_path / "local"), "--no-report")
    assert local.exit_code == 0, local.output
    a = gpd.read_parquet(tmp_path / "remote" / "footprints.parquet")
    b = gpd.read_parquet(tmp_path / "local" / "footprints.parquet")
    assert len(a) == len(b) > 0
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()
    for name in ("first_detected.tif", "state.tif", "confidence.tif"):
        with rasterio.open(tmp_path / "remote" / "zones" / ZONE / name) as ra, \
                rasterio.open(tmp_path / "local" / "zones" / ZONE / name) as rb:
            np.testing.assert_array_equal(ra.read(), rb.read())


def _run_fresh(*args, env=None):
    """``kpgeo`` in a new process: GDAL's /vsicurl/ cache of this one must not hide a fault."""
    import os
    import subprocess

    res = subprocess.run([sys.executable, "-m", "kpgeo", *args], capture_output=True, text=True,
                         timeout=300, env={**os.environ, **(env or {})})
    return res.returncode, res.stdout + res.stderr


_QUICK = {"GDAL_HTTP_MAX_RETRY": "1", "GDAL_HTTP_RETRY_DELAY": "0.05"}


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "done.json"}


@pytest.fixture
def small_run(stac_api, tmp_path):
    """A finished run on the first quarter's scenes, its items remote, and its files."""
    items = tmp_path / "q1.json"
    res = _cli("search", "--url", stac_api, "--zone", ZONE, "--start", "2019-01-01",
               "--end", "2019-04-30", "--max-cloud-cover", "100", "--save", str(items))
    assert res.exit_code == 0, res.output
    config = _toml(tmp_path / "q1.toml", items)
    out = tmp_path / "out"
    first = _cli("-q", "run", str(config), "--out", str(out), "--no-report")
    assert first.exit_code == 0, first.output
    return config, out, json.loads(items.read_text())


def test_http_500_on_an_asset_is_one_error_naming_the_url(small_run, served):
    config, out, items = small_run
    server, _ = served
    href = items["features"][1]["assets"]["nir"]["href"]
    path = "/" + href.split("/", 3)[3]
    before = _snapshot(out)
    server.fail.add(path)
    try:
        code, output = _run_fresh("run", str(config), "--out", str(out), "--no-report",
                                  "--force", env=_QUICK)
    finally:
        server.fail.discard(path)
    assert code == 1
    assert href in output and "HTTP 500" in output and "after 1 retries" in output
    assert "Traceback" not in output
    assert server.requests.count(path) >= 2  # tried, then retried
    assert _snapshot(out) == before  # earlier outputs untouched


def test_an_asset_that_vanished_is_one_error_naming_the_url(small_run, served):
    config, out, items = small_run
    _, root = served
    href = items["features"][2]["assets"]["swir16"]["href"]
    local = root / href.split("/", 3)[3]
    kept = local.read_bytes()
    before = _snapshot(out)
    local.unlink()
    try:
        code, output = _run_fresh("run", str(config), "--out", str(out), "--no-report",
                                  "--force", env=_QUICK)
    finally:
        local.write_bytes(kept)
    assert code == 1
    assert href in output and "HTTP 404" in output and "removed" in output
    assert "Traceback" not in output
    assert _snapshot(out) == before


def test_unreachable_stac_api_is_one_error_naming_the_url(tmp_path, quick_retries):
    url = f"http://127.0.0.1:{free_port()}/v1"
    save = tmp_path / "items.json"
    res = _cli("search", "--url", url, "--zone", ZONE, "--start", "2019-01-01",
               "--save", str(save))
    assert res.exit_code == 1
    assert f"StacSearchError: STAC API {url}: cannot connect" in res.output
    assert "Traceback" not in res.output and not save.exists()
    with pytest.raises(ConnectionError):  # StacSearchError is a ConnectionError too
        search_items(SearchConfig(url=url, start="2019-01-01"), get_zone(ZONE).geometry)
    assert issubclass(StacSearchError, ConnectionError)


# --------------------------------------------------------------------------- configuration


def test_search_table_is_validated_naming_the_key():
    ok = SearchConfig.from_mapping({"provider": "earth-search", "start": dt.date(2024, 1, 1),
                                    "end": "2024-12-31", "max_cloud_cover": 40})
    assert ok.url.startswith("https://earth-search") and ok.collection == "sentinel-2-l2a"
    assert ok.datetime == "2024-01-01T00:00:00Z/2024-12-31T23:59:59Z" and ok.sign is None
    pc = SearchConfig.from_mapping({"provider": "planetary-computer-landsat",
                                    "start": "2024-01-01"})
    assert pc.url == PLANETARY_COMPUTER and pc.collection == "landsat-c2-l2"
    assert pc.sign == "planetary-computer"
    assert SearchConfig(url=PLANETARY_COMPUTER, start="2024-01-01").sign == "planetary-computer"
    bad = {
        "cloud": ({"provider": "earth-search", "start": "2024-01-01", "max_cloud_cover": 120},
                  "max_cloud_cover must be in [0, 100]"),
        "dates": ({"provider": "earth-search", "start": "2024-05-01", "end": "2024-01-01"},
                  "end 2024-01-01 is before start 2024-05-01"),
        "date": ({"provider": "earth-search", "start": "2024-13-01"}, "start must be a date"),
        "key": ({"provider": "earth-search", "start": "2024-01-01", "cloud": 3},
                "unknown key(s) ['cloud']"),
        "provider": ({"provider": "sentinel-hub", "start": "2024-01-01"},
                     "unknown provider 'sentinel-hub'"),
        "url": ({"url": "ftp://x", "start": "2024-01-01"}, "url must be an http(s)"),
        "none": ({"start": "2024-01-01"}, "give provider ="),
        "type": ({"provider": "earth-search", "start": "2024-01-01", "max_items": "9"},
                 "max_items has the wrong type"),
        "start": ({"provider": "earth-search"}, "start = \"YYYY-MM-DD\" is required"),
    }
    for name, (table, message) in bad.items():
        with pytest.raises(ConfigError) as err:
            SearchConfig.from_mapping(table, where="run.toml: [search]")
        assert str(err.value).startswith("run.toml: [search]: "), name
        assert message in str(err.value), (name, str(err.value))


@pytest.mark.parametrize("name", ["car_compliant_zones.toml", "cote_divoire.toml"])
def test_real_pipeline_files_have_a_valid_search_and_known_zones(name):
    import tomllib

    from kpgeo.zones import load_aoi

    raw = tomllib.loads((ROOT / "pipelines" / name).read_text(encoding="utf-8"))
    config = SearchConfig.from_mapping(raw["search"], where=f"{name}: [search]")
    assert config.collection == "sentinel-2-l2a" and config.max_cloud_cover <= 80
    zones = [load_aoi(entry["zone"]).id for entry in raw["zones"]]
    assert all("items" not in entry for entry in raw["zones"])  # found by the search
    expected = {"car_compliant_zones.toml": ["caf-berberati", "caf-boda", "caf-carnot",
                                             "caf-nola", "caf-gadzi"],
                "cote_divoire.toml": ["civ-seguela", "civ-tortiya"]}[name]
    assert zones == expected


def test_gdal_read_settings_come_from_one_place_and_the_environment_wins(monkeypatch):
    from kpgeo.gdal_env import GDAL_READ_DEFAULTS, read_error_message, read_options

    monkeypatch.delenv("GDAL_HTTP_MAX_RETRY", raising=False)
    assert read_options()["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert read_options()["GDAL_HTTP_MAX_RETRY"] == GDAL_READ_DEFAULTS["GDAL_HTTP_MAX_RETRY"]
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "9")
    assert read_options()["GDAL_HTTP_MAX_RETRY"] == "9"
    assert read_options(GDAL_HTTP_MAX_RETRY=2)["GDAL_HTTP_MAX_RETRY"] == "2"
    assert SearchConfig(url="http://127.0.0.1:9/v1", start="2020-01-01").max_retries == 9
    msg = read_error_message("https://x.test/a.tif", OSError("HTTP response code: 403"))
    assert msg.startswith("cannot read remote raster asset https://x.test/a.tif: HTTP 403")
    assert "expired" in msg


# --------------------------------------------------------------------------- [search] in kpgeo run


def _search_toml(path: Path, url: str) -> Path:
    path.write_text(f'[run]\nname = "t"\n\n[search]\nurl = "{url}"\ncollection = "sentinel-2-l2a"\n'
                    f'start = "2019-01-01"\nend = "2020-12-31"\nmax_cloud_cover = 100\n\n'
                    f'[[zones]]\nzone = "{ZONE}"\n')
    return path


def _canonical(frame):
    return frame.sort_values("id").reset_index(drop=True)


def test_run_with_a_search_section_saves_its_items_and_equals_the_local_run(stac_api, tmp_path):
    import geopandas as gpd

    from kpgeo.items import read_items
    from kpgeo.pipeline import load_config

    config = load_config(_search_toml(tmp_path / "search.toml", stac_api))
    assert config.search.url == stac_api and config.jobs[0].items is None
    res = _cli("-q", "run", str(tmp_path / "search.toml"), "--out", str(tmp_path / "remote"),
               "--no-report")
    assert res.exit_code == 0, res.output
    saved = tmp_path / "remote" / "zones" / ZONE / "items.json"
    assert [it.id for it in read_items(saved)] == _expected_ids("2019-01-01", "2020-12-31", 100)
    assert json.loads(saved.read_text())["kpgeo:search"]["url"] == stac_api
    local = _cli("-q", "run", str(_toml(tmp_path / "local.toml", SAMPLES / ZONE / "items.json")),
                 "--out", str(tmp_path / "local"), "--no-report")
    assert local.exit_code == 0, local.output
    a, b = (_canonical(gpd.read_parquet(tmp_path / d / "footprints.parquet"))
            for d in ("remote", "local"))
    assert len(a) == len(b) > 0
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))  # site ids too
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()
    # the saved items repeat the run exactly: the zone is up to date
    again = _cli("run", str(_toml(tmp_path / "again.toml", saved)), "--out",
                 str(tmp_path / "remote"), "--no-report", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["zones"][0].get("skipped") is True


def test_run_with_an_unreachable_stac_api_is_one_error_and_keeps_earlier_outputs(
        tmp_path, quick_retries):
    url = f"http://127.0.0.1:{free_port()}/v1"
    out = tmp_path / "out"
    (out / "zones" / ZONE).mkdir(parents=True)
    (out / "zones" / ZONE / "items.json").write_text("{}")  # an earlier search's file
    (out / "bulletin.html").write_text("earlier")
    before = _snapshot(out)
    code, output = _run_fresh("-q", "run", str(_search_toml(tmp_path / "s.toml", url)),
                              "--out", str(out), env=_QUICK)
    assert code == 1
    assert f"STAC API {url}: cannot connect" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1, output
    assert _snapshot(out) == before
