"""Stores of a run's results: a GeoPackage per run folder, PostGIS for teams, a STAC catalog.

Both stores hold the same tables (:data:`LAYERS`):

========================  ==========================================================
``zones``, ``rings``      the zones of the run and the band watched just outside each
``sites``                 the site register (:mod:`kpgeo.register`), one row per site id
``site_history``          per site and period: area, area added, activity state
``site_events``           new sites, merges, splits, sites reopened after a rejection
``footprints``            this run's footprints with their ``site_id`` and triage status
``left_out``              objects of confirmed pixels the footprint tests left out
                          (the zones' ``rejected.geojson``), with their ``kind``
                          (clearing, shoreline), for an analyst to check
``timeseries``            the per-zone activity table (``timeseries.csv``)
``triage``                analyst marks, one row per current site; edit ``status``,
                          ``reason``, ``note`` in QGIS, or use ``kpgeo triage``
========================  ==========================================================

plus ``kpgeo_columns`` (which columns are dates or booleans, so a read gives back
what was written). Geometries are EPSG:4326 multipolygons with a spatial index
(GeoPackage R-tree, PostGIS GiST); dates are ISO ``YYYY-MM-DD`` text in the
GeoPackage (its own convention for dates) and ``date`` in PostGIS.

Writes are all-or-nothing: :class:`GeoPackageStore` writes every layer into a
temporary file next to ``kpgeo.gpkg`` and renames it into place
(:func:`kpgeo.io.atomic_path`); :class:`PostGISStore` replaces the tables of its
schema inside one transaction. A run killed while writing leaves the store as it
was. :func:`open_store` picks the store from a path or a ``postgresql://`` URL
(``?schema=NAME`` chooses the schema, default ``kpgeo``).

:func:`write_stac_catalog` describes a run folder's outputs as a STAC catalog
(``catalog.json`` + one item per zone and one for the run).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pandas as pd

from kpgeo.errors import ConfigError, StoreError

__all__ = [
    "STORE_NAME",
    "LAYERS",
    "SPATIAL_LAYERS",
    "run_tables",
    "register_tables",
    "tables_register",
    "open_store",
    "GeoPackageStore",
    "PostGISStore",
    "read_register",
    "mark_site",
    "write_stac_catalog",
]

#: the GeoPackage of a run folder
STORE_NAME = "kpgeo.gpkg"
LAYERS = ("zones", "rings", "sites", "site_history", "site_events", "footprints", "left_out",
          "timeseries", "triage")
SPATIAL_LAYERS = ("zones", "rings", "sites", "footprints", "left_out", "triage")
_REGISTER_LAYERS = {"sites": "sites", "history": "site_history", "events": "site_events",
                    "triage": "triage"}
_META = "kpgeo_columns"


# --------------------------------------------------------------------------- tables


def register_tables(register: Any) -> dict[str, Any]:
    """Return the register's frames under their layer names."""
    return {layer: getattr(register, attr) for attr, layer in _REGISTER_LAYERS.items()}


def tables_register(tables: dict[str, Any]) -> Any:
    """Build a :class:`kpgeo.register.Register` from layers read from a store."""
    from kpgeo.register import Register

    return Register(**{attr: tables[layer] for attr, layer in _REGISTER_LAYERS.items()})


