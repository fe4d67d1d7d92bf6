"""Asset headers: what each raster file of an item says before any pixel is read.

:func:`inspect_assets` opens every asset's header up front (in a shared pool of
threads, with a cache keyed by size, times and inode for local files), so a run
fails early and names the file when one is missing, unreadable, corrupt or
truncated, or has no CRS. :class:`AssetHeader` is what the rest of kpgeo reads
from it (CRS, transform, shape, dtype, nodata).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from kpgeo.errors import AssetReadError

__all__ = ["AssetHeader", "inspect_asset", "inspect_assets", "is_remote", "local_path"]

_REMOTE_SCHEMES = ("http", "https", "s3", "gs", "az", "abfs", "vsi")


@dataclass(frozen=True)
class AssetHeader:
    """What an asset's file header says (read by :func:`inspect_asset`).

    Attributes
    ----------
    href
        The href that was opened.
    crs_wkt
        CRS as WKT, or None when the file has none.
    epsg
        EPSG code when the CRS has one.
    transform
        Affine coefficients ``(a, b, c, d, e, f)`` of the top-left corner anchored transform.
    shape
        ``(height, width)`` in pixels.
    dtype
        Data type of band 1.
    nodata
        Nodata of band 1, or None.
    sample_max
        Floating-point files only: the largest absolute valid value in a few small
        windows (centre and quadrants), to tell reflectance from scaled DNs; else None.
    """

    href: str
    crs_wkt: str | None
    epsg: int | None
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int]
    dtype: str
    nodata: float | None
    sample_max: float | None = None


def is_remote(href: str) -> bool:
    """Whether GDAL reads ``href`` over a network (a URL scheme or a ``/vsi`` path)."""
    scheme = urlparse(href).scheme.lower()
    return href.startswith("/vsi") or (len(scheme) > 1 and scheme.startswith(_REMOTE_SCHEMES))


def local_path(href: str) -> str:
    """``file://`` URL → local path (percent-escapes decoded); other hrefs unchanged."""
    if not href.startswith("file://"):
        return href
    from urllib.request import url2pathname

    return url2pathname(urlparse(href).path)


