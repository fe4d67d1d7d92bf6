"""A zone run streamed block by block: bounded memory for any zone size and any number of dates.

:func:`stream_zone` is what :func:`kpgeo.pipeline.process_zone` runs for every
zone (``kpgeo run``, ``kpgeo detect``). The in-memory path
(:func:`kpgeo.cube.load_cube` → :func:`kpgeo.change.detect_changes` →
:func:`kpgeo.footprints.extract_footprints`) stays for notebooks and small
cubes; both give the same rasters and footprints (``tests/test_stream.py``).

How
---
1. **Blocks.** The cube grid (:func:`kpgeo.cube.plan_cube`, no pixel read) is
   cut into square blocks (:data:`DEFAULT_BLOCK` px) whose edges fall on the
   imagery's own tile grid, so every file tile is decoded once.
2. **One task per block** (:func:`process_block`; a thread pool, or Dask
   workers with ``--scheduler local|tcp://``): it receives the block's window
   and the plan (file paths and STAC item clones, never open datasets), reads
   the block's earlier state from the zone's state store when there is one,
   then reads the new dates a few at a time (:data:`DEFAULT_TIME_CHUNK`),
   masks them and feeds them to the per-pixel decision
   (:class:`kpgeo.change.DetectorState`), writes its new state into its own
   chunk of the new store, and returns only small arrays: the encoded change
   rasters of the block, its one-byte footprint level
   (:func:`kpgeo.footprints.footprint_level`), the records of its mining pixels
   and its clear-pixel counts per date and region.
3. **The driver** writes each block's rasters window by window into tiled
   GeoTIFFs (copied into COGs at the end, atomically), keeps the zone's
   ``uint8`` level raster (1 byte per pixel: 30 MB for 3,000 km²) and the
   mining-pixel records, and adds up the coverage counts. No array of the zone
   × dates, and no float raster of the zone, is ever held.
4. **Footprints** (:func:`kpgeo.footprints.objects_from_level`): the mask
   operations and the labelling run once on the zone's level raster, so a site
   cut by a block edge is one object with one id; attributes come from the
   mining-pixel records, polygons are traced block by block in whole-pixel
   coordinates and the pieces of each object unioned exactly.
5. **Incremental runs** (:mod:`kpgeo.state_store`): when the zone's stored
   state covers the first dates of the run unchanged, only the new dates are
   read and fed; coverage of the old dates comes from the store. The result is
   the full run's, by construction (the decision is sequential in time).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from kpgeo import state_store
from kpgeo.errors import KpgeoError, NoDataError, OutputWriteError

__all__ = [
    "DEFAULT_BLOCK",
    "DEFAULT_TIME_CHUNK",
    "DETECTION_BANDS",
    "ZoneTask",
    "BlockResult",
    "StreamResult",
    "plan_windows",
    "process_block",
    "stream_zone",
]

log = logging.getLogger(__name__)

#: block side in pixels (a 512 × 512 block's detector state is 90 MB)
DEFAULT_BLOCK = 512
#: dates read and fed at once per block (bounds a task's memory for any number of dates)
DEFAULT_TIME_CHUNK = 12
#: reflectance bands the decision uses (red, nir, swir16 required; green, blue optional)
DETECTION_BANDS = ("blue", "green", "red", "nir", "swir16")
#: rasters written per zone (encoding: :func:`kpgeo.footprints.change_rasters`)
RASTERS = ("first_detected", "alert_date", "last_active", "confidence", "state", "reason")


@dataclass(frozen=True)
class ZoneTask:
    """What every block task of a zone needs (sent to each worker once; paths only)."""

    spec: Any
    """:class:`kpgeo._cube_read.BlockSpec` of the cube plan (only the detection bands)."""
    scale: np.ndarray
    offset: np.ndarray
    tdays: np.ndarray
    """Day (since 1970-01-01) of every time step of the run."""
    t0: int
    """First time step to feed (the earlier ones are in the stored state)."""
    params: Any
    regions: tuple[Any, ...]
    """Coverage regions (zone, ring): shapely geometries in EPSG:4326."""
    state_in: str | None
    meta_in: Any
    state_out: str
    meta_out: Any
    time_chunk: int = DEFAULT_TIME_CHUNK
    min_confidence: float = 0.0


@dataclass
class BlockResult:
    """What one block task returns (small arrays; see :func:`process_block`)."""

    window: tuple[int, int, int, int]
    rasters: dict[str, np.ndarray]
    level: np.ndarray
    records: dict[str, np.ndarray]
    clear_counts: np.ndarray
    """``(new dates, regions)`` clear pixels."""
    region_pixels: np.ndarray
    n_inside: int
    n_insufficient: int


@dataclass(frozen=True)
class StreamResult:
    """What :func:`stream_zone` produced (rasters, footprints and state are written)."""

    footprints: Any
    """Mining footprints (GeoDataFrame, grid CRS)."""
    rejected: Any
    """Objects the footprint tests left out, with ``kind`` (clearing, shoreline)."""
    coverage: Any
    """Clear coverage per date and region (:func:`kpgeo.timeseries.coverage_table`)."""
    rasters: dict[str, Path]
    n_dates: int
    new_dates: int
    """Dates read and fed in this run (all of them unless a stored state was continued)."""
    redo_reason: str | None
    """Why a stored state could not be continued (None: continued, or none found)."""


# --------------------------------------------------------------------------- blocks


def plan_windows(shape: tuple[int, int], block: int, pad: tuple[int, int] = (0, 0)
                 ) -> list[tuple[int, int, int, int]]:
    """Blocks ``(y0, y1, x0, x1)`` covering a grid, edges at ``pad + k * block`` on the store grid.

    ``pad`` shifts the block edges so they fall on the imagery's tile grid
    (:func:`block_alignment`); edge blocks are smaller.
    """
    h, w = shape
    out = []
    for sy in range(0, h + pad[0], block):
        y0, y1 = max(sy - pad[0], 0), min(sy + block - pad[0], h)
        for sx in range(0, w + pad[1], block):
            x0, x1 = max(sx - pad[1], 0), min(sx + block - pad[1], w)
            if y1 > y0 and x1 > x0:
                out.append((y0, y1, x0, x1))
    return out


def block_alignment(spec: Any, block: int) -> tuple[int, int]:
    """Return the padding that puts block edges on the tile grid of the imagery's first file."""
    for reads in spec.direct:
        for band in spec.bands:
            src = reads.get(band)
            if src is not None and src.factor == 1:
                return (-src.row) % block, (-src.col) % block
    return 0, 0