def run_tables(register: Any, *, zones: list[Any], ring_width_m: float, footprints: Any,
               timeseries: Any = None, left_out: Any = None) -> dict[str, Any]:
    """Every layer of a run's store, from the register and the run's outputs.

    Parameters
    ----------
    register
        The run's :class:`kpgeo.register.Register` (all zones).
    zones
        The run's :class:`kpgeo.zones.Zone` objects.
    ring_width_m
        Width of the watched band outside each zone, metres.
    footprints
        Run-level footprints (with ``site_id`` / ``triage_status`` when available).
    timeseries
        The run's time-series table, or None (an empty layer).
    left_out
        The objects the footprint tests left out (``kind``), or None (an empty layer).
    """
    import geopandas as gpd

    zone_frame = pd.concat([z.to_geodataframe() for z in zones], ignore_index=True) if zones \
        else gpd.GeoDataFrame({"id": []}, geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    rings = gpd.GeoDataFrame(
        {"zone": [z.id for z in zones], "ring_width_m": [float(ring_width_m)] * len(zones)},
        geometry=[z.ring(ring_width_m) for z in zones], crs=4326)
    return {
        "zones": gpd.GeoDataFrame(zone_frame, geometry="geometry", crs=4326),
        "rings": rings,
        **register_tables(register),
        "footprints": _in_4326(footprints),
        "left_out": _in_4326(left_out) if left_out is not None else empty_layer("left_out"),
        "timeseries": timeseries if timeseries is not None else _empty_timeseries(),
    }


def _in_4326(frame: Any) -> Any:
    return frame.to_crs(4326) if frame.crs is not None else frame


def left_out_columns() -> list[str]:
    """Columns of the ``left_out`` layer: those of the footprints plus ``kind``."""
    from kpgeo.footprints import FOOTPRINT_COLUMNS

    return [*FOOTPRINT_COLUMNS, "kind"]


def _layer(tables: dict[str, Any], layer: str) -> Any:
    """Return the frame of ``layer`` to write: the given one, else :func:`empty_layer`."""
    frame = tables.get(layer)
    return empty_layer(layer) if frame is None else frame


def empty_layer(layer: str) -> Any:
    """Return a layer with no rows, as a store gives back a layer it does not hold.

    Spatial layers are EPSG:4326 GeoDataFrames (``left_out`` with its columns), so
    that a store read from an older kpgeo, without a layer added since, is
    written back whole.
    """
    import geopandas as gpd

    if layer not in SPATIAL_LAYERS:
        return pd.DataFrame()
    columns = [c for c in left_out_columns() if c != "geometry"] if layer == "left_out" else []
    return gpd.GeoDataFrame({c: [] for c in columns}, geometry=gpd.GeoSeries([], crs=4326),
                            crs=4326)


def _empty_timeseries() -> pd.DataFrame:
    """Return the time-series layer of a run without a report: its columns, no rows."""
    from kpgeo.timeseries import TIMESERIES_COLUMNS

    return pd.DataFrame({c: pd.Series(dtype="object") for c in TIMESERIES_COLUMNS})


def _kinds(tables: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for layer, frame in tables.items():
        for col in frame.columns:
            dtype = frame[col].dtype
            if pd.api.types.is_datetime64_any_dtype(dtype):
                rows.append((layer, col, "date"))
            elif pd.api.types.is_bool_dtype(dtype):
                rows.append((layer, col, "bool"))
            elif pd.api.types.is_object_dtype(dtype) and frame[col].map(
                    lambda v: isinstance(v, bool)).any():
                rows.append((layer, col, "bool"))
            elif pd.api.types.is_object_dtype(dtype) and frame[col].map(
                    lambda v: isinstance(v, (_dt.date, pd.Timestamp))).any():
                rows.append((layer, col, "date"))
    return pd.DataFrame(rows, columns=["layer", "column", "kind"])


def _encode(frame: Any, kinds: pd.DataFrame, layer: str, *, dates: str) -> Any:
    """Copy ready for a store: dates as ISO text or ``date``, multipolygons, no index."""
    from kpgeo.io import to_iso_date

    out = frame.copy().reset_index(drop=True)
    mine = kinds[kinds["layer"] == layer]
    for col in mine.loc[mine["kind"] == "date", "column"]:
        iso = out[col].map(to_iso_date)
        out[col] = iso if dates == "iso" else iso.map(
            lambda v: None if v is None else pd.Timestamp(v).date())
    for col in mine.loc[mine["kind"] == "bool", "column"]:
        out[col] = out[col].map(lambda v: None if v is None or pd.isna(v) else bool(v))
        if out[col].notna().all():
            out[col] = out[col].astype(bool)
    if "geometry" in out and hasattr(out, "geometry"):
        import shapely

        out["geometry"] = [shapely.MultiPolygon([g]) if isinstance(g, shapely.Polygon) else g
                           for g in out.geometry]
    return out


def _decode(frame: Any, kinds: pd.DataFrame, layer: str) -> Any:
    """Inverse of :func:`_encode`: dates back to datetime64, missing text as None."""
    from kpgeo.io import to_utc_naive

    out = frame.copy()
    mine = kinds[kinds["layer"] == layer] if len(kinds) else kinds
    dates = set(mine.loc[mine["kind"] == "date", "column"]) if len(mine) else set()
    bools = set(mine.loc[mine["kind"] == "bool", "column"]) if len(mine) else set()
    for col in out.columns:
        if col in dates:
            out[col] = to_utc_naive(out[col].map(lambda v: None if v is None or (
                not isinstance(v, str) and pd.isna(v)) else str(v)),
                what=f"{col} of layer {layer}").to_numpy()
        elif col in bools:
            values = out[col].map(lambda v: None if v is None or pd.isna(v) else bool(v))
            out[col] = values.astype(bool) if values.notna().all() else values
        elif col != "geometry" and (out[col].dtype == object or str(out[col].dtype) == "str"):
            out[col] = out[col].astype(object).where(out[col].notna(), None)
    if "geometry" in out.columns:  # GeoPackage puts it last, PostGIS where it was written
        out = out[[c for c in out.columns if c != "geometry"] + ["geometry"]]
    return out


# --------------------------------------------------------------------------- GeoPackage


@dataclass(frozen=True)
class GeoPackageStore:
    """A run's results in one GeoPackage file (``OUT/kpgeo.gpkg``)."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)

    def write(self, tables: dict[str, Any]) -> Path:
        """Write every layer into a temporary GeoPackage and rename it onto :attr:`path`.

        Raises
        ------
        StoreError
            A layer cannot be written; :attr:`path` keeps its previous content.
        OutputWriteError
            The folder cannot be written (read-only, disk full...).
        """
        import pyogrio

        from kpgeo import io

        unknown = sorted(set(tables) - set(LAYERS))
        if unknown:
            raise ConfigError(f"unknown store layer(s) {unknown}; layers are {list(LAYERS)}")
        kinds = _kinds(tables)
        with io.atomic_path(self.path) as tmp:
            tmp.unlink()  # GDAL creates the file itself
            for layer in LAYERS:
                frame = _encode(_layer(tables, layer), kinds, layer, dates="iso")
                spatial = layer in SPATIAL_LAYERS
                try:
                    pyogrio.write_dataframe(
                        frame, tmp, layer=layer, driver="GPKG",
                        geometry_type="MultiPolygon" if spatial else None,
                        promote_to_multi=spatial, SPATIAL_INDEX="YES" if spatial else None)
                except Exception as exc:
                    raise StoreError(f"cannot write layer {layer} of {self.path}: {exc}") from exc
            pyogrio.write_dataframe(kinds, tmp, layer=_META, driver="GPKG")
        return self.path

    def read(self, layers: tuple[str, ...] = LAYERS) -> dict[str, Any]:
        """Read layers back (missing layers are empty frames, :func:`empty_layer`).

        Raises
        ------
        StoreError
            Not a GeoPackage written by kpgeo, or unreadable; the message names the file.
        """
        import pyogrio

        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such GeoPackage (run kpgeo run first)")
        try:
            present = {name for name, _ in pyogrio.list_layers(self.path)}
            kinds = pyogrio.read_dataframe(self.path, layer=_META) if _META in present \
                else pd.DataFrame(columns=["layer", "column", "kind"])
            out = {}
            for layer in layers:
                if layer not in present:
                    out[layer] = empty_layer(layer)
                    continue
                frame = pyogrio.read_dataframe(self.path, layer=layer)
                out[layer] = _decode(frame, kinds, layer)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.path}: cannot read the GeoPackage ({exc})") from exc
        return out


def read_register(store: Any) -> Any:
    """Read the register held by a store; None when the store does not exist yet.

    Parameters
    ----------
    store
        A store (:func:`open_store`), a GeoPackage path or a ``postgresql://`` URL.
    """
    store = open_store(store) if isinstance(store, (str, os.PathLike)) else store
    if isinstance(store, GeoPackageStore) and not store.path.is_file():
        return None
    tables = store.read(tuple(_REGISTER_LAYERS.values()))
    if all(set(frame.columns) <= {"geometry"} for frame in tables.values()):
        return None  # none of the register's layers is there (empty_layer)
    from kpgeo.register import EVENT_COLUMNS, HISTORY_COLUMNS, SITE_COLUMNS, TRIAGE_COLUMNS

    wanted = {"sites": SITE_COLUMNS, "site_history": HISTORY_COLUMNS,
              "site_events": EVENT_COLUMNS, "triage": TRIAGE_COLUMNS}
    for layer, columns in wanted.items():
        missing = [c for c in columns if c not in tables[layer].columns]
        if missing:
            raise StoreError(f"{store}: layer {layer} lacks column(s) {missing}; was it "
                             "written by this kpgeo version?")
        tables[layer] = tables[layer][columns]
    from kpgeo.register import check_register

    try:
        return check_register(tables_register(tables))
    except ConfigError as exc:
        raise ConfigError(f"{store}: {exc}") from exc


# --------------------------------------------------------------------------- PostGIS


def _split_schema(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    schema = query.pop("schema", ["kpgeo"])[0]
    if not schema.replace("_", "").isalnum():
        raise ConfigError(f"store schema must be letters, digits and _, got {schema!r}")
    scheme = "postgresql+psycopg" if parsed.scheme in ("postgresql", "postgres") else parsed.scheme
    clean = urlunparse(parsed._replace(scheme=scheme, query=urlencode(query, doseq=True)))
    return clean, schema


@dataclass(frozen=True)
class PostGISStore:
    """The same tables in a PostgreSQL + PostGIS schema, for a team's shared database."""

    url: str
    """``postgresql://user@host:port/database[?schema=name]``."""

    def __str__(self) -> str:
        parsed = urlparse(self.url)
        return urlunparse(parsed._replace(netloc=parsed.netloc.split("@")[-1]))  # no password

    @property
    def schema(self) -> str:
        """Schema holding the tables (``?schema=`` of the URL, default ``kpgeo``)."""
        return _split_schema(self.url)[1]

    def _engine(self) -> Any:
        try:
            import sqlalchemy
        except ImportError as exc:
            raise ConfigError("a PostGIS store needs: pip install 'kpgeo[postgis]'") from exc
        return sqlalchemy.create_engine(_split_schema(self.url)[0], pool_pre_ping=True)

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        import sqlalchemy

        engine = self._engine()
        try:
            with engine.begin() as conn:
                yield conn
        except sqlalchemy.exc.OperationalError as exc:
            raise StoreError(f"PostGIS store {self}: cannot connect or write "
                             f"({str(exc.orig).strip()[:300]})") from exc
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise StoreError(f"PostGIS store {self}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:300]}") from exc
        finally:
            engine.dispose()

    def write(self, tables: dict[str, Any]) -> str:
        """Replace every table of the schema in one transaction (all or nothing).

        Raises
        ------
        StoreError
            No connection, no PostGIS extension, or a failed write; nothing changed.
        """
        import sqlalchemy

        schema = self.schema
        kinds = _kinds(tables)
        with self._transaction() as conn:
            if conn.execute(sqlalchemy.text(
                    "SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).first() is None:
                raise StoreError(f"PostGIS store {self}: the database lacks the postgis "
                                 "extension (CREATE EXTENSION postgis)")
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            for layer in LAYERS:
                frame = _encode(_layer(tables, layer), kinds, layer, dates="date")
                if layer in SPATIAL_LAYERS:
                    frame.to_postgis(layer, conn, schema=schema, if_exists="replace",
                                     index=False)
                else:
                    pd.DataFrame(frame).to_sql(layer, conn, schema=schema, if_exists="replace",
                                               index=False)
            kinds.to_sql(_META, conn, schema=schema, if_exists="replace", index=False)
        return str(self)

    def read(self, layers: tuple[str, ...] = LAYERS) -> dict[str, Any]:
        """Read tables back (missing tables are empty frames)."""
        import geopandas as gpd
        import sqlalchemy

        schema = self.schema
        out = {}
        with self._transaction() as conn:
            present = set(sqlalchemy.inspect(conn).get_table_names(schema=schema))
            kinds = pd.read_sql_table(_META, conn, schema=schema) if _META in present \
                else pd.DataFrame(columns=["layer", "column", "kind"])
            for layer in layers:
                if layer not in present:
                    out[layer] = empty_layer(layer)
                    continue
                query = f'SELECT * FROM "{schema}"."{layer}"'
                frame = gpd.read_postgis(query, conn, geom_col="geometry") \
                    if layer in SPATIAL_LAYERS else pd.read_sql_query(query, conn)
                out[layer] = _decode(frame, kinds, layer)
        return out


def open_store(spec: str | os.PathLike) -> GeoPackageStore | PostGISStore:
    """Open the store named by a ``postgresql://`` URL, a ``.gpkg`` path or a run folder.

    Raises
    ------
    ConfigError
        Neither a PostgreSQL URL nor a GeoPackage path.
    """
    text = os.fspath(spec)
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return PostGISStore(text)
    path = Path(text)
    if path.suffix.lower() == ".gpkg":
        return GeoPackageStore(path)
    if path.is_dir() or not path.suffix:
        return GeoPackageStore(path / STORE_NAME)
    raise ConfigError(f"store {text!r}: give a run folder, a .gpkg file or a "
                      "postgresql://user@host/database URL")


# --------------------------------------------------------------------------- STAC catalog

_ZONE_ASSETS = {
    "first_detected.tif": ("image/tiff; application=geotiff; profile=cloud-optimized",
                           "First detection date, int32 days since 1970-01-01 (nodata -1)"),
    "alert_date.tif": ("image/tiff; application=geotiff; profile=cloud-optimized",
                       "Alert date, int32 days since 1970-01-01 (nodata -1)"),
    "last_active.tif": ("image/tiff; application=geotiff; profile=cloud-optimized",
                        "Last activity date, int32 days since 1970-01-01 (nodata -1)"),
    "confidence.tif": ("image/tiff; application=geotiff; profile=cloud-optimized",
                       "Detection confidence 0-1 (nodata -1: insufficient data)"),
    "state.tif": ("image/tiff; application=geotiff; profile=cloud-optimized",
                  "State: 0 no change, 1 new, 2 active, 3 inactive, 4 revegetating, "
                  "255 insufficient data (nodata); colour table"),
    "reason.tif": ("image/tiff; application=geotiff; profile=cloud-optimized",
                   "Reason code of the per-pixel decision"),
    "footprints.parquet": ("application/vnd.apache.parquet", "Footprints (GeoParquet)"),
    "footprints.geojson": ("application/geo+json", "Footprints (GeoJSON, EPSG:4326)"),
    "coverage.csv": ("text/csv", "Clear-observation coverage per date"),
    "items.json": ("application/geo+json", "The STAC items the zone was computed from"),
}
_RUN_ASSETS = {
    STORE_NAME: ("application/geopackage+sqlite3", "Site register and results (GeoPackage)"),
    "footprints.parquet": ("application/vnd.apache.parquet", "Footprints of all zones"),
    "footprints.geojson": ("application/geo+json", "Footprints of all zones (EPSG:4326)"),
    "timeseries.csv": ("text/csv", "Activity time series per zone and ring"),
    "timeseries.parquet": ("application/vnd.apache.parquet", "Activity time series"),
    "bulletin.html": ("text/html", "Bulletin"),
    "map.html": ("text/html", "Interactive web map"),
}


def _assets(folder: Path, known: dict[str, tuple[str, str]], prefix: str) -> dict[str, Any]:
    import pystac

    return {name.replace(".", "_"): pystac.Asset(
        href=f"{prefix}{name}", media_type=media, title=title,
        roles=["data"] if not name.endswith(".html") else ["overview"])
        for name, (media, title) in known.items() if (folder / name).is_file()}


def write_stac_catalog(out_dir: str | os.PathLike, *, zones: list[Any], as_of: Any,
                       title: str = "kpgeo run") -> Path:
    """Describe a run folder's outputs as a self-contained STAC catalog, atomically per file.

    Writes ``OUT/catalog.json`` (last) and ``OUT/stac/<item>.json``: one item per
    zone (its rasters, footprints, coverage, items) and one for the run
    (GeoPackage, time series, bulletin, map), dated ``as_of``.
    """
    import pystac
    import shapely

    from kpgeo import io

    out = Path(out_dir)
    when = pd.Timestamp(as_of).to_pydatetime()
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    items = []
    for zone in zones:
        assets = _assets(out / "zones" / zone.id, _ZONE_ASSETS, f"../zones/{zone.id}/")
        if assets:
            items.append((zone.id, zone.geometry, assets, {"kpgeo:zone": zone.id,
                                                           "title": zone.name}))
    union = shapely.union_all([z.geometry for z in zones]) if zones else shapely.box(0, 0, 0, 0)
    items.append(("run", union, _assets(out, _RUN_ASSETS, "../"), {"title": title}))
    catalog = {"type": "Catalog", "stac_version": pystac.get_stac_version(), "id": "kpgeo-run",
               "description": f"{title}: outputs of a kpgeo monitoring run", "title": title,
               "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]}
    for item_id, geom, assets, props in items:
        item = pystac.Item(item_id, shapely.geometry.mapping(geom), list(geom.bounds), when,
                           props, assets=assets)
        data = item.to_dict(include_self_link=False, transform_hrefs=False)
        data["links"] = [{"rel": "root", "href": "../catalog.json", "type": "application/json"},
                         {"rel": "parent", "href": "../catalog.json", "type": "application/json"}]
        io.write_json(data, out / "stac" / f"{item_id}.json")
        catalog["links"].append({"rel": "item", "href": f"./stac/{item_id}.json",
                                 "type": "application/geo+json"})
    return io.write_json(catalog, out / "catalog.json")


def mark_site(store: Any, site_id: str, status: str, **mark: Any) -> dict[str, Any]:
    """Record an analyst's mark of one site in a store (one all-or-nothing write).

    Parameters
    ----------
    store
        A store, a GeoPackage path, a run folder or a ``postgresql://`` URL.
    site_id, status, **mark
        See :func:`kpgeo.register.set_triage` (``reason``, ``note``, ``date``, ``analyst``).

    Returns
    -------
    dict
        The site's triage row after the mark.
    """
    from kpgeo.register import set_triage

    store = open_store(store) if isinstance(store, (str, os.PathLike)) else store
    tables = store.read()
    register = read_register(store)
    if register is None:
        raise StoreError(f"{store}: holds no site register yet (run kpgeo run first)")
    register = set_triage(register, site_id, status, **mark)
    tables.update(register_tables(register))
    footprints = tables.get("footprints")
    if footprints is not None and "site_id" in footprints and "triage_status" in footprints:
        current = register.sites.set_index("site_id")["triage_status"]
        footprints["triage_status"] = footprints["site_id"].map(current)
    store.write(tables)
    row = register.triage[register.triage["site_id"] == site_id].iloc[0]
    return {k: v for k, v in row.items() if k != "geometry"}
