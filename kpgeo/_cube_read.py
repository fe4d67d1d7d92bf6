"""Block reading behind :func:`kpgeo.cube.load_cube` (internal).

:func:`dask_arrays` builds a dask graph with **one read task per (time, y, x)
block** plus cheap per-variable tasks on its result. Each read task calls
:func:`odc.stac.load` on that block's geobox with only the items that touch
it, so blocks share no dependency and memory follows the chunk size, not the
cube size. The :class:`BlockSpec` (item clones, footprints, grid) sits in the
graph **once**, under one key every read task references, so the distributed
scheduler serialises it once rather than once per task.

A reader wrapper (:class:`SafeRioDriver`) turns a decode failure at compute
time into :class:`~kpgeo.errors.AssetReadError` naming the file.

Direct reads. ``odc.stac.load`` costs a few milliseconds of planning per call
and per asset, which dominates when a block is a few hundred pixels of a few
dates. So a band whose file lies on the output grid (same CRS, origin on the
grid, pixel a whole multiple of the output pixel: 10 m bands, the 20 m SCL) is
read with a plain windowed :mod:`rasterio` read, repeated ``k × k`` for a
coarser band (exactly what nearest resampling gives), from a small per-thread
cache of open datasets (:func:`cached_dataset`; opening a GeoTIFF costs ~1 ms,
as much as decoding a 512 px tile). Everything else (reprojection, several
items fused on one date, bilinear resampling) goes through odc-stac. The mask
band is read first: on a date when no pixel of the block is clear (all cloud
or no data) the reflectance bands are not decoded at all.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kpgeo.errors import AssetReadError, KpgeoError
from kpgeo.masks import clear_mask

__all__: list[str] = []


def _make_driver_classes() -> tuple[type, type]:
    from odc.loader._rio import RioDriver, RioReader

    class SafeRioReader(RioReader):
        """odc-stac rasterio reader that reports failures as AssetReadError naming the file."""

        def read(self, cfg: Any, dst_geobox: Any, *, dst: Any = None, selection: Any = None) -> Any:
            try:
                return super().read(cfg, dst_geobox, dst=dst, selection=selection)
            except KpgeoError:
                raise
            except Exception as exc:
                from kpgeo.gdal_env import read_error_message

                raise AssetReadError(read_error_message(self._src.uri, exc)) from exc

    class SafeRioDriver(RioDriver):
        """odc-stac ``RioDriver`` whose readers raise :class:`AssetReadError`."""

        def open(self, src: Any, ctx: Any) -> Any:
            return SafeRioReader(src, ctx)

    # module-level names so that the classes pickle (distributed workers)
    SafeRioReader.__module__ = SafeRioDriver.__module__ = __name__
    SafeRioReader.__qualname__ = "SafeRioReader"
    SafeRioDriver.__qualname__ = "SafeRioDriver"
    return SafeRioReader, SafeRioDriver


@functools.cache
def _driver_classes() -> tuple[type, type]:
    return _make_driver_classes()


def __getattr__(name: str) -> Any:
    # built on first use: odc.loader imports dask.array (~1 s), which a run that reads
    # every block directly never needs; module-level names still pickle
    if name in ("SafeRioReader", "SafeRioDriver"):
        return _driver_classes()[name == "SafeRioDriver"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class KeyGroupby:
    """Picklable odc-stac groupby callback returning precomputed keys by item index."""

    def __init__(self, keys: Sequence[Any]) -> None:
        self.keys = list(keys)

    def __call__(self, item: Any, parsed: Any, idx: int) -> Any:
        return self.keys[idx]


@dataclass(frozen=True)
class DirectRead:
    """How to read one asset straight onto the output grid (see :func:`read_direct`).

    ``row``/``col``: output-grid pixel of the file's top-left corner; ``factor``:
    file pixel size in output pixels; ``shape``: the file's ``(height, width)``.
    """

    href: str
    row: int
    col: int
    factor: int
    shape: tuple[int, int]


def direct_read(href: str, hdr: Any, gbox: Any, resampling: str) -> DirectRead | None:
    """How to read an asset straight onto the output grid, or None (warp it with odc-stac).

    A band is read directly when its pixels lie on the output grid: same CRS,
    north-up, square pixels a whole multiple ``k`` of the output pixel (10 m
    bands: 1, the 20 m SCL: 2) and an origin on the output pixel grid. With
    ``k > 1`` only nearest resampling is exact (each file pixel repeated ``k × k``).
    ``hdr`` is the asset's :class:`kpgeo.items.AssetHeader`.
    """
    from odc.geo import CRS

    a0, _, c0, _, e0, f0 = tuple(gbox.transform)[:6]
    a, b, c, d, e, f = hdr.transform[:6]
    if b or d or a <= 0 or e >= 0 or hdr.crs_wkt is None or CRS(hdr.crs_wkt) != gbox.crs:
        return None
    k, col, row = a / a0, (c - c0) / a0, (f0 - f) / -e0
    whole = all(abs(v - round(v)) < 1e-6 for v in (k, col, row)) and abs(a + e) < 1e-9 * a
    if not whole or round(k) < 1 or (round(k) > 1 and resampling != "nearest"):
        return None
    return DirectRead(href=href, row=int(round(row)), col=int(round(col)), factor=int(round(k)),
                      shape=tuple(int(n) for n in hdr.shape))


@dataclass(frozen=True)
class BlockSpec:
    """Everything one chunk task needs to read its block (no open datasets: paths only)."""

    clones: tuple[Any, ...]
    feet: tuple[Any, ...]  # item footprints in the target CRS (shapely)
    keys: tuple[Any, ...]  # time-group key per item
    group_keys: tuple[Any, ...]  # sorted unique keys = the time axis
    bands: tuple[str, ...]
    scheme: str | None
    dtypes: dict[str, str]
    nodata: dict[str, float]
    resampling: dict[str, str]
    gbox: Any
    aoi: Any  # shapely AOI in the target CRS, or None
    direct: tuple[dict[str, DirectRead | None], ...] = field(default=())
    """Per item, per band: how to read it directly, or None (odc-stac); empty: odc-stac only."""


def read_block(spec: BlockSpec, t0: int, t1: int, y0: int, y1: int, x0: int, x1: int, *,
               inside: np.ndarray | None = None, direct: bool = True) -> dict:
    """Read one (time, y, x) block; return raw bands (DN) and the clear mask.

    Parameters
    ----------
    spec
        The cube's block spec.
    t0, t1, y0, y1, x0, x1
        Time-step and pixel ranges of the block on the output grid.
    inside
        The AOI mask of the block (``(y1 - y0, x1 - x0)`` bool) when the caller
        has it already (it reads many time chunks of one block); computed otherwise.
    direct
        Read files on the output grid directly (see the module docstring);
        False: odc-stac for everything.

    Returns
    -------
    dict
        ``raw``: band -> DN array ``(time, y, x)`` (nodata where nothing was read,
        undefined where not clear); ``clear``: bool ``(time, y, x)``.
    """
    from kpgeo.cube import region_mask
    from kpgeo.gdal_env import limit_block_cache, rio_env

    limit_block_cache()  # GDAL's default (5 % of RAM) would grow with the files read
    sub = spec.gbox[y0:y1, x0:x1]
    names = [*spec.bands, *([spec.scheme] if spec.scheme else [])]
    shape = (t1 - t0, y1 - y0, x1 - x0)
    raw = {b: np.full(shape, spec.nodata[b], dtype=spec.dtypes[b]) for b in names}
    if inside is None and spec.aoi is not None:
        inside = region_mask(spec.aoi, sub, crs=sub.crs)
    fast, slow = _split_groups(spec, t0, t1, sub, names, direct)
    with rio_env():  # rasterio and odc-stac read with the GDAL settings active here
        if spec.scheme:
            for g, i in fast.items():
                read_direct(spec.direct[i][spec.scheme], raw[spec.scheme][g], y0, x0)
        for g, i in fast.items():
            if spec.scheme and not _any_clear(raw[spec.scheme][g], spec.scheme, inside):
                continue  # nothing clear on this date: the bands need not be decoded
            for b in spec.bands:
                read_direct(spec.direct[i][b], raw[b][g], y0, x0)
        if slow:
            _read_odc(spec, slow, sub, names, raw)
    clear = np.ones(shape, bool)
    for b in spec.bands:
        nd = spec.nodata[b]
        clear &= ~np.isnan(raw[b]) if np.isnan(nd) else raw[b] != nd
    if inside is not None:
        clear &= inside
    if spec.scheme:
        clear &= clear_mask(raw.pop(spec.scheme), spec.scheme)
    return {"raw": raw, "clear": clear}


def _split_groups(spec: BlockSpec, t0: int, t1: int, sub: Any, names: list[str],
                  direct: bool) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Items touching the block per time step: one directly readable item, or odc-stac's."""
    import shapely

    box = shapely.box(*sub.boundingbox[:4])
    position = {k: g - t0 for g, k in enumerate(spec.group_keys[t0:t1], start=t0)}
    members: dict[int, list[int]] = {}
    for i, key in enumerate(spec.keys):
        if key in position and spec.feet[i].intersects(box):
            members.setdefault(position[key], []).append(i)
    fast, slow = {}, {}
    for g, idx in members.items():
        if direct and spec.direct and len(idx) == 1 and all(spec.direct[idx[0]].get(b)
                                                            for b in names):
            fast[g] = idx[0]
        else:
            slow[g] = idx
    return fast, slow


