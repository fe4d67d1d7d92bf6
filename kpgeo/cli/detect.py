"""``kpgeo detect``: STAC items -> mining footprints and change rasters."""

from __future__ import annotations

import click

from kpgeo.cli.options import aoi_opt, items_opt, out_dir_opt, overwrite_opt, zone_opt

__all__ = ["detect"]


@click.command("detect")
@items_opt
@zone_opt
@aoi_opt
@out_dir_opt
@overwrite_opt
@click.option("--min-area-ha", type=float, default=0.05, show_default=True,
              help="Minimum mapping unit of a footprint (hectares).")
@click.option("--min-confidence", type=float, default=0.0, show_default=True,
              help="Ignore pixels below this detection confidence (0-1).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show a progress bar for long computations.")
@click.pass_context
def detect(ctx: click.Context, items_path: str, zone_key: str | None, aoi_path: str | None,
           out_dir: str, overwrite: bool, min_area_ha: float, min_confidence: float,
           progress: bool) -> None:
    """Detect new mining footprints in a zone or AOI.

    Writes OUT/footprints.geojson (EPSG:4326, ISO dates), OUT/footprints.parquet
    (GeoParquet, cube CRS) and the COGs first_detected.tif / last_active.tif
    (int32 days since 1970-01-01, nodata -1), confidence.tif (float32 0-1) and
    state.tif (uint8: 0 no change, 1 new, 2 active, 3 inactive,
    4 revegetating, 255 insufficient data).
    """
    import warnings

    from kpgeo.errors import ConfigError, InsufficientDataWarning
    from kpgeo.footprints import run_detect

    if (zone_key is None) == (aoi_path is None):
        raise click.UsageError("Pass exactly one of --zone ID or --aoi FILE.")
    if min_area_ha < 0:
        raise ConfigError(f"--min-area-ha must be >= 0, got {min_area_ha}.")
    verbosity = (ctx.obj or {}).get("verbosity", 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InsufficientDataWarning)
        result = run_detect(items_path, out_dir=out_dir, zone=zone_key, aoi=aoi_path,
                            min_area_ha=min_area_ha, min_confidence=min_confidence,
                            overwrite=overwrite, progress=progress and verbosity >= 0)
    for w in caught:
        if issubclass(w.category, InsufficientDataWarning):
            click.echo(f"Warning: {w.message}", err=True)
    fps = result["footprints"]
    if verbosity >= 0:
        total = float(fps["area_ha"].sum()) if len(fps) else 0.0
        click.echo(f"{len(fps)} footprint(s), {total:.2f} ha -> {out_dir}")
