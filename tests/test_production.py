"""Production capacity (kpgeo.production): hand-computed cases, validation, Monte Carlo."""

import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kpgeo.cli import main
from kpgeo.errors import ConfigError
from kpgeo.production import (
    PARAM_SPECS,
    PlaceholderParameterWarning,
    ProductionParams,
    compare_exports,
    mining_area_by_period,
    production_capacity,
    production_summary,
    read_exports,
)

FIXED = {"gravel_thickness_m": 1.0, "grade_ct_per_m3": 0.2, "recovery": 0.5,
         "miners_per_ha": 50, "working_days_per_year": 200, "gravel_m3_per_miner_day": 0.5}


def footprints(zone="caf-berberati"):
    return pd.DataFrame({
        "zone": [zone, zone, zone],
        "area_ha": [2.0, 1.0, 5.0],
        "first_detected": ["2020-03-01", "2019-06-01", "2020-05-01"],
        "last_active": ["2020-11-01", "2020-02-01", "2020-06-01"],
        "inside_zone": [True, True, False],
    })


def test_mining_area_by_period():
    areas = mining_area_by_period(footprints())
    assert areas[["period_start", "period_end"]].values.tolist() == [
        ["2019-01-01", "2019-12-31"], ["2020-01-01", "2020-12-31"]]
    assert areas["new_ha"].tolist() == [1.0, 2.0]          # the outside footprint is left out
    assert areas["active_ha"].tolist() == [1.0, 3.0]
    assert areas["years"].tolist() == pytest.approx([365 / 365.25, 366 / 365.25])
    q = mining_area_by_period(footprints(), freq="QS", inside_only=False)
    q2 = q[q["period_start"] == "2020-04-01"].iloc[0]
    assert (q2["new_ha"], q2["active_ha"]) == (5.0, 7.0)
    with pytest.raises(ConfigError, match="period"):
        mining_area_by_period(footprints(), freq="W")


def test_hand_computed_capacity_with_fixed_parameters():
    params = ProductionParams().fixed(**FIXED)
    assert params.placeholders == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no placeholder warning with sourced/fixed values
        cap = production_capacity(mining_area_by_period(footprints()), params)
    y2020 = cap[cap["period_start"] == "2020-01-01"].set_index("method")
    # volume and grade: 2 ha new in 2020 (366 days) x 1e4 m2 x 1.0 m x 0.2 ct/m3 x 0.5
    vg = 2.0 / (366 / 365.25) * 1e4 * 1.0 * 0.2 * 0.5
    # miners x days: 3 ha active x 50 miners/ha x 200 d x 0.5 m3/d x 0.2 ct/m3 x 0.5
    md = 3.0 * 50 * 200 * 0.5 * 0.2 * 0.5
    for method, value in (("volume_grade", vg), ("miners_days", md)):
        row = y2020.loc[method]
        assert row["median_ct_per_year"] == pytest.approx(value)
        assert row["p05_ct_per_year"] == pytest.approx(value)
        assert row["p95_ct_per_year"] == pytest.approx(value)
        assert row["placeholder_params"] == ""
    assert y2020.loc["volume_grade", "area_ha"] == pytest.approx(2.0 / (366 / 365.25))
    summary = production_summary(cap)
    assert summary.loc[1, "miners_days_text"] == "1,500 ct/yr (90 % interval 1,500-1,500)"
    assert not summary["placeholder"].any()


def test_monte_carlo_propagates_a_uniform_range():
    """Only the grade uncertain (uniform 0.1-0.3): capacity quantiles = grade quantiles."""
    params = ProductionParams.from_mapping(FIXED | {"grade_ct_per_m3": [0.1, 0.3],
                                                    "n_draws": 200_000, "seed": 3})
    cap = production_capacity(mining_area_by_period(footprints()), params)
    row = cap[(cap["period_start"] == "2020-01-01") & (cap["method"] == "miners_days")].iloc[0]
    per_grade = 3.0 * 50 * 200 * 0.5 * 0.5  # ct/yr per (ct/m3)
    assert row["median_ct_per_year"] == pytest.approx(per_grade * 0.20, rel=0.01)
    assert row["p05_ct_per_year"] == pytest.approx(per_grade * 0.11, rel=0.01)
    assert row["p95_ct_per_year"] == pytest.approx(per_grade * 0.29, rel=0.01)
    # triangular: the median of triangular(0.1, 0.1, 0.3) is 0.3 - 0.2 / sqrt(2)
    tri = ProductionParams.from_mapping(FIXED | {"grade_ct_per_m3": {
        "low": 0.1, "mode": 0.1, "high": 0.3, "source": "test"}, "n_draws": 200_000})
    cap = production_capacity(mining_area_by_period(footprints()), tri)
    row = cap[(cap["period_start"] == "2020-01-01") & (cap["method"] == "miners_days")].iloc[0]
    assert row["median_ct_per_year"] == pytest.approx(per_grade * (0.3 - 0.2 / np.sqrt(2)),
                                                      rel=0.01)
    assert tri.ranges["grade_ct_per_m3"].source == "test"


