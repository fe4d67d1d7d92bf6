"""Report-ready outputs of a run: time series, web map, static maps and bulletin.

:func:`write_report` is the one call that ``kpgeo report``, ``kpgeo run`` and
pipelines use: from footprints (+ clear coverage, + optionally imagery for
true-colour composites) it writes into a directory

* ``timeseries.csv`` / ``timeseries.csv-metadata.json`` (its data dictionary)
  / ``timeseries.parquet`` / ``timeseries.png`` (:mod:`kpgeo.timeseries`),
* ``map.html`` (:mod:`kpgeo.webmap`; Leaflet inlined, no tiles with ``offline=True``),
* ``map_<zone id>.png`` (:mod:`kpgeo.staticmap`),
* ``bulletin.html``: a self-contained per-run bulletin (images inlined as
  base64) rendered by Jinja2 with autoescaping, so zone names and other data
  are always HTML-escaped.

With a labelled sample (``kpgeo sample``; ``samples=``) the bulletin gives each
zone's error-adjusted area ("mapped X ha; estimated Y ha ± Z (95 % CI)"), the
time series gains its columns and the web map a layer of the sample units; with
production parameters or KP export figures (``production=``, ``exports=``) the
bulletin sets production capacity beside the exports and flags years whose
exports exceed it (:mod:`kpgeo.estimates` gathers both). Without them the
outputs are the plain ones, and the bulletin says in one line how to get an
area estimate.

One palette colours the periods of first detection on every map of the run
(:func:`kpgeo.staticmap.period_palette` over all periods of the time series).
Before/after views (see :func:`zone_compare_dates`) are medians of a few clear
images, not of long periods, so that they show the change.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kpgeo.bulletin import render_bulletin
from kpgeo.errors import ConfigError

__all__ = [
    "REPORT_OUTPUTS",
    "write_report",
    "left_out_objects",
    "render_bulletin",
    "zone_file_stem",
    "zone_compare_dates",
]

log = logging.getLogger(__name__)

#: fixed-name outputs of :func:`write_report` (plus one ``map_<zone>.png`` per zone)
REPORT_OUTPUTS = (
    "timeseries.csv",
    "timeseries.csv-metadata.json",
    "timeseries.parquet",
    "timeseries.png",
    "map.html",
    "bulletin.html",
)


def zone_file_stem(zone_id: str) -> str:
    """File-name-safe form of a zone id (``map_<stem>.png``)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(zone_id)).strip("._")
    return stem or "zone"


def left_out_objects(folder: str | os.PathLike) -> Any:
    """Read the ``rejected.geojson`` of a zone folder or of every zone of a run (None: none)."""
    import geopandas as gpd
    import pandas as pd

    folder = Path(folder)
    paths = [p for p in [folder / "rejected.geojson",
                         *sorted(folder.glob("zones/*/rejected.geojson"))] if p.is_file()]
    parts = [gpd.read_file(p) for p in paths]
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)


def _counted_sites(footprints: Any) -> tuple[Any, Any]:
    """Split footprints into (counted, rejected): rejected sites leave totals and default layers."""
    if "triage_status" not in footprints.columns:
        return footprints, None
    from kpgeo.register import split_rejected

    return split_rejected(footprints)


#: longest side (px) of the imagery read for maps and overlays (:func:`true_colour`'s max_size)
MAP_MAX_PX = 2048
#: map cubes: one date per chunk, so a composite of a few dates reads only those
_MAP_CHUNKS = {"time": 1, "y": 512, "x": 512}
#: full-resolution cubes (footprint chips): small chunks of all dates, so the few
#: windows around footprints read little and the task graph stays small
_CHIP_CHUNKS = {"time": -1, "y": 256, "x": 256}


