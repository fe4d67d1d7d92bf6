"""kpgeo: satellite monitoring of artisanal diamond mining in Kimberley Process zones.

Data walk one way through named modules::

    kpgeo.zones ─┐
    kpgeo.items ─┴► kpgeo.cube ► kpgeo.change ► kpgeo.footprints
                    ► kpgeo.timeseries ► kpgeo.webmap / kpgeo.staticmap / kpgeo.report

:mod:`kpgeo.pipeline` runs it for every zone of a run; :mod:`kpgeo.cli` is the
command line over the same functions.

Heavy submodules are imported lazily: ``kpgeo.load_cube`` imports
:mod:`kpgeo.cube` on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from kpgeo._version import __version__
from kpgeo.zones import Zone, get_zone, list_zones, load_aoi

__all__ = [
    "__version__",
    "Zone",
    "get_zone",
    "list_zones",
    "load_aoi",
    "load_cube",
    "simulate_scene",
    "detect_changes",
    "extract_footprints",
    "show_versions",
]

_LAZY = {
    "load_cube": "kpgeo.cube",
    "simulate_scene": "kpgeo.simulate",
    "detect_changes": "kpgeo.change",
    "extract_footprints": "kpgeo.footprints",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kpgeo' has no attribute {name!r}")


def show_versions() -> None:
    """Print the versions of kpgeo and its main dependencies (for bug reports)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    print(f"kpgeo      : {__version__}")
    print(f"python     : {platform.python_version()} ({platform.platform()})")
    for pkg in (
        "numpy",
        "rasterio",
        "GDAL",
        "shapely",
        "pyproj",
        "geopandas",
        "xarray",
        "dask",
        "odc-stac",
        "odc-geo",
        "pystac",
        "scikit-image",
        "folium",
    ):
        try:
            print(f"{pkg:<11}: {version(pkg)}")
        except PackageNotFoundError:
            if pkg == "GDAL":
                import rasterio

                print(f"{'GDAL':<11}: {rasterio.__gdal_version__}")
            else:
                print(f"{pkg:<11}: not installed")
