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
(item ids, asset sizes and times, parameters, kpgeo version). A later run skips
zones whose stamp still matches, so a run that was interrupted resumes where it
stopped, and a run after new imagery arrived redoes only the zones whose
imagery changed. :func:`run_pipeline` then merges the zones and writes the
run-level outputs (time series, web map, static maps, bulletin).

Every output is written atomically (:mod:`kpgeo.io`), so an interrupted run
leaves either the previous file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kpgeo._version import __version__
from kpgeo.errors import ConfigError, KpgeoError, NoDataError
from kpgeo.zones import Zone, load_aoi

__all__ = [
    "ZoneJob",
    "ZoneResult",
    "process_zone",
    "RunConfig",
    "load_config",
    "run_zone",
    "run_pipeline",
    "dask_scheduler",
    "ZONE_OUTPUTS",
]

log = logging.getLogger(__name__)

#: Files written per zone into ``OUT/zones/<zone-id>/`` (``done.json`` last).
ZONE_OUTPUTS = (
    "summary.json",
    "coverage.csv",
    "footprints.geojson",
    "footprints.parquet",
    "first_detected.tif",
    "last_active.tif",
    "confidence.tif",
    "state.tif",
)
DONE = "done.json"


@dataclass(frozen=True)
class ZoneJob:
    """One zone of a run and the imagery that covers it."""

    zone: Zone
    items: Path
    """Local STAC ItemCollection JSON."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a monitoring run needs; build with :func:`load_config` or directly."""

    jobs: tuple[ZoneJob, ...]
    name: str = "kpgeo-run"
    ring_width_m: float = 5000.0
    """Width of the watched band just outside each zone, metres."""
    min_area_ha: float = 0.05
    """Minimum mapping unit of footprints, hectares (0.05 ha = 5 px at 10 m: one pit)."""
    period: str = "QS"
    """Time-series period as a pandas offset alias (``MS``, ``QS``, ``YS``)."""
    offline_map: bool = False
    """Write a self-contained web map that needs no internet."""
    change: dict[str, Any] = field(default_factory=dict)
    """Overrides of :class:`kpgeo.change.ChangeParams` fields."""

    def __post_init__(self) -> None:
        if not self.jobs:
            raise ConfigError("a run needs at least one zone ([[zones]] table)")
        ids = [job.zone.id for job in self.jobs]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ConfigError(f"zone(s) listed more than once in the run: {', '.join(repeated)}")
        if not 0 < self.ring_width_m <= 100_000:
            raise ConfigError(
                f"ring_width_m must be in (0, 100000] metres, got {self.ring_width_m!r}"
            )
        if not 0 <= self.min_area_ha <= 100:
            raise ConfigError(f"min_area_ha must be in [0, 100] hectares, got {self.min_area_ha!r}")
        if self.period not in {"MS", "QS", "YS", "M", "Q", "Y"}:
            raise ConfigError(
                f"period must be one of MS, QS, YS (month, quarter, year), got {self.period!r}"
            )
        change_params(self.change)  # raises ConfigError for unknown or out-of-range fields


def change_params(overrides: dict[str, Any]) -> Any:
    """Build :class:`kpgeo.change.ChangeParams` from a dict of overrides, validated."""
    from kpgeo.change import ChangeParams

    try:
        return ChangeParams(**overrides)
    except TypeError as exc:
        raise ConfigError(f"bad [change] parameters: {exc}") from exc


_RUN_KEYS = {
    "name": str,
    "ring_width_m": (int, float),
    "min_area_ha": (int, float),
    "period": str,
    "offline_map": bool,
}
_ZONE_KEYS = {"zone": str, "aoi": str, "items": str}