def _norm_cubes(zones: list[Any], cube: Any, items: Any, *, ring_width_m: float
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cubes per zone id (a given cube or dict, else lazily loaded from items), and map cubes.

    The map cube of a zone loaded from items is read at a coarser pixel (whole
    multiples of the native one, from the files' overviews) so that its longest
    side is at most :data:`MAP_MAX_PX`, one date per chunk: the composites of the
    maps and the web map overlays are never larger, and the report's memory
    stays flat with zone size. Footprint chips use the full-resolution cube
    (small windows of it).
    """
    out: dict[str, Any] = {}
    maps: dict[str, Any] = {}
    if cube is not None:
        if isinstance(cube, Mapping) and not hasattr(
            cube, "data_vars"
        ):  # a Dataset is a Mapping too
            out.update({str(k): v for k, v in cube.items()})
        else:
            out.update({str(z.id): cube for z in zones})
    if items is not None:
        from kpgeo.cube import cube_from_plan, plan_cube

        per_zone = items if isinstance(items, Mapping) else {str(z.id): items for z in zones}
        for zone in zones:
            zid = str(zone.id)
            if zid in out or zid not in per_zone:
                continue
            headers: dict[str, list] = {}  # each file's header is checked once
            kw = {"aoi": zone.geometry.union(zone.ring(ring_width_m)),
                  "bands": ["red", "green", "blue"], "header_cache": headers}
            plan = plan_cube(per_zone[zid], **kw)
            out[zid] = cube_from_plan(plan, chunks=_CHIP_CHUNKS)
            factor = -(-max(int(n) for n in plan.geobox.shape) // MAP_MAX_PX)
            if factor > 1:
                res = abs(float(plan.geobox.resolution.x)) * factor
                plan = plan_cube(per_zone[zid], resolution=res, **kw)
            maps[zid] = cube_from_plan(plan, chunks=_MAP_CHUNKS)
    return out, maps


def _report_activity(footprints: Any, coverage: Any, zones: list[Any], *, freq: str,
                     ring_width_m: float, min_coverage: float, samples: Any, production: Any,
                     exports: Any) -> tuple[pd.DataFrame, Any, Any]:
    """Return the run's activity table, with error-adjusted areas and capacity when it has them."""
    from kpgeo.estimates import add_area_estimates, add_capacity
    from kpgeo.timeseries import zone_activity

    activity = zone_activity(footprints, coverage, freq=freq, zones=zones,
                             ring_width_m=ring_width_m, min_coverage=min_coverage)
    found, prod = _estimates(
        footprints, samples, production, exports, freq=freq, zone_ids={str(z.id) for z in zones}
    )
    if found is not None and found.estimated["in_zone"].any():
        activity = add_area_estimates(activity, found.estimated[found.estimated["in_zone"]])
    if prod is not None:
        activity = add_capacity(activity, prod.capacity)
    return activity, found, prod


def _zone_charts(activity: pd.DataFrame, zones: list[Any]) -> dict[str, bytes]:
    """PNG bytes of each zone's activity chart."""
    from kpgeo.staticmap import figure_png
    from kpgeo.timeseries_output import plot_activity

    return {str(z.id): figure_png(plot_activity(activity, zone=str(z.id), title=str(z.name)))
            for z in zones}


def write_report(
    out_dir: str | os.PathLike,
    *,
    footprints: Any,
    coverage: pd.DataFrame | None = None,
    zones: Iterable[Any] | None = None,
    cube: Any = None,
    items: Any = None,
    period: str = "QS",
    ring_width_m: float = 5000.0,
    min_coverage: float = 0.3,
    compare_date: Any = None,
    offline: bool = False,
    title: str = "kpgeo monitoring run",
    overwrite: bool = True,
    samples: Iterable[str | os.PathLike] | None = None,
    production: Any = None,
    exports: Any = None,
    register: Any = None,
    left_out: Any = None,
) -> dict[str, Path]:
    """Write time series, web map, static maps and bulletin of a run into ``out_dir``.

    Parameters
    ----------
    out_dir
        Output directory (created).
    footprints
        GeoDataFrame of :func:`kpgeo.footprints.extract_footprints` (any CRS).
    coverage
        :func:`kpgeo.timeseries.clear_coverage` output (regions named by
        :func:`kpgeo.timeseries.zone_regions`); computed from the cubes when
        None and imagery is given.
    zones
        Zones to report; default: :func:`kpgeo.zones.get_zone` of each zone id
        in ``footprints``.
    cube, items
        Imagery for true-colour composites (and coverage): a cube, a dict zone
        id -> cube, an ItemCollection path, or a dict zone id -> path. Optional:
        without it maps have no imagery background.
    period
        Time-series period (``"QS"`` quarters, ``"MS"``, ``"YS"``).
    ring_width_m, min_coverage
        See :func:`kpgeo.timeseries.zone_activity`.
    compare_date
        Split of the before/after views; default: see :func:`zone_compare_dates`.
    offline
        Web map without basemap tiles (Leaflet is inlined either way).
    title
        Run title (plain text, escaped).
    overwrite
        When False, refuse to replace existing outputs (:class:`OutputExistsError`).
    samples
        Labelling sheets of ``kpgeo sample`` (e.g. :func:`kpgeo.area.sheet_paths`
        of the run folder): error-adjusted areas in the bulletin and time series
        for the fully labelled ones, every unit on the web map. None or empty: none.
    production
        :class:`kpgeo.production.ProductionParams` (a pipeline's ``[production]``
        table): production capacity in the bulletin and time series.
    exports
        KP export statistics (CSV path or :func:`kpgeo.production.read_exports`
        table): set beside the capacity (placeholder parameters unless
        ``production`` is given), years above it flagged.
    register
        The run's :class:`kpgeo.register.Register` (footprints then carry
        ``site_id`` and ``triage_status``): sites an analyst rejected are left out
        of the totals, time series and default map layers (a separate map layer
        shows them); the bulletin gives the triage counts and site histories.
    left_out
        Objects the footprint tests left out (:func:`left_out_objects` of the run
        folder): a map layer per zone, off by default; never counted.

    Returns
    -------
    dict
        Output file name -> path.
    """
    from kpgeo.io import ensure_out_dir
    from kpgeo.timeseries import norm_freq

    freq = norm_freq(period)
    out = ensure_out_dir(out_dir, overwrite=overwrite, expect=REPORT_OUTPUTS)
    run = _gather_run(
        footprints, coverage, zones, cube=cube, items=items, freq=freq,
        ring_width_m=ring_width_m, min_coverage=min_coverage, samples=samples,
        production=production, exports=exports, left_out=left_out)

    outputs, charts = _write_timeseries_section(out, run.activity, run.zones)
    palette = _run_palette(run.activity, run.footprints, freq=freq)
    overlays, chips, maps, map_periods = _zone_maps(
        out, run.zones, run.footprints, run.cubes, run.map_cubes, run.activity, run.coverage,
        palette=palette, freq=freq, ring_width_m=ring_width_m, compare_date=compare_date)
    outputs |= {f"map_{zone_file_stem(zid)}.png": out / f"map_{zone_file_stem(zid)}.png"
                for zid in maps}
    outputs["map.html"] = _write_web_map(
        out / "map.html", run, overlays=overlays, chips=chips, palette=palette, freq=freq,
        ring_width_m=ring_width_m, offline=offline, title=title)
    outputs["bulletin.html"] = _write_bulletin(
        out / "bulletin.html", run, charts=charts, maps=maps, map_periods=map_periods,
        freq=freq, ring_width_m=ring_width_m, min_coverage=min_coverage, title=title,
        register=register)
    return outputs


@dataclass(frozen=True)
class _ReportRun:
    """What every output of a report is made from, once gathered by :func:`_gather_run`."""

    zones: list[Any]
    footprints: Any  # the counted sites (rejected ones left out)
    rejected: Any  # sites an analyst rejected, or None
    left_out: Any  # objects the footprint tests left out, of the reported zones only
    cubes: dict[str, Any]
    map_cubes: dict[str, Any]
    coverage: pd.DataFrame | None
    activity: pd.DataFrame
    samples: Any  # the samples of the reported zones (kpgeo.estimates.SampleResults), or None
    production: Any  # kpgeo.estimates.production_results, or None


def _gather_run(footprints: Any, coverage: pd.DataFrame | None, zones: Iterable[Any] | None, *,
                cube: Any, items: Any, freq: str, ring_width_m: float, min_coverage: float,
                samples: Any, production: Any, exports: Any, left_out: Any) -> _ReportRun:
    """Gather a report's zones, counted sites, imagery cubes, clear coverage and activity."""
    zones = _report_zones(footprints, zones)
    footprints, rejected = _counted_sites(footprints)
    left_out = _zones_left_out(left_out, zones)
    cubes, map_cubes = _norm_cubes(zones, cube, items, ring_width_m=ring_width_m)
    coverage = _run_coverage(coverage, cubes, zones, ring_width_m=ring_width_m)
    activity, found, prod = _report_activity(
        footprints, coverage, zones, freq=freq, ring_width_m=ring_width_m,
        min_coverage=min_coverage, samples=samples, production=production, exports=exports)
    return _ReportRun(zones=zones, footprints=footprints, rejected=rejected, left_out=left_out,
                      cubes=cubes, map_cubes=map_cubes, coverage=coverage, activity=activity,
                      samples=found, production=prod)


def _zones_left_out(left_out: Any, zones: list[Any]) -> Any:
    """Return the left-out objects of the reported zones only (None or empty: as given)."""
    if left_out is not None and len(left_out):
        left_out = left_out[left_out["zone"].astype(str).isin({str(z.id) for z in zones})]
    return left_out


def _run_coverage(coverage: pd.DataFrame | None, cubes: dict, zones: list[Any], *,
                  ring_width_m: float) -> pd.DataFrame | None:
    """Return the given clear coverage, else that of the cubes; warn when there is none."""
    if coverage is None and cubes:
        coverage = _coverage_of(cubes, zones, ring_width_m=ring_width_m)
    if coverage is None:
        log.warning("no clear-coverage table: cloud gaps cannot be told from inactivity")
    return coverage


def _write_timeseries_section(out: Path, activity: pd.DataFrame, zones: list[Any]
                              ) -> tuple[dict[str, Path], dict[str, bytes]]:
    """Write the time-series files and stacked chart; return their paths and each zone's chart."""
    from kpgeo.timeseries_output import write_timeseries

    outputs = {f"timeseries.{k}": v for k, v in write_timeseries(activity, out).items()}
    charts = _zone_charts(activity, zones)
    # timeseries.png: the charts of all zones stacked (one figure)
    outputs["timeseries.png"] = _write_stacked(
        out / "timeseries.png", [charts[str(z.id)] for z in zones]
    )
    return outputs, charts


def _run_palette(activity: pd.DataFrame, footprints: Any, *, freq: str) -> Any:
    """One palette of all periods of the run (time series and first detections), for every map."""
    from kpgeo.staticmap import period_labels, period_palette

    return period_palette(
        list(period_labels(activity["period_start"], freq=freq))
        + (list(period_labels(footprints["first_detected"], freq=freq)) if len(footprints) else [])
    )


def _write_web_map(path: Path, run: _ReportRun, *, overlays: list, chips: dict, palette: Any,
                   freq: str, ring_width_m: float, offline: bool, title: str) -> Path:
    """Write the run's web map (``map.html``): sites, overlays, chips and optional layers."""
    from kpgeo.webmap import write_map

    return write_map(
        path,
        run.footprints,
        zones=run.zones,
        activity=run.activity,
        overlays=overlays,
        chips=chips,
        palette=palette,
        freq=freq,
        ring_width_m=ring_width_m,
        offline=offline,
        title=title,
        sample_units=run.samples.units if run.samples is not None else None,
        rejected=run.rejected,
        left_out=run.left_out,
    )


def _write_bulletin(path: Path, run: _ReportRun, *, charts: dict[str, bytes],
                    maps: dict[str, bytes], map_periods: dict[str, str], freq: str,
                    ring_width_m: float, min_coverage: float, title: str, register: Any) -> Path:
    """Render the run's bulletin (:func:`render_bulletin`) and write it (``bulletin.html``)."""
    page = render_bulletin(
        zones=run.zones,
        footprints=run.footprints,
        activity=run.activity,
        coverage=run.coverage,
        charts=charts,
        maps=maps,
        map_periods=map_periods,
        freq=freq,
        ring_width_m=ring_width_m,
        min_coverage=min_coverage,
        title=title,
        samples=run.samples,
        production=run.production,
        register=register,
    )
    return _write_text_atomic(path, page)


def _write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 text to ``path`` atomically (readers never see a partial file)."""
    from kpgeo.io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def _report_zones(footprints: Any, zones: Iterable[Any] | None) -> list[Any]:
    """Return the zones to report: those given, else the zones of the footprints."""
    if zones is not None:
        return list(zones)
    from kpgeo.zones import get_zone

    ids = sorted(footprints["zone"].astype(str).unique()) if len(footprints) else []
    if not ids:
        raise ConfigError("no footprints and no zones given: pass zones= (CLI: --zone)")
    return [get_zone(i) for i in ids]


def _coverage_of(cubes: dict, zones: list[Any], *, ring_width_m: float) -> pd.DataFrame | None:
    """Clear coverage of each zone (and its ring) from its cube, or None without cubes."""
    from kpgeo.timeseries import clear_coverage, zone_regions

    frames = [clear_coverage(c, zone_regions([z], ring_width_m=ring_width_m))
              for z in zones if (c := cubes.get(str(z.id))) is not None]
    return pd.concat(frames, ignore_index=True) if frames else None


def _zone_maps(out: Path, zones: list[Any], footprints: Any, cubes: dict, map_cubes: dict,
               activity: pd.DataFrame, coverage: pd.DataFrame | None, *, palette: Any,
               freq: str, ring_width_m: float, compare_date: Any) -> tuple:
    """Each zone's before/after overlays, footprint chips and static map (``map_<zone>.png``).

    Returns ``(overlays, chips, maps, map_periods)``: web-map overlays, chips by
    footprint, PNG bytes by zone id, and the dates of each zone's map background.
    """
    from kpgeo.io import atomic_path
    from kpgeo.staticmap import figure_png, footprint_chips, plot_zone_map, true_colour
    from kpgeo.webmap import composite_overlays

    overlays, chips, maps, map_periods = [], {}, {}, {}
    for zone in zones:
        zid = str(zone.id)
        zcube = cubes.get(zid)
        zfp = footprints[footprints["zone"].astype(str) == zid] if len(footprints) else footprints
        background = None
        if zcube is not None and all(b in zcube for b in ("red", "green", "blue", "clear")):
            view = map_cubes.get(zid, zcube)  # coarser for zones larger than the maps
            dates = zone_compare_dates(view, zfp, compare_date=compare_date,
                                       clear_fraction=_zone_clear(coverage, zid, view))
            overlays += composite_overlays(view, dates=dates, zone=zone)
            chips |= footprint_chips(zcube, zfp)
            if len(dates[1]):
                background = true_colour(view, dates=dates[1])
                map_periods[zid] = _describe_dates(dates[1])
        fig = plot_zone_map(
            footprints,
            zone,
            background=background,
            freq=freq,
            ring_width_m=ring_width_m,
            palette=palette,
            period=(activity["period_start"].min(), activity["period_end"].max()),
        )
        maps[zid] = figure_png(fig)
        name = f"map_{zone_file_stem(zid)}.png"
        with atomic_path(out / name) as tmp:
            Path(tmp).write_bytes(maps[zid])
    return overlays, chips, maps, map_periods

def _estimates(footprints, samples, production, exports, *, freq, zone_ids) -> tuple[Any, Any]:
    """Load the samples of the reported zones and the production capacity (None when none)."""
    from kpgeo.estimates import SampleResults, load_samples, production_results

    found = load_samples(samples) if samples is not None else None
    if found is not None:
        found = SampleResults(
            sheets=found.sheets[found.sheets["zone"].isin(zone_ids)],
            units=found.units[found.units["zone"].astype(str).isin(zone_ids)],
        )
        found = None if found.sheets.empty else found
    prod = None
    if production is not None or exports is not None:
        prod = production_results(footprints, freq=freq, params=production, exports=exports)
    return found, prod


def zone_compare_dates(
    cube: Any, footprints: Any = None, *, compare_date: Any = None, n_dates: int = 3,
    clear_fraction: Any = None,
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Dates of a zone's before/after views (map overlays, static map background).

    With ``compare_date``: the ``n_dates`` clear images just before it and those
    from it on. Otherwise "before" is the clear images just before the zone's
    earliest first detection (the earliest images when it has no footprint) and
    "after" the most recent clear images, so the pair spans all detected change
    but each side is only a few images (see :func:`kpgeo.staticmap.compare_dates`).

    Parameters
    ----------
    cube
        The zone's cube (``clear`` variable; its clear fraction per date is computed).
    footprints
        The zone's footprints (``first_detected``), or None.
    compare_date
        User-chosen split, or None.
    n_dates
        Images per side.
    clear_fraction
        Clear fraction of each cube date (e.g. from the run's coverage table);
        default: computed from the cube's ``clear`` (a read of every date).

    Returns
    -------
    tuple of pandas.DatetimeIndex
        ``(before, after)``.
    """
    import numpy as np

    from kpgeo.io import to_utc_naive
    from kpgeo.staticmap import compare_dates

    times = pd.DatetimeIndex(pd.to_datetime(cube["time"].values))
    frac = (np.asarray(cube["clear"].mean(("y", "x")).values) if clear_fraction is None
            else np.asarray(clear_fraction, dtype="float64"))
    if compare_date is not None:
        return compare_dates(times, frac, split=compare_date, n_dates=n_dates)
    _, after = compare_dates(times, frac, n_dates=n_dates)
    first = (
        to_utc_naive(footprints["first_detected"], what="footprints first_detected").min()
        if footprints is not None and len(footprints)
        else None
    )
    if first is None or pd.isna(first):
        before, _ = compare_dates(times, frac, n_dates=n_dates)
    else:
        before, _ = compare_dates(times, frac, split=first, n_dates=n_dates)
    return before[~before.isin(after)], after


def _zone_clear(coverage: pd.DataFrame | None, zid: str, cube: Any) -> Any:
    """Clear fraction of the zone on each cube date from the coverage table; None if any lacks."""
    if coverage is None or not {"date", "region", "clear_fraction"} <= set(coverage.columns):
        return None
    rows = coverage[coverage["region"].astype(str) == zid]
    frac = pd.Series(rows["clear_fraction"].to_numpy(),
                     index=pd.DatetimeIndex(pd.to_datetime(rows["date"])))
    frac = frac[~frac.index.duplicated()]
    times = pd.DatetimeIndex(pd.to_datetime(cube["time"].values))
    if frac.index.tz is not None:
        frac.index = frac.index.tz_convert("UTC").tz_localize(None)
    found = frac.reindex(times)
    return None if found.isna().any() else found.to_numpy()


def _describe_dates(dates: pd.DatetimeIndex) -> str:
    n = len(dates)
    if n == 1:
        return f"the clear image of {dates[0]:%Y-%m-%d}"
    return f"the {n} most recent clear images ({dates.min():%Y-%m-%d} – {dates.max():%Y-%m-%d})"


def _write_stacked(path: Path, pngs: list[bytes]) -> Path:
    """PNG charts stacked vertically into one PNG."""
    import io

    import numpy as np
    from matplotlib.image import imread, imsave

    from kpgeo.io import atomic_path

    imgs = [imread(io.BytesIO(png)) for png in pngs]
    width = max(i.shape[1] for i in imgs)
    padded = [
        np.pad(i, ((0, 0), (0, width - i.shape[1]), (0, 0)), constant_values=1.0) for i in imgs
    ]
    with atomic_path(path) as tmp:
        imsave(tmp, np.concatenate(padded, axis=0), format="png")
    return path
