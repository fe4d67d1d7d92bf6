"""The per-pixel detector state of a zone, kept between runs in a chunked Zarr store.

The decision (:mod:`kpgeo.change`) reads each clear observation once and keeps
everything it remembers in a small per-pixel state
(:class:`kpgeo.change.DetectorState`). A zone run ends by writing that state
next to its outputs, ``OUT/zones/<zone>/state.zarr``; a later run with new
dates reads it and feeds only the new dates, which gives exactly the result of
a run over all dates (the decision is sequential in time).

Layout (readable with ``xarray.open_zarr(path, consolidated=False)``):

- ``fstate`` ``(y, x, f_field)`` float32 and ``mstate`` ``(y, x, m_field)`` int32,
  pixel-major as the decision holds them (no transposes), only the fields the
  run's parameters can use (:func:`kpgeo.change._state.persisted_fields`; the
  others are restored to their initial value on read), one chunk per
  processing block and group of at most :data:`MAX_CHUNK_FIELDS` fields, on
  the *store grid*: the cube grid padded at the top and left so that block
  edges fall on chunk edges (so every chunk is written by exactly one task).
  Blosc-LZ4 with a byte shuffle over a pixel's fields (``typesize`` = the
  bytes of a pixel's fields in the chunk) compresses as well as field-major
  planes would (~4.5×);
- attributes (:class:`StateMeta`): kpgeo version, a digest of the decision's
  source code, a digest of the settings the state depends on (change
  parameters, bands, mask scheme, watched area), the stored fields, the cube
  grid, the block size, the processed acquisitions in order (time, solar-day
  key, item ids and a digest of their metadata and file contents), the
  clear-pixel counts per acquisition and region (so the coverage table of old
  dates needs no re-read), and the day of the last date fed.

Block tasks read and write their chunk files themselves (the array metadata
is zarr's, the chunk bytes are the Zarr v3 chunks of that metadata: C-order
little-endian, Blosc): zarr's own chunk path costs two extra copies of the
whole state and its buffers, as much as the codec itself.

:func:`reuse` decides whether a stored state can be continued: same version,
decision, settings and grid, and the stored acquisitions the first ones of
the current, unchanged; otherwise it says why the zone is redone. Footprint
options (minimum mapping unit, closing, clearings) do not enter: footprints are
recomputed from the state's outputs on every run.

A new store is written under a temporary name (removed by the next run if this
one is killed, :func:`kpgeo.io.remove_temp_files`), its files flushed to disk,
and then swapped in (:func:`commit`): ``state.zarr`` is always a complete store
or absent (a run that finds none redoes the zone).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

from kpgeo._version import __version__
from kpgeo.errors import KpgeoError, OutputWriteError

__all__ = [
    "STORE_NAME",
    "StateMeta",
    "decision_digest",
    "source_digest",
    "settings_digest",
    "store_grid",
    "reuse",
    "read_meta",
    "create_store",
    "write_state",
    "read_state",
    "stored_fields",
    "DamagedStateError",
    "finish_store",
    "commit",
]

log = logging.getLogger(__name__)

#: name of the store in a zone's output folder
STORE_NAME = "state.zarr"
#: version of the layout below (1: field-major, every field)
STORE_FORMAT = 2
#: most fields in one chunk: blosc shuffles a pixel's fields of a chunk as one item (≤ 255 bytes)
MAX_CHUNK_FIELDS = 63
#: chunk codec (measured on a 1,000 km² state: LZ4 level 5 decodes ~4 GB/s a core; zstd level 1
#: compresses 10 % smaller but is ~2.4× slower each way, LZ4 level 1 neither smaller nor faster)
CNAME, CLEVEL = "lz4", 5


@dataclass
class StateMeta:
    """What a state store holds, and what it was made from (its Zarr attributes)."""

    grid: dict[str, Any]
    """``crs`` (WKT), ``transform`` (6 coefficients) and ``shape`` of the cube grid."""
    block: int
    """Block (and chunk) side in pixels."""
    pad: tuple[int, int]
    """Rows and columns of padding above and left of the cube grid on the store grid."""
    settings: str
    """:func:`settings_digest` of the run."""
    acquisitions: list[dict[str, Any]] = field(default_factory=list)
    """Per processed time step, in order: ``time``, ``key``, ``items``, ``digest``."""
    regions: list[str] = field(default_factory=list)
    region_pixels: list[int] = field(default_factory=list)
    clear_counts: list[list[int]] = field(default_factory=list)
    """Per acquisition, per region: clear pixels."""
    t_last: float | None = None
    """Day (since 1970-01-01) of the last date fed; None before any."""
    fields: dict[str, list[str]] = field(default_factory=lambda: stored_fields(None))
    """Names of the stored ``fstate`` and ``mstate`` fields (:func:`stored_fields`)."""
    kpgeo: str = __version__
    decision: str = ""
    format: int = STORE_FORMAT

    def to_attrs(self) -> dict[str, Any]:
        """JSON-ready attributes."""
        out = asdict(self)
        out["pad"] = list(self.pad)
        return out

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> StateMeta:
        """Rebuild from :meth:`to_attrs` output."""
        kw = {k: attrs[k] for k in cls.__dataclass_fields__ if k in attrs}
        kw["pad"] = tuple(int(v) for v in kw.get("pad", (0, 0)))
        return cls(**kw)


def stored_fields(params: Any) -> dict[str, list[str]]:
    """Names of the state fields a store keeps for ``params`` (None: every field)."""
    from kpgeo.change._state import F_FIELDS, M_FIELDS, persisted_fields

    if params is None:
        return {"fstate": list(F_FIELDS), "mstate": list(M_FIELDS)}
    f_idx, m_idx = persisted_fields(params)
    return {"fstate": [F_FIELDS[i] for i in f_idx], "mstate": [M_FIELDS[i] for i in m_idx]}


def decision_digest() -> str:
    """SHA-256 of the decision's source code (``kpgeo/change/*.py``).

    A state written by other code is never continued, even at the same version
    number (a development checkout, a patched install).
    """
    import kpgeo.change

    return source_digest(sorted(Path(kpgeo.change.__file__).resolve().parent.glob("*.py")))


def source_digest(files: Iterable[str | os.PathLike]) -> str:
    """SHA-256 of source files (each file's name, then its bytes), in the order given."""
    digest = hashlib.sha256()
    for src in map(Path, files):
        digest.update(src.name.encode() + src.read_bytes())
    return digest.hexdigest()


def settings_digest(*, params: Any, bands: tuple[str, ...], scheme: str | None,
                    watched_wkb: bytes) -> str:
    """Digest of what the state depends on besides the imagery and the grid.

    Parameters
    ----------
    params
        :class:`kpgeo.change.ChangeParams`.
    bands
        Reflectance bands fed to the decision (green and blue are optional inputs).
    scheme
        Mask scheme (``scl``, ``fmask``, ``qa_pixel``) or None.
    watched_wkb
        WKB of the watched area (zone ∪ ring, EPSG:4326): the AOI mask of every pixel.
    """
    record = {
        "params": asdict(params),
        "bands": list(bands),
        "scheme": scheme,
        "watched": hashlib.sha256(watched_wkb).hexdigest(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def grid_record(gbox: Any) -> dict[str, Any]:
    """JSON-ready description of a GeoBox (CRS WKT, transform, shape)."""
    return {"crs": gbox.crs.to_wkt(), "transform": [float(v) for v in tuple(gbox.transform)[:6]],
            "shape": [int(n) for n in gbox.shape]}


def store_grid(gbox: Any, block: int, pad: tuple[int, int]) -> Any:
    """Return the store grid: ``gbox`` padded by ``pad`` px at the top and left, whole blocks."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    h, w = (int(n) for n in gbox.shape)
    shape = (-(-(h + pad[0]) // block) * block, -(-(w + pad[1]) // block) * block)
    return GeoBox(shape, gbox.transform * Affine.translation(-pad[1], -pad[0]), gbox.crs)


def reuse(stored: StateMeta | None, current: StateMeta) -> tuple[int, str | None]:
    """How much of a stored state a run can keep.

    Parameters
    ----------
    stored
        Meta of the store found (None: no usable store).
    current
        Meta the run would write for all its acquisitions (``acquisitions`` set).

    Returns
    -------
    (int, str or None)
        Number of leading acquisitions of ``current`` already in the state (0:
        start from scratch), and why the state cannot be used (None when it can,
        or when there is none).
    """
    if stored is None:
        return 0, None
    checks = (
        (stored.format == current.format, f"store format {stored.format} != {current.format}"),
        (stored.kpgeo == current.kpgeo,
         f"written by kpgeo {stored.kpgeo}, this is {current.kpgeo}"),
        (stored.decision == current.decision, "the detection code changed"),
        (stored.settings == current.settings,
         "the change parameters, bands, mask or watched area changed"),
        (stored.fields == current.fields, "the stored state fields changed"),
        (stored.grid == current.grid, "the pixel grid changed (imagery footprint, CRS or AOI)"),
        (stored.regions == current.regions, "the coverage regions changed"),
    )
    for ok, why in checks:
        if not ok:
            return 0, why
    old, new = stored.acquisitions, current.acquisitions
    if len(old) > len(new):
        return 0, f"{len(old) - len(new)} processed date(s) are no longer in the items"
    for a, b in zip(old, new, strict=False):
        if a["time"] != b["time"] or a["key"] != b["key"]:
            return 0, (f"the dates changed: {a['time'][:10]} was processed, the items now have "
                       f"{b['time'][:10]} in its place (a date removed, or one added before "
                       f"{old[-1]['time'][:10]})")
        if a["digest"] != b["digest"]:
            return 0, f"the imagery of {a['time'][:10]} was replaced (items {b['items']})"
    return len(old), None


def read_meta(path: str | os.PathLike) -> tuple[StateMeta | None, str | None]:
    """Read a store's meta; ``(None, reason)`` when there is no readable store."""
    import zarr

    path = Path(path)
    if not path.exists():
        return None, None
    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
        meta = StateMeta.from_attrs(attrs["kpgeo_state"])
        meta.region_pixels = [int(v) for v in meta.region_pixels]
        return meta, None
    except Exception as exc:  # noqa: BLE001 - any damage means: redo the zone
        return None, f"the state store {path} is unreadable ({type(exc).__name__}: {exc})"


class DamagedStateError(KpgeoError, OSError):
    """A chunk of a stored detector state is missing or unreadable (the zone is redone)."""

    def __str__(self) -> str:  # OSError would format errno/filename instead of the message
        return str(self.args[0]) if self.args else ""


def _field_chunk(n: int) -> int:
    """Fields per chunk for ``n`` stored fields: equal groups of at most MAX_CHUNK_FIELDS."""
    return -(-n // -(-n // MAX_CHUNK_FIELDS))


def _layout(meta: StateMeta) -> list[tuple[str, str, np.ndarray, int]]:
    """Per array: name, dtype, indices of its stored fields in the state, fields per chunk."""
    from kpgeo.change._state import F_FIELDS, M_FIELDS

    out = []
    for name, dtype, names in (("fstate", "float32", F_FIELDS), ("mstate", "int32", M_FIELDS)):
        pos = {n: i for i, n in enumerate(names)}
        idx = np.array([pos[n] for n in meta.fields[name]], dtype="int64")
        out.append((name, dtype, idx, _field_chunk(len(idx))))
    return out


def _codec(chunk_fields: int) -> Any:
    from zarr.codecs import BloscCodec

    return BloscCodec(cname=CNAME, clevel=CLEVEL, shuffle="shuffle", typesize=4 * chunk_fields)


def create_store(out_dir: str | os.PathLike, meta: StateMeta, gbox: Any) -> Path:
    """Create an empty store (arrays and grid, no state yet) under a temporary name.

    Returns
    -------
    pathlib.Path
        The temporary store, to fill with :func:`write_state` and publish with
        :func:`commit`.
    """
    import dask.array as da
    import xarray as xr
    import zarr
    from odc.geo.xr import xr_coords

    from kpgeo import io

    out_dir = io.make_dir(out_dir)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{STORE_NAME}.", suffix=io.TEMP_MARK, dir=out_dir))
        shape = tuple(int(n) for n in store_grid(gbox, meta.block, meta.pad).shape)
        b = meta.block
        layout = _layout(meta)
        ds = xr.Dataset(
            {name: (("y", "x", name[0] + "_field"),
                    da.zeros((*shape, len(idx)), chunks=(b, b, cf), dtype=dtype))
             for name, dtype, idx, cf in layout},
            coords=xr_coords(store_grid(gbox, b, meta.pad), crs_coord_name="spatial_ref"),
        )
        ds.attrs = {"kpgeo_state": meta.to_attrs(), "f_fields": meta.fields["fstate"],
                    "m_fields": meta.fields["mstate"]}
        encoding = {name: {"compressors": [_codec(cf)], "chunks": (b, b, cf)}
                    for name, _, _, cf in layout}
        ds.to_zarr(str(tmp), mode="w", compute=False, encoding=encoding, zarr_format=3,
                   consolidated=False)
        group = zarr.open_group(str(tmp), mode="r")
        for name, *_ in layout:  # the chunk files block tasks write (see _chunk_path)
            if group[name].metadata.encode_chunk_key((1, 2, 3)) != "c/1/2/3":
                raise RuntimeError(f"unexpected zarr chunk key encoding of {tmp / name}")
    except OSError as exc:
        raise io.output_error(out_dir / STORE_NAME, exc) from exc
    return tmp


_THREAD = threading.local()


def _scratch(shape: tuple[int, int, int]) -> np.ndarray:
    """Return this thread's uint32 chunk buffer of ``shape``, reused from block to block.

    A fresh 50 MB array costs ~15 ms of page faults each time (glibc maps and
    unmaps arrays this large), about as much as decoding it.
    """
    buffers = getattr(_THREAD, "buffers", None)
    if buffers is None:
        buffers = _THREAD.buffers = {}
    if shape not in buffers:
        buffers[shape] = np.empty(shape, np.uint32)
    return buffers[shape]


def _chunk_path(root: Path, name: str, cy: int, cx: int, k: int) -> Path:
    return root / name / "c" / str(cy) / str(cx) / str(k)


def write_state(path: str | os.PathLike, meta: StateMeta, window: tuple[int, int, int, int],
                state: Any, params: Any = None) -> None:
    """Write one block's :class:`~kpgeo.change.DetectorState` into its own chunks of a store.

    ``window`` is a block of :func:`kpgeo.stream.plan_windows` (within one chunk);
    the chunk files are flushed to disk here, in the block's task, so that the
    flushes run in parallel. With ``params``, the baseline buffer of pixels whose
    baseline is formed is stored as its initial value
    (:func:`~kpgeo.change._state.spent_buffer_fields`): the same state for the
    decision, half the bytes.
    """
    from numcodecs import Blosc

    from kpgeo import io
    from kpgeo.change._state import N_BASE, new_state, spent_buffer_fields

    spent = spent_buffer_fields(params) if params is not None else np.zeros(0, "int64")
    formed = state.fstate[..., N_BASE] >= (params.baseline_obs if params is not None else np.inf)
    y0, y1, x0, x1 = window
    b = meta.block
    (cy, oy), (cx, ox) = divmod(y0 + meta.pad[0], b), divmod(x0 + meta.pad[1], b)
    if oy + y1 - y0 > b or ox + x1 - x0 > b:
        raise ValueError(f"window {window} is not within one chunk of the store")
    root = Path(path)
    for (name, _, idx, cf), values, init in zip(_layout(meta), (state.fstate, state.mstate),
                                                new_state(1), strict=True):
        src = np.ascontiguousarray(values).view(np.uint32)
        initial = init[0].view(np.uint32)
        codec = Blosc(cname=CNAME, clevel=CLEVEL, shuffle=Blosc.SHUFFLE, typesize=4 * cf)
        for k in range(-(-len(idx) // cf)):
            fields = idx[k * cf:(k + 1) * cf]
            chunk = _scratch((b, b, cf))
            if fields.size < cf or (y1 - y0, x1 - x0) != (b, b):
                chunk.fill(0)  # padding and unused fields: the fill value
            clear = np.isin(fields, spent) if name == "fstate" else np.zeros(fields.size, bool)
            _gather(src, fields, clear, initial[fields], formed, chunk, oy, ox)
            target = _chunk_path(root, name, cy, cx, k)
            try:
                _write_file(target, codec.encode(chunk))
            except OSError as exc:
                raise io.output_error(root.parent / STORE_NAME, exc) from exc


def _write_file(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_state(path: str | os.PathLike, meta: StateMeta,
               window: tuple[int, int, int, int]) -> Any:
    """Read a window's :class:`~kpgeo.change.DetectorState` from a store (any window).

    Fields the store does not keep get their :func:`~kpgeo.change._state.new_state` value.

    Raises
    ------
    DamagedStateError
        A chunk file is missing or unreadable.
    """
    from kpgeo.change import DetectorState
    from kpgeo.change._state import new_state

    y0, y1, x0, x1 = window
    root = Path(path)
    arrays = []
    for (name, _, idx, cf), init in zip(_layout(meta), new_state(1), strict=True):
        out = np.empty((y1 - y0, x1 - x0, init.shape[1]), init.dtype)
        view = out.view(np.uint32)
        missing = np.setdiff1d(np.arange(init.shape[1]), idx)
        _fill(view, missing, init[0].view(np.uint32)[missing])
        for cy, cx, (sy, sx), (ty, tx), (h, w) in _chunks_of(meta, window):
            for k in range(-(-len(idx) // cf)):
                fields = idx[k * cf:(k + 1) * cf]
                whole = (h, w) == out.shape[:2] == (meta.block,) * 2 and cf == out.shape[2] \
                    and np.array_equal(fields, np.arange(cf))
                chunk = view if whole else _scratch((meta.block, meta.block, cf))
                _read_chunk(_chunk_path(root, name, cy, cx, k), chunk)
                if not whole:
                    _scatter(chunk, sy, sx, fields, view, ty, tx, h, w)
        arrays.append(out)
    t_last = float("nan") if meta.t_last is None else float(meta.t_last)
    return DetectorState(arrays[0], arrays[1], t_last)


def _chunks_of(meta: StateMeta, window: tuple[int, int, int, int]) -> Iterator[tuple]:
    """Chunks under a window: ``cy, cx``, offset in the chunk, offset in the window, size."""
    y0, y1, x0, x1 = window
    b, (py, px) = meta.block, meta.pad
    for cy in range((y0 + py) // b, (y1 - 1 + py) // b + 1):
        gy0, gy1 = max(y0, cy * b - py), min(y1, (cy + 1) * b - py)
        for cx in range((x0 + px) // b, (x1 - 1 + px) // b + 1):
            gx0, gx1 = max(x0, cx * b - px), min(x1, (cx + 1) * b - px)
            yield (cy, cx, (gy0 + py - cy * b, gx0 + px - cx * b), (gy0 - y0, gx0 - x0),
                   (gy1 - gy0, gx1 - gx0))


def _read_chunk(source: Path, dest: np.ndarray) -> None:
    """Decode one chunk file into ``dest`` (its exact size)."""
    from numcodecs import blosc

    try:
        data = source.read_bytes()
        # Blosc header: 4 bytes of versions, flags and typesize; uncompressed, block and
        # compressed sizes (uint32 little-endian)
        nbytes, _, cbytes = np.frombuffer(data[:16], "<u4", 3, 4) if len(data) >= 16 else (0,) * 3
        if nbytes != dest.nbytes or cbytes != len(data):
            raise ValueError(f"{len(data)} bytes for {nbytes} ({cbytes} compressed), expected "
                             f"{dest.nbytes} bytes")
        blosc.decompress(data, dest)
    except (OSError, ValueError, RuntimeError) as exc:
        raise DamagedStateError(f"the detector state store is damaged: {source} cannot be read "
                                f"({type(exc).__name__}: {exc})") from exc


@numba.njit(cache=True, nogil=True)
def _gather(src, fields, clear, fill, where, out, oy, ox):  # pragma: no cover - compiled
    """``out[oy + y, ox + x, j] = src[y, x, fields[j]]``; ``fill[j]`` where ``clear[j] & where``."""
    h, w, _ = src.shape
    for y in range(h):
        for x in range(w):
            for j in range(fields.size):
                out[oy + y, ox + x, j] = fill[j] if clear[j] and where[y, x] else \
                    src[y, x, fields[j]]


@numba.njit(cache=True, nogil=True)
def _scatter(chunk, sy, sx, fields, out, ty, tx, h, w):  # pragma: no cover - compiled
    for y in range(h):
        for x in range(w):
            for j in range(fields.size):
                out[ty + y, tx + x, fields[j]] = chunk[sy + y, sx + x, j]


@numba.njit(cache=True, nogil=True)
def _fill(out, fields, values):  # pragma: no cover - compiled
    h, w, _ = out.shape
    for y in range(h):
        for x in range(w):
            for j in range(fields.size):
                out[y, x, fields[j]] = values[j]


def finish_store(path: str | os.PathLike, meta: StateMeta) -> None:
    """Write the final meta into a temporary store and flush every file to disk."""
    import zarr

    from kpgeo import io

    try:
        group = zarr.open_group(str(path), mode="r+")
        group.attrs["kpgeo_state"] = meta.to_attrs()
        _fsync_tree(Path(path))
    except OSError as exc:
        raise io.output_error(Path(path).parent / STORE_NAME, exc) from exc


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder of a store to disk (before it is published)."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse to sync a folder
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def commit(tmp: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Publish a finished temporary store as ``out_dir/state.zarr``, replacing the old one.

    The old store is first moved aside under a temporary name, so ``state.zarr``
    is at every moment either a complete store or absent.
    """
    from kpgeo import io

    final = Path(out_dir) / STORE_NAME
    old = None
    try:
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{STORE_NAME}.old.", suffix=io.TEMP_MARK,
                                        dir=out_dir))
            os.replace(final, old / STORE_NAME)
        os.replace(tmp, final)
        _fsync_dir(Path(out_dir))
    except OSError as exc:
        raise io.output_error(final, exc) from exc
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return final


def discard(tmp: str | os.PathLike | None) -> None:
    """Remove a temporary store (a failed run)."""
    if tmp is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp, ignore_errors=True)


def remove(out_dir: str | os.PathLike) -> None:
    """Remove a zone's state store (e.g. before a forced full run)."""
    final = Path(out_dir) / STORE_NAME
    if final.exists():
        try:
            shutil.rmtree(final)
        except OSError as exc:
            raise OutputWriteError(f"cannot remove {final}: {exc}") from exc
