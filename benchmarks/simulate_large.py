"""Time and peak memory of a large simulated scene.

Usage::

    PYTHONPATH=. python benchmarks/simulate_large.py --size 4096 --dates 6 [--tile-size 512]

Prints wall time, throughput and peak RSS (the scene is written to a temporary
folder, deleted afterwards unless ``--keep DIR`` is given).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from kpgeo.simulate import simulate_scene


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--dates", type=int, default=6)
    ap.add_argument("--tile-size", type=int, default=512)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--keep", default=None, help="write here and keep the scene")
    args = ap.parse_args()

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "scene"
        t0 = time.perf_counter()
        scene = simulate_scene(out, shape=(args.size, args.size), n_dates=args.dates,
                               preset=args.preset, tile_size=args.tile_size, seed=0)
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    px = args.size**2 * args.dates
    full = args.size**2 * 6 * args.dates * 4 / 2**20
    print(f"scene {args.size}x{args.size} px x {args.dates} dates, tile {args.tile_size}, "
          f"events {scene.n_events}")
    print(f"wall {wall:.1f} s ({px / wall / 1e6:.2f} Mpx-dates/s), output {size / 2**20:.0f} MiB")
    print(f"peak RSS {peak:.0f} MiB (at start {rss0:.0f} MiB); "
          f"full float32 stack would be {full:.0f} MiB")


if __name__ == "__main__":
    main()
