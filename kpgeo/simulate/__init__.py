"""Simulated Sentinel-2 L2A scenes with known artisanal mining (and confounders).

:func:`simulate_scene` writes a realistic multi-date scene of a Kimberley
Process zone: savanna, gallery forest along a river network, floodplains,
villages and roads, wet/dry-season phenology, clouds, cloud shadows and an
imperfect SCL, and events with exact ground truth: artisanal mining sites
growing along rivers, slash-and-burn farms, savanna burn scars and seasonal
floods. Mining sites never overlap one another (their pits, buffered by
30 m, stay apart); most sites start after a baseline period (20-85 % into
the period, a few are pre-existing). Flood water varies per date and from
reach to reach (open-water cover 40-100 % with shallow margins, turbidity
0.2-0.9). Everything is deterministic in ``seed`` and generated tile by tile,
so a 10,000 x 10,000 px scene needs no more memory than a tile.

That is the **procedural** source (the default). ``randomize=True`` draws its
greenness, phenology, pit water, gravel, cloud statistics, revisit gaps and
non-green mining ground per seed (:func:`~kpgeo.simulate.presets.randomize_params`).
``source="real"`` selects an independent generator built on real data
(:mod:`kpgeo.simulate.realbase`: real Sentinel-2 texture and OSM land use, real
tropical seasons, real mine outlines and cloud shapes) that writes the same
files; see ``docs/scene_sources.md``.

Outputs (in ``out_dir``)
------------------------
``S2_<yyyymmdd>/<band>.tif``
    COGs per date: ``blue green red nir swir16 swir22`` (uint16, 10 m,
    DN = (reflectance + 0.1) * 10000, nodata 0) and ``scl`` (uint8, 20 m,
    Sen2Cor class codes).
``items.json``
    STAC ItemCollection (Earth Search v1 asset keys, relative hrefs).
``truth.geojson``
    One feature per event (EPSG:4326): ``class`` (mining/farm/burn),
    ``site_id``, ``start_date``, ``end_date`` (abandon / regrowth, or null),
    ``area_ha`` and, for mining, ``growth`` = ``[[date, area_ha], ...]`` at
    every image date (and ``inside_zone`` when a zone was given).
``truth_labels.tif``
    uint8: 0 none, 1 mining, 2 farm, 3 burn, 4 seasonal flood. Where classes
    overlap the precedence is **mining > flood > farm > burn**: a floodplain
    pixel is under water every wet season whatever a one-off clearing or a
    dry-season fire did to it, so a false alarm there is a flood alarm.
    Flood = at least 20 % open water on some date.
``truth_confounders.tif``
    uint8 bit mask of every confounder present at the pixel, whatever the
    label: 1 farm, 2 burn, 4 seasonal flood.
``truth_cloud.tif``
    uint8, one band per date (description = ISO date): 0 clear, 1 cloud,
    2 shadow, 3 thin cloud, 255 outside the swath (no data).
``truth_mining_start.tif``
    int32: days since 1970-01-01 of the first image date on which the pixel
    is mining, 0 = never.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kpgeo.errors import ConfigError, OutputExistsError
from kpgeo.simulate.presets import PRESETS, SimParams, get_preset

__all__ = ["simulate_scene", "SimulatedScene", "PRESETS", "SimParams", "DEFAULT_CENTER",
           "SOURCES"]

#: scene centre when neither zone, bbox nor center is given (near Berbérati, CAR)
DEFAULT_CENTER = (15.79, 4.26)
#: scene sources: fractal landscapes with hand-set spectra, or real imagery and data
SOURCES = ("procedural", "real")


@dataclass(frozen=True)
class SimulatedScene:
    """Paths and metadata of a written scene."""

    out_dir: Path
    items_path: Path
    truth_path: Path
    labels_path: Path
    cloud_path: Path
    mining_start_path: Path
    confounders_path: Path
    dates: tuple[dt.date, ...]
    times: tuple[dt.datetime, ...]
    crs: str
    transform: Any
    shape: tuple[int, int]
    preset: str
    seed: int
    zone_id: str | None
    n_events: dict
    source: str = "procedural"
    params: Any = None
    """The parameters used (for ``randomize=True``: the ones drawn for this seed)."""

    @property
    def times64(self) -> np.ndarray:
        """Acquisition instants as ``datetime64[ns]`` (naive UTC)."""
        return np.array([np.datetime64(t, "ns") for t in self.times])

    def asset_path(self, date_index: int, band: str) -> Path:
        """Path of one band (``blue``…``swir22``, ``scl``) of the ``date_index``-th date."""
        from kpgeo.simulate.writer import date_dir_name

        return self.out_dir / date_dir_name(self.dates[date_index]) / f"{band}.tif"


def _resolve_zone(zone: Any):
    if zone is None:
        return None
    if hasattr(zone, "geometry") and hasattr(zone, "id"):
        return zone
    try:
        from kpgeo.zones import get_zone
    except ImportError as exc:
        raise ConfigError(
            f"zone={zone!r} needs the zone catalogue (kpgeo.zones), which is not available; "
            "pass bbox=(west, south, east, north) instead"
        ) from exc
    return get_zone(zone)


def _check_bbox(bbox) -> tuple[float, float, float, float]:
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bbox must be (west, south, east, north) in degrees, got {bbox!r}") \
            from exc
    if not (-180 <= w < e <= 180 and -80 <= s < n <= 84):
        raise ConfigError(
            f"bbox {bbox!r} is not a valid lon/lat box (west < east, south < north, degrees)"
        )
    return w, s, e, n


def _zone_center(zone, seed: int) -> tuple[float, float]:
    """Pick a point on the zone boundary (by ``seed``), so the scene straddles it."""
    from kpgeo.simulate.noise import mix_key

    geom = zone.geometry
    boundary = geom.boundary
    if hasattr(geom, "geoms"):  # MultiPolygon: use the largest part
        part = max(geom.geoms, key=lambda g: g.area)
        boundary = part.exterior
    elif hasattr(geom, "exterior"):
        boundary = geom.exterior
    frac = (mix_key(seed, 11) >> 11) / 2.0**53
    p = boundary.interpolate(frac, normalized=True)
    return float(p.x), float(p.y)


def simulate_scene(
    out_dir: str | os.PathLike,
    *,
    zone: Any = None,
    bbox: tuple[float, float, float, float] | None = None,
    center: tuple[float, float] | None = None,
    shape: tuple[int, int] | int | None = None,
    resolution: float = 10.0,
    start: Any = "2019-01-01",
    end: Any = "2020-12-31",
    n_dates: int | None = None,
    preset: str | SimParams = "clean",
    seed: int = 0,
    tile_size: int = 512,
    overwrite: bool = True,
    progress: Any = None,
    source: str = "procedural",
    randomize: bool = False,
) -> SimulatedScene:
    """Simulate a multi-date Sentinel-2 L2A scene with ground truth and write it to ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder (created). Existing outputs are replaced unless ``overwrite=False``.
    zone
        Zone id/name or :class:`kpgeo.zones.Zone`. The scene is centred on a point
        of the zone boundary (picked by ``seed``) unless ``center`` is given, and
        mining sites are placed both inside and outside the zone.
    bbox
        ``(west, south, east, north)`` in degrees (EPSG:4326). Without ``shape``
        the scene covers the bbox; with ``shape`` it is centred on it.
    center
        ``(lon, lat)`` in degrees of the scene centre (overrides zone/bbox centre).
    shape
        ``(rows, cols)`` in pixels; default ``(256, 256)`` (or the bbox extent).
    resolution
        Pixel size in metres of the 10 m bands (SCL is at twice this).
    start, end
        Period (ISO dates); acquisitions follow a 5-day revisit, subsampled.
    n_dates
        Number of acquisitions kept (irregularly spaced); default 24 for the
        procedural source, 36 for the real one.
    preset
        Name in :data:`PRESETS` or a :class:`SimParams` (procedural), or a
        :class:`~kpgeo.simulate.realbase.RealParams` (real; the preset names are
        the same).
    seed
        Everything is a deterministic function of the seed.
    tile_size
        Side of the square tiles generated at once (multiple of 32, >= 64);
        bounds memory. The output does not depend on it.
    overwrite
        When False, refuse to write into a folder that already holds a scene.
    progress
        Optional callable receiving the number of pixels finished per tile.
    source
        ``"procedural"`` (fractal landscapes, hand-set spectra) or ``"real"``
        (real Sentinel-2 texture, OSM land use, real tropical spectra and
        seasons, real mine outlines and cloud shapes: :mod:`kpgeo.simulate.realbase`).
        Both write the same files.
    randomize
        Procedural source only: draw greenness, phenology, pit water, gravel,
        clouds, revisit gaps and non-green mining ground per seed
        (:func:`~kpgeo.simulate.presets.randomize_params`); same as a preset with
        ``randomize=True``. Off by default (the default output is unchanged).

    Returns
    -------
    SimulatedScene

    Raises
    ------
    ConfigError
        Unknown preset or source; bad shape, dates, n_dates, bbox, resolution or tile
        size; ``randomize`` with the real source.
    OutputExistsError
        ``overwrite=False`` and ``out_dir`` already holds ``items.json``.

    Examples
    --------
    >>> scene = simulate_scene("scene", bbox=(15.7, 4.2, 15.72, 4.22), seed=1)  # doctest: +SKIP
    >>> scene.items_path  # doctest: +SKIP
    PosixPath('scene/items.json')
    """
    from kpgeo.simulate.grid import make_grid

    source = _check_source(source)
    seed = _check_seed(seed)
    params = _scene_params(source, preset, seed, randomize)
    if n_dates is None:
        n_dates = 36 if source == "real" else 24
    resolution, tile_size = _check_resolution_tiles(resolution, tile_size)
    zone_obj, ctr, shape = _scene_layout(zone, bbox, center, shape, resolution, seed)
    out = _prepare_out(Path(out_dir), overwrite)

    grid = make_grid(ctr, shape, resolution)
    zone_utm = None if zone_obj is None else _project(zone_obj.geometry, grid.epsg)
    res = _run_source(source, out, grid=grid, lon=ctr[0], start=start, end=end,
                      n_dates=n_dates, params=params, seed=seed, zone_utm=zone_utm,
                      tile_size=tile_size, progress=progress)
    return _finish(out, items=res["items"], feats=res["features"], grid=grid,
                   cal=res["calendar"], zone_obj=zone_obj, preset=params.name, seed=seed,
                   n_events=res["n_events"], source=source, params=params)


def _check_seed(seed: Any) -> int:
    """Return ``seed`` as an int (ConfigError if it is not one)."""
    try:
        return int(seed)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"seed must be an integer, got {seed!r}") from exc


def _scene_layout(zone: Any, bbox: Any, center: Any, shape: Any, resolution: float,
                  seed: int) -> tuple[Any, tuple[float, float], tuple[int, int]]:
    """Check zone, bbox, center and shape; return the zone, the scene centre and its shape."""
    from kpgeo.simulate.grid import check_shape

    zone_obj = _resolve_zone(zone)
    if bbox is not None:
        bbox = _check_bbox(bbox)
    ctr = _scene_center(center, zone_obj, bbox, seed)
    if shape is None:
        if bbox is not None and zone_obj is None and center is None:
            shape = _bbox_shape(bbox, resolution)
        else:
            shape = (256, 256)
    return zone_obj, ctr, check_shape(shape)


def _run_source(source: str, out: Path, **kw: Any) -> dict[str, Any]:
    """Write the scene with the ``real`` or the procedural generator; return its results."""
    if source == "real":
        from kpgeo.simulate.realbase import simulate_real

        return simulate_real(out, **kw)
    return _simulate_procedural(out, **kw)


def _scene_params(source: str, preset: Any, seed: int, randomize: bool) -> Any:
    """Return the preset's parameters for ``source`` (procedural: randomised per seed if asked)."""
    if source == "real":
        from kpgeo.simulate.realbase import get_real_preset

        if randomize:
            raise ConfigError("randomize=True applies to the procedural source; the real "
                              "source draws its own variation per seed")
        return get_real_preset(preset)
    params = get_preset(preset)
    if randomize or params.randomize:
        from kpgeo.simulate.presets import randomize_params

        params = randomize_params(params, seed)
    return params