def _kernel_bands(block: dict, scale: np.ndarray, offset: np.ndarray,
                  bands: tuple[str, ...]) -> dict[str, np.ndarray]:
    """DN block ``(time, y, x)`` → float32 reflectance ``(y, x, time)``, NaN where not clear.

    Same arithmetic as the lazy cube (:func:`kpgeo._cube_read._finish_band`: a
    float32 product then a float32 sum), so the decision sees the very same values
    in both paths; one pass straight into the decision's layout.
    """
    clear = block["clear"]
    n_t, h, w = clear.shape
    out = {}
    for i, b in enumerate(bands):
        out[b] = np.empty((h, w, n_t), np.float32)
        _reflectance(block["raw"].pop(b), clear, np.ascontiguousarray(scale[:, i]),
                     np.ascontiguousarray(offset[:, i]), out[b])
    return out


@numba.njit(cache=True, nogil=True)
def _reflectance(raw, clear, scale, offset, out):  # pragma: no cover - compiled
    n_t, h, w = raw.shape
    for t in range(n_t):
        s, o = scale[t], offset[t]
        for y in range(h):
            for x in range(w):
                out[y, x, t] = np.float32(raw[t, y, x]) * s + o if clear[t, y, x] else np.nan


def process_block(task: ZoneTask, window: tuple[int, int, int, int]) -> BlockResult:
    """Run the decision over one block and encode its outputs (a task: paths in, arrays out).

    Reads the block's stored state (when the run continues one), feeds the new
    dates :attr:`ZoneTask.time_chunk` at a time, writes the new state into the
    block's chunk of the new store and returns the block's rasters, footprint
    level, mining-pixel records and clear counts.
    """
    from kpgeo._cube_read import read_block
    from kpgeo.change import DetectorState, change_dataset
    from kpgeo.cube import region_mask
    from kpgeo.footprints import change_rasters, footprint_level, pixel_records
    from kpgeo.gdal_env import limit_block_cache

    limit_block_cache()  # once per (worker) process: files stay open between blocks
    spec = task.spec
    y0, y1, x0, x1 = window
    sub = spec.gbox[y0:y1, x0:x1]
    inside = region_mask(spec.aoi, sub, crs=sub.crs) if spec.aoi is not None else None
    # rasterised per block as clear_coverage does for the whole grid (pixel centres)
    regions = [region_mask(g, sub) for g in task.regions]
    if task.state_in is not None:
        state = state_store.read_state(task.state_in, task.meta_in, window)
    else:
        state = DetectorState.new((y1 - y0, x1 - x0))
    n_t = len(task.tdays)
    counts = np.zeros((n_t - task.t0, len(regions)), "int64")
    for c0 in range(task.t0, n_t, task.time_chunk):
        c1 = min(n_t, c0 + task.time_chunk)
        block = read_block(spec, c0, c1, y0, y1, x0, x1, inside=inside)
        for j, m in enumerate(regions):
            counts[c0 - task.t0:c1 - task.t0, j] = (block["clear"] & m).sum(axis=(1, 2))
        bands = _kernel_bands(block, task.scale[c0:c1], task.offset[c0:c1], spec.bands)
        del block
        state.update(**bands, tdays=task.tdays[c0:c1], params=task.params)
        del bands
    state_store.write_state(task.state_out, task.meta_out, window, state, task.params)
    out = state.outputs(params=task.params, t_end=float(task.tdays[-1])).astype("float32")
    del state
    change = change_dataset(out, dims=("y", "x"), coords={}, inside=inside)
    del out
    width = int(spec.gbox.shape[1])
    ins = np.ones((y1 - y0, x1 - x0), bool) if inside is None else inside
    return BlockResult(
        window=window,
        rasters={k: np.asarray(v.values) for k, v in change_rasters(change).items()},
        level=footprint_level(change["state"].values, change["confidence"].values,
                              change["pending"].values, baseline=change["baseline_class"].values,
                              water=change["water"].values, min_confidence=task.min_confidence),
        records=pixel_records(change, row0=y0, col0=x0, width=width),
        clear_counts=counts,
        region_pixels=np.array([int(m.sum()) for m in regions], "int64"),
        n_inside=int(ins.sum()),
        n_insufficient=int(((change["state"].values == 255) & ins).sum()),
    )