def _any_clear(mask: np.ndarray, scheme: str, inside: np.ndarray | None) -> bool:
    ok = clear_mask(mask, scheme)
    return bool((ok & inside).any() if inside is not None else ok.any())


def _read_odc(spec: BlockSpec, groups: dict[int, list[int]], sub: Any, names: list[str],
              raw: dict[str, np.ndarray]) -> None:
    """Read some time steps of a block with odc.stac.load, into ``raw`` (in place)."""
    import odc.stac

    idx = sorted(i for members in groups.values() for i in members)
    sub_keys = [spec.keys[i] for i in idx]
    ds = odc.stac.load(
        [spec.clones[i] for i in idx],
        bands=names,
        geobox=sub,
        groupby=KeyGroupby(sub_keys),
        resampling=spec.resampling,
        driver=_driver_classes()[1](),
        fail_on_error=True,
    )
    pos = sorted(groups)  # odc-stac sorts the groups by key, as the time axis is
    for b in names:
        raw[b][pos] = ds[b].values


# --------------------------------------------------------------------------- direct reads

#: memory the open datasets of one thread may hold (GDAL keeps the last decoded tile of each
#: open GeoTIFF: 0.5 MB for a 512 px uint16 tile), bytes: the six files a zone run reads of
#: 70 dates (~200 MB) stay open for the whole run (measured: 12 % less read time than 128 MB,
#: which reopened a third of the files for every block; +65 MB per thread)
OPEN_BUDGET = 256 * 2**20
_LOCAL = threading.local()
_ALL_CACHES: list[dict] = []
_CACHES_LOCK = threading.Lock()


