"""Writing kpgeo outputs safely: atomic files, one run per folder, COGs, vectors, tables.

Every writer goes through :func:`atomic_path`: data are written to a hidden,
recognisable temporary sibling (``.<name>.<random>.kpgeo.tmp<ext>``), flushed
to disk and moved into place with :func:`os.replace` only when the write
succeeded, so an interrupted run never leaves a half-written output that a
later run would mistake for a finished one. A run that was killed outright
(``kill -9``, power loss) can leave such temporary files behind;
:func:`output_dir` removes them when the next run starts.

:func:`output_dir` is how a command takes an output folder: it creates it,
takes the folder's run lock (:func:`run_lock`, a ``.kpgeo.lock`` file) so two
runs never write the same outputs at once, and cleans up leftovers.
:func:`staging_dir` writes a set of outputs under temporary names and moves
them into place together. File-system faults (read-only file system, disk
full, no permission, a file where a folder should be) become
:class:`~kpgeo.errors.OutputWriteError` naming the path and the cause.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import logging
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kpgeo.errors import (
    ConfigError,
    KpgeoError,
    OutputExistsError,
    OutputWriteError,
    RunLockedError,
)

__all__ = [
    "atomic_path",
    "ensure_out_dir",
    "refuse_existing",
    "make_dir",
    "output_dir",
    "run_lock",
    "remove_temp_files",
    "staging_dir",
    "output_error",
    "is_temp_name",
    "TEMP_MARK",
    "LOCK_NAME",
    "write_cog",
    "write_vector",
    "write_json",
    "write_table",
    "to_iso_date",
    "to_utc_naive",
]

log = logging.getLogger(__name__)

#: Part of every temporary name kpgeo writes (files and staging folders).
TEMP_MARK = ".kpgeo.tmp"
#: Run lock file inside an output folder.
LOCK_NAME = ".kpgeo.lock"

#: errno values that mean "this output cannot be written here", with the advice given.
_FS_ERRORS = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device; free some space and run again",
    errno.EDQUOT: "disk quota exceeded; free some space and run again",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file is in the way where a folder is needed",
    errno.EEXIST: "a file is in the way where a folder is needed",
    errno.EISDIR: "a folder is in the way where a file is needed",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error on the device",
}


def output_error(path: str | os.PathLike, exc: OSError) -> OutputWriteError:
    """Turn a file-system :class:`OSError` into an :class:`OutputWriteError` naming ``path``."""
    path = Path(path)
    cause = _FS_ERRORS.get(exc.errno) or exc.strerror or str(exc)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in (path, *path.parents) if p.is_file()), None)
        if blocker is not None:
            cause = f"{blocker} is a file, not a folder"
    err = OutputWriteError(f"cannot write {path}: {cause}")
    err.errno, err.strerror, err.filename = exc.errno, exc.strerror, str(path)
    return err


def _is_fs_error(exc: BaseException) -> bool:
    return (
        isinstance(exc, OSError) and not isinstance(exc, KpgeoError) and exc.errno in _FS_ERRORS
    )


def _disk_full(folder: Path) -> bool:
    """Tell whether the file system holding ``folder`` has no free block left."""
    try:
        return shutil.disk_usage(folder).free == 0
    except OSError:
        return False


def is_temp_name(name: str) -> bool:
    """Tell whether ``name`` is a kpgeo temporary file or staging folder (any kpgeo version)."""
    return name.startswith(".") and (TEMP_MARK in name or _LEGACY_TEMP.match(name) is not None)


#: temporary names of kpgeo before TEMP_MARK: ".<name>.<8 random chars>.tmp<ext>" (mkstemp)
_LEGACY_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]*)?$")


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk; a no-op where the OS refuses."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if not directory or exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _commit(tmp: Path, final: Path) -> None:
    """Flush ``tmp`` to disk, give it the usual umask-based mode and move it onto ``final``."""
    if tmp.is_file():
        _fsync_path(tmp)
        umask = os.umask(0)  # mkstemp makes 0600 files
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
    os.replace(tmp, final)
    _fsync_path(final.parent, directory=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The temporary name is ``.<name>.<random>.kpgeo.tmp<ext>`` (same extension, so
    writers pick the right format); it is flushed to disk before the rename.

    Parameters
    ----------
    path
        Final destination.
    overwrite
        When False and ``path`` exists, raise :class:`OutputExistsError`.

    Raises
    ------
    OutputWriteError
        The file system refuses the write (read-only, full, no permission, a file
        where a folder should be); ``path`` keeps its previous content.

    Examples
    --------
    >>> with atomic_path("out/x.csv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp)
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise OutputExistsError(
            f"{final} exists; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    try:
        make_dir(final.parent)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{final.name}.", suffix=TEMP_MARK + final.suffix, dir=final.parent
        )
        os.close(fd)
    except OSError as exc:
        if isinstance(exc, KpgeoError):
            raise
        raise output_error(final, exc) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        _commit(tmp, final)
    except Exception as exc:
        if _is_fs_error(exc):
            raise output_error(final, exc) from exc
        if not isinstance(exc, KpgeoError) and _disk_full(final.parent):
            # GDAL, pyogrio and matplotlib report a full disk in their own words
            err = output_error(final, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            raise err from exc
        raise
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                tmp.unlink()


def make_dir(path: str | os.PathLike) -> Path:
    """Create a folder (and its parents); file-system faults become :class:`OutputWriteError`."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from exc
    return path


