"""``kpgeo search``: find the scenes over a zone in a STAC API, save them as an ItemCollection."""

from __future__ import annotations

import click

from kpgeo.cli.options import aoi_opt, echo_json, json_opt, ring_width_opt, zone_opt

_PROVIDERS = ("earth-search", "planetary-computer", "planetary-computer-landsat")


@click.command()
@zone_opt
@aoi_opt
@click.option("--start", required=True, metavar="YYYY-MM-DD", help="First date (UTC), inclusive.")
@click.option("--end", default=None, metavar="YYYY-MM-DD",
              help="Last date (UTC), inclusive; default today.")
@click.option("--provider", type=click.Choice(_PROVIDERS), default=None,
              help="Named STAC API: earth-search (default; Sentinel-2 L2A), planetary-computer "
              "(Sentinel-2 L2A, signed), planetary-computer-landsat (Landsat C2 L2, signed).")
@click.option("--url", default=None, help="Any STAC API root URL (instead of --provider).")
@click.option("--collection", default=None,
              help="Collection id (default: the provider's, sentinel-2-l2a for --url).")
@click.option("--max-cloud-cover", type=float, default=60.0, show_default=True,
              help="Largest scene cloud cover kept, percent (eo:cloud_cover).")
@click.option("--max-items", type=int, default=2000, show_default=True,
              help="Stop after this many scenes (with a warning).")
@ring_width_opt
@click.option("--save", "save_path", required=True, type=click.Path(dir_okay=False),
              help="ItemCollection JSON to write (replaced if it exists); pass it to "
              "--items or items = to read exactly these scenes.")
@json_opt
@click.pass_context
def search(ctx: click.Context, zone_key: str | None, aoi_path: str | None, start: str,
           end: str | None, provider: str | None, url: str | None, collection: str | None,
           max_cloud_cover: float, max_items: int, ring_width_m: float, save_path: str,
           as_json: bool) -> None:
    """Search a STAC API for the scenes over a zone and its outside ring; save them."""
    from kpgeo.items import item_datetime
    from kpgeo.search import SearchConfig, save_items, search_geometry, search_items
    from kpgeo.zones import load_aoi

    if (zone_key is None) == (aoi_path is None):
        raise click.UsageError("give exactly one of --zone ID or --aoi FILE")
    if provider and url:
        raise click.UsageError("give --provider or --url, not both")
    fields = {"start": start, "end": end, "max_cloud_cover": max_cloud_cover,
              "max_items": max_items}
    if collection:
        fields["collection"] = collection
    if url:
        config = SearchConfig(url=url, **fields)
    else:
        config = SearchConfig.for_provider(provider or "earth-search", **fields)
    zone = load_aoi(zone_key if zone_key is not None else aoi_path)
    geometry = search_geometry(zone, ring_width_m=ring_width_m)
    items = search_items(config, geometry)
    path = save_items(items, save_path, config=config, geometry=geometry)
    dates = [item_datetime(it) for it in items]
    summary = {
        "zone": zone.id, "url": config.url, "collection": config.collection,
        "datetime": config.datetime, "max_cloud_cover": config.max_cloud_cover,
        "items": len(items), "first": min(dates).strftime("%Y-%m-%d"),
        "last": max(dates).strftime("%Y-%m-%d"), "path": str(path),
    }
    if as_json:
        echo_json(summary)
    elif (ctx.obj or {}).get("verbosity", 0) >= 0:
        click.echo(f"{zone.name} ({zone.id}): {len(items)} scene(s) of {config.collection} "
                   f"from {summary['first']} to {summary['last']}, cloud <= "
                   f"{config.max_cloud_cover:g} %, at {config.url}\n  saved {path}")
