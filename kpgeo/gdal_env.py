"""GDAL settings for reading imagery, local or remote, in one place.

Every raster read of kpgeo (asset headers in :mod:`kpgeo.items`, cube blocks in
:mod:`kpgeo._cube_read`) runs inside :func:`rio_env`, so remote Cloud-Optimised
GeoTIFFs (``https://``, ``s3://``) are read the way GDAL recommends for COGs:

- no directory listing on open (``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR``) and
  only raster extensions fetched (``CPL_VSIL_CURL_ALLOWED_EXTENSIONS``), so
  opening a COG costs one or two range requests, never a listing of the bucket;
- range requests issued in parallel and neighbouring ranges merged
  (``GDAL_HTTP_MULTIRANGE``, ``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES``);
- one shared, process-wide cache of downloaded regions
  (``CPL_VSIL_CURL_CACHE_SIZE``, 256 MB) and **no** per-file cache
  (``VSI_CACHE=FALSE``): GDAL's per-file cache keeps up to ``VSI_CACHE_SIZE``
  of raw bytes for every open file, and the streamed zone run keeps hundreds
  of files open between blocks (that cache cost ~1.5 MB per open file and
  grew with every block read; local files have the OS page cache anyway);
- HTTP errors retried with exponential backoff (``GDAL_HTTP_MAX_RETRY``,
  ``GDAL_HTTP_RETRY_DELAY``; GDAL retries 429, 500, 502, 503 and 504 and doubles
  the delay each time), a connect and a total timeout;
- one decoding thread per read (``GDAL_NUM_THREADS=1``): dask already reads
  many blocks at once, more threads per block would oversubscribe the cores;
- a small raster block cache, 64 MB (:func:`limit_block_cache`, called by the
  streamed zone run): blocks are read on the files' own tile grid, each tile
  once, from datasets kept open between blocks, so a larger cache only holds
  decoded tiles nobody reads again (GDAL's default, 5 % of RAM, is over 1 GB of
  resident memory on a 24 GB machine). GDAL has one block cache per process,
  so this is set once per process, not in :func:`rio_env` (an ``Env`` that sets
  ``GDAL_CACHEMAX`` resets the process-wide cache size when it exits, under
  other threads' feet); ``GDAL_CACHEMAX`` in the environment wins.

Writing (:data:`COG_OPTIONS`): the streamed zone run writes its rasters as
tiled GeoTIFFs window by window and copies them into Cloud-Optimised GeoTIFFs
with GDAL's COG driver (DEFLATE, 512 px tiles, overviews), with these options.

A setting already in the environment (``export GDAL_HTTP_MAX_RETRY=10``) wins
over kpgeo's default, so operators tune reads the usual GDAL way.
:func:`read_error_message` turns a GDAL failure into one line naming the URL
and, where GDAL reports one, the HTTP status.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["GDAL_READ_DEFAULTS", "BLOCK_CACHE_MB", "COG_OPTIONS", "TILED_GTIFF_OPTIONS",
           "read_options", "rio_env", "limit_block_cache", "read_error_message"]

#: kpgeo's defaults for every raster read (see the module docstring).
GDAL_READ_DEFAULTS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.TIFF,.jp2,.JP2,.vrt",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "FALSE",
    "CPL_VSIL_CURL_CACHE_SIZE": str(256 * 2**20),
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "20",
    "GDAL_HTTP_TIMEOUT": "120",
    "GDAL_NUM_THREADS": "1",
}
#: size of GDAL's (process-wide) raster block cache for kpgeo's streamed reads, MB
BLOCK_CACHE_MB = 64

#: creation options of the output COGs (GDAL's COG driver)
COG_OPTIONS: dict[str, str] = {
    "compress": "DEFLATE",
    "blocksize": "512",
    "overview_resampling": "nearest",
    "num_threads": "2",
}
#: creation options of the tiled GeoTIFFs written window by window before the COG copy
TILED_GTIFF_OPTIONS: dict[str, Any] = {
    "tiled": True,
    "blockxsize": 512,
    "blockysize": 512,
    "compress": "ZSTD",
    "zstd_level": 1,
    "bigtiff": "IF_SAFER",
}


def read_options(**overrides: Any) -> dict[str, str]:
    """GDAL configuration for reads: defaults, then the environment, then ``overrides``.

    Parameters
    ----------
    **overrides
        GDAL configuration options that take precedence (e.g. ``GDAL_HTTP_MAX_RETRY=0``).

    Returns
    -------
    dict
        Option name -> string value, ready for :class:`rasterio.Env`.
    """
    options: dict[str, Any] = {key: os.environ.get(key, value)
                               for key, value in GDAL_READ_DEFAULTS.items()}
    options.update({key: str(value) for key, value in overrides.items()})
    return options


@contextlib.contextmanager
def rio_env(**overrides: Any) -> Iterator[Any]:
    """Enter a :class:`rasterio.Env` with :func:`read_options` (nested calls are cheap).

    odc-stac captures the active rasterio environment when it loads, so a cube
    block read inside this context reads with these settings, on any worker.
    """
    import rasterio

    with rasterio.Env(**read_options(**overrides)) as env:
        yield env


_CACHE_SET: list[bool] = []


def limit_block_cache(mb: int = BLOCK_CACHE_MB) -> None:
    """Set GDAL's process-wide raster block cache to ``mb`` megabytes, once per process.

    Does nothing when ``GDAL_CACHEMAX`` is set in the environment (the
    operator's choice), or when it was already done in this process.
    """
    if _CACHE_SET or "GDAL_CACHEMAX" in os.environ:
        return
    from rasterio.env import set_gdal_config

    set_gdal_config("GDAL_CACHEMAX", int(mb) * 2**20)  # an int: bytes, process-wide
    _CACHE_SET.append(True)


_HTTP_CODE = re.compile(r"HTTP (?:response code|error code)\s*:?\s*(\d{3})", re.IGNORECASE)
_HTTP_REASONS = {
    400: "bad request",
    401: "not authorised (a signed or authenticated URL may have expired)",
    403: "forbidden (a signed URL may have expired: search again to re-sign it)",
    404: "not found (the scene may have been removed or moved by its provider)",
    416: "range not satisfiable (the file is shorter than its header says)",
    429: "too many requests (the server throttles; retried, then gave up)",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def read_error_message(href: str, exc: BaseException) -> str:
    """One line naming ``href`` and why GDAL could not read it.

    For a remote href the HTTP status GDAL reports is given in words, with the
    number of retries made; otherwise the GDAL message is kept.

    Parameters
    ----------
    href
        The asset's path or URL.
    exc
        The exception rasterio/GDAL raised.
    """
    from kpgeo.asset_headers import is_remote

    detail = str(exc).strip() or type(exc).__name__
    if not is_remote(href):
        return f"cannot read raster asset {href}: corrupt, truncated or not a raster ({detail})"
    match = _HTTP_CODE.search(detail)
    code = int(match.group(1)) if match else None
    if code is not None:
        why = f"HTTP {code} {_HTTP_REASONS.get(code, 'error')}"
        if code == 429 or code >= 500:
            why += f", still after {_current_option('GDAL_HTTP_MAX_RETRY')} retries with backoff"
    elif re.search(r"could not resolve|couldn't connect|could not connect|connection refused|"
                   r"timed out|failed to connect", detail, re.IGNORECASE):
        why = "the server cannot be reached"
    else:
        why = "not readable as a raster"
    return f"cannot read remote raster asset {href}: {why} (GDAL: {detail})"


def _current_option(key: str) -> str:
    """Value of a GDAL option in the active rasterio environment, else kpgeo's default."""
    import rasterio.env

    if rasterio.env.hasenv():
        value = rasterio.env.getenv().get(key)
        if value is not None:
            return str(value)
    return read_options()[key]
