"""``kpgeo production``: production capacity (carats/year) per zone and period."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from kpgeo.cli.options import overwrite_opt

__all__ = ["production"]


def production_table(path: Path | None) -> dict:
    """Read the ``[production]`` table of a TOML file (a pipeline file); {} without a file."""
    from kpgeo.errors import ConfigError

    if path is None:
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file ({exc})") from exc
    table = raw.get("production", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [production] must be a table")
    return table


@click.command("production")
@click.option("--run", "run_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Output folder of `kpgeo run` or `kpgeo detect` (its footprints).")
@click.option("--config", "config_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file (e.g. the pipeline file) whose [production] table sets the "
                   "parameter ranges.")
@click.option("--exports", "exports_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="KP export statistics CSV: year, carats[, country].")
@click.option("--period", "freq", type=click.Choice(["YS", "QS", "MS"]), default="YS",
              show_default=True, help="Period of the estimates: YS years, QS quarters, MS months.")
@click.option("--freq", "freq_alias", type=click.Choice(["YS", "QS", "MS"]), default=None,
              hidden=True, deprecated=True, help="Deprecated: use --period.")
@click.option("--include-outside", is_flag=True,
              help="Count footprints outside their zone too (the outside ring).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for production.csv (and exports_check.csv); default: RUN.")
@overwrite_opt
def production(run_dir: Path, config_path: Path | None, exports_path: Path | None, freq: str,
               freq_alias: str | None, include_outside: bool, out_dir: Path | None,
               overwrite: bool) -> None:
    """Estimate diamond production capacity from mined area (Monte Carlo, ct/yr).

    Two USGS-style estimates per zone and period: volume and grade (new
    area x gravel thickness x grade x recovery) and miners x days (active
    area x miners/ha x days x gravel per miner-day x grade x recovery),
    reported as the median and 90 % interval. With --exports, years whose
    exports exceed the 90 % interval of the country's zones are flagged.
    """
    freq = freq_alias or freq  # the deprecated --freq spelling
    from kpgeo import io
    from kpgeo.estimates import production_results
    from kpgeo.production import ProductionParams, production_summary, read_footprints

    out = out_dir or run_dir
    io.ensure_out_dir(out, overwrite=overwrite, expect=("production.csv", "exports_check.csv"))
    where = f"{config_path}: [production]" if config_path else "[production]"
    params = ProductionParams.from_mapping(production_table(config_path), where=where)
    results = production_results(read_footprints(run_dir), freq=freq, params=params,
                                 exports=exports_path, inside_only=not include_outside)
    for row in production_summary(results.capacity).itertuples():
        click.echo(f"{row.zone} {row.period_start}..{row.period_end}: volume-grade "
                   f"{row.volume_grade_text}; miners-days {row.miners_days_text}")
    io.write_table(results.capacity, out / "production.csv")
    if results.exports is not None:
        check = results.exports
        for row in check[check["exceeds_capacity"]].itertuples():
            click.echo(f"FLAG {row.country} {row.year}: exports {row.exports_ct:,.0f} ct exceed "
                       f"the {row.method} capacity (95th percentile {row.p95_ct_per_year:,.0f})")
        io.write_table(check, out / "exports_check.csv")
