"""Click options shared by several subcommands (one registry, as in rasterio.rio.options).

One name per concept across every subcommand:

* ``--overwrite``: replace the existing outputs of a one-shot command (detect,
  report, simulate, evaluate, ...); without it such a command refuses to.
* ``--force`` (``kpgeo run`` only): recompute zones whose results are up to
  date; a run resumes and always refreshes its run-level outputs.
* ``--ring-width-m``: width of the watched band just outside a zone, metres.
* ``--period``: time-series period, one of ``QS`` (quarters), ``MS`` (months),
  ``YS`` (years).
* ``--json``: print the command's summary as JSON on stdout instead of text.
"""

from __future__ import annotations

import json
from typing import Any

import click

#: time-series periods (pandas period-start aliases) accepted by ``--period``
PERIODS = ("QS", "MS", "YS")

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
    help="map.html without basemap tiles, self-contained for field use (the default map "
    "inlines Leaflet too and works offline; it only fetches tiles).",
)
period_opt = click.option(
    "--period",
    default="QS",
    show_default=True,
    type=click.Choice(PERIODS),
    help="Time-series period: QS quarters, MS months, YS years.",
)
ring_width_opt = click.option(
    "--ring-width-m",
    type=float,
    default=5000.0,
    show_default=True,
    help="Width of the watched band just outside each zone (metres).",
)
json_opt = click.option(
    "--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout instead of text."
)


def _json_default(obj: Any) -> Any:
    import os

    import numpy as np
    import pandas as pd

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def echo_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON (numpy scalars, dates and paths converted)."""
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default))
