"""``kpgeo zones``: list the monitoring zones."""

from __future__ import annotations

import click

from kpgeo.cli.options import echo_json, json_opt


@click.command()
@click.option(
    "--aoi-dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of zone GeoJSON files (default: the bundled aoi/ or $KPGEO_AOI_DIR).",
)
@click.option(
    "--ring-width-m",
    type=float,
    default=None,
    help="Also show the area of the ring of this width (metres) just outside each zone.",
)
@click.option("--ring-km", type=float, default=None, hidden=True, deprecated=True,
              help="Deprecated: use --ring-width-m (metres).")
@json_opt
def zones(
    aoi_dir: str | None, ring_width_m: float | None, ring_km: float | None, as_json: bool
) -> None:
    """List the zones with country, KP status and area (hectares, geodesic)."""
    from kpgeo.zones import geodesic_area_ha, list_zones

    if ring_km is not None and ring_width_m is None:
        ring_width_m = ring_km * 1000.0
    rows = [
        {
            "id": zone.id,
            "name": zone.name,
            "country": zone.country,
            "kp_status": zone.kp_status,
            "kp_status_date": zone.kp_status_date,
            "area_ha": round(zone.area_ha, 1),
            **(
                {"ring_area_ha": round(geodesic_area_ha(zone.ring(ring_width_m)), 1)}
                if ring_width_m
                else {}
            ),
        }
        for zone in list_zones(aoi_dir)
    ]
    if as_json:
        echo_json(rows)
        return
    header = (
        f"{'id':<16} {'name':<12} {'country':<7} {'kp status':<16} {'since':<10} {'area (ha)':>12}"
    )
    if ring_width_m:
        header += f" {'ring (ha)':>12}"
    click.echo(header)
    for row in rows:
        line = (
            f"{row['id']:<16} {row['name']:<12} {row['country']:<7} {row['kp_status']:<16} "
            f"{row['kp_status_date']:<10} {row['area_ha']:>12,.0f}"
        )
        if ring_width_m:
            line += f" {row['ring_area_ha']:>12,.0f}"
        click.echo(line)