@contextlib.contextmanager
def cached_dataset(href: str) -> Iterator[Any]:
    """Yield an open rasterio dataset for ``href``, kept open for the next block while it fits.

    Opening a GeoTIFF costs about 1 ms, as much as decoding a 512 px tile, and
    every block reads every file, so each thread keeps the files it opened first
    open, up to :data:`OPEN_BUDGET` bytes of tile buffers; files beyond that are
    opened and closed per read (no eviction: blocks read the files in the same
    order, so the kept ones are always the ones asked for). A local file is
    keyed by its size, modification time and inode as well, so a file replaced
    between two runs of a long-lived worker is opened again.
    """
    import rasterio

    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {"open": {}, "bytes": 0}
        with _CACHES_LOCK:
            _ALL_CACHES.append(cache)
    key: Any = href
    if "://" not in href and not href.startswith("/vsi"):
        st = os.stat(href)
        key = (href, st.st_size, st.st_mtime_ns, st.st_ino)
    ds = cache["open"].get(key)
    if ds is not None:
        yield ds
        return
    ds = rasterio.open(href)
    cost = int(np.prod(ds.block_shapes[0])) * np.dtype(ds.dtypes[0]).itemsize
    if cache["bytes"] + cost > OPEN_BUDGET:
        with ds:
            yield ds
        return
    cache["open"][key] = ds
    cache["bytes"] += cost
    yield ds


def close_cached_datasets() -> None:
    """Close every dataset :func:`cached_dataset` holds, in all threads of this process."""
    with _CACHES_LOCK:
        for cache in _ALL_CACHES:
            while cache["open"]:
                cache["open"].popitem()[1].close()
            cache["bytes"] = 0