# --------------------------------------------------------------------------- executors


def _client() -> Any:
    """Return the active dask.distributed client (``--scheduler local|tcp://``), or None."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _workers(client: Any) -> int:
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    import dask

    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def _bounded(submit: Callable[[Any], Any], wait: Callable[[set], Any], items: list,
             limit: int) -> Iterator[Any]:
    """Submit ``items`` keeping at most ``limit`` in flight; yield results as they complete."""
    todo = iter(items)
    pending = {submit(x) for x in itertools.islice(todo, limit)}
    try:
        while pending:
            done, pending = wait(pending)
            for fut in done:
                yield fut.result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.add(submit(nxt))
    finally:
        for fut in pending:
            fut.cancel()


def map_blocks(task: ZoneTask, windows: list) -> Iterator[BlockResult]:
    """Run :func:`process_block` over ``windows`` on the active scheduler, results as they come.

    Threads (default): a pool of dask's ``num_workers`` (cores) threads; the
    decision and the decoders release the GIL. ``dask.distributed`` (a client is
    active): the task spec is scattered to every worker once and each block is
    one task. At most workers + 1 blocks are in flight, so results never pile up.
    """
    from kpgeo._cube_read import close_cached_datasets

    client = _client()
    n = _workers(client)
    if client is None:
        pool = concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="kpgeo-block")
        try:
            yield from _bounded(
                lambda w: pool.submit(process_block, task, w),
                lambda fs: concurrent.futures.wait(fs, return_when="FIRST_COMPLETED"),
                windows, n + 1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            close_cached_datasets()
        return
    import distributed

    shared = client.scatter(task, broadcast=True, hash=False)
    try:
        yield from _bounded(
            lambda w: client.submit(process_block, shared, w, pure=False),
            lambda fs: distributed.wait(fs, return_when="FIRST_COMPLETED"),
            windows, n + 1)
    finally:
        with contextlib.suppress(Exception):
            client.run(close_cached_datasets)


# --------------------------------------------------------------------------- rasters


class RasterSink:
    """Tiled GeoTIFFs written window by window, copied into COGs atomically on :meth:`finish`."""

    def __init__(self, out_dir: Path, gbox: Any) -> None:
        self.out_dir = Path(out_dir)
        self.gbox = gbox
        self.files: dict[str, Any] = {}
        self.tmp: dict[str, Path] = {}
        self.meta: dict[str, dict] = {}

    def _open(self, name: str, data: np.ndarray, attrs: dict) -> Any:
        import rasterio

        from kpgeo import io
        from kpgeo.footprints import DAY_NODATA, STATE_COLOURS
        from kpgeo.gdal_env import TILED_GTIFF_OPTIONS

        fd, tmp = tempfile.mkstemp(prefix=f".{name}.tif.", suffix=io.TEMP_MARK + ".tif",
                                   dir=self.out_dir)
        os.close(fd)
        self.tmp[name] = Path(tmp)
        nodata = attrs.get("nodata", DAY_NODATA if attrs.get("units", "").startswith("days")
                           else None)
        h, w = (int(n) for n in self.gbox.shape)
        tags = {k: str(v) for k, v in attrs.items() if k != "nodata"}  # nodata: the band's own
        self.meta[name] = {"nodata": nodata, "tags": tags}
        dst = rasterio.open(tmp, "w", driver="GTiff", width=w, height=h, count=1,
                            dtype=data.dtype.name, crs=self.gbox.crs.to_wkt(),
                            transform=self.gbox.transform, nodata=nodata, **TILED_GTIFF_OPTIONS)
        if name == "state":  # class colours (before any pixel), kept by the COG copy
            dst.write_colormap(1, STATE_COLOURS)
        return dst

    def write(self, window: tuple[int, int, int, int], rasters: dict[str, Any],
              attrs: dict[str, dict]) -> None:
        """Write one block of every raster."""
        from rasterio.windows import Window

        y0, y1, x0, x1 = window
        for name, data in rasters.items():
            try:
                if name not in self.files:
                    self.files[name] = self._open(name, data, attrs.get(name, {}))
                self.files[name].write(data, 1, window=Window(x0, y0, x1 - x0, y1 - y0))
            except (OSError, KpgeoError) as exc:
                raise self._error(name, exc) from exc
            except Exception as exc:  # rasterio reports a full disk in its own words
                raise self._error(name, exc) from exc

    def _error(self, name: str, exc: BaseException) -> OutputWriteError:
        import errno

        from kpgeo import io

        final = self.out_dir / f"{name}.tif"
        if isinstance(exc, OutputWriteError):
            return exc
        if isinstance(exc, OSError) and exc.errno is not None:
            return io.output_error(final, exc)
        if io._disk_full(self.out_dir):
            return io.output_error(final, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return OutputWriteError(f"cannot write {final}: {exc}")

    def finish(self) -> dict[str, Path]:
        """Close the GeoTIFFs, copy each into its COG (atomic) and remove the GeoTIFFs."""
        import rasterio.shutil

        from kpgeo import io
        from kpgeo.gdal_env import COG_OPTIONS

        out = {}
        for name, dst in self.files.items():
            dst.update_tags(**self.meta[name]["tags"])
            dst.set_band_description(1, name)
            dst.close()
        for name, staged in self.tmp.items():
            final = self.out_dir / f"{name}.tif"
            try:
                with io.atomic_path(final) as tmp:
                    rasterio.shutil.copy(staged, tmp, driver="COG", **COG_OPTIONS)
            except OutputWriteError:
                raise
            except Exception as exc:
                raise self._error(name, exc) from exc
            finally:
                staged.unlink(missing_ok=True)
            out[f"{name}.tif"] = final
        self.files, self.tmp = {}, {}
        return out

    def discard(self) -> None:
        """Close and delete the unfinished GeoTIFFs (a failed run)."""
        for dst in self.files.values():
            with contextlib.suppress(Exception):
                dst.close()
        for staged in self.tmp.values():
            staged.unlink(missing_ok=True)
        self.files, self.tmp = {}, {}


# --------------------------------------------------------------------------- zone


def _raster_attrs() -> dict[str, dict]:
    """Attributes (tags) of each output raster, as :func:`kpgeo.footprints.change_rasters` sets."""
    from kpgeo.change import OUTPUT_FIELDS, change_dataset
    from kpgeo.footprints import change_rasters

    one = change_dataset(np.zeros((1, 1, len(OUTPUT_FIELDS)), "float32"), dims=("y", "x"),
                         coords={})
    return {k: dict(v.attrs) for k, v in change_rasters(one).items()}


@dataclass
class _ZoneTotals:
    """What the blocks of a zone add up to, filled as their results come in."""

    level: np.ndarray
    """Footprint level of every pixel of the zone grid (uint8)."""
    counts: np.ndarray
    """``(new dates, regions)`` clear pixels."""
    region_pixels: np.ndarray
    records: list[dict[str, np.ndarray]]
    n_inside: int = 0
    n_insufficient: int = 0

    @classmethod
    def empty(cls, shape: tuple[int, int], n_dates: int, n_regions: int) -> _ZoneTotals:
        return cls(level=np.zeros(shape, "uint8"), counts=np.zeros((n_dates, n_regions), "int64"),
                   region_pixels=np.zeros(n_regions, "int64"), records=[])

    def add(self, res: BlockResult) -> None:
        y0, y1, x0, x1 = res.window
        self.level[y0:y1, x0:x1] = res.level
        if res.records["index"].size:
            self.records.append(res.records)
        self.counts += res.clear_counts
        self.region_pixels += res.region_pixels
        self.n_inside += res.n_inside
        self.n_insufficient += res.n_insufficient


def _objects_and_cogs(totals: _ZoneTotals, sink: RasterSink, *, gbox: Any, zone: Any,
                      windows: list, options: dict[str, Any]) -> tuple[Any, dict[str, Path]]:
    """Footprint candidates of the whole zone, while the COG copies run next to them.

    The copies (GDAL, GIL released) and the vectorisation take one core each.
    """
    from pyproj import CRS

    from kpgeo.footprints import concat_records, objects_from_level

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kpgeo-cog") as pool:
        finishing = pool.submit(sink.finish)
        try:
            candidates = objects_from_level(
                totals.level, concat_records(totals.records),
                crs=CRS.from_wkt(gbox.crs.to_wkt()), transform=gbox.transform, zone=zone,
                has_pending=True, windows=windows, min_area_ha=options["min_area_ha"],
                closing_radius=options["closing_radius"],
                clearing_min_area_ha=options["clearing_min_area_ha"])
        finally:
            concurrent.futures.wait([finishing])  # never discard while copying
        return candidates, finishing.result()


def _run_blocks(
    task: ZoneTask,
    *,
    out_dir: Path,
    zone: Any,
    windows: list[tuple[int, int, int, int]],
    times: np.ndarray,
    region_names: list[str],
    old_counts: np.ndarray,
    footprint_options: dict[str, Any],
    progress: bool,
) -> tuple[Any, Any, Any, dict[str, Path], np.ndarray, np.ndarray]:
    """Run every block of a zone, write its rasters, build its footprints and coverage.

    Returns footprints, rejected objects, coverage, rasters written, clear counts
    of every time step ``(time, regions)`` and the pixels of each region; raises
    :class:`~kpgeo.errors.NoDataError` (nothing written) when no date saw
    anything clear.
    """
    from kpgeo.change.detect import warn_insufficient
    from kpgeo.footprints import mining_footprints, rejected_objects
    from kpgeo.timeseries import coverage_table, pixel_area_ha

    gbox = task.spec.gbox
    totals = _ZoneTotals.empty(tuple(int(n) for n in gbox.shape), len(task.tdays) - task.t0,
                               len(task.regions))
    attrs = _raster_attrs()
    sink = RasterSink(Path(out_dir), gbox)
    bar = _bar(len(windows), f"{getattr(zone, 'id', 'zone')}: change detection", progress)
    try:
        for res in map_blocks(task, windows):
            sink.write(res.window, res.rasters, attrs)
            totals.add(res)
            bar.update(1)
        all_counts = np.concatenate(
            [np.asarray(old_counts, "int64").reshape(-1, len(task.regions)), totals.counts])
        if not all_counts.any():
            raise NoDataError(
                f"{getattr(zone, 'id', 'zone')}: no clear observation of the zone or its ring "
                f"({len(times)} dates, all cloudy or masked); nothing to detect")
        warn_insufficient(totals.n_insufficient, totals.n_inside, params=task.params,
                          stacklevel=3)
        candidates, rasters = _objects_and_cogs(totals, sink, gbox=gbox, zone=zone,
                                                windows=windows, options=footprint_options)
    except BaseException:
        sink.discard()
        raise
    finally:
        bar.close()
    region_pixels = totals.region_pixels
    del totals
    coverage = coverage_table(times, region_names, all_counts, region_pixels,
                              pixel_ha=pixel_area_ha(gbox))
    return (mining_footprints(candidates), rejected_objects(candidates), coverage, rasters,
            all_counts, region_pixels)


def _bar(total: int, label: str, show: bool) -> Any:
    if not show:
        return _NoBar()
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="task", file=sys.stderr, leave=False,
                dynamic_ncols=True)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- orchestration


def detection_plan(plan: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """Restrict a plan's block spec, scale and offset to :data:`DETECTION_BANDS`.

    Raises
    ------
    MissingBandError
        red, nir or swir16 is not in every item.
    """
    import dataclasses

    from kpgeo.errors import MissingBandError

    spec = plan.spec
    keep = [i for i, b in enumerate(spec.bands) if b in DETECTION_BANDS]
    bands = tuple(spec.bands[i] for i in keep)
    missing = [b for b in ("red", "nir", "swir16") if b not in bands]
    if missing:
        raise MissingBandError(
            f"the imagery lacks band(s) {missing}; change detection needs red, nir and swir16 "
            f"(has {list(spec.bands)})")
    return (dataclasses.replace(spec, bands=bands), plan.scale[:, keep], plan.offset[:, keep])


def acquisitions(plan: Any, item_digests: dict[str, str]) -> list[dict[str, Any]]:
    """List a plan's time steps with a digest of their items (metadata and file contents)."""
    import hashlib
    import json

    out = []
    for acq in plan.acquisitions():
        digest = hashlib.sha256(json.dumps(
            [acq["time"], acq["key"], [item_digests.get(i, "") for i in acq["items"]]],
            default=str).encode()).hexdigest()
        out.append({**acq, "digest": digest})
    return out