def _check_gtiff_blocks(src: Any, path: str) -> None:
    """Raise when a GeoTIFF block lies beyond the end of the (truncated) file."""
    size = os.path.getsize(path)
    rows, cols = src.block_shapes[0]
    nby, nbx = -(-src.height // rows), -(-src.width // cols)
    if nby * nbx > 20_000:  # very large striped files: corner read only
        return
    for bidx in (1, src.count):
        worst = 0
        for j in range(nby):
            for i in range(nbx):
                off = src.get_tag_item(f"BLOCK_OFFSET_{i}_{j}", "TIFF", bidx=bidx)
                nbytes = src.get_tag_item(f"BLOCK_SIZE_{i}_{j}", "TIFF", bidx=bidx)
                if off and nbytes:
                    worst = max(worst, int(off) + int(nbytes))
        if worst > size:
            raise AssetReadError(
                f"{path}: truncated file ({size} bytes, but its blocks reach byte {worst}); "
                "re-download or re-write the file"
            )


def inspect_asset(href: str, *, label: str = "") -> AssetHeader:
    """Open one raster asset's header and check it can be decoded.

    Reads the header, checks (GeoTIFF) that no block lies past the end of the
    file, and decodes the bottom-right pixel. No full read.

    Parameters
    ----------
    href
        Local path, ``file://`` URL or any URL GDAL can open.
    label
        Context for error messages (item id / band).

    Raises
    ------
    AssetReadError
        Missing, unreadable, corrupt or truncated file; the message names it.
    """
    import rasterio
    from rasterio.windows import Window

    from kpgeo.gdal_env import read_error_message, rio_env

    where = f"{label}: " if label else ""
    path = local_path(href)
    if not is_remote(href) and not os.path.exists(path):
        raise AssetReadError(f"{where}asset file {href} does not exist")
    try:
        with rio_env(), rasterio.open(path) as src:
            if src.driver == "GTiff" and not is_remote(href):
                _check_gtiff_blocks(src, path)
            src.read(1, window=Window(src.width - 1, src.height - 1, 1, 1))
            crs = src.crs
            return AssetHeader(
                href=href,
                crs_wkt=crs.to_wkt() if crs else None,
                epsg=crs.to_epsg() if crs else None,
                transform=tuple(src.transform)[:6],
                shape=(src.height, src.width),
                dtype=str(src.dtypes[0]),
                nodata=src.nodata,
                sample_max=_sample_max(src) if src.dtypes[0].startswith("float") else None,
            )
    except AssetReadError as exc:
        raise AssetReadError(f"{where}{exc}") from exc
    except Exception as exc:  # RasterioIOError, CPLE_* ...: corrupt, truncated, not a raster
        raise AssetReadError(f"{where}{read_error_message(href, exc)}") from exc


def _sample_max(src: Any, size: int = 16) -> float | None:
    """Largest absolute valid value of band 1 in five small windows (centre, quadrants)."""
    import numpy as np
    from rasterio.windows import Window

    best = None
    h, w = src.height, src.width
    for fy, fx in ((0.5, 0.5), (0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)):
        y0, x0 = max(0, int(h * fy) - size // 2), max(0, int(w * fx) - size // 2)
        win = Window(x0, y0, min(size, w - x0), min(size, h - y0))
        values = src.read(1, window=win, masked=True).astype("float64").filled(np.nan)
        values = np.abs(values[np.isfinite(values)])
        if values.size:
            best = max(best or 0.0, float(values.max()))
    return best


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """Shared header-reading thread pool (threads are started once, not per call)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kpgeo-headers")
    return _POOL


def inspect_assets(
    hrefs: Iterable[str], *, labels: Iterable[str] | None = None,
    cache: dict[str, list] | None = None,
) -> list[AssetHeader]:
    """:func:`inspect_asset` over many hrefs in a shared pool of 8 threads (same order).

    Parameters
    ----------
    hrefs
        Local paths, ``file://`` URLs or URLs GDAL can open.
    labels
        Per-href description used in error messages (e.g. ``"item 'x' band red"``);
        default none.
    cache
        Headers of local files checked before (updated in place; a run keeps it
        with its content hashes, :func:`kpgeo.pipeline.asset_identity`):
        ``"header:<path>" -> [size, mtime_ns, ctime_ns, inode, header]``. A
        header is reused only while the file's size, modification time, change
        time and inode are all unchanged, i.e. the file is the one checked.

    Returns
    -------
    list of AssetHeader
        One header per href, in input order.

    Raises
    ------
    AssetReadError
        The first failing asset (in input order).
    """
    hrefs = list(hrefs)
    labels = list(labels) if labels is not None else [""] * len(hrefs)

    def one(href: str, label: str) -> AssetHeader:
        if cache is None or is_remote(href):
            return inspect_asset(href, label=label)
        path = os.path.abspath(local_path(href))
        try:
            st = os.stat(path)
        except OSError:
            return inspect_asset(href, label=label)  # says what is wrong with it
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        hit = cache.get(f"header:{path}")
        if hit is not None and list(hit[:4]) == key:
            return _header_from_record(hit[4], href)
        header = inspect_asset(href, label=label)
        cache[f"header:{path}"] = [*key, _header_record(header)]
        return header

    if len(hrefs) <= 4:
        return [one(h, lbl) for h, lbl in zip(hrefs, labels, strict=True)]
    pool = _pool()
    futures = [pool.submit(one, h, lbl) for h, lbl in zip(hrefs, labels, strict=True)]
    return [f.result() for f in futures]


def _header_record(header: AssetHeader) -> dict[str, Any]:
    """JSON-ready fields of a header (for the header cache of :func:`inspect_assets`)."""
    return {k: getattr(header, k) for k in AssetHeader.__dataclass_fields__ if k != "href"}


def _header_from_record(record: dict[str, Any], href: str) -> AssetHeader:
    return AssetHeader(href=href, **{**record, "transform": tuple(record["transform"]),
                                     "shape": tuple(record["shape"])})
