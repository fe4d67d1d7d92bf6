"""Writing kpgeo outputs safely: atomic files, COGs, vectors, tables.

Every writer goes through :func:`atomic_path`: data are written to a hidden
temporary sibling and moved into place with :func:`os.replace` only when the
write succeeded, so an interrupted run never leaves a half-written output that
a later run would mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kpgeo.errors import ConfigError, OutputExistsError

__all__ = [
    "atomic_path",
    "ensure_out_dir",
    "write_cog",
    "write_vector",
    "write_json",
    "write_table",
    "to_iso_date",
    "to_utc_naive",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    Parameters
    ----------
    path
        Final destination.
    overwrite
        When False and ``path`` exists, raise :class:`OutputExistsError`.

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
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files; give outputs the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o666 & ~umask)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def ensure_out_dir(
    out_dir: str | os.PathLike, *, overwrite: bool = False, expect: tuple[str, ...] = ()
) -> Path:
    """Create ``out_dir``; refuse if any of the ``expect``-ed outputs already exist.

    Raises
    ------
    OutputExistsError
        When ``overwrite`` is False and one of ``expect`` exists in ``out_dir``.
    """
    out = Path(out_dir)
    if not overwrite:
        existing = [name for name in expect if (out / name).exists()]
        if existing:
            raise OutputExistsError(
                f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them"
            )
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_cog(da: Any, path: str | os.PathLike, *, nodata: float | int | None = None) -> Path:
    """Write a 2-D georeferenced DataArray as a Cloud-Optimised GeoTIFF, atomically.

    ``da`` must carry its CRS and transform (a ``spatial_ref`` coordinate, as
    every kpgeo raster does). Dask arrays are computed block by block.
    """
    import rioxarray  # noqa: F401  (registers .rio)

    arr = da
    if arr.rio.crs is None:
        from kpgeo.errors import CRSMismatchError

        raise CRSMismatchError(f"cannot write {path}: the raster has no CRS")
    if nodata is not None:
        arr = arr.rio.write_nodata(nodata, encoded=False)
    with atomic_path(path) as tmp:
        arr.rio.to_raster(tmp, driver="COG", compress="DEFLATE")
    return Path(path)


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
            out.to_file(tmp, driver="GeoJSON", engine="pyogrio")
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
