"""Batch monitoring runs: every zone of a run, end to end, resumable.

A run is described by a small TOML file (see ``pipelines/*.toml``)::

    [run]
    name = "sample-tiles"
    ring_width_m = 5000      # leakage watch: band just outside each zone
    min_area_ha = 0.1        # minimum mapping unit of footprints
    period = "QS"            # time-series period (pandas offset alias)

    [[zones]]
    zone = "caf-berberati"   # zone id or name (or: aoi = "my_polygon.geojson")
    items = "../sample_tiles/caf-berberati/items.json"   # relative to the TOML file

For each zone :func:`run_zone` loads the cube over the zone and its outside
ring (:mod:`kpgeo.cube`), detects footprints (:mod:`kpgeo.change`,
:mod:`kpgeo.footprints`), measures clear-observation coverage
(:mod:`kpgeo.timeseries`) and writes everything into ``OUT/zones/<zone-id>/``,
finishing with a ``done.json`` stamp that records a fingerprint of the inputs
(the items' metadata, the *content* of every local asset file, the zone, the
parameters, the kpgeo version; see :func:`asset_identity`). A later run skips
zones whose stamp still matches, so a run that was interrupted resumes where it
stopped, and a run after new imagery arrived redoes only the zones whose
imagery changed. :func:`run_pipeline` then merges the zones and writes the
run-level outputs (time series, web map, static maps, bulletin) all together,
with the site register and the run's tables in ``OUT/kpgeo.gpkg`` (and a
PostGIS store) and a STAC catalog (:mod:`kpgeo.inventory`; zones without
``items =`` get their scenes from the ``[search]`` table there too).

One run at a time writes into an output folder (its ``.kpgeo.lock``, see
:func:`kpgeo.io.output_dir`). Every output is written atomically
(:mod:`kpgeo.io`), so an interrupted run leaves either the previous file or
the new one, never half of one; its temporary files are removed by the next
run. A zone that fails, for any reason, fails alone: the others complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kpgeo._version import __version__
from kpgeo.errors import (
    ConfigError,
    KpgeoError,
    OutputWriteError,
    RunLockedError,
)
from kpgeo.run_config import RunConfig, ZoneJob, change_params, load_config
from kpgeo.zones import Zone

__all__ = [
    "ZoneJob",
    "ZoneResult",
    "process_zone",
    "RunConfig",
    "load_config",
    "run_zone",
    "run_pipeline",
    "dask_scheduler",
    "asset_identity",
    "item_digests",
    "ZONE_OUTPUTS",
]

log = logging.getLogger(__name__)

#: Files written per zone into ``OUT/zones/<zone-id>/`` (``done.json`` last).
ZONE_OUTPUTS = (
    "summary.json",
    "coverage.csv",
    "footprints.geojson",
    "footprints.parquet",
    "rejected.geojson",
    "first_detected.tif",
    "last_active.tif",
    "confidence.tif",
    "state.tif",
)
DONE = "done.json"
#: Cache of asset content hashes (:func:`asset_identity`) and checked headers
#: (:func:`kpgeo.items.inspect_assets`) inside a run's output folder.
HASH_CACHE = ".kpgeo-hashes.json"
#: dask settings of the local cluster's worker processes: glibc's own malloc tuning instead of
#: distributed's ``MALLOC_TRIM_THRESHOLD_=65536``. Setting that variable turns off glibc's
#: adaptive mmap threshold, so every block array (> 128 kB) was a fresh mmap: 9.5 M page
#: faults and 29 s of system time in a 1,000 km² run instead of 0.8 M and 7 s (threads).
LOCAL_WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@contextlib.contextmanager
def dask_scheduler(spec: str | None = None) -> Any:
    """Run the enclosed dask computations on the scheduler named by ``spec``.

    Parameters
    ----------
    spec
        ``None`` or ``"threads"`` (default: threads in this process),
        ``"local"`` (a :class:`distributed.LocalCluster` of one single-threaded
        worker process per core; ``"local:N"``: N worker processes), or the
        address of a running Dask scheduler
        (``"tcp://host:8786"``), so a run can use a cluster with a shared store.
        Tasks receive file paths, never open datasets, so they run on any worker
        that sees the same files.
    """
    if spec in (None, "", "threads"):
        import dask

        with dask.config.set(scheduler="threads"):
            yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError(
            f"scheduler {spec!r} needs dask.distributed: pip install 'kpgeo[distributed]'"
        ) from exc
    workers = _local_workers(spec)
    if workers:
        import dask

        quiet = logging.getLogger("distributed").getEffectiveLevel()
        with (
            dask.config.set(LOCAL_WORKER_ENVIRON),
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                dashboard_address=None,
                silence_logs=max(quiet, logging.WARNING),
            ) as cluster,
            Client(cluster) as client,
        ):
            from kpgeo.console import quiet_workers

            quiet_workers(client)
            log.info("dask: local cluster of %d worker process(es)", len(cluster.workers))
            yield client
    elif "://" in spec:
        try:
            client = Client(spec, timeout="20s")
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {spec}: {exc}") from exc
        with client:
            yield client
    else:
        raise ConfigError(
            f"unknown scheduler {spec!r}; use 'threads', 'local', 'local:N' or a "
            "'tcp://host:port' address"
        )


def _local_workers(spec: str) -> int:
    """Worker processes of a ``local`` / ``local:N`` scheduler spec (0: not a local cluster)."""
    if spec == "local":
        return os.cpu_count() or 1
    name, _, count = spec.partition(":")
    if name != "local" or "//" in count:
        return 0
    if not count.isdigit() or not 1 <= int(count) <= 1024:
        raise ConfigError(f"scheduler {spec!r}: local:N needs a number of workers 1..1024")
    return int(count)


_HASH_PREFIX = "xxh3-128:"


def asset_identity(href: str, cache: dict[str, list] | None = None) -> str:
    """Content identity of one asset file, for the resume fingerprint.

    A local file is identified by the XXH3-128 hash of its bytes (only the files
    a run reads are hashed: the detection bands and the mask). XXH3 is not a
    cryptographic hash, and need not be: it tells accidental changes (a file
    re-downloaded, reprocessed or cut short) from none at ~7 GB/s a core, where
    SHA-256 runs at ~1 GB/s and cost a tenth of a first zone run. The hash is cached
    (``cache``: path -> ``[size, mtime_ns, ctime_ns, inode, digest]``) and reused
    while the file's size, modification time, *change* time and inode are all
    unchanged. The change time (ctime) is set by the kernel on every write and
    metadata change and cannot be set back (not even by ``os.utime``), so
    rewriting bytes while keeping size and mtime is seen, and a plain ``touch``
    costs one re-read of that file, not a recomputation. A remote asset
    (``https://``, ``s3://``) is identified by its href; its item's metadata
    (``file:checksum``, ``updated``, ...) is part of the fingerprint too, and no
    request is made.

    Parameters
    ----------
    href
        Local path or URL.
    cache
        Mutable mapping updated in place (the run keeps it in ``OUT/.kpgeo-hashes.json``).

    Returns
    -------
    str
        ``"xxh3-128:<hex>"``, ``"url:<href>"`` or ``"missing:<href>"``.
    """
    from kpgeo.asset_headers import is_remote, local_path

    if is_remote(href):
        return f"url:{href}"
    path = os.path.abspath(local_path(href))
    try:
        st = os.stat(path)
    except OSError:
        return f"missing:{href}"
    key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    hit = (cache or {}).get(path)
    if hit is not None and list(hit[:4]) == key and str(hit[4]).startswith(_HASH_PREFIX):
        return hit[4]  # (a digest of an older kpgeo, SHA-256, is made again)
    try:
        digest = _HASH_PREFIX + _file_hash(path)
    except OSError:
        return f"unreadable:{href}"
    if cache is not None:
        cache[path] = [*key, digest]
    return digest


def _file_hash(path: str) -> str:
    """Return the XXH3-128 hex digest of a file's bytes (read by ``hashlib.file_digest``)."""
    import xxhash

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, xxhash.xxh3_128).hexdigest()


