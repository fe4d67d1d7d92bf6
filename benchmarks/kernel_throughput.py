"""Throughput of the per-pixel decision (pixels/s/core) at 24, 60 and 150 dates.

Usage::

    python benchmarks/kernel_throughput.py [--size 192] [--dates 24 60 150]

For each number of dates a procedural scene (two years, domain randomised) is
simulated, loaded into memory with :func:`kpgeo.cube.load_cube`, and the
decision (:func:`kpgeo.change.detect_pixels`, one thread) is timed on its
pixels, best of three runs, after a warm-up call (numba compilation is not
counted). The cost should be linear in the number of dates: pixel-dates per
second roughly constant. A series longer than two years' ~140 dates (the 5-day
revisit with clouds) spans as many years as it needs, ~70 dates a year.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def kernel_seconds(cube, repeat: int = 3) -> float:
    from kpgeo.change import detect_pixels
    from kpgeo.change.detect import days_since_epoch

    bands = {b: np.moveaxis(cube[b].values, 0, -1) for b in
             ("red", "nir", "swir16", "green", "blue")}
    tdays = days_since_epoch(cube["time"].values)
    detect_pixels(**{b: v[:2, :2] for b, v in bands.items()}, tdays=tdays)  # compile
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        detect_pixels(**bands, tdays=tdays)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=192, help="scene side in pixels")
    ap.add_argument("--dates", type=int, nargs="+", default=[24, 60, 150])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from kpgeo.cube import load_cube
    from kpgeo.simulate import simulate_scene

    print(f"{'dates':>6} {'pixels':>8} {'seconds':>8} {'px/s/core':>10} {'px-dates/s':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.dates:
            years = max(2, math.ceil(n / 70))
            scene = simulate_scene(Path(tmp) / f"s{n}", shape=(args.size, args.size),
                                   n_dates=n, preset="default", seed=args.seed,
                                   randomize=True, end=f"{2018 + years}-12-31")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cube = load_cube(scene.items_path).compute()
            sec = kernel_seconds(cube)
            px = args.size * args.size
            print(f"{n:>6} {px:>8} {sec:>8.3f} {px / sec:>10.0f} {px * n / sec:>11.3g}")


if __name__ == "__main__":
    main()
