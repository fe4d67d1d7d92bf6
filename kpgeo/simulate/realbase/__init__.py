"""Second, independent scene source built on real data (``simulate_scene(..., source="real")``).

It writes exactly the files of the procedural source (same names, dtypes,
codes, band layout, STAC keys and truth schema), but builds the scene by other
means. What is **real** and what is **modelled**:

Real (shipped in ``realbase/data/``, provenance and licences in its SOURCE.md)
    * spatial texture and land-use structure: one Sentinel-2 L1C scene (tile
      33UUU, 2017-02-16, blue..swir22; 20 m bands bilinear to 10 m), cut into
      256 px blocks, each a seeded window of the scene, rotated/mirrored;
    * land use: the OSM land-use / water polygons of that scene, rasterised
      (fields, grass, forest, scrub, wetland, water, villages); the image
      classifies what they leave uncovered (:mod:`.basemap`);
    * tropical reflectance and seasons: monthly Sentinel-2 series of central
      Togo (2019) and Honduras (2017-2018) pixels (savanna, crops, woody cover),
      Landsat 7 Olinda (town, bare soil, sand, turbid water), the Brandenburg
      lake (clear water) (:mod:`.library`);
    * rainfall: ERA5 monthly precipitation of the Togo series drives floods,
      cloudiness and the wetness of bare ground;
    * cloud shapes: s2cloudless cloud probabilities of the eo-learn test
      patch (68 dates), enlarged and mirror-tiled (:mod:`.atmosphere`);
    * mine outlines: annotated artisanal/placer mine polygons (mine
      segmentation test tiles) and Earth Genome galamsey polygons (Ghana,
      Guinea), rescaled to 0.1-15 ha (:mod:`.mining`).

Modelled (documented ranges in :class:`.params.RealParams`)
    * the mapping of each land-use class to tropical templates, per-parcel
      timing shifts and amplitudes, woodland share;
    * crop-cycle timing (clearing, bare, green-up, harvest, fallow), fire
      spread and recovery, flood ring heights and flood cover/turbidity;
    * mine site placement, growth order, pit mosaic, drain/flood of pits,
      abandonment and revegetation;
    * char, wet-soil darkening and cloud spectra; dark-object haze removal of
      the real top-of-atmosphere data; cloud fraction per date, shadows, haze,
      sensor noise and the SCL error model; revisit losses.

It shares with the procedural source only the output writer
(:mod:`kpgeo.simulate.writer`), the scene grid and the counter-based noise.
"""

from __future__ import annotations

import numpy as np

from kpgeo.simulate.realbase.params import GROUNDS, REAL_PRESETS, RealParams, get_real_preset

__all__ = ["RealParams", "REAL_PRESETS", "GROUNDS", "get_real_preset", "plan_real_scene",
           "simulate_real"]


def _look(seed: int, params: RealParams, cal):
    from kpgeo.simulate.noise import mix_key
    from kpgeo.simulate.realbase.basemap import BlockLayout
    from kpgeo.simulate.realbase.landcover import SceneLook

    rng = np.random.default_rng(mix_key(seed, 1002))
    nd = len(cal.dates)
    years = sorted({d.year for d in cal.dates})
    return SceneLook(
        key=mix_key(seed, 1003), layout=BlockLayout(key=mix_key(seed, 1004)),
        pheno_shift=float(rng.uniform(*params.pheno_shift_days)),
        pheno_amp=float(rng.uniform(*params.pheno_amplitude)),
        flood_amp={y: float(rng.uniform(*params.flood_amplitude)) for y in years},
        flood_cover=rng.uniform(0.5, 1.0, nd), flood_margin=rng.uniform(0.05, 0.25, nd),
        flood_turbidity=rng.uniform(0.2, 0.9, nd), ring_m=params.flood_ring_m,
        woodland_probability=params.woodland_probability)


