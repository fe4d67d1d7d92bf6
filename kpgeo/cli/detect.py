"""``kpgeo detect``: STAC items -> mining footprints, change rasters and reports for one zone."""

from __future__ import annotations

import click

from kpgeo.cli.options import (
    aoi_opt,
    echo_json,
    items_opt,
    json_opt,
    offline_opt,
    out_dir_opt,
    overwrite_opt,
    period_opt,
    zone_opt,
)

__all__ = ["detect"]


@click.command("detect")
@items_opt
@zone_opt
@aoi_opt
@out_dir_opt
@overwrite_opt
@click.option(
    "--ring-width-m",
    type=float,
    default=5000.0,
    show_default=True,
    help="Also watch a band this wide just outside the zone (metres).",
)
@click.option(
    "--min-area-ha",
    type=float,
    default=0.05,
    show_default=True,
    help="Minimum mapping unit of a footprint (hectares).",
)
@period_opt
@offline_opt
@click.option(
    "--no-report",
    is_flag=True,
    help="Only footprints and rasters: no time series, maps or bulletin.",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show a progress bar for long computations.",
)
@json_opt
@click.pass_context
def detect(
    ctx: click.Context,
    items_path: str,
    zone_key: str | None,
    aoi_path: str | None,
    out_dir: str,
    overwrite: bool,
    ring_width_m: float,
    min_area_ha: float,
    period: str,
    offline: bool,
    no_report: bool,
    progress: bool,
    as_json: bool,
) -> None:
    """Detect new mining footprints in a zone (or AOI) and the ring just outside it.

    Writes into OUT: footprints.geojson (EPSG:4326, ISO dates) and
    footprints.parquet (GeoParquet); rejected.geojson (objects judged clearings
    or shorelines, with their kind); the COGs first_detected.tif and
    last_active.tif (int32 days since 1970-01-01, nodata -1), confidence.tif
    (float32 0-1, nodata -1) and state.tif (uint8: 0 no change, 1 new, 2 active,
    3 inactive, 4 revegetating, 255 insufficient data = nodata; colour table); coverage.csv and
    summary.json; and, unless --no-report, the time series, map.html,
    map_<zone>.png and bulletin.html.
    """
    from kpgeo import io
    from kpgeo.console import want_progress
    from kpgeo.pipeline import ZONE_OUTPUTS, RunConfig, ZoneJob, process_zone
    from kpgeo.report import REPORT_OUTPUTS, left_out_objects, write_report
    from kpgeo.summary import format_summary
    from kpgeo.zones import load_aoi

    if (zone_key is None) == (aoi_path is None):
        raise click.UsageError("Pass exactly one of --zone ID or --aoi FILE.")
    zone = load_aoi(zone_key or aoi_path)
    # validates the numbers the same way a run configuration is validated
    RunConfig(
        jobs=(ZoneJob(zone=zone, items=items_path),),
        ring_width_m=ring_width_m,
        min_area_ha=min_area_ha,
        period=period,
    )
    expected = ZONE_OUTPUTS + (() if no_report else REPORT_OUTPUTS)
    if not overwrite:
        io.refuse_existing(out_dir, expected)
    verbosity = (ctx.obj or {}).get("verbosity", 0)
    # OUT is created, locked against a second run and cleared of temporary files here;
    # a command that fails before writing anything leaves no empty OUT behind
    with io.output_dir(out_dir):
        result = process_zone(
            items_path,
            zone,
            out_dir=out_dir,
            ring_width_m=ring_width_m,
            min_area_ha=min_area_ha,
            progress=progress and want_progress(verbosity),
        )
        if not no_report:
            outputs = write_report(
                out_dir,
                footprints=result.footprints,
                coverage=result.coverage,
                zones=[zone],
                cube=result.cube,
                period=period,
                ring_width_m=ring_width_m,
                offline=offline,
                title=f"kpgeo: {zone.name}",
                left_out=left_out_objects(out_dir),
            )
    if as_json:
        files = {} if no_report else {k: str(v) for k, v in outputs.items()}
        echo_json({"summary": result.summary, "outputs": files})
    elif verbosity >= 0:
        click.echo(format_summary(result.summary))
        if not no_report:
            click.echo(f"open {outputs['bulletin.html']} or {outputs['map.html']}")
