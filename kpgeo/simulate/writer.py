"""Write a simulated scene tile by tile: COGs per date and band, STAC items, truth.

Memory is bounded by the tile size: the landscape and the events are
evaluated per tile (plus a halo), every date of the tile is rendered and
written into its window, and nothing of scene size is held in memory. The
per-date bands are first written as tiled, lightly compressed GeoTIFFs and
then copied into Cloud-Optimised GeoTIFFs (DEFLATE, predictor 2, overviews)
by GDAL's COG driver, which streams block by block.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kpgeo.simulate.atmosphere import TRUTH_NODATA, atmosphere_tile
from kpgeo.simulate.events import apply_events, event_tile
from kpgeo.simulate.grid import Calendar, SceneGrid
from kpgeo.simulate.landscape import landscape_tile
from kpgeo.simulate.spectra import BANDS, water_spectrum

__all__ = ["SceneInputs", "write_scene", "date_dir_name", "TRUTH_FILES", "flood_fraction",
           "label_precedence"]

TRUTH_FILES = {
    "truth": "truth.geojson",
    "labels": "truth_labels.tif",
    "cloud": "truth_cloud.tif",
    "mining_start": "truth_mining_start.tif",
    "confounders": "truth_confounders.tif",
    "items": "items.json",
}

#: ``truth_labels.tif`` codes; where classes overlap the precedence is
#: mining > flood > farm > burn (see :func:`label_precedence`)
LABEL_NONE, LABEL_MINING, LABEL_FARM, LABEL_BURN, LABEL_FLOOD = 0, 1, 2, 3, 4
#: ``truth_confounders.tif`` bits: every confounder present at a pixel, whatever the label
BIT_FARM, BIT_BURN, BIT_FLOOD = 1, 2, 4
#: flood cover above which a floodplain pixel is labelled flood (at the highest level)
FLOOD_LABEL_COVER = 0.2
_S2_NAMES = {"blue": ("B02", 0.49), "green": ("B03", 0.56), "red": ("B04", 0.665),
             "nir": ("B08", 0.842), "swir16": ("B11", 1.61), "swir22": ("B12", 2.19)}
_RAW_OPTS = {"driver": "GTiff", "tiled": True, "compress": "zstd", "zstd_level": 1}
_COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


@dataclass
class SceneInputs:
    """Everything the writer needs (built by :func:`kpgeo.simulate.simulate_scene`)."""

    grid: SceneGrid
    calendar: Calendar
    land: object
    events: object
    atmosphere: list
    params: object
    greenness: np.ndarray  # per date
    flood_levels: np.ndarray  # per date
    river_turbidity: np.ndarray  # per date
    flood_cover: np.ndarray  # per date: open-water cover of deep flooded pixels
    flood_turbidity: np.ndarray  # per date: turbidity of the flood water
    flood_margin: np.ndarray  # per date: level rise over which cover ramps up (shallow margin)
    meta: dict


def date_dir_name(d) -> str:
    """Folder of one acquisition: ``S2_<yyyymmdd>``."""
    return f"S2_{d:%Y%m%d}"


def _block(tile_size: int, side: int) -> int:
    b = min(tile_size, 512)
    while b > 16 and b > side:
        b //= 2
    return max(16, b)


def _to_dn(x: np.ndarray) -> np.ndarray:
    dn = np.round((x + 0.1) * 10000.0)
    dn = np.where(np.isnan(dn), 0, np.clip(dn, 1, 65535))
    return dn.astype(np.uint16)


def write_scene(out: Path, inp: SceneInputs, *, tile_size: int, progress=None,
                render=None) -> dict:
    """Render and write the scene into ``out``; return per-date statistics.

    ``render`` (default: the procedural source's tile renderer) is called as
    ``render(inp, row0, col0, shape, days, doys, raw, t_cloud, t_lab, t_start, t_conf,
    stats, Window)`` for every tile and writes its windows into the open rasters;
    the real source (:mod:`kpgeo.simulate.realbase`) passes its own.
    """
    render = _render_tile if render is None else render
    import rasterio
    from rasterio.windows import Window

    grid, cal = inp.grid, inp.calendar
    h, w = grid.shape
    n = len(cal.dates)
    crs = grid.crs
    bs = _block(tile_size, min(h, w))
    bs2 = max(16, _block(tile_size // 2, min(-(-h // 2), -(-w // 2))))
    h2, w2 = grid.shape_at(2)
    raw = {}
    stats = {"scl_counts": np.zeros((n, 12), np.int64), "truth_counts": np.zeros((n, 4), np.int64),
             "nodata": np.zeros(n, np.int64)}
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=256))

        def open_raw(path, *, dtype, count=1, shape=(h, w), transform=grid.transform,
                     block=bs, nodata=None):
            path.parent.mkdir(parents=True, exist_ok=True)
            ds = rasterio.open(path, "w", height=shape[0], width=shape[1], count=count,
                               dtype=dtype, crs=crs, transform=transform, nodata=nodata,
                               blockxsize=block, blockysize=block, **_RAW_OPTS)
            return stack.enter_context(ds)

        for i, d in enumerate(cal.dates):
            dd = out / date_dir_name(d)
            for b in BANDS:
                raw[(i, b)] = open_raw(dd / f".{b}.raw.tif", dtype="uint16", nodata=0)
            raw[(i, "scl")] = open_raw(dd / ".scl.raw.tif", dtype="uint8", nodata=0,
                                       shape=(h2, w2), transform=grid.transform_at(2), block=bs2)
        t_cloud = open_raw(out / ".truth_cloud.raw.tif", dtype="uint8", count=n,
                           nodata=TRUTH_NODATA)
        t_lab = open_raw(out / ".truth_labels.raw.tif", dtype="uint8")
        t_start = open_raw(out / ".truth_mining_start.raw.tif", dtype="int32")
        t_conf = open_raw(out / ".truth_confounders.raw.tif", dtype="uint8")

        days = cal.days
        doys = cal.doy
        for r0 in range(0, h, tile_size):
            for c0 in range(0, w, tile_size):
                th, tw = min(tile_size, h - r0), min(tile_size, w - c0)
                render(inp, r0, c0, (th, tw), days, doys, raw, t_cloud, t_lab,
                       t_start, t_conf, stats, Window)
                if progress is not None:
                    progress(th * tw)
    return {"raw": {k: v.name for k, v in raw.items()}, "stats": stats,
            "truth_raw": {"cloud": str(out / ".truth_cloud.raw.tif"),
                          "labels": str(out / ".truth_labels.raw.tif"),
                          "mining_start": str(out / ".truth_mining_start.raw.tif"),
                          "confounders": str(out / ".truth_confounders.raw.tif")}}


def flood_fraction(inp: SceneInputs, land, i: int) -> np.ndarray:
    """Open-water fraction (h, w) of the seasonal flood on date ``i`` over one tile.

    Cover ramps up from the shore over a per-date ``flood_margin`` of level (shallow,
    grassy margins), saturates at a per-date ``flood_cover`` (40-100 % by default)
    that changes from reach to reach (``land.flood_var``), and woody cover
    hides the water under the canopy.
    """
    lvl = np.float32(inp.flood_levels[i])
    if lvl <= 0:
        return np.zeros(land.flood_height.shape, np.float32)
    ramp = np.clip((lvl - land.flood_height) / np.float32(inp.flood_margin[i]), 0, 1)
    cover = np.clip(np.float32(inp.flood_cover[i]) * (1 + np.float32(0.25) * land.flood_var),
                    0.2, 1.0)
    return (ramp * cover * (1 - np.float32(0.8) * land.woody)).astype(np.float32)


def label_precedence(*, mining, flood, farm, burn) -> np.ndarray:
    """``truth_labels.tif`` from boolean class masks: mining > flood > farm > burn.

    A seasonal floodplain pixel is under water every wet season, whatever a one-off farm
    clearing or dry-season fire did to it, so an alarm there is attributed to the flood.
    Farms (cleared, then cropped for months) win over the burns (weeks) they overlap.
    """
    labels = np.zeros(np.shape(mining), np.uint8)
    labels[burn] = LABEL_BURN
    labels[farm] = LABEL_FARM
    labels[flood] = LABEL_FLOOD
    labels[mining] = LABEL_MINING
    return labels


def _render_tile(inp, r0, c0, shape, days, doys, raw, t_cloud, t_lab, t_start, t_conf, stats,
                 Window):
    grid, params = inp.grid, inp.params
    land = landscape_tile(inp.land, grid=grid, row0=r0, col0=c0, shape=shape)
    ev = event_tile(inp.events, grid=grid, row0=r0, col0=c0, shape=shape)
    plan = inp.events
    win = Window(c0, r0, shape[1], shape[0])

    # ---- static truth --------------------------------------------------
    flood_max = np.zeros(shape, np.float32)
    for i in range(len(inp.flood_levels)):
        flood_max = np.maximum(flood_max, flood_fraction(inp, land, i))
    flooded = flood_max > FLOOD_LABEL_COVER
    burnt = (ev.burn_index > 0) & (land.woody < 0.5)
    farmed = ev.farm_index > 0
    m = ev.pit_index > 0
    labels = label_precedence(mining=m, flood=flooded, farm=farmed, burn=burnt)
    conf = (farmed * BIT_FARM | burnt * BIT_BURN | flooded * BIT_FLOOD).astype(np.uint8)
    mstart = np.zeros(shape, np.int32)
    if m.any():
        pstart = plan.tables()["pit_start"][ev.pit_index[m] - 1]
        idx = np.searchsorted(days, pstart, side="left")
        first_img = np.where(idx < len(days), days[np.minimum(idx, len(days) - 1)], 0)
        mstart[m] = first_img.astype(np.int32)
    t_lab.write(labels, 1, window=win)
    t_start.write(mstart, 1, window=win)
    t_conf.write(conf, 1, window=win)
    del labels, mstart, conf, flood_max, flooded, burnt, farmed  # keep the tile peak low

    # ---- dates ---------------------------------------------------------
    for i, atm in enumerate(inp.atmosphere):
        g = np.clip(np.float32(inp.greenness[i]) + land.pheno_shift, 0, 1)
        surf = land.base_dry + g[None] * land.base_delta
        surf += land.water[None] * water_spectrum(inp.river_turbidity[i])[:, None, None]
        f = flood_fraction(inp, land, i)
        if f.any():
            turb = np.clip(np.float32(inp.flood_turbidity[i])
                           - np.float32(0.15) * land.flood_var, 0.05, 1.0)
            clear, turbid = water_spectrum(0.0), water_spectrum(1.0)
            surf = surf.astype(np.float32, copy=False)
            keep = 1 - f
            for b in range(surf.shape[0]):  # band by band: no (6, h, w) temporaries
                wb = clear[b] + (turbid[b] - clear[b]) * turb
                surf[b] = surf[b] * keep + wb * f
            del turb, keep, wb
        del f
        apply_events(surf, ev, plan, day=int(days[i]), doy=int(doys[i]), green=g,
                     woody=land.woody, date_index=i)
        # one dtype everywhere, whatever the tile holds: the output must not depend on tiling
        surf = surf.astype(np.float32, copy=False)
        obs, truth, scl = atmosphere_tile(surf, atm=atm, params=params, row0=r0, col0=c0)
        dn = _to_dn(obs)
        for b, name in enumerate(BANDS):
            raw[(i, name)].write(dn[b], 1, window=win)
        scl2 = scl[::2, ::2]
        raw[(i, "scl")].write(scl2, 1, window=Window(c0 // 2, r0 // 2, scl2.shape[1],
                                                     scl2.shape[0]))
        t_cloud.write(truth, i + 1, window=win)
        stats["scl_counts"][i] += np.bincount(scl2.ravel(), minlength=12)[:12]
        valid = truth != TRUTH_NODATA
        stats["truth_counts"][i] += np.bincount(truth[valid].ravel(), minlength=4)[:4]
        stats["nodata"][i] += int((~valid).sum())


def finalize_cogs(out: Path, written: dict, cal: Calendar, *, block: int) -> None:
    """Copy the raw GeoTIFFs into COGs (DEFLATE + predictor 2) and delete the raw files."""
    import rasterio
    from rasterio.shutil import copy as rio_copy

    from kpgeo.io import atomic_path

    def cog(src, dst, *, resampling, descriptions=None):
        with atomic_path(dst) as tmp:
            if descriptions:
                with rasterio.open(src, "r+") as ds:
                    for k, text in enumerate(descriptions, start=1):
                        ds.set_band_description(k, text)
            rio_copy(src, tmp, driver="COG", compress="DEFLATE", predictor=2,
                     blocksize=block, overview_resampling=resampling, num_threads=2)
            os.chmod(tmp, 0o644)
        os.remove(src)

    with rasterio.Env(GDAL_CACHEMAX=256):
        for (i, name), src in written["raw"].items():
            d = cal.dates[i]
            dst = out / date_dir_name(d) / f"{name}.tif"
            cog(src, dst, resampling="nearest" if name == "scl" else "average")
        tr = written["truth_raw"]
        cog(tr["labels"], out / TRUTH_FILES["labels"], resampling="nearest")
        cog(tr["mining_start"], out / TRUTH_FILES["mining_start"], resampling="nearest")
        cog(tr["confounders"], out / TRUTH_FILES["confounders"], resampling="nearest")
        cog(tr["cloud"], out / TRUTH_FILES["cloud"], resampling="nearest",
            descriptions=[d.isoformat() for d in cal.dates])


def _item_footprint(grid: SceneGrid, scene, atm):
    """Lon/lat footprint of one date: the scene, cut to the swath where it has an edge."""
    fp = scene
    if atm.swath is not None:
        fp = scene.intersection(_swath_polygon(grid, atm.swath))
    return grid.to_lonlat(fp)


def _scl_percentages(counts: np.ndarray) -> tuple:
    """Cloud cover (% of valid SCL pixels) and no-data (% of all) from SCL class counts."""
    valid = counts[1:].sum()
    cloud = 100.0 * counts[[8, 9, 10]].sum() / max(valid, 1)
    nod = 100.0 * counts[0] / max(counts.sum(), 1)
    return cloud, nod


def _band_asset(grid: SceneGrid, ddir: str, b: str, tr10: list) -> dict:
    """STAC asset of the 10 m reflectance band ``b``."""
    s2name, wl = _S2_NAMES[b]
    return {
        "href": f"./{ddir}/{b}.tif",
        "type": _COG_TYPE,
        "title": f"{b.capitalize()} ({s2name}) - 10m",
        "roles": ["data", "reflectance"],
        "gsd": grid.resolution,
        "eo:bands": [{"name": s2name, "common_name": b, "center_wavelength": wl}],
        "proj:shape": list(grid.shape),
        "proj:transform": tr10,
        "raster:bands": [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                          "spatial_resolution": grid.resolution, "scale": 0.0001,
                          "offset": -0.1}],
    }


def _scl_asset(grid: SceneGrid, ddir: str, tr20: list) -> dict:
    """STAC asset of the 20 m scene classification map."""
    return {
        "href": f"./{ddir}/scl.tif",
        "type": _COG_TYPE,
        "title": "Scene classification map (SCL)",
        "roles": ["data"],
        "gsd": grid.resolution * 2,
        "proj:shape": list(grid.shape_at(2)),
        "proj:transform": tr20,
        "raster:bands": [{"nodata": 0, "data_type": "uint8",
                          "spatial_resolution": grid.resolution * 2}],
    }


def _item_assets(grid: SceneGrid, ddir: str, tr10: list, tr20: list) -> dict:
    """Assets of one date: every reflectance band, then the SCL."""
    assets = {}
    for b in BANDS:
        assets[b] = _band_asset(grid, ddir, b, tr10)
    assets["scl"] = _scl_asset(grid, ddir, tr20)
    return assets


def _item_properties(inp: SceneInputs, i: int, atm, cloud, nod) -> dict:
    """STAC properties of date ``i`` (cloud and no-data percentages as computed)."""
    grid, cal = inp.grid, inp.calendar
    t = cal.times[i]
    return {
        "datetime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": cal.platforms[i],
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "gsd": grid.resolution,
        "eo:cloud_cover": round(float(cloud), 3),
        "proj:epsg": grid.epsg,
        "proj:code": grid.crs,
        "s2:processing_baseline": "05.00",
        "s2:product_type": "S2MSI2A",
        "s2:nodata_pixel_percentage": round(float(nod), 3),
        "view:sun_azimuth": round(atm.sun_azimuth, 2),
        "view:sun_elevation": round(atm.sun_elevation, 2),
        "kpgeo:simulated": True,
        "kpgeo:seed": inp.meta["seed"],
        "kpgeo:preset": inp.meta["preset"],
    }


def _item_feature(item_id: str, geom, props: dict, assets: dict) -> dict:
    """One STAC item (GeoJSON Feature) of the sentinel-2-l2a collection."""
    from shapely.geometry import mapping

    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "id": item_id,
        "collection": "sentinel-2-l2a",
        "geometry": mapping(geom),
        "bbox": [round(v, 7) for v in geom.bounds],
        "properties": props,
        "links": [],
        "assets": assets,
    }


def stac_items(out: Path, inp: SceneInputs, stats: dict) -> dict:
    """Build the STAC ItemCollection (Earth Search v1 asset keys, relative hrefs)."""
    from shapely.geometry import box

    grid, cal = inp.grid, inp.calendar
    feats = []
    tr10 = list(grid.transform)[:6]
    tr20 = list(grid.transform_at(2))[:6]
    scene = box(*grid.bounds)
    for i, d in enumerate(cal.dates):
        atm = inp.atmosphere[i]
        geom = _item_footprint(grid, scene, atm)
        cloud, nod = _scl_percentages(stats["scl_counts"][i])
        sat = "A" if cal.platforms[i].endswith("a") else "B"
        item_id = f"S2{sat}_SIM{grid.epsg % 100:02d}_{d:%Y%m%d}_0_L2A"
        assets = _item_assets(grid, date_dir_name(d), tr10, tr20)
        props = _item_properties(inp, i, atm, cloud, nod)
        feats.append(_item_feature(item_id, geom, props, assets))
    return {"type": "FeatureCollection", "features": feats}


def _swath_polygon(grid: SceneGrid, swath):
    """Return the valid half-plane of a swath edge as a polygon in the scene CRS."""
    from shapely.geometry import Polygon

    a, b, c = swath  # valid where a*col + b*row <= c (pixel units)
    h, w = grid.shape
    big = 4.0 * (h + w)
    # a point on the line and the direction along it
    p0 = np.array([a * c, b * c])  # (col, row)
    t = np.array([-b, a])
    inward = -np.array([a, b])
    pts = [p0 + t * big, p0 - t * big, p0 - t * big + inward * big, p0 + t * big + inward * big]
    res = grid.resolution
    return Polygon([(grid.x0 + col * res, grid.y0 - row * res) for col, row in pts])
