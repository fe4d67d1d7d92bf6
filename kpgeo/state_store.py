"""The per-pixel detector state of a zone, kept between runs in a chunked Zarr store.

The decision (:mod:`kpgeo.change`) reads each clear observation once and keeps
everything it remembers in a small per-pixel state
(:class:`kpgeo.change.DetectorState`). A zone run ends by writing that state
next to its outputs, ``OUT/zones/<zone>/state.zarr``; a later run with new
dates reads it and feeds only the new dates, which gives exactly the result of
a run over all dates (the decision is sequential in time).

Layout (readable with ``xarray.open_zarr(path, consolidated=False)``):

- ``fstate`` ``(f_field, y, x)`` float32 and ``mstate`` ``(m_field, y, x)`` int32,
  one chunk per processing block, field-major (each field a contiguous plane
  compresses ~6× with Blosc-LZ4 + shuffle; pixel-major only ~3×), on the
  *store grid*: the cube grid padded at the top and left so that block edges
  fall on chunk edges (so every chunk is written by exactly one task);
- attributes (:class:`StateMeta`): kpgeo version, a digest of the decision's
  source code, a digest of the settings the state depends on (change
  parameters, bands, mask scheme, watched area), the cube grid, the block
  size, the processed acquisitions in order (time, solar-day key, item ids and
  a digest of their metadata and file contents), the clear-pixel counts per
  acquisition and region (so the coverage table of old dates needs no re-read),
  and the day of the last date fed.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

from kpgeo._version import __version__
from kpgeo.errors import OutputWriteError

__all__ = [
    "STORE_NAME",
    "StateMeta",
    "decision_digest",
    "settings_digest",
    "store_grid",
    "reuse",
    "read_meta",
    "create_store",
    "write_state",
    "read_state",
    "finish_store",
    "commit",
]

log = logging.getLogger(__name__)

#: name of the store in a zone's output folder
STORE_NAME = "state.zarr"
#: version of the layout below
STORE_FORMAT = 1


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


def decision_digest() -> str:
    """SHA-256 of the decision's source code (``kpgeo/change/*.py``).

    A state written by other code is never continued, even at the same version
    number (a development checkout, a patched install).
    """
    import kpgeo.change

    digest = hashlib.sha256()
    for src in sorted(Path(kpgeo.change.__file__).resolve().parent.glob("*.py")):
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


def _codec() -> Any:
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=4)


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
    from odc.geo.xr import xr_coords

    from kpgeo import io
    from kpgeo.change._state import F_FIELDS, M_FIELDS

    out_dir = io.make_dir(out_dir)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{STORE_NAME}.", suffix=io.TEMP_MARK, dir=out_dir))
        sgrid = store_grid(gbox, meta.block, meta.pad)
        shape = tuple(int(n) for n in sgrid.shape)
        b = meta.block
        ds = xr.Dataset(
            {
                "fstate": (("f_field", "y", "x"),
                           da.zeros((len(F_FIELDS), *shape), chunks=(-1, b, b), dtype="float32")),
                "mstate": (("m_field", "y", "x"),
                           da.zeros((len(M_FIELDS), *shape), chunks=(-1, b, b), dtype="int32")),
            },
            coords=xr_coords(sgrid, crs_coord_name="spatial_ref"),
        )
        ds.attrs = {"kpgeo_state": meta.to_attrs(), "f_fields": list(F_FIELDS),
                    "m_fields": list(M_FIELDS)}
        encoding = {v: {"compressors": [_codec()], "chunks": (ds[v].shape[0], b, b)}
                    for v in ("fstate", "mstate")}
        ds.to_zarr(str(tmp), mode="w", compute=False, encoding=encoding, zarr_format=3,
                   consolidated=False)
    except OSError as exc:
        raise io.output_error(out_dir / STORE_NAME, exc) from exc
    return tmp


def _window(meta: StateMeta, window: tuple[int, int, int, int]) -> tuple[slice, slice, slice]:
    y0, y1, x0, x1 = window
    py, px = meta.pad
    return slice(None), slice(y0 + py, y1 + py), slice(x0 + px, x1 + px)


def write_state(path: str | os.PathLike, meta: StateMeta, window: tuple[int, int, int, int],
                state: Any) -> None:
    """Write one block's :class:`~kpgeo.change.DetectorState` into a store (its own chunk)."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    sel = _window(meta, window)
    for name, values in (("fstate", state.fstate), ("mstate", state.mstate)):
        # a state chunk is never all fill value: skip zarr's check for empty chunks
        array = group[name].with_config({"write_empty_chunks": True})
        array[sel] = _to_planes(values)
    _fsync_chunks(Path(path), meta, window)


def read_state(path: str | os.PathLike, meta: StateMeta,
               window: tuple[int, int, int, int]) -> Any:
    """Read one block's :class:`~kpgeo.change.DetectorState` from a store."""
    import zarr

    from kpgeo.change import DetectorState

    group = zarr.open_group(str(path), mode="r")
    sel = _window(meta, window)
    fstate = _to_pixels(group["fstate"][sel])
    mstate = _to_pixels(group["mstate"][sel])
    t_last = float("nan") if meta.t_last is None else float(meta.t_last)
    return DetectorState(fstate, mstate, t_last)


def _to_planes(values: np.ndarray) -> np.ndarray:
    """``(y, x, field)`` -> contiguous ``(field, y, x)``, bit for bit (10× numpy's transpose)."""
    out = np.empty((values.shape[2], *values.shape[:2]), values.dtype)
    _copy_to_planes(values.view(np.uint32), out.view(np.uint32))
    return out


def _to_pixels(planes: np.ndarray) -> np.ndarray:
    """``(field, y, x)`` -> contiguous ``(y, x, field)``, bit for bit."""
    out = np.empty((*planes.shape[1:], planes.shape[0]), planes.dtype)
    _copy_to_pixels(np.ascontiguousarray(planes).view(np.uint32), out.view(np.uint32))
    return out


@numba.njit(cache=True, nogil=True)
def _copy_to_planes(src, out):  # pragma: no cover - compiled
    h, w, nf = src.shape
    for y in range(h):  # one pixel row (w × nf values) stays in cache
        for f in range(nf):
            for x in range(w):
                out[f, y, x] = src[y, x, f]


@numba.njit(cache=True, nogil=True)
def _copy_to_pixels(src, out):  # pragma: no cover - compiled
    nf, h, w = src.shape
    for y in range(h):
        for f in range(nf):
            for x in range(w):
                out[y, x, f] = src[f, y, x]


def _fsync_chunks(root: Path, meta: StateMeta, window: tuple[int, int, int, int]) -> None:
    """Flush one block's chunk files to disk (in its task, so the flushes run in parallel)."""
    y0, _, x0, _ = window
    cy, cx = (y0 + meta.pad[0]) // meta.block, (x0 + meta.pad[1]) // meta.block
    for name in ("fstate", "mstate"):
        chunk = root / name / "c" / "0" / str(cy) / str(cx)
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(chunk, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


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