def _load_hash_cache(out: Path) -> dict[str, list]:
    try:
        cache = json.loads((out / HASH_CACHE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _assets_read(item: Any) -> set[str]:
    """Asset keys of an item that a zone run reads: the detection bands and the mask.

    The others (swir22, thumbnails, metadata files...) cannot change a result,
    so their content is not hashed; their hrefs are in the item's metadata.
    """
    from kpgeo.items import band_assets, mask_band
    from kpgeo.stream import DETECTION_BANDS

    found = band_assets(item)
    return {found[b] for b in (*DETECTION_BANDS, mask_band(found)) if b in found}


def _asset_identities(items: list[Any], cache: dict[str, list] | None) -> dict[str, str]:
    """Href -> :func:`asset_identity` of every asset a run reads (hashed in a few threads)."""
    from concurrent.futures import ThreadPoolExecutor

    hrefs = sorted({a.get_absolute_href() or a.href for item in items
                    for key, a in item.assets.items() if key in _assets_read(item)})
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(hrefs, pool.map(lambda h: asset_identity(h, cache), hrefs),
                        strict=True))


def _item_bytes(item: Any, identities: dict[str, str]) -> Iterator[bytes]:
    """Yield what identifies an item: its metadata (dates, scaling, hrefs...), its files read."""
    yield json.dumps(item.to_dict(), sort_keys=True, default=str).encode()
    for key in sorted(item.assets):
        href = item.assets[key].get_absolute_href() or item.assets[key].href
        yield f"{key}:{identities.get(href, 'not-read')}".encode()


def item_digests(items: list[Any], cache: dict[str, list] | None = None) -> dict[str, str]:
    """Item id -> SHA-256 of its metadata and the content of its asset files.

    A stored detector state is continued only while the items of every date it
    holds keep their digests (:mod:`kpgeo.state_store`): new bytes in an old
    date's file, or an edited item, redo the zone.
    """
    identities = _asset_identities(items, cache)
    out = {}
    for item in items:
        digest = hashlib.sha256()
        for chunk in _item_bytes(item, identities):
            digest.update(chunk)
        out[item.id] = digest.hexdigest()
    return out


def _fingerprint(job: ZoneJob, config: RunConfig, cache: dict[str, list] | None = None) -> str:
    """Hash of everything a zone's result depends on: imagery, zone, parameters, code."""
    from kpgeo.items import read_items
    from kpgeo.state_store import decision_digest

    start = time.perf_counter()
    items = sorted(read_items(job.items), key=lambda it: it.id)
    identities = _asset_identities(items, cache)
    digest = hashlib.sha256()
    for item in items:
        for chunk in _item_bytes(item, identities):
            digest.update(chunk)
    log.debug("%s: fingerprint of %d item(s), %d asset(s) in %.1f s", job.zone.id, len(items),
              len(identities), time.perf_counter() - start)
    settings = {
        "zone": job.zone.id,
        "zone_wkb": hashlib.sha256(job.zone.geometry.wkb).hexdigest(),
        "ring_width_m": config.ring_width_m,
        "min_area_ha": config.min_area_ha,
        "change": config.change,
        "kpgeo": __version__,
        "decision": decision_digest(),  # the detector's own code, even at one version number
        "footprints": footprint_code_digest(),  # and the object rules (the state is kept)
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def footprint_code_digest() -> str:
    """SHA-256 of the code that makes footprints from the decision (mask, object tests).

    In the zone fingerprint, so a zone is not skipped as up to date when the
    object rules changed at the same version number; its stored detector state
    is still continued (the state depends on the decision only).
    """
    import kpgeo.footprint_kinds
    import kpgeo.footprint_mask
    import kpgeo.footprints
    from kpgeo.state_store import source_digest

    return source_digest(m.__file__ for m in (kpgeo.footprints, kpgeo.footprint_mask,
                                              kpgeo.footprint_kinds))


def _is_done(zone_dir: Path, fingerprint: str) -> bool:
    stamp = zone_dir / DONE
    if not stamp.is_file():
        return False
    try:
        done = json.loads(stamp.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return done.get("fingerprint") == fingerprint and all(
        (zone_dir / n).is_file() for n in ZONE_OUTPUTS
    )


@dataclass(frozen=True)
class ZoneResult:
    """What :func:`process_zone` produced for one zone (also written to its folder)."""

    summary: dict[str, Any]
    footprints: Any
    """GeoDataFrame of footprints (cube CRS)."""
    coverage: Any
    """DataFrame of clear-observation coverage per date for the zone and its ring."""
    cube: Any
    """The lazy cube the results came from (for composites in reports)."""
    new_dates: int | None = None
    """Dates read in this run (the others came from the stored detector state)."""
    redo_reason: str | None = None
    """Why a stored detector state could not be continued, if one was found."""


def process_zone(
    items: str | os.PathLike,
    zone: Zone,
    *,
    out_dir: str | os.PathLike,
    ring_width_m: float = 5000.0,
    min_area_ha: float = 0.05,
    params: Any = None,
    progress: bool = False,
    incremental: bool = True,
    hash_cache: dict[str, list] | None = None,
    block: int | None = None,
    time_chunk: int | None = None,
) -> ZoneResult:
    """Detect mining in a zone and the ring just outside it, and write the zone's files.

    Plans the cube over the zone ∪ ring (item headers only), then streams it
    block by block (:func:`kpgeo.stream.stream_zone`): bounded memory for any
    zone size and number of dates, the six change rasters written as COGs, the
    detector state kept in ``out_dir/state.zarr`` so that a later run with new
    dates processes only those (same result as a run over all dates). Refuses
    an all-cloud series; writes ``ZONE_OUTPUTS`` into ``out_dir``. This is what
    ``kpgeo detect`` and each zone of ``kpgeo run`` do; it runs on the active
    Dask scheduler (:func:`dask_scheduler`).

    Parameters
    ----------
    items
        Local STAC ItemCollection JSON.
    zone
        The zone (see :func:`kpgeo.zones.load_aoi`).
    out_dir
        Folder for the zone's outputs (created).
    ring_width_m
        Width of the watched band just outside the zone, metres.
    min_area_ha
        Minimum mapping unit of footprints, hectares.
    params
        :class:`kpgeo.change.ChangeParams`; default parameters when None.
    progress
        Show a progress bar on stderr while computing.
    incremental
        Continue the stored detector state when it can be (same parameters,
        kpgeo version and grid, the dates it holds unchanged); False: every date
        from scratch.
    hash_cache
        Asset content-hash and header cache (see :func:`asset_identity`,
        :func:`kpgeo.items.inspect_assets`), updated in place.
    block, time_chunk
        Block side in pixels and dates read at once (memory, not results;
        defaults :data:`kpgeo.stream.DEFAULT_BLOCK`, :data:`kpgeo.stream.DEFAULT_TIME_CHUNK`).

    Raises
    ------
    NoDataError
        No clear observation of the zone or its ring on any date.
    """
    from kpgeo import io
    from kpgeo.console import step
    from kpgeo.cube import cube_from_plan, plan_cube
    from kpgeo.items import norm_items
    from kpgeo.stream import DEFAULT_BLOCK, DEFAULT_TIME_CHUNK, stream_zone
    from kpgeo.summary import cube_summary

    out = io.make_dir(out_dir)
    watched = zone.geometry.union(zone.ring(ring_width_m))
    with step(f"{zone.id}: reading item headers"):
        item_list = norm_items(items)
        plan = plan_cube(item_list, aoi=watched, header_cache=hash_cache)
        digests = item_digests(item_list, hash_cache)
    gbox = plan.geobox
    log.info(
        "%s: %d date(s), %s x %s px at %g m in %s, bands %s",
        zone.id, len(plan.times), gbox.shape[0], gbox.shape[1],
        plan.attrs.get("resolution", float("nan")), plan.attrs.get("crs"),
        plan.attrs.get("bands"),
    )  # fmt: skip
    with step(f"{zone.id}: change detection"):  # rasters, state and footprints too
        result = stream_zone(
            plan, zone, out_dir=out, ring_width_m=ring_width_m,
            params=change_params({}) if params is None else params, item_digests=digests,
            incremental=incremental, block=block or DEFAULT_BLOCK,
            time_chunk=time_chunk or DEFAULT_TIME_CHUNK,
            footprint_options={"min_area_ha": min_area_ha}, progress=progress,
        )
    log.info("%s: %d of %d date(s) read%s", zone.id, result.new_dates, result.n_dates,
             "" if result.new_dates == result.n_dates else " (the others from the stored state)")
    cube = cube_from_plan(plan)
    summary = _write_zone_files(out, result, cube_summary(cube, result.coverage, zone=zone))
    return ZoneResult(summary=summary, footprints=result.footprints, coverage=result.coverage,
                      cube=cube, new_dates=result.new_dates, redo_reason=result.redo_reason)


def _write_zone_files(out: Path, result: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """Write a streamed zone's vectors, coverage and summary (with its footprint totals)."""
    from kpgeo import io

    footprints = result.footprints
    io.write_vector(footprints, out / "footprints.geojson")
    io.write_vector(footprints, out / "footprints.parquet")
    io.write_vector(result.rejected, out / "rejected.geojson")
    io.write_table(result.coverage, out / "coverage.csv")
    outside = ~footprints["inside_zone"].astype(bool)
    summary = summary | {
        "footprints": int(len(footprints)),
        "footprint_area_ha": round(float(footprints["area_ha"].sum()), 2),
        "footprints_outside_zone": int(outside.sum()),
    }
    io.write_json(summary, out / "summary.json")
    return summary


def run_zone(
    job: ZoneJob,
    *,
    config: RunConfig,
    out_dir: str | os.PathLike,
    force: bool = False,
    progress: bool = False,
    hash_cache: dict[str, list] | None = None,
) -> dict:
    """Process one zone of a run into ``out_dir/zones/<zone-id>/``; skip it when already done.

    Parameters
    ----------
    job
        The zone and its imagery.
    config
        Run settings (ring width, minimum mapping unit, change parameters).
    out_dir
        Run output folder.
    force
        Recompute even when an up-to-date ``done.json`` stamp exists, from the
        first date (the stored detector state is not continued).
    progress
        Draw progress bars on stderr.
    hash_cache
        Asset content-hash cache (see :func:`asset_identity`), updated in place.

    Returns
    -------
    dict
        The zone summary (also in ``summary.json``), with ``"skipped": True``
        when an up-to-date result was found.

    Raises
    ------
    NoDataError
        No clear observation of the zone or its ring on any date (all cloud, or
        imagery that misses the zone); nothing is stamped done, so the zone is
        retried on the next run.
    """
    from kpgeo import io

    zone_dir = Path(out_dir) / "zones" / job.zone.id
    fingerprint = _fingerprint(job, config, hash_cache)
    if not force and _is_done(zone_dir, fingerprint):
        with contextlib.suppress(OSError, ValueError):  # unreadable summary: redo the zone
            summary = json.loads((zone_dir / "summary.json").read_text(encoding="utf-8"))
            log.info("%s: up to date (same imagery and settings), skipped", job.zone.id)
            return summary | {"skipped": True}
    try:
        (zone_dir / DONE).unlink(missing_ok=True)
    except OSError as exc:
        raise io.output_error(zone_dir / DONE, exc) from exc
    result = process_zone(
        job.items,
        job.zone,
        out_dir=zone_dir,
        ring_width_m=config.ring_width_m,
        min_area_ha=config.min_area_ha,
        params=change_params(config.change),
        progress=progress,
        incremental=not force,
        hash_cache=hash_cache,
    )
    io.write_json(
        {"fingerprint": fingerprint, "kpgeo": __version__, "config": _config_record(config),
         "dates_read": result.new_dates, "state_not_continued": result.redo_reason},
        zone_dir / DONE,
    )
    return result.summary | {"dates_read": result.new_dates}


def _config_record(config: RunConfig) -> dict:
    record = asdict(config)
    record["jobs"] = [{"zone": j.zone.id, "items": str(j.items)} for j in config.jobs]
    return record


def run_pipeline(
    config: RunConfig,
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    report: bool = True,
    progress: bool = False,
) -> dict:
    """Run every zone of ``config`` (resuming finished ones) and write the run-level outputs.

    The output folder is locked for the run (:func:`kpgeo.io.output_dir`:
    another run into it is refused) and cleared of temporary files an
    interrupted run left. A zone that fails, for whatever reason, is reported
    and retried by the next run; the other zones still complete. The run-level
    outputs are written together: all of them are replaced, or none.

    Parameters
    ----------
    config
        The run (see :func:`load_config`).
    out_dir
        Output folder; per-zone results go to ``out_dir/zones/<zone-id>/``.
    force
        Recompute zones even when their results are up to date.
    report
        Also write the time series, web map, static maps and bulletin.
    progress
        Draw progress bars on stderr (per zone and step).

    Returns
    -------
    dict
        ``zones`` (list of zone summaries; a zone that failed has ``status: "failed"``
        and an ``error`` message, and is retried by the next run) and ``outputs``
        (name -> path).

    Raises
    ------
    RunLockedError
        Another run is writing into ``out_dir``.
    OutputWriteError
        ``out_dir`` cannot be written (read-only, full, a file in the way...); the
        outputs of earlier runs are left as they were.
    KpgeoError
        When no zone could be processed (the error of the single zone, if one).
    """
    from kpgeo import io
    from kpgeo.inventory import searched_job

    with io.output_dir(out_dir) as out:
        cache = _load_hash_cache(out)
        saved = dict(cache)
        summaries, done_jobs, failures = [], [], []
        for i, job in enumerate(config.jobs, 1):
            log.info("zone %d/%d: %s (%s), items %s", i, len(config.jobs), job.zone.id,
                     job.zone.name, job.items)
            try:
                job = searched_job(job, config, out)  # [search]: the zone's scenes, saved
                summaries.append(
                    run_zone(job, config=config, out_dir=out, force=force, progress=progress,
                             hash_cache=cache)
                )
                done_jobs.append(job)
            except (RunLockedError, OutputWriteError):
                raise  # the output folder itself is unusable: no other zone would do better
            except Exception as exc:  # one zone's failure, whatever it is, must not stop the others
                failures.append(exc)
                summaries.append(_failed_zone(job, exc))
            finally:
                if cache != saved:
                    io.write_json(cache, out / HASH_CACHE)
                    saved = dict(cache)
        if not done_jobs:
            if len(failures) == 1 and isinstance(failures[0], KpgeoError):
                raise failures[0]
            raise KpgeoError(
                "no zone of the run could be processed: "
                + "; ".join(s["error"] for s in summaries)
            )
        outputs = _write_run_outputs(out, config, done_jobs, summaries, report=report,
                                     progress=progress)
    return {"zones": summaries, "outputs": outputs}


def _failed_zone(job: ZoneJob, exc: Exception) -> dict:
    """Summary of a zone that failed; logs the cause (the traceback at -vv)."""
    if isinstance(exc, KpgeoError):
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = (
            f"unexpected {type(exc).__name__}: {exc} (a kpgeo or library bug, or an input "
            "kpgeo does not check yet; run with -vv for the traceback and report it)"
        )
    log.info("%s: failed, %s", job.zone.id, error)
    log.debug("%s: traceback of the failure", job.zone.id, exc_info=exc)
    return {"zone": job.zone.id, "name": job.zone.name, "status": "failed", "error": error}


def _write_run_outputs(
    out: Path,
    config: RunConfig,
    done_jobs: list[ZoneJob],
    summaries: list[dict],
    *,
    report: bool,
    progress: bool,
) -> dict[str, Path]:
    """Merge the finished zones and write the run-level outputs, all or none."""
    import pandas as pd

    from kpgeo import inventory as inv
    from kpgeo import io
    from kpgeo.console import step

    zone_dirs = [out / "zones" / job.zone.id for job in done_jobs]
    sites = inv.update_sites(out, config, done_jobs)  # site register, footprints with site ids
    footprints = sites.footprints
    coverage = pd.concat(
        [pd.read_csv(d / "coverage.csv", parse_dates=["date"]) for d in zone_dirs],
        ignore_index=True,
    )
    with (
        step("run: time series, maps and bulletin", progress=progress),
        io.staging_dir(out, last=("run.json",)) as stage,
    ):
        written = {
            "footprints.geojson": io.write_vector(footprints, stage / "footprints.geojson"),
            "footprints.parquet": io.write_vector(footprints, stage / "footprints.parquet"),
            "coverage.csv": io.write_table(coverage, stage / "coverage.csv"),
        }
        if report:
            from kpgeo.area import sheet_paths
            from kpgeo.report import left_out_objects, write_report

            written |= write_report(
                stage,
                footprints=footprints,
                coverage=coverage,
                zones=[job.zone for job in done_jobs],
                items={job.zone.id: job.items for job in done_jobs},
                period=config.period,
                ring_width_m=config.ring_width_m,
                offline=config.offline_map,
                title=config.name,
                samples=sheet_paths(out),
                production=config.production,
                exports=config.exports,
                register=sites.register,
                left_out=left_out_objects(out),
            )
        written |= inv.write_stores(stage, config, sites)  # kpgeo.gpkg (+ PostGIS), all or none
        outputs = {name: out / Path(path).name for name, path in written.items()}
        io.write_json(
            {"run": config.name, "zones": summaries, "outputs": outputs}, stage / "run.json"
        )
    outputs["catalog.json"] = inv.write_catalog(out, config, done_jobs, sites)
    return outputs