def read_direct(src: DirectRead, out: np.ndarray, y0: int, x0: int) -> None:
    """Read the part of a file on the output grid that falls in a block, into ``out``.

    ``out`` is the ``(h, w)`` block whose top-left output pixel is ``(y0, x0)``;
    pixels the file does not cover are left as they are (nodata).
    """
    from rasterio.windows import Window

    k = src.factor
    h, w = out.shape
    rows = _source_span(y0 - src.row, h, k, src.shape[0])
    cols = _source_span(x0 - src.col, w, k, src.shape[1])
    if rows is None or cols is None:
        return
    (r0, r1), (c0, c1) = rows, cols
    try:
        with cached_dataset(src.href) as ds:
            data = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
    except Exception as exc:
        from kpgeo.gdal_env import read_error_message

        raise AssetReadError(read_error_message(src.href, exc)) from exc
    if k > 1:
        data = data.repeat(k, axis=0).repeat(k, axis=1)
    # output pixels covered: source [r0, r1) -> output rows src.row + [r0*k, r1*k)
    ty0, tx0 = src.row + r0 * k - y0, src.col + c0 * k - x0
    sy, sx = max(0, -ty0), max(0, -tx0)
    ty0, tx0 = max(ty0, 0), max(tx0, 0)
    ny, nx = min(h - ty0, data.shape[0] - sy), min(w - tx0, data.shape[1] - sx)
    out[ty0:ty0 + ny, tx0:tx0 + nx] = data[sy:sy + ny, sx:sx + nx]


def _source_span(start: int, n: int, k: int, size: int) -> tuple[int, int] | None:
    """Source pixels ``[a, b)`` (of ``size``) under output pixels ``start .. start + n``."""
    a, b = max(start // k, 0), min((start + n - 1) // k + 1, size)
    return (a, b) if a < b else None


def _finish_band(block: dict, band: str, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """DN → float32 reflectance (per-date scale/offset), NaN where not clear."""
    out = block["raw"][band].astype(np.float32)
    out *= scale[:, None, None]
    out += offset[:, None, None]
    out[~block["clear"]] = np.nan
    return out


def _get_clear(block: dict) -> np.ndarray:
    return block["clear"]


def dask_arrays(
    spec: BlockSpec, chunks: dict[str, int], scale: np.ndarray, offset: np.ndarray
) -> dict[str, Any]:
    """Build one read task per (time, y, x) block and per-variable tasks on its result.

    Each read task depends only on the single spec key, so the scheduler
    finishes a block before starting many others: memory follows the chunk
    size, not the cube size. (odc-stac's own dask graph shares one "open" task
    per asset among all spatial chunks, and the threaded scheduler then reads
    the whole cube before reducing any chunk.)

    Returns
    -------
    dict
        Band name (and ``"clear"``) → lazy ``(time, y, x)`` dask array.
    """
    import uuid

    import dask.array as da
    from dask.array.core import normalize_chunks
    from dask.highlevelgraph import HighLevelGraph

    shape = (len(spec.group_keys), *tuple(spec.gbox.shape))
    dchunks = normalize_chunks(
        (chunks["time"], chunks["y"], chunks["x"]), shape=shape, dtype=np.float32
    )
    tb, yb, xb = (_edges(c) for c in dchunks)
    token = uuid.uuid4().hex
    spec_key = f"kpgeo-spec-{token}"
    read_name = f"kpgeo-read-{token}"
    layers: dict[str, dict] = {spec_key: {spec_key: spec}, read_name: {}}
    deps: dict[str, set] = {spec_key: set(), read_name: {spec_key}}
    var_names = {b: f"kpgeo-{b}-{token}" for b in [*spec.bands, "clear"]}
    for name in var_names.values():
        layers[name] = {}
        deps[name] = {read_name}
    for it, (t0, t1) in enumerate(tb):
        for iy, (y0, y1) in enumerate(yb):
            for ix, (x0, x1) in enumerate(xb):
                rkey = (read_name, it, iy, ix)
                layers[read_name][rkey] = (read_block, spec_key, t0, t1, y0, y1, x0, x1)
                for i, b in enumerate(spec.bands):
                    task = (_finish_band, rkey, b, scale[t0:t1, i], offset[t0:t1, i])
                    layers[var_names[b]][(var_names[b], it, iy, ix)] = task
                layers[var_names["clear"]][(var_names["clear"], it, iy, ix)] = (_get_clear, rkey)
    hlg = HighLevelGraph(layers, deps)
    out = {}
    for b, name in var_names.items():
        dtype = bool if b == "clear" else np.float32
        out[b] = da.Array(hlg, name, dchunks, dtype=dtype, meta=np.empty((0, 0, 0), dtype))
    return out


def _edges(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Chunk sizes → ``(start, stop)`` index pairs."""
    stops = np.cumsum(sizes).tolist()
    return list(zip([0, *stops[:-1]], stops, strict=True))
