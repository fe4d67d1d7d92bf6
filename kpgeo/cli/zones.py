"""``kpgeo zones``: list the monitoring zones."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--aoi-dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of zone GeoJSON files (default: the bundled aoi/ or $KPGEO_AOI_DIR).",
)
@click.option(
    "--ring-km",
    type=float,
    default=None,
    help="Also show the area of the ring of this width just outside each zone.",
)
def zones(aoi_dir: str | None, ring_km: float | None) -> None:
    """List the zones with country, KP status and area (hectares, geodesic)."""
    from kpgeo.zones import geodesic_area_ha, list_zones

    header = (
        f"{'id':<16} {'name':<12} {'country':<7} {'kp status':<16} {'since':<10} {'area (ha)':>12}"
    )
    if ring_km:
        header += f" {'ring (ha)':>12}"
    click.echo(header)
    for zone in list_zones(aoi_dir):
        line = (
            f"{zone.id:<16} {zone.name:<12} {zone.country:<7} {zone.kp_status:<16} "
            f"{zone.kp_status_date:<10} {zone.area_ha:>12,.0f}"
        )
        if ring_km:
            line += f" {geodesic_area_ha(zone.ring(ring_km * 1000)):>12,.0f}"
        click.echo(line)
