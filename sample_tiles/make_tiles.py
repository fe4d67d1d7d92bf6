"""Regenerate the committed sample scenes: ``python sample_tiles/make_tiles.py``.

Each scene is a 256 x 256 px (2.56 km) simulated Sentinel-2 L2A stack centred on
a point of a Kimberley Process zone boundary, 24 dates over 2019-2020, written to
``sample_tiles/<zone-id>/``. Deterministic: the same command gives the same files.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from kpgeo.simulate import simulate_scene

HERE = Path(__file__).resolve().parent

#: zone id -> simulator arguments (seeds chosen so the CAR scene has mining on both sides)
SCENES = {
    "caf-berberati": {"seed": 7, "preset": "default"},
    "civ-seguela": {"seed": 3, "preset": "default"},
}
COMMON = {"shape": (256, 256), "n_dates": 24, "start": "2019-01-01", "end": "2020-12-31"}


def make(zone_id: str, out_root: Path = HERE) -> Path:
    """Write one sample scene and check its mining straddles the zone boundary."""
    out = out_root / zone_id
    if out.exists():
        shutil.rmtree(out)
    scene = simulate_scene(out, zone=zone_id, **COMMON, **SCENES[zone_id])
    truth = json.loads(scene.truth_path.read_text())
    sides = {f["properties"].get("inside_zone") for f in truth["features"]
             if f["properties"]["class"] == "mining"}
    if sides != {True, False}:
        raise SystemExit(f"{zone_id}: mining only on side(s) {sides}; pick another seed")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {len(scene.dates)} dates, {scene.n_events}, {size / 2**20:.1f} MiB")
    return out


def main() -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("zones", nargs="*", default=list(SCENES), help="zone ids (default: all)")
    args = ap.parse_args()
    for z in args.zones:
        make(z)


if __name__ == "__main__":
    main()
