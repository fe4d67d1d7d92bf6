"""``kpgeo report``: time series, web map, static maps and bulletin of a detection run."""

from __future__ import annotations

from pathlib import Path

import click

from kpgeo.cli.options import (
    aoi_opt,
    echo_json,
    json_opt,
    offline_opt,
    overwrite_opt,
    period_opt,
    ring_width_opt,
)

__all__ = ["report"]


@click.command("report")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=str),
    help="Directory written by `kpgeo detect` or `kpgeo run` (footprints.parquet or .geojson, "
    "coverage.csv; with RUN/kpgeo.gpkg the site register and its analyst marks).",
)
@click.option(
    "--items",
    "items_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=str),
    help="STAC ItemCollection JSON, for true-colour composites "
    "(and coverage if coverage.csv is absent).",
)
# not the shared zone_opt: report takes several zones (repeatable --zone)
@click.option(
    "--zone",
    "zone_keys",
    multiple=True,
    help="Zone id or name to report (repeatable). Default: the zones of the footprints.",
)
@aoi_opt
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="Output directory. Default: the run directory.",
)
@period_opt
@ring_width_opt
@click.option(
    "--min-coverage",
    type=float,
    default=0.3,
    show_default=True,
    help="Periods with a lower mean clear-sky fraction are reported as missing data.",
)
@offline_opt
@click.option(
    "--compare-date",
    default=None,
    metavar="YYYY-MM-DD",
    help="Compare the clear images just before this date with those just after it. "
    "Default: just before each zone's first detection vs the most recent images.",
)
@click.option("--title", default=None, help="Bulletin title. Default: the run directory name.")
@click.option(
    "--labels",
    "labels_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Labelling sheet of `kpgeo sample` (labels.csv; repeatable): error-adjusted areas "
    "in the bulletin and time series, sample units on the map. Default: every sheet in "
    "the run (RUN/zones/*/sample_*/labels.csv, RUN/sample_*/labels.csv).",
)
@click.option(
    "--exports",
    "exports_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="KP export statistics CSV (year, carats[, country]): set beside the production "
    "capacity, years above it flagged.",
)
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file (e.g. the pipeline file) whose [production] table sets the production "
    "parameters; adds production capacity to the bulletin and time series.",
)
@overwrite_opt
@json_opt
def report(
    run_dir: str,
    items_path: str | None,
    zone_keys: tuple[str, ...],
    aoi_path: str | None,
    out_dir: str | None,
    period: str,
    ring_width_m: float,
    min_coverage: float,
    offline: bool,
    compare_date: str | None,
    title: str | None,
    labels_paths: tuple[str, ...],
    exports_path: str | None,
    config_path: Path | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Write timeseries.csv/.parquet/.png, map.html, map_<zone>.png and bulletin.html for a run.

    With labelled samples (`kpgeo sample`) the bulletin and the time series give
    error-adjusted areas and the map shows the sample units; with --exports or
    --config, production capacity beside the KP export figures.
    """
    from kpgeo.area import sheet_paths
    from kpgeo.report import left_out_objects, write_report

    run = Path(run_dir)
    _check_report_options(min_coverage, ring_width_m, items_path)
    if compare_date is not None:
        from kpgeo.io import to_utc_naive

        compare_date = to_utc_naive([compare_date], what="--compare-date").iloc[0]
    production = None
    if config_path is not None:
        from kpgeo.cli.production import production_table
        from kpgeo.production import ProductionParams

        production = ProductionParams.from_mapping(
            production_table(config_path), where=f"{config_path}: [production]"
        )
    footprints = _read_footprints(run)
    register = _read_register(run)
    if register is not None and "site_id" in footprints.columns:
        from kpgeo.register import label_footprints

        footprints = label_footprints(footprints, register)  # marks made since the run
    cov_path = run / "coverage.csv"
    coverage = _read_coverage(cov_path) if cov_path.is_file() else None

    outputs = write_report(
        out_dir or run,
        footprints=footprints,
        coverage=coverage,
        zones=_report_zones(run, footprints, zone_keys, aoi_path),
        items=items_path,
        period=period,
        ring_width_m=ring_width_m,
        min_coverage=min_coverage,
        offline=offline,
        compare_date=compare_date,
        title=title or run.resolve().name,
        overwrite=overwrite,
        samples=list(labels_paths) or sheet_paths(run),
        production=production,
        exports=exports_path,
        register=register,
        left_out=left_out_objects(run),
    )
    if as_json:
        echo_json({"outputs": {name: str(path) for name, path in outputs.items()}})
        return
    click.echo(f"{len(outputs)} report file(s) -> {out_dir or run_dir}")


def _check_report_options(min_coverage: float, ring_width_m: float,
                          items_path: str | None) -> None:
    from kpgeo.errors import ConfigError

    if not 0.0 <= min_coverage <= 1.0:
        raise ConfigError(f"--min-coverage must be within [0, 1], got {min_coverage}")
    if ring_width_m <= 0:
        raise ConfigError(f"--ring-width-m must be positive metres, got {ring_width_m}")
    if items_path is not None and not Path(items_path).is_file():
        raise ConfigError(f"--items {items_path}: no such file")


def _report_zones(run: Path, footprints, zone_keys: tuple[str, ...], aoi_path: str | None):
    """Zones of --zone/--aoi, else the known zones of the run's footprints."""
    from kpgeo.errors import ConfigError
    from kpgeo.zones import get_zone, load_aoi

    zones = [get_zone(k) for k in zone_keys]
    if aoi_path is not None:
        zones.append(load_aoi(aoi_path))
    if zones:
        return zones
    ids = sorted(footprints["zone"].astype(str).unique()) if len(footprints) else []
    if not ids:
        raise ConfigError(f"{run} has no footprint; pass --zone or --aoi to report an empty run")
    for zid in ids:
        try:
            zones.append(get_zone(zid))
        except KeyError as exc:
            raise ConfigError(
                f"footprints in {run} belong to zone {zid!r}, which is not a known zone; "
                "pass the AOI file used for detection with --aoi"
            ) from exc
    return zones


def _read_footprints(run):
    """Footprints of a run directory (GeoParquet preferred, else GeoJSON)."""
    import geopandas as gpd

    from kpgeo.errors import ConfigError
    from kpgeo.io import to_utc_naive

    for name in ("footprints.parquet", "footprints.geojson"):
        path = run / name
        if not path.is_file():
            continue
        try:
            gdf = gpd.read_parquet(path) if name.endswith(".parquet") else gpd.read_file(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        if gdf.crs is None:
            gdf = gdf.set_crs(4326)
        missing = [
            c
            for c in ("zone", "first_detected", "last_active", "inside_zone")
            if c not in gdf.columns
        ]
        if missing:
            raise ConfigError(
                f"{path} lacks footprint column(s) {missing}; was it written by `kpgeo detect`?"
            )
        for col in ("first_detected", "last_active"):
            gdf[col] = to_utc_naive(gdf[col], what=f"column {col} of {path}").to_numpy()
        return gdf
    raise ConfigError(
        f"{run} holds no footprints.parquet or footprints.geojson; "
        f"run `kpgeo detect --out {run}` first"
    )


def _read_register(run):
    """Read the site register of a ``kpgeo run`` folder (RUN/kpgeo.gpkg), or None."""
    from kpgeo.store import STORE_NAME, read_register

    return read_register(run / STORE_NAME) if (run / STORE_NAME).is_file() else None


def _read_coverage(path):
    """``coverage.csv`` of a run, checked: parseable dates, numeric clear fractions."""
    import pandas as pd

    from kpgeo.errors import ConfigError
    from kpgeo.io import to_utc_naive

    try:
        coverage = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is not a coverage table (date, region, clear_fraction): {exc}"
        ) from exc
    missing = [c for c in ("date", "region", "clear_fraction") if c not in coverage.columns]
    if missing:
        raise ConfigError(
            f"{path} lacks column(s) {missing}; expected date, region, clear_fraction"
        )
    coverage["date"] = to_utc_naive(coverage["date"], what=f"column date of {path}").to_numpy()
    frac = pd.to_numeric(coverage["clear_fraction"], errors="coerce")
    bad = frac.isna() & coverage["clear_fraction"].notna()
    if bad.any():
        examples = ", ".join(repr(v) for v in coverage.loc[bad, "clear_fraction"].head(3))
        raise ConfigError(
            f"{int(bad.sum())} non-numeric value(s) in column clear_fraction of {path}: {examples}"
        )
    coverage["clear_fraction"] = frac
    return coverage
