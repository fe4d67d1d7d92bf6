"""Maintainer tool: rebuild the small real-data subsets in ``realbase/data/``.

Never imported by kpgeo. Run once from the repository root with the folder of
the original downloads (each with its own SOURCE.md)::

    python -m kpgeo.simulate.realbase.make_data /path/to/realdata

It copies nothing that is not needed and changes no value: band subsets of
the monthly tropical series (integer DN, stored as uint16), a crop of the
Landsat 7 scene, the eo-learn cloud probabilities quantised to 1/250, and a
subset of the mapped mine outlines. The Sentinel-2 bands and the OSM
polygons are copied unchanged by hand (see ``data/SOURCE.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
S2_BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")
#: ERA5 monthly precipitation kept beside the S2 bands (drives floods and cloudiness)
RAIN = "total_precipitation"
#: rows, cols of the Landsat 7 crop kept (forest, town, beach, coastal water)
L7_WINDOW = ((0, 352), (130, 349))


def _monthly(src: Path, dst: Path, n_steps: int) -> None:
    import rasterio

    with rasterio.open(src) as ds:
        names = list(ds.descriptions)
        idx, rain = [], []
        for m in range(n_steps):
            suf = "" if m == 0 else f"_{m}"
            idx += [names.index(f"{b}{suf}") + 1 for b in S2_BANDS]
            rain.append(names.index(f"{RAIN}{suf}") + 1)
        data = ds.read(idx)
        rain_mm = ds.read(rain).mean(axis=(1, 2)) * 1000.0  # ERA5 metres -> mm
        profile = ds.profile
    if np.abs(data - np.round(data)).max() > 0 or data.min() < 0 or data.max() > 65535:
        raise SystemExit(f"{src}: DN are not uint16 integers")
    profile.update(count=len(idx), dtype="uint16", compress="deflate", predictor=2,
                   tiled=False, interleave="pixel")
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data.astype(np.uint16))
        for k, i in enumerate(idx, start=1):
            out.set_band_description(k, names[i - 1])
        # patch-mean ERA5 precipitation of each step (mm, as written by the exporter x 1000)
        out.update_tags(precipitation_mm=",".join(f"{v:.4f}" for v in rain_mm))


def _landsat(src: Path, dst: Path) -> None:
    import rasterio
    from rasterio.windows import Window

    (r0, r1), (c0, c1) = L7_WINDOW
    win = Window(c0, r0, c1 - c0, r1 - r0)
    with rasterio.open(src) as ds:
        data = ds.read(window=win)
        profile = ds.profile
        profile.update(width=c1 - c0, height=r1 - r0, transform=ds.window_transform(win),
                       compress="deflate", predictor=2)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)


def _clouds(src: Path, dst: Path) -> None:
    import json

    clp = np.load(src / "data" / "CLP.npy")[..., 0]
    stamps = json.loads((src / "timestamps.json").read_text())
    np.savez_compressed(dst, clp=np.round(np.clip(clp, 0, 1) * 250).astype(np.uint8),
                        timestamps=np.array(stamps))


def _mines(seg_gpkg: Path, eg_dir: Path, dst: Path) -> None:
    import geopandas as gpd
    import pandas as pd

    tiles = gpd.read_file(seg_gpkg, layer="tiles")
    art = tiles[(tiles.minetype2 == "Artisanal") | (tiles.minetype1 == "Placer")]
    poly = gpd.read_file(seg_gpkg, layer="polygons_annotated")
    poly = poly[poly.tile_id.isin(art.tile_id)].explode(index_parts=False)
    poly = poly.merge(art[["tile_id", "minetype1", "minetype2"]], on="tile_id")
    poly["source"] = "mine-segmentation/polygons_annotated"
    parts = [poly[["source", "tile_id", "minetype1", "minetype2", "geometry"]]]
    rng = np.random.default_rng(0)
    for name, n in (("guinea2024_polys_t0.70softcon-LogReg_2026-01-08.geojson", 90),
                    ("mining_ghana_ashanti_v44px_v2.8_2017-2020.geojson", 40)):
        g = gpd.read_file(eg_dir / name).explode(index_parts=False)
        g = g[[len(x.exterior.coords) >= 12 for x in g.geometry]]
        g = g.iloc[np.sort(rng.choice(len(g), size=min(n, len(g)), replace=False))]
        g = g[["geometry"]].assign(source=f"earthgenome/{name}", tile_id=-1,
                                    minetype1="Placer", minetype2="Artisanal")
        parts.append(g)
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    out = out[[len(g.exterior.coords) >= 6 for g in out.geometry]]
    # at most 15 ha once rescaled (about 40 px across): 0.4 % of the side is invisible
    out["geometry"] = [g.simplify(0.004 * np.sqrt(g.area), preserve_topology=True)
                       for g in out.geometry]
    out.to_file(dst, driver="GeoJSON", COORDINATE_PRECISION=6)


def main(realdata: str) -> None:
    """Write the subsets from the original downloads in ``realdata``."""
    root = Path(realdata)
    togo = next((root / "s2_cropharvest_togo_monthly").glob("*.tif"))
    hond = next((root / "s2_cropmask_honduras_monthly").glob("*.tif"))
    _monthly(togo, DATA / "togo_s2_monthly_2019.tif", 12)
    _monthly(hond, DATA / "honduras_s2_monthly_2017_2018.tif", 24)
    _landsat(root / "landsat_rcran_stars_L7_ETMs" / "L7_ETMs.tif", DATA / "landsat7_olinda.tif")
    _clouds(root / "s2_eolearn_testeopatch", DATA / "eolearn_clp.npz")
    _mines(root / "mining_mine_segmentation_testtiles" / "mining_tiles_test_annotations.gpkg",
           root / "mining_earthgenome_mining_detector", DATA / "mine_outlines.geojson")


if __name__ == "__main__":
    main(sys.argv[1])
