"""Run configuration: a bad config gets a clear error naming the file and the key."""

from __future__ import annotations

import pytest

from kpgeo.errors import ConfigError
from kpgeo.pipeline import load_config


@pytest.fixture
def items_file(tmp_path):
    path = tmp_path / "items.json"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    return path


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_valid_config_resolves_paths_and_zones(tmp_path, items_file):
    cfg = load_config(
        write(
            tmp_path,
            """
[run]
name = "test"
ring_width_m = 2000
period = "MS"
[[zones]]
zone = "Berbérati"
items = "items.json"
""",
        )
    )
    assert cfg.name == "test" and cfg.ring_width_m == 2000 and cfg.period == "MS"
    assert cfg.jobs[0].zone.id == "caf-berberati"
    assert cfg.jobs[0].items == items_file.resolve()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[run\nname=1", "not valid TOML"),
        ("[run]\nname='x'\n", "no \\[\\[zones\\]\\] entries"),
        (
            "[run]\ncolour='red'\n[[zones]]\nzone='nola'\nitems='items.json'\n",
            "unknown key.*colour",
        ),
        (
            "[[zones]]\nzone='atlantis'\nitems='items.json'\n",
            "unknown zone 'atlantis'.*caf-berberati",
        ),
        ("[[zones]]\nzone='nola'\nitems='missing.json'\n", "missing.json does not exist"),
        ("[[zones]]\nitems='items.json'\n", "exactly one of zone= or aoi="),
        ("[run]\nring_width_m=-5\n[[zones]]\nzone='nola'\nitems='items.json'\n", "ring_width_m"),
        (
            "[run]\nperiod='fortnight'\n[[zones]]\nzone='nola'\nitems='items.json'\n",
            "period must be",
        ),
        (
            "[run]\nmin_area_ha='big'\n[[zones]]\nzone='nola'\nitems='items.json'\n",
            "min_area_ha must be a int or float",
        ),
        ("run = 5\n[[zones]]\nzone='nola'\nitems='items.json'\n", "\\[run\\] must be a table"),
        ("[[zones]]\nzone=''\nitems='items.json'\n", "zone is empty"),
        ("[[zones]]\nzone=5\nitems='items.json'\n", "zone must be a str"),
        ("[[zones]]\nzone='nola'\nitems=5\n", "items must be a str"),
        ("zones = ['nola']\n", "entry 1 must be a table"),
        (
            "[[zones]]\nzone='nola'\nitems='items.json'\n[[zones]]\nzone='Nola'\nitems='items.json'\n",
            "more than once.*caf-nola",
        ),
        (
            "[[zones]]\nzone='nola'\nitems='items.json'\n[change]\nno_such_knob=1\n",
            "bad \\[change\\]",
        ),
        ("[[zones]]\nzone='nola'\n", "needs items= \\(or a \\[search\\] section\\)"),
        (
            "[search]\nprovider='earth-search'\nstart='2024-01-01'\ncloud=5\n[[zones]]\nzone='nola'\n",
            "run.toml: \\[search\\]: unknown key\\(s\\) \\['cloud'\\]",
        ),
        (
            "[search]\nprovider='earth-search'\nstart='2024-02-30'\n[[zones]]\nzone='nola'\n",
            "run.toml: \\[search\\]: start must be a date",
        ),
        (
            "[search]\nprovider='earth-search'\n[[zones]]\nzone='nola'\n",
            "run.toml: \\[search\\]: start = ",
        ),
        (
            "[run]\nstore='out/x.sqlite'\n[[zones]]\nzone='nola'\nitems='items.json'\n",
            "run.toml: store must be a postgresql://",
        ),
    ],
)
def test_bad_config_is_refused_with_file_name(tmp_path, items_file, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert (
        "run.toml" in str(err.value)
        or "ring_width_m" in str(err.value)
        or "period" in str(err.value)
    )


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such run configuration file"):
        load_config(tmp_path / "nope.toml")


def test_bundled_sample_config_is_valid():
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[1] / "pipelines" / "sample_tiles.toml")
    assert [j.zone.id for j in cfg.jobs] == ["caf-berberati", "civ-seguela"]


def test_search_section_gives_zones_without_items_a_search(tmp_path, items_file):
    cfg = load_config(write(tmp_path, """
[run]
store = "postgresql://kp@127.0.0.1:5432/kp?schema=car"
[search]
provider = "planetary-computer"
start = 2024-01-01
end = "2024-06-30"
max_cloud_cover = 40
[[zones]]
zone = "nola"
[[zones]]
zone = "boda"
items = "items.json"
"""))
    assert cfg.search.collection == "sentinel-2-l2a" and cfg.search.sign == "planetary-computer"
    assert cfg.search.datetime == "2024-01-01T00:00:00Z/2024-06-30T23:59:59Z"
    assert cfg.search.max_cloud_cover == 40
    assert [job.items for job in cfg.jobs] == [None, items_file.resolve()]
    assert cfg.store == "postgresql://kp@127.0.0.1:5432/kp?schema=car"