def _check_resolution_tiles(resolution: Any, tile_size: Any) -> tuple[float, int]:
    try:
        resolution = float(resolution)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"resolution must be a number of metres, got {resolution!r}") from exc
    if not 1.0 <= resolution <= 1000.0:
        raise ConfigError(f"resolution={resolution!r} m is out of range (1..1000)")
    if not isinstance(tile_size, int | np.integer) or tile_size < 64 or tile_size % 32:
        raise ConfigError(f"tile_size={tile_size!r} must be an integer multiple of 32, >= 64")
    return resolution, int(tile_size)


def _scene_center(center: Any, zone_obj: Any, bbox: Any, seed: int) -> tuple[float, float]:
    """(lon, lat) of the scene centre: ``center``, a point of the zone boundary, the bbox's."""
    if center is not None:
        try:
            lon, lat = (float(v) for v in center)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"center must be (lon, lat) in degrees, got {center!r}") from exc
        if not (-180 <= lon <= 180 and -80 <= lat <= 84):
            raise ConfigError(f"center={center!r} is not a lon/lat in degrees")
        return (lon, lat)
    if zone_obj is not None:
        return _zone_center(zone_obj, seed)
    if bbox is not None:
        return ((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
    return DEFAULT_CENTER


def _prepare_out(out: Path, overwrite: bool) -> Path:
    """Create the output folder; remove an earlier scene there (unless ``overwrite=False``)."""
    from kpgeo.simulate.writer import TRUTH_FILES

    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {out} exists and is not a folder")
    if (out / TRUTH_FILES["items"]).exists():
        if not overwrite:
            raise OutputExistsError(f"{out} already holds a scene (items.json); pass "
                                    "overwrite=True (CLI: --overwrite) to replace it")
        _remove_scene(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _procedural_series(cal: Any, params: Any, seed: int) -> dict[str, np.ndarray]:
    """Per-date scene-wide drivers: greenness, flood level, river and flood water."""
    from kpgeo.simulate.noise import mix_key
    from kpgeo.simulate.spectra import flood_level, greenness

    rng = np.random.default_rng(mix_key(seed, 2))
    years = sorted({d.year for d in cal.dates})
    shift = {y: rng.normal(0, 10) for y in years}
    amp = {y: rng.uniform(0.7, 1.1) for y in years}
    doy = cal.doy
    green = np.array([greenness(doy[i], shift[d.year]) for i, d in enumerate(cal.dates)])
    if params.randomize:  # drawn phenology: timing, amplitude and mean greenness
        green = np.array([greenness(doy[i], shift[d.year] + params.pheno_shift_days)
                          for i, d in enumerate(cal.dates)])
        green = np.clip(0.5 + params.pheno_amplitude * (green - 0.5)
                        + params.greenness_offset, 0.0, 1.0)
    floods = np.array([flood_level(doy[i], amp[d.year]) for i, d in enumerate(cal.dates)])
    turb = np.clip(0.25 + 0.5 * green + rng.normal(0, 0.08, len(cal.dates)), 0.05, 1.0)
    # flood water: open-water cover, turbidity and shallow-margin width change with every date
    frng = np.random.default_rng(mix_key(seed, 3))
    nd = len(cal.dates)
    return {"greenness": green, "flood_levels": floods * params.flood_strength,
            "river_turbidity": turb, "flood_cover": frng.uniform(*params.flood_cover, nd),
            "flood_turbidity": frng.uniform(*params.flood_turbidity, nd),
            "flood_margin": frng.uniform(*params.flood_margin, nd)}


def _simulate_procedural(out: Path, *, grid: Any, lon: float, start: Any, end: Any,
                         n_dates: int, params: Any, seed: int, zone_utm: Any, tile_size: int,
                         progress: Any) -> dict[str, Any]:
    """Write the procedural scene's files; return its items, truth features and calendar."""
    from kpgeo.simulate.atmosphere import plan_atmosphere
    from kpgeo.simulate.events import plan_events, truth_features
    from kpgeo.simulate.grid import make_calendar
    from kpgeo.simulate.landscape import plan_landscape, woody_at
    from kpgeo.simulate.noise import mix_key
    from kpgeo.simulate.writer import SceneInputs, finalize_cogs, stac_items, write_scene

    cal = make_calendar(start, end, n_dates, lon=lon,
                        rng=np.random.default_rng(mix_key(seed, 1)),
                        gap_fraction=params.revisit_gap_fraction)
    land = plan_landscape(grid, seed=seed)
    events = plan_events(grid, cal=cal, land=land, params=params, seed=seed, zone_utm=zone_utm,
                         woody_at=lambda x, y: woody_at(land, grid, x, y))
    atm = plan_atmosphere(grid, cal=cal, params=params, seed=seed)
    inp = SceneInputs(grid=grid, calendar=cal, land=land, events=events, atmosphere=atm,
                      params=params, meta={"seed": seed, "preset": params.name},
                      **_procedural_series(cal, params, seed))
    try:
        written = write_scene(out, inp, tile_size=tile_size, progress=progress)
        finalize_cogs(out, written, cal, block=min(512, max(256, tile_size)))
    except BaseException:
        for p in out.rglob(".*.raw.tif"):
            p.unlink(missing_ok=True)
        raise
    return {"items": stac_items(out, inp, written["stats"]),
            "features": truth_features(events, grid, last_day=int(cal.days[-1])),
            "calendar": cal,
            "n_events": {"mining": len(events.sites), "farm": len(events.farms),
                         "burn": len(events.burns)}}


def _check_source(source: Any) -> str:
    key = str(source).strip().lower()
    if key not in SOURCES:
        raise ConfigError(f"unknown scene source {source!r}; valid: {', '.join(SOURCES)}")
    return key


def _finish(out: Path, *, items: dict, feats: list, grid, cal, zone_obj, preset: str, seed: int,
            n_events: dict, source: str, params) -> SimulatedScene:
    """Validate and write items.json and truth.geojson; describe the scene."""
    import pystac

    from kpgeo.io import write_json
    from kpgeo.simulate.writer import TRUTH_FILES

    try:
        pystac.ItemCollection.from_dict(items)
    except Exception as exc:  # pragma: no cover - our own output must be valid
        raise ConfigError(f"internal error: generated items are not valid STAC: {exc}") from exc
    write_json(items, out / TRUTH_FILES["items"])
    truth = {"type": "FeatureCollection",
             "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
             "features": feats}
    if zone_obj is not None:
        truth["zone_id"] = getattr(zone_obj, "id", None)
    if source == "real":
        truth["source"] = "real"
    elif getattr(params, "randomize", False):
        truth["sim_params"] = dataclasses.asdict(params)
    write_json(truth, out / TRUTH_FILES["truth"])

    return SimulatedScene(
        out_dir=out,
        items_path=out / TRUTH_FILES["items"],
        truth_path=out / TRUTH_FILES["truth"],
        labels_path=out / TRUTH_FILES["labels"],
        cloud_path=out / TRUTH_FILES["cloud"],
        mining_start_path=out / TRUTH_FILES["mining_start"],
        confounders_path=out / TRUTH_FILES["confounders"],
        dates=cal.dates,
        times=cal.times,
        crs=grid.crs,
        transform=grid.transform,
        shape=grid.shape,
        preset=preset,
        seed=seed,
        zone_id=getattr(zone_obj, "id", None) if zone_obj is not None else None,
        n_events=n_events,
        source=source,
        params=params,
    )


def _bbox_shape(bbox, resolution: float) -> tuple[int, int]:
    from pyproj import Transformer
    from shapely.geometry import Point

    from kpgeo.zones import utm_crs_for

    w, s, e, n = bbox
    epsg = utm_crs_for(Point((w + e) / 2, (s + n) / 2)).to_epsg()
    tr = Transformer.from_crs(4326, epsg, always_xy=True)
    xs, ys = tr.transform([w, e, w, e], [s, s, n, n])
    cols = int(round((max(xs) - min(xs)) / resolution / 2)) * 2
    rows = int(round((max(ys) - min(ys)) / resolution / 2)) * 2
    return rows, cols


def _project(geom, epsg: int):
    from kpgeo.zones import to_crs

    return to_crs(geom, 4326, epsg)


def _remove_scene(out: Path) -> None:
    """Delete a previous scene written by the simulator (only its own files)."""
    from kpgeo.simulate.writer import TRUTH_FILES

    for p in out.glob("S2_????????"):
        if p.is_dir():
            shutil.rmtree(p)
    for name in TRUTH_FILES.values():
        (out / name).unlink(missing_ok=True)
