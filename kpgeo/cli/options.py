"""Click options shared by several subcommands (one registry, as in rasterio.rio.options)."""

from __future__ import annotations

import click

items_opt = click.option(
    "--items",
    "items_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="STAC ItemCollection JSON (local file).",
)
zone_opt = click.option(
    "--zone", "zone_key", default=None, help="Zone id or name (see `kpgeo zones`)."
)
aoi_opt = click.option(
    "--aoi",
    "aoi_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="Any polygon file (GeoJSON, GeoPackage, ...) to use as area of interest.",
)
out_dir_opt = click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Output directory.",
)
overwrite_opt = click.option(
    "--overwrite", is_flag=True, default=False, help="Replace existing outputs."
)
offline_opt = click.option(
    "--offline",
    is_flag=True,
    default=False,
    help="Write a self-contained map.html that works with no internet (no basemap tiles).",
)
