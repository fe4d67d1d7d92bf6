"""``kpgeo summary``: what a set of imagery items holds for a zone."""

from __future__ import annotations

import click

from kpgeo.cli.options import aoi_opt, items_opt, json_opt, ring_width_opt, zone_opt


@click.command()
@items_opt
@zone_opt
@aoi_opt
@ring_width_opt
@json_opt
def summary(
    items_path: str, zone_key: str | None, aoi_path: str | None, ring_width_m: float, as_json: bool
) -> None:
    """Dates, clear-observation coverage and imaged area of ITEMS over a zone."""
    import json

    from kpgeo.cube import load_cube
    from kpgeo.errors import ConfigError
    from kpgeo.summary import cube_summary, format_summary
    from kpgeo.timeseries import clear_coverage, zone_regions
    from kpgeo.zones import load_aoi

    if (zone_key is None) == (aoi_path is None):
        raise ConfigError("pass exactly one of --zone or --aoi")
    zone = load_aoi(zone_key or aoi_path)
    cube = load_cube(items_path, aoi=zone.geometry.union(zone.ring(ring_width_m)))
    coverage = clear_coverage(cube, zone_regions([zone], ring_width_m=ring_width_m))
    result = cube_summary(cube, coverage, zone=zone)
    click.echo(
        json.dumps(result, indent=2, ensure_ascii=False) if as_json else format_summary(result)
    )
