"""Validation of the STAC item fields kpgeo reads (internal; public names in :mod:`kpgeo.items`).

Every check raises :class:`~kpgeo.errors.ImageryError` naming the item, the
asset and the field, so a malformed item is reported in one line instead of
failing inside numpy, pandas or odc-stac (or, worse, being read wrong):

- :func:`item_datetime`: ``datetime`` (or ``start_datetime``) between 1970 and tomorrow;
- :func:`validate_item`: ``geometry`` a GeoJSON geometry, ``bbox`` 4 or 6 numbers;
- :func:`first_band_meta`: ``raster:bands`` (STAC 1.1 ``bands``) a list of objects;
- :func:`field_number`: ``scale`` finite and non-zero, ``offset`` finite;
- :func:`check_band_encoding`: ``data_type`` a STAC raster type of the file's kind,
  and floating-point files not scaled as if they held DNs.
"""

from __future__ import annotations

import datetime as _dt
import math
import warnings
from collections.abc import Mapping
from typing import Any

from kpgeo.errors import ImageryError, KpgeoWarning

__all__ = [
    "item_datetime",
    "validate_item",
    "first_band_meta",
    "field_number",
    "check_band_encoding",
    "short_repr",
]


#: ``data_type`` values of the STAC raster extension.
_DATA_TYPES = {
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "cint16", "cint32", "cfloat32", "cfloat64", "other",
}  # fmt: skip
#: Earliest acquisition accepted (Landsat 1 flew in 1972; before 1970 is a typo or a default).
_EARLIEST = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def item_datetime(item: Any) -> _dt.datetime:
    """Acquisition instant of an item (``datetime``, else ``start_datetime``), aware UTC.

    Raises
    ------
    ImageryError
        No datetime, or one before 1970 or after tomorrow (e.g. a ``9999-12-31``
        placeholder), which no acquisition can have.
    """
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        raise ImageryError(f"item {item.id!r} has no datetime (nor start_datetime)")
    when = when.replace(tzinfo=_dt.UTC) if when.tzinfo is None else when.astimezone(_dt.UTC)
    latest = _dt.datetime.now(_dt.UTC) + _dt.timedelta(days=1)
    if not _EARLIEST <= when <= latest:
        field = "datetime" if item.datetime else "start_datetime"
        raise ImageryError(
            f"item {item.id!r}: {field} {when:%Y-%m-%dT%H:%M:%SZ} is not a possible acquisition "
            f"time (before 1970 or in the future); fix the item's {field}"
        )
    return when