def test_defaults_are_placeholders_and_say_so():
    params = ProductionParams()
    assert sorted(params.placeholders) == sorted(PARAM_SPECS)
    assert all("PLACEHOLDER" in r.source for r in params.ranges.values())
    with pytest.warns(PlaceholderParameterWarning, match="placeholder"):
        cap = production_capacity(mining_area_by_period(footprints()))
    assert cap["placeholder_params"].str.contains("grade_ct_per_m3").all()
    assert (cap["p05_ct_per_year"] <= cap["median_ct_per_year"]).all()
    assert (cap["median_ct_per_year"] <= cap["p95_ct_per_year"]).all()


@pytest.mark.parametrize("mapping, match", [
    ({"gravel_thickness_m": -0.5}, r"gravel_thickness_m .*-0\.5 m is outside the documented"),
    ({"grade_ct_per_m3": [0.1, 7.0]}, r"grade_ct_per_m3 high = 7\.0 ct/m3 is outside"),
    ({"recovery": 1.5}, r"recovery .*outside the documented range \[0\.05, 1\.0\]"),
    ({"grade_ct_per_m3": [0.4, 0.2]}, r"grade_ct_per_m3: low 0\.4 is greater than high"),
    ({"grade_ct_per_m3": {"low": 0.1, "high": 0.2, "mode": 0.3}}, r"mode 0\.3 is not between"),
    ({"grade_ct_per_m3": {"low": 0.1}}, r"grade_ct_per_m3: a table needs low and high"),
    ({"grade_ct_per_m3": "0.2"}, r"grade_ct_per_m3 must be a finite number"),
    ({"working_days_per_year": True}, r"working_days_per_year must be a finite number"),
    ({"grade": 0.2}, r"unknown key\(s\) \['grade'\]"),
    ({"n_draws": 5}, r"n_draws must be an integer"),
])
def test_parameter_validation_names_the_key(mapping, match):
    with pytest.raises(ConfigError, match=match):
        ProductionParams.from_mapping(mapping, where="run.toml: [production]")
    with pytest.raises(ConfigError, match=r"run\.toml: \[production\]"):
        ProductionParams.from_mapping(mapping, where="run.toml: [production]")


def test_exports_comparison_flags_years_above_capacity(tmp_path):
    params = ProductionParams().fixed(**FIXED)
    fp = pd.concat([footprints("caf-berberati"), footprints("caf-carnot")], ignore_index=True)
    areas = mining_area_by_period(fp)
    # two CAF zones in 2020: miners-days 2 x 1,500 = 3,000 ct/yr
    path = tmp_path / "kp.csv"
    path.write_text("year,carats,country\n2019,100,CAF\n2020,50000,caf\n2020,10,CIV\n")
    check = compare_exports(areas, read_exports(path), params)
    md = check[check["method"] == "miners_days"].set_index("year")
    assert md.loc[2020, "median_ct_per_year"] == pytest.approx(3000.0)
    assert bool(md.loc[2020, "exceeds_capacity"]) and not bool(md.loc[2019, "exceeds_capacity"])
    assert set(check["country"]) == {"CAF"}  # no CIV zone in the run: nothing to compare
    bad = tmp_path / "bad.csv"
    bad.write_text("year,carats\n2020,-3\n")
    with pytest.raises(ConfigError, match="carats needs numbers >= 0"):
        read_exports(bad)
    bad.write_text("annee,carats\n2020,3\n")
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['year'\]"):
        read_exports(bad)


def test_cli_production(tmp_path):
    import geopandas as gpd
    import shapely

    run = tmp_path / "run"
    (run / "zones" / "caf-berberati").mkdir(parents=True)
    fp = footprints()
    gdf = gpd.GeoDataFrame(fp.assign(first_detected=pd.to_datetime(fp["first_detected"]),
                                     last_active=pd.to_datetime(fp["last_active"])),
                           geometry=[shapely.Point(15.8, 4.3)] * 3, crs=4326)
    gdf.to_parquet(run / "zones" / "caf-berberati" / "footprints.parquet")
    config = tmp_path / "run.toml"
    config.write_text("[production]\n" + "\n".join(f"{k} = {v}" for k, v in FIXED.items())
                      + "\n")
    exports = tmp_path / "kp.csv"
    exports.write_text("year,carats\n2020,90000\n")
    runner = CliRunner()
    res = runner.invoke(main, ["production", "--run", str(run), "--config", str(config),
                               "--exports", str(exports)])
    assert res.exit_code == 0, res.output
    assert "miners-days 1,500 ct/yr" in res.output and "FLAG all zones 2020" in res.output
    assert "placeholder" not in res.output
    cap = pd.read_csv(run / "production.csv")
    assert set(cap["method"]) == {"volume_grade", "miners_days"}
    assert (run / "exports_check.csv").is_file()
    config.write_text("[production]\ngrade_ct_per_m3 = 9.0\n")
    res = runner.invoke(main, ["production", "--run", str(run), "--config", str(config),
                               "--overwrite"])
    assert res.exit_code == 1 and "grade_ct_per_m3" in res.output
    res = runner.invoke(main, ["production", "--run", str(run), "--overwrite"])
    assert res.exit_code == 0 and "placeholder" in res.output
