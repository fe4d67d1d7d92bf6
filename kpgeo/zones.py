"""Monitoring zones: the Kimberley Process areas of interest.

A :class:`Zone` is a named polygon in EPSG:4326 with its provenance and KP
status. The bundled zones live as one GeoJSON file per zone in the
repository's ``aoi/`` folder (installed as ``kpgeo._aoi``); a user adds a zone
by dropping a GeoJSON there, by pointing ``KPGEO_AOI_DIR`` at a folder of their
own, or by passing any polygon file to :func:`load_aoi`.

Zones know how to measure themselves: :attr:`Zone.utm_crs` is the local UTM
zone used for metric work (buffers, distances, pixel grids), and
:attr:`Zone.area_ha` is the geodesic area on the WGS 84 ellipsoid, which is
what an equal-area projection approximates. :meth:`Zone.ring` gives the band
just outside a zone, where the monitoring team watches for activity that
leaks out of a compliant zone.

A zone id becomes a folder name (``OUT/zones/<id>/``), so it must be a safe
slug (:func:`check_zone_id`): letters, digits, ``.``, ``_`` and ``-``, starting
with a letter or digit, at most 80 characters. An ``id`` property that is not
one is **refused** (the message suggests a slug); an id that kpgeo derives from
a name or a file name is **slugified** (:func:`slugify`).
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import shapely
from pyproj import CRS, Geod, Transformer
from shapely.geometry.base import BaseGeometry

from kpgeo.errors import InvalidAOIError, UnknownZoneError, ZoneError

__all__ = [
    "Zone",
    "list_zones",
    "get_zone",
    "load_aoi",
    "zones_frame",
    "utm_crs_for",
    "to_crs",
    "geodesic_area_ha",
    "default_aoi_dir",
    "check_zone_id",
    "slugify",
]

_GEOD = Geod(ellps="WGS84")
_ZONE_FIELDS = (
    "id",
    "name",
    "country",
    "admin_level",
    "kp_status",
    "kp_status_date",
    "source",
    "licence",
)
#: A zone id that is safe as a folder name.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class Zone:
    """A monitoring zone: a polygon in EPSG:4326 with its identity and provenance."""

    id: str
    """Stable identifier, e.g. ``"caf-berberati"``."""
    name: str
    """Display name with accents, e.g. ``"Berbérati"``."""
    geometry: BaseGeometry = field(repr=False)
    """Polygon or MultiPolygon, lon/lat (EPSG:4326)."""
    country: str = ""
    """ISO 3166-1 alpha-3 country code."""
    admin_level: str = ""
    kp_status: str = ""
    kp_status_date: str = ""
    """ISO 8601 date (possibly reduced precision, e.g. ``"2016"``)."""
    source: str = ""
    licence: str = ""
    properties: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)
    """All properties of the source feature."""

    def __post_init__(self) -> None:
        check_zone_id(self.id)

    @functools.cached_property
    def utm_crs(self) -> CRS:
        """Local UTM CRS (WGS 84) of the zone's centroid, for metric work."""
        return utm_crs_for(self.geometry)

    @functools.cached_property
    def area_ha(self) -> float:
        """Geodesic area in hectares (WGS 84 ellipsoid)."""
        return geodesic_area_ha(self.geometry)

    def ring(self, width_m: float = 5000.0) -> BaseGeometry:
        """Return the band of ``width_m`` metres just outside the zone (EPSG:4326).

        Parameters
        ----------
        width_m
            Ring width in metres, measured in the zone's local UTM CRS.
        """
        if not width_m > 0:
            raise ZoneError(f"ring width must be positive metres, got {width_m!r}")
        local = to_crs(self.geometry, "EPSG:4326", self.utm_crs)
        ring = local.buffer(width_m).difference(local)
        return to_crs(ring, self.utm_crs, "EPSG:4326")

    def to_geodataframe(self) -> Any:
        """One-row GeoDataFrame (EPSG:4326) with the zone's fields and ``area_ha``."""
        import geopandas as gpd

        row = {name: getattr(self, name) for name in _ZONE_FIELDS} | {"area_ha": self.area_ha}
        return gpd.GeoDataFrame([row], geometry=[self.geometry], crs="EPSG:4326")