def _zone_test(grid, zone_utm):
    """``(row, col) -> inside`` for the zone, and whether sites should alternate sides."""
    if zone_utm is None or zone_utm.is_empty:
        return None, False
    from shapely.geometry import Point, box
    from shapely.prepared import prep

    z = prep(zone_utm)
    res = grid.resolution

    def inside(r, c):
        return bool(z.contains(Point(grid.x0 + (c + 0.5) * res, grid.y0 - (r + 0.5) * res)))

    frac = zone_utm.intersection(box(*grid.bounds)).area / box(*grid.bounds).area
    return inside, 0.05 < frac < 0.95


def plan_real_scene(grid, *, lon: float, start, end, n_dates: int, params: RealParams,
                    seed: int, zone_utm=None):
    """Draw everything of a real-source scene but the pixels (deterministic in ``seed``).

    Returns a :class:`~kpgeo.simulate.realbase.render.RealSceneInputs`: calendar,
    atmosphere, mining sites (with their pixel schedules), fires and the scene-wide draws.
    """
    from kpgeo.simulate.noise import mix_key
    from kpgeo.simulate.realbase.atmosphere import make_calendar, plan_atmosphere
    from kpgeo.simulate.realbase.events import plan_burns
    from kpgeo.simulate.realbase.landcover import flood_level
    from kpgeo.simulate.realbase.library import rainfall, spectral_library
    from kpgeo.simulate.realbase.mining import plan_sites
    from kpgeo.simulate.realbase.render import RealSceneInputs

    lib = spectral_library()
    cal = make_calendar(start, end, n_dates, lon=lon, params=params,
                        rng=np.random.default_rng(mix_key(seed, 1001)))
    look = _look(seed, params, cal)
    first, last = int(cal.days[0]), int(cal.days[-1])
    years = tuple(range(cal.dates[0].year - 1, cal.dates[-1].year + 1))
    zone_test, sides = _zone_test(grid, zone_utm)
    sites = plan_sites(look, params, grid, first=first, last=last, seed=seed,
                       zone_test=zone_test, sides=sides)
    burns = plan_burns(look, params, shape=grid.shape, res=grid.resolution, first=first,
                       last=last, years=years[1:], seed=seed)
    levels = np.array([flood_level(look, int(day), d.year)
                       for d, day in zip(cal.dates, cal.days, strict=True)])
    return RealSceneInputs(
        grid=grid, calendar=cal,
        atmosphere=plan_atmosphere(grid, cal=cal, params=params, seed=seed),
        params=params, look=look, lib=lib, sites=sites, burns=burns, years=years,
        flood_levels=levels, wetness=rainfall().wetness(cal.days),
        meta={"seed": seed, "preset": params.name})


def simulate_real(out, *, grid, lon: float, start, end, n_dates: int, params: RealParams,
                  seed: int, zone_utm=None, tile_size: int = 512, progress=None) -> dict:
    """Plan and write a real-source scene into ``out`` (called by ``simulate_scene``).

    Returns the calendar, STAC items (dict), truth features and event counts; the
    caller validates and writes ``items.json`` and ``truth.geojson``.
    """
    from kpgeo.simulate.realbase.render import render_tile
    from kpgeo.simulate.realbase.truth import burn_features, farm_features, mining_features
    from kpgeo.simulate.writer import finalize_cogs, stac_items, write_scene

    inp = plan_real_scene(grid, lon=lon, start=start, end=end, n_dates=n_dates,
                          params=params, seed=seed, zone_utm=zone_utm)
    cal = inp.calendar
    try:
        written = write_scene(out, inp, tile_size=tile_size, progress=progress,
                              render=render_tile)
        finalize_cogs(out, written, cal, block=min(512, max(256, tile_size)))
    except BaseException:
        for p in out.rglob(".*.raw.tif"):
            p.unlink(missing_ok=True)
        raise
    items = stac_items(out, inp, written["stats"])
    for f in items["features"]:
        f["properties"]["kpgeo:source"] = "real"
    feats = (mining_features(inp.sites, grid, cal)
             + farm_features(inp.look, params, grid, cal, inp.lib, inp.years)
             + burn_features(inp.look, inp.burns, grid, last=int(cal.days[-1])))
    counts = {c: sum(f["properties"]["class"] == c for f in feats)
              for c in ("mining", "farm", "burn")}
    return {"calendar": cal, "items": items, "features": feats, "n_events": counts}
