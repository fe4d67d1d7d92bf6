"""A run's inventory step: scenes searched for it, its site register and its stores.

:func:`kpgeo.pipeline.run_pipeline` calls this module at three points:

1. :func:`searched_job` before a zone whose pipeline entry has no ``items =``:
   the run's ``[search]`` (:class:`kpgeo.search.SearchConfig`) over the zone
   and its outside ring, saved as ``OUT/zones/<zone>/items.json``, which the
   zone is then computed from (run it again with ``items =`` pointing at that
   file to repeat the run exactly).
2. :func:`update_sites` after the zones: each finished zone's footprints
   carried into the site register (:func:`kpgeo.register.update_register`:
   stable ids, first detection, history per period, analyst marks). The
   previous register is read from the run's store: ``--store`` /
   ``[run] store`` when given, else ``OUT/kpgeo.gpkg``. Zones that failed this
   run keep their register rows.
3. :func:`write_stores` inside the run's staging folder: every layer
   (:func:`kpgeo.store.run_tables`) into ``kpgeo.gpkg`` (moved into ``OUT``
   with the other run outputs, all or none) and, with a PostGIS store, into
   its schema in one transaction; then :func:`write_catalog` once the outputs
   are in place (``OUT/catalog.json``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from kpgeo.errors import ConfigError

__all__ = ["Inventory", "check_store_url", "searched_job", "update_sites", "write_stores",
           "write_catalog"]

log = logging.getLogger(__name__)

_POSTGRES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def check_store_url(url: str | None) -> None:
    """Refuse a ``store`` that is not a PostgreSQL URL (the GeoPackage is always written)."""
    if url is not None and not str(url).startswith(_POSTGRES):
        raise ConfigError(f"store must be a postgresql://user@host/database[?schema=name] URL "
                          f"(the run's GeoPackage OUT/kpgeo.gpkg is always written), got {url!r}")


def searched_job(job: Any, config: Any, out: Path) -> Any:
    """Return ``job`` with its items: found by ``config.search`` when it has none.

    Raises
    ------
    StacSearchError
        The STAC API cannot be reached or answers with an error (the message names
        the URL); nothing is written.
    NoDataError
        No scene matches the search.
    """
    if job.items is not None:
        return job
    from kpgeo.search import search_zone

    if config.search is None:
        raise ConfigError(f"zone {job.zone.id} has no items and the run has no [search]")
    if config.search.sign == "planetary-computer":
        # GDAL signs Planetary Computer blob URLs itself when it reads them
        os.environ.setdefault("VSICURL_PC_URL_SIGNING", "YES")
    path = search_zone(config.search, job.zone, out / "zones" / job.zone.id / "items.json",
                       ring_width_m=config.ring_width_m)
    log.info("%s: scenes of %s saved to %s", job.zone.id, config.search.url, path)
    return dataclasses.replace(job, items=path)


@dataclasses.dataclass(frozen=True)
class Inventory:
    """The register after this run and the run's footprints labelled with their sites."""

    register: Any
    """:class:`kpgeo.register.Register` of every zone."""
    footprints: Any
    """Run-level footprints (EPSG:4326) with ``site_id`` and ``triage_status``."""
    as_of: Any
    """Last image date of the run."""
    left_out: Any = None
    """The zones' objects the footprint tests left out (EPSG:4326, ``zone``, ``kind``)."""


def _store(out: Path, config: Any) -> Any:
    from kpgeo.store import STORE_NAME, GeoPackageStore, PostGISStore

    return PostGISStore(config.store) if config.store else GeoPackageStore(out / STORE_NAME)


def _first_detected(path: Path, footprints: Any) -> Any:
    """Read the zone's ``first_detected`` raster over its footprints only, or None."""
    import rioxarray

    if not len(footprints):
        return None
    raster = rioxarray.open_rasterio(path).squeeze(drop=True)
    x0, y0, x1, y1 = footprints.to_crs(raster.rio.crs).total_bounds
    pad = 2 * max(abs(r) for r in raster.rio.resolution())  # never a one-pixel-wide box
    return raster.rio.clip_box(x0 - pad, y0 - pad, x1 + pad, y1 + pad).load()


def update_sites(out: Path, config: Any, jobs: list[Any]) -> Inventory:
    """Carry each finished zone of this run into the register read from the run's store."""
    import geopandas as gpd
    import pandas as pd

    from kpgeo.register import Register, RegisterParams, update_register
    from kpgeo.report import left_out_objects
    from kpgeo.store import left_out_columns, read_register

    previous = read_register(_store(out, config))
    register = previous or Register()
    params = RegisterParams(period=config.period)
    labelled, left_out, dates = [], [], []
    for job in jobs:
        zone_dir = out / "zones" / job.zone.id
        footprints = gpd.read_parquet(zone_dir / "footprints.parquet")
        as_of = pd.read_csv(zone_dir / "coverage.csv", parse_dates=["date"])["date"].max()
        raster = _first_detected(zone_dir / "first_detected.tif", footprints)
        update = update_register(previous, footprints, zone=job.zone.id, as_of=as_of,
                                 first_detected=raster, params=params)
        register = register.replace_zones(update.register)
        labelled.append(update.footprints.to_crs(4326))
        if (rejected := left_out_objects(zone_dir)) is not None:
            left_out.append(rejected.to_crs(4326))
        dates.append(as_of)
    return Inventory(register=register, footprints=_concat(labelled), as_of=max(dates),
                     left_out=_concat(left_out).reindex(columns=left_out_columns())
                     if left_out else None)


def _concat(frames: list[Any]) -> Any:
    import geopandas as gpd
    import pandas as pd

    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=4326)


def write_stores(stage: Path, config: Any, inventory: Inventory) -> dict[str, Path]:
    """Write every layer into ``stage/kpgeo.gpkg`` and, with ``config.store``, into PostGIS.

    Call it inside the run's staging folder: the GeoPackage reaches ``OUT`` with the
    other run outputs or not at all; the PostGIS write is one transaction, made last.
    """
    import pandas as pd

    from kpgeo.store import STORE_NAME, GeoPackageStore, PostGISStore, run_tables

    series = stage / "timeseries.parquet"
    tables = run_tables(inventory.register, zones=[job.zone for job in config.jobs],
                        ring_width_m=config.ring_width_m, footprints=inventory.footprints,
                        timeseries=pd.read_parquet(series) if series.is_file() else None,
                        left_out=inventory.left_out)
    written = {STORE_NAME: GeoPackageStore(stage / STORE_NAME).write(tables)}
    if config.store:
        PostGISStore(config.store).write(tables)
        log.info("run tables written to %s", PostGISStore(config.store))
    return written


def write_catalog(out: Path, config: Any, jobs: list[Any], inventory: Inventory) -> Path:
    """Describe the run folder's outputs as a STAC catalog (``OUT/catalog.json``)."""
    from kpgeo.store import write_stac_catalog

    return write_stac_catalog(out, zones=[job.zone for job in jobs], as_of=inventory.as_of,
                              title=config.name)