def slugify(text: str, *, default: str = "aoi") -> str:
    """Safe zone id from any text: ASCII, lower case, runs of other characters become ``-``.

    >>> slugify("Séguéla (north) / v2")
    'seguela-north-v2'
    """
    decomposed = unicodedata.normalize("NFKD", str(text))
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_text).strip("-._")[:80].strip("-._")
    return slug or default


def check_zone_id(zone_id: Any, where: str = "") -> str:
    """Refuse a zone id that is not safe as a folder name; return it.

    Parameters
    ----------
    zone_id
        The id (``OUT/zones/<id>/`` is written from it).
    where
        Context for the message (file name).

    Raises
    ------
    InvalidAOIError
        Empty id, path separators, ``..``, spaces or other characters than
        letters, digits, ``.``, ``_`` and ``-``; more than 80 characters. The
        message suggests a slug to use instead.
    """
    text = zone_id if isinstance(zone_id, str) else ""
    if not _SAFE_ID.match(text):
        prefix = f"{where}: " if where else ""
        raise InvalidAOIError(
            f"{prefix}zone id {zone_id!r} cannot be used as a folder name (letters, digits, "
            "'.', '_' and '-' only, starting with a letter or digit, at most 80 characters); "
            f"set its id to a slug such as {slugify(str(zone_id), default='my-zone')!r}"
        )
    return text


def utm_crs_for(geometry: BaseGeometry) -> CRS:
    """WGS 84 / UTM CRS of the zone containing the centroid of a lon/lat geometry."""
    point = geometry.centroid
    zone_number = int((point.x + 180.0) // 6.0) % 60 + 1
    return CRS.from_epsg((32600 if point.y >= 0 else 32700) + zone_number)


def geodesic_area_ha(geometry: BaseGeometry) -> float:
    """Area of a lon/lat geometry on the WGS 84 ellipsoid, in hectares."""
    area_m2, _ = _GEOD.geometry_area_perimeter(shapely.force_2d(geometry))
    return abs(area_m2) / 10_000.0


def to_crs(
    geometry: BaseGeometry, src: Any, dst: Any, *, max_segment: float | None = None
) -> BaseGeometry:
    """Reproject a shapely geometry from CRS ``src`` to CRS ``dst``.

    Parameters
    ----------
    geometry
        Geometry in ``src`` coordinates (x/y order, lon/lat for geographic CRSs).
    src, dst
        Anything :class:`pyproj.CRS` accepts (``"EPSG:4326"``, an EPSG int, a CRS).
    max_segment
        When set, densify edges to at most this length (in ``src`` units) first,
        so that long straight edges (e.g. a raster footprint) bend correctly.
    """
    if max_segment:
        geometry = shapely.segmentize(geometry, max_segment)
    transformer = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geometry, transformer.transform, interleaved=False)


def default_aoi_dir() -> Path:
    """Folder of zone GeoJSON files: ``$KPGEO_AOI_DIR``, else the bundled ``aoi/``."""
    env = os.environ.get("KPGEO_AOI_DIR")
    if env:
        return Path(env)
    return Path(str(resources.files("kpgeo._aoi")))