def stream_zone(
    plan: Any,
    zone: Any,
    *,
    out_dir: str | os.PathLike,
    ring_width_m: float,
    params: Any,
    item_digests: dict[str, str],
    incremental: bool = True,
    block: int = DEFAULT_BLOCK,
    time_chunk: int = DEFAULT_TIME_CHUNK,
    footprint_options: dict[str, Any] | None = None,
    progress: bool = False,
) -> StreamResult:
    """Detect mining over a zone and its ring block by block; write rasters and the state.

    Parameters
    ----------
    plan
        :class:`kpgeo.cube.CubePlan` over the zone ∪ ring.
    zone
        The :class:`kpgeo.zones.Zone`.
    out_dir
        The zone's output folder: the six change rasters (COG) and ``state.zarr``.
    ring_width_m
        Width of the watched ring (the coverage regions are the zone and its ring).
    params
        :class:`kpgeo.change.ChangeParams`.
    item_digests
        Item id -> digest of its metadata and file contents: a stored state is
        continued only while the dates it holds are unchanged.
    incremental
        Continue the zone's stored state when it can be; False: all dates from scratch.
    block, time_chunk
        Block side (px) and dates fed at once; they bound memory, not results.
    footprint_options
        ``min_area_ha``, ``closing_radius``, ``clearing_min_area_ha``, ``min_confidence``.
    progress
        Draw a bar of blocks done on stderr.

    Raises
    ------
    NoDataError
        No clear observation of the zone or its ring on any date.
    MissingBandError
        The imagery lacks red, nir or swir16.
    """
    from kpgeo.change.detect import days_since_epoch
    from kpgeo.footprints import FOOTPRINT_DEFAULTS

    out = Path(out_dir)
    opts = {**FOOTPRINT_DEFAULTS, **(footprint_options or {})}
    spec, scale, offset = detection_plan(plan)
    gbox = spec.gbox
    names = [zone.id, f"{zone.id}:ring"]
    regions = (zone.geometry, zone.ring(ring_width_m))
    pad = block_alignment(spec, block)
    current = state_store.StateMeta(
        grid=state_store.grid_record(gbox), block=block, pad=pad,
        settings=state_store.settings_digest(params=params, bands=spec.bands, scheme=spec.scheme,
                                             watched_wkb=regions[0].union(regions[1]).wkb),
        acquisitions=acquisitions(plan, item_digests), regions=names,
        decision=state_store.decision_digest(), fields=state_store.stored_fields(params))
    stored, t0, reason = _state_to_continue(out, current, zone=zone, incremental=incremental)
    tdays = days_since_epoch(plan.times)
    tmp = state_store.create_store(out, current, gbox)

    def run(t0: int) -> tuple:
        task = ZoneTask(
            spec=spec, scale=scale, offset=offset, tdays=tdays, t0=t0, params=params,
            regions=regions,
            state_in=str(out / state_store.STORE_NAME) if t0 else None,
            meta_in=stored if t0 else None, state_out=str(tmp), meta_out=current,
            time_chunk=time_chunk, min_confidence=opts["min_confidence"])
        return _run_blocks(
            task, out_dir=out, zone=zone, windows=plan_windows(gbox.shape, block, pad),
            times=plan.times, region_names=names,
            old_counts=np.asarray(stored.clear_counts if t0 else [], "int64"),
            footprint_options={k: opts[k] for k in ("min_area_ha", "closing_radius",
                                                    "clearing_min_area_ha")},
            progress=progress)

    try:
        try:
            fps, rejected, coverage, rasters, counts, pixels = run(t0)
        except state_store.DamagedStateError as exc:  # a chunk of the old state: redo
            t0, reason = 0, str(exc)
            _warn_redo(zone, reason, len(current.acquisitions))
            fps, rejected, coverage, rasters, counts, pixels = run(0)
        current.clear_counts = counts.tolist()
        current.region_pixels = pixels.tolist()
        current.t_last = float(tdays[-1])
        state_store.finish_store(tmp, current)
        state_store.commit(tmp, out)
    except BaseException:
        state_store.discard(tmp)
        raise
    return StreamResult(footprints=fps, rejected=rejected, coverage=coverage, rasters=rasters,
                        n_dates=len(tdays), new_dates=len(tdays) - t0, redo_reason=reason)


def _state_to_continue(out: Path, current: Any, *, zone: Any, incremental: bool
                       ) -> tuple[Any, int, str | None]:
    """Read the zone's stored state: its meta, the dates a run continues from, why not all.

    ``t0`` is 0 (and the reason is logged) when the state cannot be continued.
    """
    stored, why = state_store.read_meta(out / state_store.STORE_NAME)
    t0, reason = state_store.reuse(stored, current) if incremental else (0, None)
    reason = reason or why
    if reason:
        _warn_redo(zone, reason, len(current.acquisitions))
    elif t0:
        log.info("%s: continuing the stored state of %d date(s); %d new date(s)", zone.id, t0,
                 len(current.acquisitions) - t0)
    return stored, t0, reason


def _warn_redo(zone: Any, reason: str, n_dates: int) -> None:
    log.warning("%s: the stored detector state cannot be continued (%s); all %d dates are "
                "processed again", zone.id, reason, n_dates)