def refuse_existing(out_dir: str | os.PathLike, expect: tuple[str, ...]) -> None:
    """Raise :class:`OutputExistsError` when one of ``expect`` exists in ``out_dir``."""
    out = Path(out_dir)
    existing = [name for name in expect if (out / name).exists()]
    if existing:
        raise OutputExistsError(
            f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them"
        )


def ensure_out_dir(
    out_dir: str | os.PathLike, *, overwrite: bool = False, expect: tuple[str, ...] = ()
) -> Path:
    """Create ``out_dir``; refuse if any of the ``expect``-ed outputs already exist.

    Raises
    ------
    OutputExistsError
        When ``overwrite`` is False and one of ``expect`` exists in ``out_dir``.
    OutputWriteError
        The folder cannot be created (read-only file system, a file in the way...).
    """
    if not overwrite:
        refuse_existing(out_dir, expect)
    return make_dir(out_dir)


# --------------------------------------------------------------------------- run lock


def _lock_holder(lock: Path) -> dict[str, Any] | None:
    """Content of a lock file, or None when it cannot be read (being written, or corrupt)."""
    try:
        holder = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def _stale_reason(lock: Path, holder: dict[str, Any] | None) -> str | None:
    """Why a lock is stale (its process is gone), or None when it may still be held."""
    if holder is None:
        try:
            age = time.time() - lock.stat().st_mtime
        except OSError:
            return "it vanished"
        # a lock being taken is written within milliseconds; an unreadable old one is debris
        return f"it is unreadable and {age:.0f} s old" if age > 30 else None
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None  # another machine (shared store): cannot tell, so it is held
    return None if _pid_alive(pid) else f"process {pid} is no longer running"


def _take_lock(lock: Path, info: dict[str, Any]) -> None:
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            reason = _stale_reason(lock, holder)
            if reason is None:
                who = (
                    f"pid {holder.get('pid')} on {holder.get('host')}, started "
                    f"{holder.get('started')}: {holder.get('command', 'kpgeo')}"
                    if holder
                    else "a run that is starting now"
                )
                raise RunLockedError(
                    f"{lock.parent} is in use by another kpgeo run ({who}); wait for it to "
                    f"finish, or, if no run is active any more, delete {lock}"
                ) from None
            if _lock_holder(lock) != holder:  # changed meanwhile: look again
                continue
            log.warning("removing stale lock %s (%s)", lock, reason)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        except OSError as exc:
            raise output_error(lock, exc) from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(info, fh)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                lock.unlink()
            raise output_error(lock, exc) from exc
        if _lock_holder(lock) != info:  # lost a race with another run breaking a stale lock
            raise RunLockedError(f"{lock.parent} was taken by another kpgeo run just now")
        return
    raise RunLockedError(f"could not take the lock {lock}; delete it if no kpgeo run is active")