def _norm_key(text: str) -> str:
    """Case-, accent- and separator-insensitive form of a zone key."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "-".join(ascii_text.lower().replace("_", " ").replace("-", " ").split())


def _validate_geometry(geometry: BaseGeometry | None, where: str) -> BaseGeometry:
    """Check a zone geometry is a non-empty valid polygon in lon/lat range."""
    if geometry is None or geometry.is_empty:
        raise InvalidAOIError(f"{where}: the area of interest is empty")
    if geometry.geom_type not in {"Polygon", "MultiPolygon"}:
        raise InvalidAOIError(
            f"{where}: the area of interest must be a Polygon or MultiPolygon, "
            f"got {geometry.geom_type}"
        )
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        raise InvalidAOIError(
            f"{where}: invalid polygon ({reason}); repair it first, e.g. with shapely.make_valid()"
        )
    minx, miny, maxx, maxy = geometry.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise InvalidAOIError(
            f"{where}: coordinates {geometry.bounds} are not lon/lat degrees; "
            "zone files must be in EPSG:4326 (or carry their CRS so kpgeo can reproject)"
        )
    return geometry


def _zone_from_properties(props: dict[str, Any], geometry: BaseGeometry, where: str) -> Zone:
    """Zone from feature properties: an ``id`` is checked, a missing one derived from the name."""
    zone_id = props.get("id")
    if zone_id is None or zone_id == "":
        zone_id = slugify(str(props.get("name") or Path(where).stem))
    elif isinstance(zone_id, int) and not isinstance(zone_id, bool):
        zone_id = str(zone_id)
    check_zone_id(zone_id, where)
    return Zone(
        id=zone_id,
        name=str(props.get("name") or zone_id),
        geometry=_validate_geometry(geometry, where),
        country=str(props.get("country") or ""),
        admin_level=str(props.get("admin_level") or ""),
        kp_status=str(props.get("kp_status") or ""),
        kp_status_date=str(props.get("kp_status_date") or ""),
        source=str(props.get("source") or ""),
        licence=str(props.get("licence") or ""),
        properties=dict(props),
    )


def _read_polygon_file(path: Path) -> tuple[dict[str, Any], BaseGeometry]:
    """Read any polygon file into (properties of its first feature, union geometry in EPSG:4326)."""
    import geopandas as gpd

    if not path.is_file():
        raise InvalidAOIError(f"{path}: no such AOI file")
    try:
        gdf = gpd.read_file(path, engine="pyogrio", datetime_as_string=True)
    except Exception as exc:  # pyogrio/GDAL errors vary by driver
        raise InvalidAOIError(f"{path}: cannot read as a polygon file ({exc})") from exc
    if gdf.empty:
        raise InvalidAOIError(f"{path}: the file holds no features")
    if gdf.crs is None:
        raise InvalidAOIError(
            f"{path}: the file has no CRS; save it with one (GeoJSON is EPSG:4326)"
        )
    missing = gdf.geometry.isna() | gdf.geometry.is_empty
    if missing.any():
        which = ", ".join(str(i + 1) for i in missing.to_numpy().nonzero()[0][:5])
        raise InvalidAOIError(
            f"{path}: feature(s) {which} of {len(gdf)} have no geometry (null or empty); "
            "give every feature a polygon or remove it"
        )
    gdf = gdf.to_crs(4326)
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        reason = shapely.is_valid_reason(gdf.geometry[invalid].iloc[0])
        raise InvalidAOIError(
            f"{path}: invalid polygon ({reason}); repair it first, e.g. with shapely.make_valid()"
        )
    props = {k: v for k, v in gdf.drop(columns="geometry").iloc[0].items() if v is not None}
    return props, shapely.union_all(gdf.geometry.values)


@functools.lru_cache(maxsize=8)
def _load_dir(aoi_dir: str) -> tuple[Zone, ...]:
    folder = Path(aoi_dir)
    if not folder.is_dir():
        raise ZoneError(
            f"zone folder {folder} does not exist (set KPGEO_AOI_DIR to a folder of GeoJSON files)"
        )
    zones = []
    for path in sorted(folder.glob("*.geojson")):
        props, geometry = _read_polygon_file(path)
        if props.get("id") in (None, ""):
            props["id"] = slugify(path.stem)
        zones.append(_zone_from_properties(props, geometry, str(path)))
    ids = [z.id for z in zones]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ZoneError(f"duplicate zone ids in {folder}: {', '.join(duplicates)}")
    return tuple(zones)


def list_zones(aoi_dir: str | os.PathLike | None = None) -> list[Zone]:
    """All zones of a folder (default: the bundled ``aoi/``), sorted by id."""
    return list(_load_dir(str(aoi_dir or default_aoi_dir())))


def get_zone(key: str | Zone, *, aoi_dir: str | os.PathLike | None = None) -> Zone:
    """Look a zone up by id or name, ignoring case and accents.

    ``"Berbérati"``, ``"berberati"`` and ``"caf-berberati"`` all give the same zone.

    Raises
    ------
    UnknownZoneError
        When nothing matches; the message lists the valid ids.
    """
    if isinstance(key, Zone):
        return key
    wanted = _norm_key(str(key))
    zones = list_zones(aoi_dir)
    for zone in zones:
        short_id = zone.id.split("-", 1)[-1]
        if wanted in {_norm_key(zone.id), _norm_key(zone.name), _norm_key(short_id)}:
            return zone
    valid = ", ".join(z.id for z in zones)
    raise UnknownZoneError(f"unknown zone {key!r}; valid zone ids: {valid}")


def load_aoi(
    aoi: str | os.PathLike | BaseGeometry | Zone | Any, *, name: str | None = None
) -> Zone:
    """Turn a zone id/name, polygon file, shapely geometry or GeoDataFrame into a :class:`Zone`.

    Parameters
    ----------
    aoi
        A :class:`Zone`; a zone id or name; a path to any polygon file readable by
        GDAL (GeoJSON, GeoPackage, Shapefile...); a shapely geometry in EPSG:4326;
        or a GeoDataFrame/GeoSeries in any CRS.
    name
        Name for an ad-hoc AOI (its id is :func:`slugify` of it); defaults to the
        file's ``id``/``name`` properties, else its stem, else ``"aoi"``.

    Raises
    ------
    InvalidAOIError
        Empty, invalid, non-polygonal or unreadable AOI; a feature without geometry;
        an ``id`` property that is not safe as a folder name (:func:`check_zone_id`).
    UnknownZoneError
        A string that is neither an existing file nor a known zone.
    """
    if isinstance(aoi, Zone):
        return aoi
    if isinstance(aoi, BaseGeometry):
        label = name or "aoi"
        return _zone_from_properties(
            {"id": slugify(label), "name": label}, aoi, f"AOI {label!r}"
        )
    if hasattr(aoi, "to_crs") and hasattr(aoi, "geometry"):  # GeoDataFrame / GeoSeries
        if aoi.crs is None:
            raise InvalidAOIError("the AOI GeoDataFrame has no CRS; set one with .set_crs()")
        geoms = aoi.to_crs(4326).geometry
        if len(geoms) == 0:
            raise InvalidAOIError("the AOI GeoDataFrame holds no features")
        label = name or "aoi"
        return _zone_from_properties(
            {"id": slugify(label), "name": label},
            shapely.union_all(geoms.values),
            f"AOI {label!r}",
        )
    path = Path(os.fspath(aoi))
    if path.suffix and (
        path.exists() or path.suffix.lower() in {".geojson", ".json", ".gpkg", ".shp"}
    ):
        props, geometry = _read_polygon_file(path)
        if name:
            props["id"], props["name"] = slugify(name), name
        if props.get("id") in (None, ""):
            props["id"] = slugify(str(props.get("name") or path.stem))
        return _zone_from_properties(props, geometry, str(path))
    return get_zone(str(aoi))


def zones_frame(zones: Iterable[Zone] | None = None) -> Any:
    """GeoDataFrame (EPSG:4326) of zones with their fields and ``area_ha``."""
    import geopandas as gpd
    import pandas as pd

    zones = list(zones) if zones is not None else list_zones()
    frames = [z.to_geodataframe() for z in zones]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
