"""One option name per concept across every subcommand; ``python -m kpgeo`` (issue 8 item 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kpgeo.cli import SUBCOMMANDS, LazyGroup, main

sys.path.insert(0, str(Path(__file__).parent))

COMMANDS = sorted(SUBCOMMANDS)
#: commands that print a summary of what they did or found
SUMMARISING = ("detect", "evaluate", "report", "run", "simulate", "summary", "zones")
#: one-shot commands that write files and refuse to replace them without --overwrite
ONE_SHOT_WRITERS = ("area", "detect", "evaluate", "production", "report", "sample", "simulate")


def _options(name):
    cmd = LazyGroup._load(name)
    assert cmd is not None, name
    return {
        opt: p for p in cmd.params if isinstance(p, click.Option) and not p.hidden for opt in p.opts
    }


def _cli(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_python_m_kpgeo_runs_the_cli():
    res = subprocess.run(
        [sys.executable, "-m", "kpgeo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert "Usage: kpgeo" in res.stdout and "detect" in res.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_ring_width_is_always_ring_width_m(name):
    for opt in _options(name):
        if "ring" in opt:
            assert opt == "--ring-width-m", (name, opt)


@pytest.mark.parametrize("name", COMMANDS)
def test_period_is_the_same_choice_everywhere(name):
    opts = _options(name)
    assert "--freq" not in opts, name
    if "--period" in opts:
        choice = opts["--period"].type
        assert isinstance(choice, click.Choice), name
        assert sorted(choice.choices) == ["MS", "QS", "YS"], name


@pytest.mark.parametrize("name", COMMANDS)
def test_overwrite_for_outputs_force_for_recomputing(name):
    opts = _options(name)
    assert ("--overwrite" in opts) == (name in ONE_SHOT_WRITERS), name
    assert ("--force" in opts) == (name == "run"), name


@pytest.mark.parametrize("name", SUMMARISING)
def test_json_wherever_a_summary_is_printed(name):
    opt = _options(name).get("--json")
    assert opt is not None and opt.is_flag, name


def test_detect_refuses_an_unknown_period_as_a_usage_error(tmp_path):
    res = _cli(["detect", "--items", "x.json", "--zone", "caf-berberati", "--out",
                str(tmp_path / "o"), "--period", "quarterly"])
    assert res.exit_code == 2 and "'quarterly' is not one of 'QS', 'MS', 'YS'" in res.output


def test_zones_ring_km_is_a_hidden_deprecated_alias():
    new = _cli(["zones", "--ring-width-m", "5000"])
    old = CliRunner().invoke(main, ["zones", "--ring-km", "5"])
    assert new.exit_code == 0 and old.exit_code == 0
    assert "ring (ha)" in new.output
    assert new.output.strip() in old.output  # same table (plus a deprecation note)
    assert "--ring-km" not in _cli(["zones", "--help"]).output


def test_zones_and_report_print_json(tmp_path):
    from _report_data import make_footprints

    from kpgeo.io import write_vector

    zones = json.loads(_cli(["zones", "--json", "--ring-width-m", "5000"]).stdout)
    berberati = next(z for z in zones if z["id"] == "caf-berberati")
    assert berberati["area_ha"] > 800_000 and berberati["ring_area_ha"] > 0
    write_vector(make_footprints("caf-berberati"), tmp_path / "footprints.geojson")
    res = _cli(["report", "--run", str(tmp_path), "--offline", "--ring-width-m", "400", "--json"])
    assert res.exit_code == 0, res.output
    outputs = json.loads(res.stdout)["outputs"]  # the warning went to stderr
    assert Path(outputs["bulletin.html"]).is_file() and Path(outputs["map.html"]).is_file()


def test_exports_and_config_name_the_same_kind_of_file_everywhere():
    # report and production both read KP export figures and a TOML [production] table
    assert {"--exports", "--config"} <= set(_options("report")) & set(_options("production"))
    for name in COMMANDS:
        opts = _options(name)
        for opt in ("--exports", "--config", "--labels"):
            if opt in opts:
                kind = opts[opt].type
                assert isinstance(kind, click.Path) and kind.exists and not kind.dir_okay, (
                    name, opt)
