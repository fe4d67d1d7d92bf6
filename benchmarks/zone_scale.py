"""Zone-scale speed and memory: how close is detection to the time it takes to decode the imagery?

The goal (DEVELOPERS.md): a 3,000 km² zone × 60 dates processed close to the
time it takes merely to decode the imagery, in under 2 GiB of memory. This
script measures both on a simulated scene and prints the figures:

1. ``decode``: read every band of every date fully with rasterio (threads =
   cores), discarding the pixels — the floor no pipeline can beat;
2. ``detect``: ``load_cube`` → ``detect_changes`` → ``extract_footprints``
   with the default chunking.

Each step runs in a fresh subprocess so its peak RSS is its own.

    python benchmarks/zone_scale.py --size 2048 --dates 24        # ~42 km², a few minutes
    python benchmarks/zone_scale.py --size 5477 --dates 60        # 3,000 km² × 60 (long)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _simulate(workdir: Path, size: int, dates: int) -> Path:
    items = workdir / "items.json"
    if items.is_file():
        return items
    from kpgeo.simulate import simulate_scene

    t0 = time.perf_counter()
    simulate_scene(
        workdir,
        center=(15.79, 4.26),
        shape=(size, size),
        n_dates=dates,
        preset="default",
        seed=0,
        tile_size=1024,
    )
    print(
        f"simulated {size}x{size} px x {dates} dates "
        f"in {time.perf_counter() - t0:.0f} s -> {workdir}"
    )
    return items


def _decode(items_path: str) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    from kpgeo.items import read_items

    hrefs = [
        a.get_absolute_href()
        for it in read_items(items_path)
        for a in it.assets.values()
        if (a.get_absolute_href() or "").endswith(".tif")
    ]

    def read(href: str) -> int:
        with rasterio.open(href) as src:
            return int(src.read().nbytes)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        nbytes = sum(pool.map(read, hrefs))
    return {"seconds": time.perf_counter() - t0, "files": len(hrefs), "decoded_mb": nbytes / 2**20}


def _detect(items_path: str) -> dict:
    from kpgeo.change import detect_changes
    from kpgeo.cube import load_cube
    from kpgeo.footprints import extract_footprints

    t0 = time.perf_counter()
    cube = load_cube(items_path)
    change = detect_changes(cube)
    footprints = extract_footprints(change)
    return {
        "seconds": time.perf_counter() - t0,
        "footprints": int(len(footprints)),
        "shape_yx": list(cube.odc.geobox.shape),
        "dates": int(cube.sizes["time"]),
    }


def _child(step: str, items_path: str) -> None:
    result = {"decode": _decode, "detect": _detect}[step](items_path)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _run_child(step: str, items: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, str(items)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="scene side in pixels (10 m)")
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the simulated scene is cached (default /tmp/kpgeo-bench-SIZE-DATES)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    workdir = args.workdir or Path(f"/tmp/kpgeo-bench-{args.size}-{args.dates}")
    items = _simulate(workdir, args.size, args.dates)
    decode = _run_child("decode", items)
    detect = _run_child("detect", items)
    km2 = args.size**2 * 100 / 1e6
    print(
        f"\nscene: {args.size}x{args.size} px at 10 m = {km2:,.0f} km², {args.dates} dates, "
        f"{decode['files']} files, {decode['decoded_mb']:,.0f} MB decoded, {os.cpu_count()} cores"
    )
    print(f"{'step':<8} {'seconds':>9} {'peak RSS (MB)':>14}")
    for name, r in (("decode", decode), ("detect", detect)):
        print(f"{name:<8} {r['seconds']:>9.1f} {r['peak_rss_mb']:>14.0f}")
    ratio = detect["seconds"] / decode["seconds"]
    scale = 3000 / km2 * 60 / args.dates
    print(f"detect / decode time: {ratio:.2f}x; footprints: {detect['footprints']}")
    print(
        "linear extrapolation to 3,000 km² x 60 dates: "
        f"decode {decode['seconds'] * scale / 60:.0f} min, "
        f"detect {detect['seconds'] * scale / 60:.0f} min on this machine"
    )


if __name__ == "__main__":
    main()