@contextlib.contextmanager
def run_lock(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``out_dir/.kpgeo.lock`` while the block runs, so one run at a time writes there.

    The lock is created atomically (``O_CREAT | O_EXCL``) and records the pid,
    host, start time and command line. A lock whose process is gone (same host,
    pid not running) or that is unreadable and old is stale: it is removed with a
    warning and taken. A lock from another host is always respected.

    Raises
    ------
    RunLockedError
        Another run holds the lock; the message names it and says how to clear it.
    OutputWriteError
        The lock file cannot be written (read-only file system...).
    """
    lock = Path(out_dir) / LOCK_NAME
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "python",
        "token": secrets.token_hex(8),
    }
    _take_lock(lock, info)
    try:
        yield lock
    finally:
        if _lock_holder(lock) == info:
            with contextlib.suppress(OSError):
                lock.unlink()


def remove_temp_files(out_dir: str | os.PathLike) -> list[Path]:
    """Delete kpgeo temporary files and staging folders left anywhere inside ``out_dir``.

    Only names that :func:`is_temp_name` recognises are touched, symbolic links are
    not followed, and nothing outside ``out_dir`` is visited. Call it while holding
    the folder's :func:`run_lock` (a running run's temporary files are live).

    Returns
    -------
    list of pathlib.Path
        What was removed.
    """
    removed = []
    for root, dirs, files in os.walk(out_dir, followlinks=False):
        for name in [d for d in dirs if is_temp_name(d)]:
            shutil.rmtree(Path(root) / name, ignore_errors=True)
            removed.append(Path(root) / name)
            dirs.remove(name)
        for name in files:
            if is_temp_name(name):
                with contextlib.suppress(FileNotFoundError):
                    (Path(root) / name).unlink()
                removed.append(Path(root) / name)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run in %s", len(removed),
                 out_dir)
    return removed


@contextlib.contextmanager
def output_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Take an output folder for one run: create it, lock it, clean leftovers.

    The folder is created (with its parents) if needed, locked with
    :func:`run_lock` and cleared of temporary files an interrupted run left
    (:func:`remove_temp_files`). When the block fails and the folder was created
    here and is still empty, it is removed again, so a refused command leaves no
    empty output folder behind.

    Raises
    ------
    RunLockedError, OutputWriteError
        See :func:`run_lock` and :func:`make_dir`.
    """
    out = Path(out_dir)
    created = not out.exists()
    make_dir(out)
    try:
        with run_lock(out):
            remove_temp_files(out)
            yield out
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only succeeds when empty
        raise


