"""Imagery items: STAC items normalised to kpgeo's common band names.

Providers name the same Sentinel-2 band differently (Earth Search v1 ``red``,
Planetary Computer ``B04``) and Landsat Collection 2 calls its NIR band
``nir08``. Everything downstream of this module speaks **common names**:
reflectance ``blue, green, red, nir, swir16, swir22`` and one mask band named
after its scheme in :mod:`kpgeo.masks` (``scl``, ``fmask``, ``qa_pixel``).

This module

- reads ItemCollections (:func:`read_items`) and builds items for local
  GeoTIFFs (:func:`item_from_files`, :func:`write_items`);
- maps provider asset keys onto common names (:func:`band_assets`);
- finds each band's scale/offset (:func:`band_scaling`): ``raster:bands``
  first; when absent, the Sentinel-2 convention (scale 1e-4, offset -0.1 for
  processing baseline ≥ 04.00 unless ``earthsearch:boa_offset_applied`` says
  the provider already removed it) or the Landsat C2 L2 one (2.75e-5, -0.2);
- checks every asset up front, reading headers only (:func:`inspect_assets`, in
  :mod:`kpgeo.asset_headers` and re-exported here): missing file,
  unreadable/corrupt/truncated raster, missing CRS;
- validates every item field it reads (:func:`validate_item`, :func:`band_scaling`,
  :func:`check_band_encoding`): ``datetime`` within 1970 .. tomorrow, ``geometry``,
  ``bbox``, ``eo:bands``, ``raster:bands`` (a list of objects), ``scale`` (finite,
  non-zero), ``offset`` (finite), ``data_type`` (agreeing with the file); errors
  name the item, the asset and the field.

Scale/offset convention: ``reflectance = DN * scale + offset``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kpgeo._item_checks import (
    check_band_encoding,
    field_number,
    first_band_meta,
    item_datetime,
    short_repr,
    validate_item,
)
from kpgeo.asset_headers import AssetHeader, inspect_asset, inspect_assets, is_remote, local_path
from kpgeo.errors import (
    AssetReadError,
    CRSMismatchError,
    ImageryError,
    MissingBandError,
    NoDataError,
)
from kpgeo.masks import MASK_SCHEMES

__all__ = [
    "REFLECTANCE_BANDS",
    "ASSET_ALIASES",
    "AssetHeader",
    "read_items",
    "norm_items",
    "band_assets",
    "band_scaling",
    "check_band_encoding",
    "item_datetime",
    "validate_item",
    "mask_band",
    "inspect_asset",
    "inspect_assets",
    "item_from_files",
    "write_items",
]

#: Reflectance bands kpgeo uses, in common names.
REFLECTANCE_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")

#: Provider asset key (lower case) -> common name. ``nir08`` is handled apart (see
#: :func:`band_assets`): it is Landsat's NIR but Sentinel-2's B8A.
ASSET_ALIASES: dict[str, str] = {
    # Earth Search v1 / common names
    **{name: name for name in REFLECTANCE_BANDS},
    # Planetary Computer, Earth Search v0, raw Sentinel-2 band ids
    "b02": "blue",
    "b03": "green",
    "b04": "red",
    "b08": "nir",
    "b11": "swir16",
    "b12": "swir22",
    # other spellings met in the wild
    "swir1": "swir16",
    "swir2": "swir22",
    # mask assets
    "scl": "scl",
    "fmask": "fmask",
    "qa_pixel": "qa_pixel",
}

_S2_SCALE = 1e-4
_S2_OFFSET_PB4 = -0.1
_LANDSAT_C2_SCALE = 2.75e-5
_LANDSAT_C2_OFFSET = -0.2
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- reading


def read_items(path: str | os.PathLike) -> list[Any]:
    """Read a STAC ItemCollection (or a single Item) JSON file.

    Relative asset hrefs are resolved against the file's folder; ``file://``
    URLs become local paths.

    Parameters
    ----------
    path
        ItemCollection (or Item) JSON file.

    Raises
    ------
    AssetReadError
        The file does not exist or cannot be read.
    ImageryError
        The file is not valid JSON or not a STAC Item/ItemCollection.
    NoDataError
        The collection holds no item.
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        hint = " (did you mean items.json in it?)" if (path / "items.json").is_file() else ""
        raise AssetReadError(
            f"{path} is a folder, not a STAC ItemCollection JSON file{hint}"
        )
    if not path.is_file():
        raise AssetReadError(f"{path}: no such STAC ItemCollection file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AssetReadError(f"{path}: cannot read the STAC ItemCollection ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise ImageryError(
            f"{path}: not valid JSON ({exc}); expected a STAC ItemCollection"
        ) from exc
    if isinstance(data, dict) and data.get("type") == "Feature":
        data = {"type": "FeatureCollection", "features": [data]}
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ImageryError(
            f"{path}: not a STAC ItemCollection "
            "(expected a GeoJSON FeatureCollection of STAC Items)"
        )
    features = data.get("features")
    if not features:
        raise NoDataError(f"{path}: the ItemCollection holds no items")
    if not isinstance(features, list):
        raise ImageryError(f"{path}: 'features' must be a list of STAC Items")
    items = [_parse_item(feature, i, where=str(path)) for i, feature in enumerate(features)]
    base = path.resolve().parent
    for item in items:
        for asset in item.assets.values():
            if asset.href.startswith("file://"):
                asset.href = local_path(asset.href)
            if not is_remote(asset.href) and not os.path.isabs(asset.href):
                asset.href = str((base / asset.href).resolve())
    log.debug("read %d STAC item(s) from %s", len(items), path)
    return items


def _parse_item(feature: Any, index: int, *, where: str) -> Any:
    """One STAC Item dict -> validated :class:`pystac.Item`; errors name the item."""
    import pystac

    label = f"item #{index + 1}"
    if isinstance(feature, Mapping) and isinstance(feature.get("id"), str):
        label += f" {feature['id']!r}"
    if not isinstance(feature, Mapping):
        raise ImageryError(f"{where}: {label} is not a JSON object")
    assets = feature.get("assets")
    if not isinstance(assets, Mapping):
        raise ImageryError(f"{where}: {label}: 'assets' must be an object of named assets")
    for key, asset in assets.items():
        if not isinstance(asset, Mapping) or not isinstance(asset.get("href"), str):
            raise ImageryError(f"{where}: {label} asset {key!r}: 'href' must be a string")
    try:
        item = pystac.Item.from_dict(dict(feature), preserve_dict=False)
    except Exception as exc:  # pystac raises KeyError/ValueError/STACError variously
        raise ImageryError(
            f"{where}: {label} is not a valid STAC Item ({type(exc).__name__}: {exc})"
        ) from exc
    validate_item(item, where=where)
    return item


def norm_items(items: Any) -> list[Any]:
    """Normalise loose item input to a list of :class:`pystac.Item`.

    Parameters
    ----------
    items
        Path to an ItemCollection JSON, a :class:`pystac.ItemCollection`, a single
        :class:`pystac.Item`, or an iterable of items (pystac or STAC dicts).

    Raises
    ------
    NoDataError
        No item at all.
    ImageryError
        Something that is not a STAC item.
    """
    import pystac

    if isinstance(items, (str, os.PathLike)):
        return read_items(items)
    if isinstance(items, pystac.Item):
        items = [items]
    if not isinstance(items, Iterable):
        raise ImageryError(
            f"items must be a path to an ItemCollection JSON, a pystac.ItemCollection or a list of "
            f"pystac.Item, got {type(items).__name__}"
        )
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            try:
                item = pystac.Item.from_dict(dict(item))
            except Exception as exc:
                raise ImageryError(f"item #{i} is not a valid STAC Item ({exc})") from exc
        if not isinstance(item, pystac.Item):
            raise ImageryError(f"item #{i} is a {type(item).__name__}, not a pystac.Item")
        validate_item(item)
        out.append(item)
    if not out:
        raise NoDataError("the item collection is empty: no imagery to load")
    return out


# --------------------------------------------------------------------------- band names


def band_assets(item: Any) -> dict[str, str]:
    """Map common band names to this item's asset keys.

    Matching is case-insensitive on the asset key (:data:`ASSET_ALIASES`), then
    on ``eo:bands[0].common_name``. ``nir08`` becomes ``nir`` only when the item
    has no other NIR asset (Landsat: yes; Sentinel-2, where it is B8A: no).
    Masks are recognised by the names registered in :data:`kpgeo.masks.MASK_SCHEMES`.

    Returns
    -------
    dict
        ``{common_name: asset_key}``, e.g. ``{"red": "B04", "scl": "SCL"}``.
    """
    found: dict[str, str] = {}
    nir08: str | None = None
    for key, asset in item.assets.items():
        low = key.lower()
        name = ASSET_ALIASES.get(low)
        if name is None and low in MASK_SCHEMES:
            name = low
        if name is None:
            if low == "nir08":
                nir08 = key
                continue
            eo_bands = asset.extra_fields.get("eo:bands") or []
            if not isinstance(eo_bands, list) or not all(isinstance(b, Mapping) for b in eo_bands):
                raise ImageryError(
                    f"item {item.id!r} asset {key!r}: eo:bands must be a list of band objects, "
                    f"got {short_repr(eo_bands)}"
                )
            common = eo_bands[0].get("common_name") if len(eo_bands) == 1 else None
            if common in REFLECTANCE_BANDS:
                name = common
            elif common == "nir08":
                nir08 = nir08 or key
                continue
        if name is not None and name not in found:
            found[name] = key
    if "nir" not in found and nir08 is not None:
        found["nir"] = nir08
    return found


def mask_band(assets: Mapping[str, str]) -> str | None:
    """Return the mask scheme (common name of the mask band) among ``assets``, or None."""
    for name in MASK_SCHEMES:
        if name in assets:
            return name
    return None


def _baseline(item: Any) -> float | None:
    props = item.properties
    for key in ("s2:processing_baseline", "sentinel:processing_baseline", "processing:version"):
        value = props.get(key)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
    return None


def _is_sentinel2(item: Any) -> bool:
    text = " ".join(
        str(v).lower() for v in (item.collection_id, item.properties.get("platform"), item.id) if v
    )
    return "sentinel-2" in text or "sentinel2" in text or item.id.upper().startswith("S2")


def _is_landsat_c2_l2(item: Any) -> bool:
    props = item.properties
    coll = str(item.collection_id or "").lower()
    return ("landsat" in coll and "c2" in coll and "l2" in coll) or (
        str(props.get("landsat:collection_number")) == "02"
        and str(props.get("landsat:correction", "")).upper().startswith("L2")
    )


def band_scaling(item: Any, asset_key: str) -> tuple[float, float] | None:
    """Scale and offset of one asset: ``reflectance = DN * scale + offset``.

    Order: ``raster:bands[0].scale/offset`` (or STAC 1.1 ``bands``); else, for
    Sentinel-2 reflectance, scale 1e-4 and offset -0.1 when the processing
    baseline (``s2:processing_baseline``) is ≥ 04.00 and
    ``earthsearch:boa_offset_applied`` is not True (True means the provider
    already removed the +1000 DN offset), else 0; else, for Landsat C2 L2,
    2.75e-5 and -0.2.

    Parameters
    ----------
    item
        :class:`pystac.Item` holding the asset.
    asset_key
        Provider asset key (e.g. ``"B04"`` or ``"red"``), as in ``item.assets``.

    Returns
    -------
    tuple or None
        ``(scale, offset)``, or None when nothing says how to scale.

    Raises
    ------
    ImageryError
        ``raster:bands`` not a list of objects; ``scale`` not a finite non-zero
        number; ``offset`` not a finite number (the message names item, asset, field).
    """
    asset = item.assets[asset_key]
    where = f"item {item.id!r} asset {asset_key!r}"
    meta = first_band_meta(item, asset_key)
    for fields, prefix in ((meta, "raster:bands[0]."), (asset.extra_fields, "")):
        scale, offset = fields.get("scale"), fields.get("offset")
        if scale is None and offset is None:
            continue
        return (
            1.0 if scale is None else field_number(scale, where, prefix + "scale", nonzero=True),
            0.0 if offset is None else field_number(offset, where, prefix + "offset"),
        )
    if _is_sentinel2(item):
        baseline = _baseline(item)
        applied = item.properties.get("earthsearch:boa_offset_applied")
        offset = (
            _S2_OFFSET_PB4
            if baseline is not None and baseline >= 4.0 and applied is not True
            else 0.0
        )
        return _S2_SCALE, offset
    if _is_landsat_c2_l2(item):
        return _LANDSAT_C2_SCALE, _LANDSAT_C2_OFFSET
    return None


# --------------------------------------------------------------------------- building items


def _footprint_4326(header: AssetHeader) -> Any:
    """Lon/lat footprint of an asset's pixel grid (edges densified)."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    gbox = GeoBox(header.shape, Affine(*header.transform[:6]), header.crs_wkt)
    return gbox.footprint("EPSG:4326").geom


def item_from_files(
    files: Mapping[str, str | os.PathLike],
    *,
    datetime: str | _dt.datetime | _dt.date,
    id: str | None = None,
    collection: str | None = None,
    platform: str | None = None,
    scale: float | Mapping[str, float] | None = None,
    offset: float | Mapping[str, float] | None = None,
    properties: Mapping[str, Any] | None = None,
) -> Any:
    """Build a STAC Item for local single-band rasters (GeoTIFF, JP2...).

    Reads each file's header (CRS, transform, shape, dtype, nodata) and writes
    it as projection/raster extension metadata, so :func:`kpgeo.cube.load_cube`
    can load the item like any provider's.

    Parameters
    ----------
    files
        ``{common_name: path}``, e.g. ``{"red": "b3.tif", "nir": "b4.tif",
        "fmask": "fmask.tif"}``. Keys are used as asset keys.
    datetime
        Acquisition time (UTC when naive) or date; ISO string accepted.
    id
        Item id; default: the common stem of the files' folder.
    collection, platform
        Written to ``collection`` and ``properties["platform"]``.
    scale, offset
        Reflectance scaling for non-mask bands (one value, or per band). Mask
        bands (``scl``, ``fmask``, ``qa_pixel``) get none.
    properties
        Extra item properties.

    Returns
    -------
    pystac.Item

    Raises
    ------
    AssetReadError
        A file is missing or unreadable.
    CRSMismatchError
        A file has no CRS.

    Examples
    --------
    >>> item = item_from_files({"red": "b04.tif", "nir": "b08.tif"},
    ...                        datetime="2020-01-05", scale=1e-4)  # doctest: +SKIP
    """
    if not files:
        raise MissingBandError("item_from_files() needs at least one {band: path} entry")
    paths = {band: str(Path(os.fspath(p)).resolve()) for band, p in files.items()}
    headers = _read_headers(paths)
    _require_crs(headers)
    item = _new_item(paths, headers, _norm_datetime(datetime), id=id, collection=collection,
                     platform=platform, properties=properties)
    for band, hdr in headers.items():
        item.add_asset(band, _band_asset(band, paths[band], hdr, scale=scale, offset=offset))
    return item


def _read_headers(paths: Mapping[str, str]) -> dict[str, AssetHeader]:
    """Read each band file's header (raises :class:`AssetReadError` naming the band)."""
    found = inspect_assets(paths.values(), labels=[f"band {b}" for b in paths])
    return dict(zip(paths, found, strict=True))


def _require_crs(headers: Mapping[str, AssetHeader]) -> None:
    """Refuse a band file without CRS, naming the file and the band."""
    for band, hdr in headers.items():
        if hdr.crs_wkt is None:
            raise CRSMismatchError(f"{hdr.href} (band {band}) has no CRS; write one into the file")


def _new_item(
    paths: Mapping[str, str],
    headers: Mapping[str, AssetHeader],
    when: _dt.datetime,
    *,
    id: str | None,
    collection: str | None,
    platform: str | None,
    properties: Mapping[str, Any] | None,
) -> Any:
    """Create the Item without assets: footprint, bbox, datetime, id, properties, extensions."""
    import pystac
    import shapely
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import RasterExtension

    footprint = shapely.union_all([_footprint_4326(h) for h in headers.values()])
    if id is None:
        id = Path(next(iter(paths.values()))).parent.name or "item"
    props = {"platform": platform} if platform else {}
    props.update(properties or {})
    item = pystac.Item(
        id=id,
        geometry=shapely.geometry.mapping(footprint),
        bbox=list(footprint.bounds),
        datetime=when,
        properties=props,
        collection=collection,
    )
    ProjectionExtension.add_to(item)
    RasterExtension.add_to(item)
    return item


def _band_asset(
    band: str,
    path: str,
    hdr: AssetHeader,
    *,
    scale: float | Mapping[str, float] | None,
    offset: float | Mapping[str, float] | None,
) -> Any:
    """Build one band's asset: href, media type, roles, projection and raster metadata."""
    import pystac

    asset = pystac.Asset(
        href=path,
        media_type=_media_type(path),
        roles=["data"] if band not in MASK_SCHEMES else ["data", "cloud"],
    )
    asset.extra_fields.update(_proj_fields(hdr))
    asset.extra_fields["raster:bands"] = [_raster_band(band, hdr, scale=scale, offset=offset)]
    return asset


def _raster_band(
    band: str,
    hdr: AssetHeader,
    *,
    scale: float | Mapping[str, float] | None,
    offset: float | Mapping[str, float] | None,
) -> dict[str, Any]:
    """Build the ``raster:bands`` entry: data type, nodata, scale/offset (not for masks)."""
    meta: dict[str, Any] = {"data_type": hdr.dtype}
    if hdr.nodata is not None:
        meta["nodata"] = hdr.nodata
    if band not in MASK_SCHEMES:
        s = scale.get(band) if isinstance(scale, Mapping) else scale
        o = offset.get(band) if isinstance(offset, Mapping) else offset
        if s is not None:
            meta["scale"] = float(s)
        if o is not None:
            meta["offset"] = float(o)
    return meta


def _media_type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return {
        ".jp2": "image/jp2",
        ".tif": "image/tiff; application=geotiff",
        ".tiff": "image/tiff; application=geotiff",
    }.get(suffix, "application/octet-stream")


def _proj_fields(hdr: AssetHeader) -> dict[str, Any]:
    out: dict[str, Any] = {"proj:shape": list(hdr.shape), "proj:transform": list(hdr.transform)}
    if hdr.epsg is not None:
        out["proj:code"] = f"EPSG:{hdr.epsg}"
        out["proj:epsg"] = hdr.epsg
    else:
        out["proj:wkt2"] = hdr.crs_wkt
    return out


def _norm_datetime(value: str | _dt.datetime | _dt.date) -> _dt.datetime:
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            value = _dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ImageryError(f"datetime {value!r} is not an ISO 8601 date or instant") from exc
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.UTC)
    raise ImageryError(
        f"datetime must be an ISO string, date or datetime, got {type(value).__name__}"
    )


def write_items(items: Iterable[Any], path: str | os.PathLike, *, relative: bool = True) -> Path:
    """Write items as an ItemCollection JSON (atomically).

    Parameters
    ----------
    items
        pystac Items.
    path
        Destination ``.json``.
    relative
        Write local asset hrefs relative to the file's folder, so the folder can move.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import pystac

    from kpgeo.io import atomic_path

    path = Path(os.fspath(path))
    base = path.resolve().parent
    features = []
    for item in items:
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        if relative:
            for asset in d.get("assets", {}).values():
                href = asset["href"]
                if not is_remote(href) and os.path.isabs(href):
                    try:
                        asset["href"] = os.path.relpath(href, base)
                    except ValueError:  # other drive on Windows
                        pass
        features.append(d)
    pystac.ItemCollection(features)  # raises on a malformed item before anything is written
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps({"type": "FeatureCollection", "features": features}, indent=1),
            encoding="utf-8",
        )
    return path