def _check_table(table: Any, types: dict[str, Any], where: str) -> dict[str, Any]:
    """Check a TOML table has only known keys, each of the expected type."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of key = value pairs, got {table!r}")
    unknown = sorted(set(table) - set(types))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid: {sorted(types)}")
    for key, value in table.items():
        expected = types[key]
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            names = " or ".join(
                t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,))
            )
            raise ConfigError(f"{where}: {key} must be a {names}, got {value!r}")
        if isinstance(value, str) and not value.strip():
            raise ConfigError(f"{where}: {key} is empty")
    return table


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read and validate a run configuration TOML file.

    Relative paths inside the file are relative to the file itself.

    Raises
    ------
    ConfigError
        Unreadable TOML, unknown keys, wrong types or ranges, missing items files,
        unknown zones, repeated zones, bad ``[change]`` parameters; the message
        names the file and the key.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such run configuration file") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    unknown = set(raw) - {"run", "zones", "change"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {sorted(unknown)}; expected [run], [[zones]], [change]"
        )
    run = _check_table(raw.get("run", {}), _RUN_KEYS, f"{path}: [run]")
    zones = raw.get("zones", [])
    if not isinstance(zones, list) or not zones:
        raise ConfigError(
            f"{path}: no [[zones]] entries; add at least one with zone= (or aoi=) and items="
        )
    jobs = []
    for i, entry in enumerate(zones, 1):
        where = f"{path}: [[zones]] entry {i}"
        _check_table(entry, _ZONE_KEYS, where)
        if "items" not in entry or ("zone" in entry) == ("aoi" in entry):
            raise ConfigError(f"{where}: needs items= and exactly one of zone= or aoi=")
        items = (path.parent / entry["items"]).resolve()
        if not items.is_file():
            raise ConfigError(f"{where}: items file {items} does not exist")
        aoi = entry["zone"] if "zone" in entry else path.parent / entry["aoi"]
        try:
            zone = load_aoi(aoi)
        except KpgeoError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        jobs.append(ZoneJob(zone=zone, items=items))
    change = raw.get("change", {})
    if not isinstance(change, dict):
        raise ConfigError(f"{path}: [change] must be a table of ChangeParams fields")
    try:
        return RunConfig(
            jobs=tuple(jobs),
            name=run.get("name", path.stem),
            ring_width_m=float(run.get("ring_width_m", 5000.0)),
            min_area_ha=float(run.get("min_area_ha", 0.05)),
            period=run.get("period", "QS"),
            offline_map=run.get("offline_map", False),
            change=dict(change),
        )
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


@contextlib.contextmanager
def dask_scheduler(spec: str | None = None) -> Any:
    """Run the enclosed dask computations on the scheduler named by ``spec``.

    Parameters
    ----------
    spec
        ``None`` or ``"threads"`` (default: threads in this process),
        ``"local"`` (a :class:`distributed.LocalCluster` of one single-threaded
        worker process per core), or the address of a running Dask scheduler
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
    if spec == "local":
        with (
            LocalCluster(
                n_workers=os.cpu_count() or 1, threads_per_worker=1, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
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
            f"unknown scheduler {spec!r}; use 'threads', 'local' or a 'tcp://host:port' address"
        )


def _fingerprint(job: ZoneJob, config: RunConfig) -> str:
    """Hash of everything a zone's result depends on: imagery, zone, parameters, version."""
    from kpgeo.items import read_items

    digest = hashlib.sha256()
    for item in sorted(read_items(job.items), key=lambda it: it.id):
        # the item's metadata (dates, scaling, geometry, hrefs) and its files' size and mtime
        digest.update(json.dumps(item.to_dict(), sort_keys=True, default=str).encode())
        for key in sorted(item.assets):
            href = item.assets[key].get_absolute_href() or item.assets[key].href
            try:
                st = os.stat(href)
                digest.update(f"{key}:{st.st_size}:{st.st_mtime_ns}".encode())
            except OSError:
                digest.update(f"{key}:{href}".encode())
    settings = {
        "zone": job.zone.id,
        "zone_wkb": hashlib.sha256(job.zone.geometry.wkb).hexdigest(),
        "ring_width_m": config.ring_width_m,
        "min_area_ha": config.min_area_ha,
        "change": config.change,
        "kpgeo": __version__,
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


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


def process_zone(
    items: str | os.PathLike,
    zone: Zone,
    *,
    out_dir: str | os.PathLike,
    ring_width_m: float = 5000.0,
    min_area_ha: float = 0.05,
    params: Any = None,
    progress: bool = False,
) -> ZoneResult:
    """Detect mining in a zone and the ring just outside it, and write the zone's files.

    Loads the cube over the zone ∪ ring, measures clear coverage, refuses an
    all-cloud series, detects footprints and writes ``ZONE_OUTPUTS`` into ``out_dir``.
    This is what ``kpgeo detect`` and each zone of ``kpgeo run`` do.

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

    Raises
    ------
    NoDataError
        No clear observation of the zone or its ring on any date.
    """
    from kpgeo import io
    from kpgeo.cube import load_cube
    from kpgeo.footprints import detect_footprints, write_detection
    from kpgeo.summary import cube_summary
    from kpgeo.timeseries import clear_coverage, zone_regions

    watched = zone.geometry.union(zone.ring(ring_width_m))
    cube = load_cube(items, aoi=watched)
    with _progress_bar(progress):
        coverage = clear_coverage(cube, zone_regions([zone], ring_width_m=ring_width_m))
        if not (coverage["clear_fraction"].fillna(0) > 0).any():
            raise NoDataError(
                f"{zone.id}: no clear observation of the zone or its ring in {items} "
                f"({cube.sizes['time']} dates, all cloudy or masked); nothing to detect"
            )
        summary = cube_summary(cube, coverage, zone=zone)
        change, footprints = detect_footprints(cube, zone, params=params, min_area_ha=min_area_ha)
    write_detection(change, footprints, out_dir, overwrite=True)
    io.write_table(coverage, Path(out_dir) / "coverage.csv")
    outside = ~footprints["inside_zone"].astype(bool)
    summary |= {
        "footprints": int(len(footprints)),
        "footprint_area_ha": round(float(footprints["area_ha"].sum()), 2),
        "footprints_outside_zone": int(outside.sum()),
    }
    io.write_json(summary, Path(out_dir) / "summary.json")
    return ZoneResult(summary=summary, footprints=footprints, coverage=coverage, cube=cube)


def _progress_bar(enabled: bool) -> Any:
    """Dask progress bar on stderr for computations of the local schedulers."""
    if not enabled:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0)


def run_zone(
    job: ZoneJob, *, config: RunConfig, out_dir: str | os.PathLike, force: bool = False
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
        Recompute even when an up-to-date ``done.json`` stamp exists.

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
    fingerprint = _fingerprint(job, config)
    if not force and _is_done(zone_dir, fingerprint):
        log.info("%s: up to date, skipped", job.zone.id)
        summary = json.loads((zone_dir / "summary.json").read_text())
        return summary | {"skipped": True}
    (zone_dir / DONE).unlink(missing_ok=True)
    result = process_zone(
        job.items,
        job.zone,
        out_dir=zone_dir,
        ring_width_m=config.ring_width_m,
        min_area_ha=config.min_area_ha,
        params=change_params(config.change),
    )
    io.write_json(
        {"fingerprint": fingerprint, "kpgeo": __version__, "config": _config_record(config)},
        zone_dir / DONE,
    )
    return result.summary


def _config_record(config: RunConfig) -> dict:
    record = asdict(config)
    record["jobs"] = [{"zone": j.zone.id, "items": str(j.items)} for j in config.jobs]
    return record


def run_pipeline(
    config: RunConfig, out_dir: str | os.PathLike, *, force: bool = False, report: bool = True
) -> dict:
    """Run every zone of ``config`` (resuming finished ones) and write the run-level outputs.

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

    Returns
    -------
    dict
        ``zones`` (list of zone summaries; a zone that failed has ``status: "failed"``
        and an ``error`` message, and is retried by the next run) and ``outputs``
        (name -> path).

    Raises
    ------
    KpgeoError
        When no zone could be processed (the error of the single zone, if one).
    """
    import geopandas as gpd
    import pandas as pd

    from kpgeo import io

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    done_jobs = []
    failures = []
    for job in config.jobs:
        try:
            summaries.append(run_zone(job, config=config, out_dir=out, force=force))
            done_jobs.append(job)
        except KpgeoError as exc:  # one zone's bad imagery must not stop the others
            log.error("%s: %s", job.zone.id, exc)
            failures.append(exc)
            summaries.append(
                {
                    "zone": job.zone.id,
                    "name": job.zone.name,
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
    if not done_jobs:
        if len(failures) == 1:
            raise failures[0]
        raise KpgeoError("no zone of the run could be processed: " + "; ".join(map(str, failures)))

    zone_dirs = [out / "zones" / job.zone.id for job in done_jobs]
    footprints = pd.concat(
        [gpd.read_parquet(d / "footprints.parquet").to_crs(4326) for d in zone_dirs],
        ignore_index=True,
    )
    footprints = gpd.GeoDataFrame(footprints, geometry="geometry", crs="EPSG:4326")
    coverage = pd.concat(
        [pd.read_csv(d / "coverage.csv", parse_dates=["date"]) for d in zone_dirs],
        ignore_index=True,
    )
    outputs = {
        "footprints.geojson": io.write_vector(footprints, out / "footprints.geojson"),
        "footprints.parquet": io.write_vector(footprints, out / "footprints.parquet"),
        "coverage.csv": io.write_table(coverage, out / "coverage.csv"),
    }
    if report:
        from kpgeo.report import write_report

        outputs |= write_report(
            out,
            footprints=footprints,
            coverage=coverage,
            zones=[job.zone for job in done_jobs],
            items={job.zone.id: job.items for job in done_jobs},
            period=config.period,
            ring_width_m=config.ring_width_m,
            offline=config.offline_map,
            title=config.name,
        )
    io.write_json({"run": config.name, "zones": summaries, "outputs": outputs}, out / "run.json")
    return {"zones": summaries, "outputs": outputs}