@contextlib.contextmanager
def staging_dir(out_dir: str | os.PathLike, *, last: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a temporary folder inside ``out_dir``; on success move its files into ``out_dir``.

    Use it for a set of outputs that belong together (a run's footprints, time
    series, maps and bulletin): nothing reaches ``out_dir`` unless every file was
    written, and each file then replaces its predecessor atomically. Files named
    in ``last`` are moved last (e.g. ``run.json``, which lists the others).

    Raises
    ------
    OutputWriteError
        The file system refuses a write; ``out_dir`` keeps its previous outputs.
    """
    out = Path(out_dir)
    try:
        stage = Path(tempfile.mkdtemp(prefix=".run.", suffix=TEMP_MARK, dir=out))
    except OSError as exc:
        raise output_error(out, exc) from exc
    try:
        yield stage
        names = sorted(p.name for p in stage.iterdir() if p.is_file())
        names.sort(key=lambda n: n in last)
        for name in names:
            os.replace(stage / name, out / name)
        _fsync_path(out, directory=True)
    except OutputWriteError as exc:
        staged = Path(exc.filename or "")
        if staged.parent == stage:  # name the output, not its staging copy
            raise output_error(out / staged.name, exc) from exc
        raise
    except OSError as exc:
        if _is_fs_error(exc):
            raise output_error(out, exc) from exc
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_cog(
    da: Any,
    path: str | os.PathLike,
    *,
    nodata: float | int | None = None,
    colormap: dict[int, tuple[int, ...]] | None = None,
    description: str | None = None,
) -> Path:
    """Write a 2-D georeferenced DataArray as a Cloud-Optimised GeoTIFF, atomically.

    ``da`` must carry its CRS and transform (a ``spatial_ref`` coordinate, as
    every kpgeo raster does). Dask arrays are computed block by block. The
    DataArray's attributes become GeoTIFF tags (``units = "days since
    1970-01-01"`` of the date rasters, for instance).

    Parameters
    ----------
    nodata
        Value written as the band's nodata.
    colormap
        Value -> ``(r, g, b[, a])`` colour table (uint8 rasters only), so GIS
        software shows class codes (``state.tif``) in their colours.
    description
        Band description (default: the DataArray's name).
    """
    import rioxarray  # noqa: F401  (registers .rio)

    arr = da
    if arr.rio.crs is None:
        from kpgeo.errors import CRSMismatchError

        raise CRSMismatchError(f"cannot write {path}: the raster has no CRS")
    if nodata is not None:
        arr = arr.rio.write_nodata(nodata, encoded=False)
    if colormap is not None and np.dtype(arr.dtype) != np.uint8:
        raise ConfigError(f"cannot write {path}: a colour table needs a uint8 raster, "
                          f"got {arr.dtype}")
    with atomic_path(path) as tmp:
        if colormap is None and description is None:
            arr.rio.to_raster(tmp, driver="COG", compress="DEFLATE")
        else:
            _write_cog_via_gtiff(arr, tmp, colormap=colormap, description=description)
    return Path(path)


def _write_cog_via_gtiff(arr: Any, tmp: Path, *, colormap: Any, description: Any) -> None:
    """GTiff with colour table / description, then GDAL's COG copy (which keeps both)."""
    import rasterio
    import rasterio.shutil

    staged = tmp.with_name(tmp.name + ".gtiff" + TEMP_MARK + ".tif")
    try:
        arr.rio.to_raster(staged, driver="GTiff", compress="DEFLATE")
        with rasterio.open(staged, "r+") as dst:
            if colormap is not None:
                dst.write_colormap(1, {int(k): tuple(int(c) for c in v)
                                       for k, v in colormap.items()})
            dst.set_band_description(1, description or str(arr.name or ""))
        rasterio.shutil.copy(staged, tmp, driver="COG", compress="DEFLATE")
    finally:
        staged.unlink(missing_ok=True)


def _iso_columns(gdf: Any) -> Any:
    """Return a copy with datetime columns as ISO 8601 date strings (for GeoJSON)."""
    import pandas as pd

    out = gdf.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].map(to_iso_date)
    return out


def to_iso_date(value: Any) -> str | None:
    """Format a date-like value as ``YYYY-MM-DD`` (UTC), None for missing values."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.strftime("%Y-%m-%d")


def to_utc_naive(values: Any, *, what: str = "dates") -> Any:
    """Parse date-like values into a naive-UTC ``datetime64[ns]`` Series.

    Timezone-aware values are converted to UTC; naive values are taken as UTC;
    missing values (None, NaN, NaT) stay NaT.

    Parameters
    ----------
    values
        Anything :func:`pandas.to_datetime` accepts (strings, datetimes, arrays).
    what
        Description used in the error message (e.g. ``"first_detected in footprints.parquet"``).

    Raises
    ------
    ConfigError
        When a non-missing value cannot be parsed as a date.
    """
    import pandas as pd

    from kpgeo.errors import ConfigError

    raw = pd.Series(values)
    parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna() & raw.notna()
    if bad.any():
        examples = ", ".join(repr(v) for v in raw[bad].head(3))
        raise ConfigError(f"{int(bad.sum())} unparseable value(s) in {what}: {examples}")
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def write_vector(gdf: Any, path: str | os.PathLike) -> Path:
    """Write a GeoDataFrame atomically as ``.geojson`` (EPSG:4326), ``.parquet`` or ``.gpkg``."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix in {".geojson", ".json"}:
            out = _iso_columns(gdf.to_crs(4326) if gdf.crs is not None else gdf)
            # the layer name is the final file's stem, not the temporary file's; 1e-6 degree
            # (about 0.1 m) is finer than any pixel
            out.to_file(tmp, driver="GeoJSON", engine="pyogrio", layer=path.stem,
                        layer_options={"COORDINATE_PRECISION": 6})
        elif suffix in {".parquet", ".geoparquet"}:
            gdf.to_parquet(tmp, index=False)
        elif suffix == ".gpkg":
            _iso_columns(gdf).to_file(tmp, driver="GPKG", layer=path.stem, engine="pyogrio")
        else:
            raise ConfigError(
                f"unsupported vector format {suffix!r} for {path}; use .geojson, .parquet or .gpkg"
            )
    return path


def write_table(df: Any, path: str | os.PathLike) -> Path:
    """Write a DataFrame atomically as ``.csv`` or ``.parquet``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            df.to_csv(tmp, index=False)
        elif path.suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            raise ConfigError(
                f"unsupported table format {path.suffix!r} for {path}; use .csv or .parquet"
            )
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return to_iso_date(obj)


def write_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as pretty JSON atomically (numpy scalars and dates handled)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False) + "\n")
    return path