def validate_item(item: Any, *, where: str = "") -> None:
    """Check the item-level fields kpgeo reads: datetime, geometry, bbox.

    Asset fields are checked where they are read (:func:`band_assets`,
    :func:`band_scaling`, :func:`check_band_encoding`).

    Raises
    ------
    ImageryError
        The message names the item and the field.
    """
    import shapely.geometry

    prefix = f"{where}: " if where else ""
    try:
        item_datetime(item)
    except ImageryError as exc:
        raise ImageryError(f"{prefix}{exc}") from None
    if item.geometry is not None:
        try:
            geom = shapely.geometry.shape(item.geometry)
        except Exception as exc:  # shapely raises GEOSException/TypeError/ValueError/KeyError
            raise ImageryError(
                f"{prefix}item {item.id!r}: geometry is not a valid GeoJSON geometry ({exc})"
            ) from exc
        if geom.is_empty:
            raise ImageryError(f"{prefix}item {item.id!r}: geometry is empty")
    bbox = item.bbox
    if bbox is not None and (
        not isinstance(bbox, (list, tuple))
        or len(bbox) not in (4, 6)
        or not all(is_number(v) and math.isfinite(v) for v in bbox)
    ):
        raise ImageryError(
            f"{prefix}item {item.id!r}: bbox must be a list of 4 (or 6) numbers, got {bbox!r}"
        )


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def short_repr(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def first_band_meta(item: Any, asset_key: str) -> dict[str, Any]:
    """``raster:bands[0]`` (or STAC 1.1 ``bands[0]``) of an asset, checked; {} when absent."""
    asset = item.assets[asset_key]
    for name in ("raster:bands", "bands"):
        bands = asset.extra_fields.get(name)
        if bands is None:
            continue
        if not isinstance(bands, list) or not all(isinstance(b, Mapping) for b in bands):
            raise ImageryError(
                f"item {item.id!r} asset {asset_key!r}: {name} must be a list of band objects "
                f"(one per band), got {short_repr(bands)}"
            )
        if bands:
            return dict(bands[0])
    return {}


def field_number(value: Any, where: str, name: str, *, nonzero: bool = False) -> float:
    """Read a finite number from an item field; ImageryError naming the field otherwise."""
    if not is_number(value):
        raise ImageryError(f"{where}: {name} must be a number, got {short_repr(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ImageryError(f"{where}: {name} must be a finite number, got {value!r}")
    if nonzero and number == 0:
        raise ImageryError(
            f"{where}: {name} is 0, which would turn every pixel into the offset; "
            "give the real scale (e.g. 0.0001 for Sentinel-2 L2A DNs) or remove the field"
        )
    return number


def check_band_encoding(
    item: Any, asset_key: str, header: Any, scaling: tuple[float, float] | None
) -> None:
    """Check an asset's file against what its item says about it.

    - ``raster:bands[0].data_type`` must be a STAC raster data type and of the
      same kind (integer / floating point) as the file: an item that says uint16
      DNs for a file of float32 reflectance is refused (its scaling would be
      wrong); a different width of the same kind is only warned about.
    - A floating-point file whose values, times the scale, stay below 0.02
      (reflectance stored as 0-1 floats but a DN scale such as 1e-4) gets a
      :class:`~kpgeo.errors.KpgeoWarning`.

    Parameters
    ----------
    item, asset_key
        The item and the provider asset key.
    header
        :class:`kpgeo.items.AssetHeader` of the asset's file.
    scaling
        ``(scale, offset)`` that will be applied, or None.

    Raises
    ------
    ImageryError
        Unknown ``data_type`` or a kind that contradicts the file; the message
        names the item, the asset and the file.
    """
    import numpy as np

    where = f"item {item.id!r} asset {asset_key!r}"
    declared = first_band_meta(item, asset_key).get("data_type")
    file_kind = np.dtype(header.dtype).kind
    if declared is not None:
        if declared not in _DATA_TYPES:
            raise ImageryError(
                f"{where}: raster:bands[0].data_type {short_repr(declared)} is not a STAC raster "
                f"data type ({', '.join(sorted(_DATA_TYPES))})"
            )
        kind = {"c": "c", "f": "f", "o": None}.get(declared[0], "i")
        if kind is not None and kind != ("i" if file_kind in "iu" else file_kind):
            raise ImageryError(
                f"{where}: the item says raster:bands[0].data_type {declared} but "
                f"{header.href} holds {header.dtype} values; fix the item's data_type and "
                "scale/offset (reflectance stored as floats needs scale 1, offset 0)"
            )
        if kind is not None and declared != header.dtype:
            warnings.warn(
                f"{where}: the item says data_type {declared}, {header.href} holds "
                f"{header.dtype}; reading the file as it is",
                KpgeoWarning,
                stacklevel=2,
            )
    if scaling is not None and header.sample_max:
        scale = abs(scaling[0])
        if scale < 0.01 and header.sample_max * scale < 0.02:
            warnings.warn(
                f"{where}: {header.href} holds floating-point values up to "
                f"{header.sample_max:.3g}, which with scale {scaling[0]:g} give reflectances "
                "below 0.02: the file looks like reflectance already; set the item's "
                "raster:bands scale to 1 and offset to 0 if so",
                KpgeoWarning,
                stacklevel=2,
            )
