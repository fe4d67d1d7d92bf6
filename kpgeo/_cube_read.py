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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


SafeRioReader, SafeRioDriver = _make_driver_classes()


class KeyGroupby:
    """Picklable odc-stac groupby callback returning precomputed keys by item index."""

    def __init__(self, keys: Sequence[Any]) -> None:
        self.keys = list(keys)

    def __call__(self, item: Any, parsed: Any, idx: int) -> Any:
        return self.keys[idx]


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


def read_block(spec: BlockSpec, t0: int, t1: int, y0: int, y1: int, x0: int, x1: int) -> dict:
    """Read one (time, y, x) block with odc.stac.load; return raw bands and the clear mask."""
    import odc.stac
    import shapely

    from kpgeo.cube import region_mask
    from kpgeo.gdal_env import rio_env

    sub = spec.gbox[y0:y1, x0:x1]
    wanted = set(spec.group_keys[t0:t1])
    box = shapely.box(*sub.boundingbox[:4])
    idx = [i for i, k in enumerate(spec.keys) if k in wanted and spec.feet[i].intersects(box)]
    names = [*spec.bands, *([spec.scheme] if spec.scheme else [])]
    shape = (t1 - t0, y1 - y0, x1 - x0)
    raw: dict[str, np.ndarray] = {}
    if idx:
        sub_keys = [spec.keys[i] for i in idx]
        with rio_env():  # odc-stac reads with the GDAL settings active here
            ds = odc.stac.load(
                [spec.clones[i] for i in idx],
                bands=names,
                geobox=sub,
                groupby=KeyGroupby(sub_keys),
                resampling=spec.resampling,
                driver=SafeRioDriver(),
                fail_on_error=True,
            )
        pos = [spec.group_keys.index(k) - t0 for k in sorted(set(sub_keys))]
        for b in names:
            if len(pos) == shape[0]:  # every date of the block has data here: no copy
                raw[b] = ds[b].values
            else:
                raw[b] = np.full(shape, spec.nodata[b], dtype=spec.dtypes[b])
                raw[b][pos] = ds[b].values
            if raw[b].dtype != np.dtype(spec.dtypes[b]):
                raw[b] = raw[b].astype(spec.dtypes[b])
        del ds
    else:
        raw = {b: np.full(shape, spec.nodata[b], dtype=spec.dtypes[b]) for b in names}
    clear = np.ones(shape, bool)
    for b in spec.bands:
        nd = spec.nodata[b]
        clear &= ~np.isnan(raw[b]) if np.isnan(nd) else raw[b] != nd
    if spec.aoi is not None:
        clear &= region_mask(spec.aoi, sub, crs=sub.crs)
    if spec.scheme:
        clear &= clear_mask(raw.pop(spec.scheme), spec.scheme)
    return {"raw": raw, "clear": clear}


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
