"""Accuracy suite: every simulator preset x several seeds -> table + JSON.

Usage::

    python benchmarks/accuracy_suite.py --shape 128 --seeds 0 1 2 --out benchmarks/accuracy.json

Each run simulates a scene (:func:`kpgeo.simulate.simulate_scene`), runs
:func:`kpgeo.footprints.detect_footprints` on the cube and scores the
footprints with :func:`kpgeo.evaluate.evaluate_files` against the simulator
truth. Object metrics are pooled per preset (sum of TP/FP/detected sites).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

PRESETS = ["clean", "default", "cloudy", "farm-heavy", "burn-heavy", "small-pits"]


def run_one(preset: str, seed: int, shape: int, n_dates: int) -> dict:
    from kpgeo import io
    from kpgeo.cube import load_cube
    from kpgeo.evaluate import evaluate_files
    from kpgeo.footprints import detect_footprints
    from kpgeo.simulate import simulate_scene

    with tempfile.TemporaryDirectory() as tmp:
        sc = simulate_scene(Path(tmp) / "s", shape=(shape, shape), n_dates=n_dates,
                            preset=preset, seed=seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cube = load_cube(sc.items_path)
            change, fps = detect_footprints(cube)
        dt = time.perf_counter() - t0
        fp_path = Path(tmp) / "fp.geojson"
        io.write_vector(fps, fp_path)
        m = evaluate_files(sc.truth_path, fp_path, labels=sc.labels_path)
        m["latency"].pop("sites", None)
        m.update(preset=preset, seed=seed, seconds=dt,
                 n_insufficient=int((change["state"].values == 255).sum()))
        return m


def pool(runs: list[dict]) -> dict:
    o = {k: sum(r["object"][k] for r in runs) for k in
         ("n_truth", "n_detected", "tp_footprints", "detected_sites")}
    p = o["tp_footprints"] / o["n_detected"] if o["n_detected"] else 1.0
    r = o["detected_sites"] / o["n_truth"] if o["n_truth"] else float("nan")
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    px = {k: sum(x["pixel"][k] for x in runs) for k in ("tp", "fp", "fn", "tn")}
    det_ha = sum(x["area"]["detected_ha"] for x in runs)
    fa = {k: sum(x["false_alarm"][k]["ha"] for x in runs) / det_ha if det_ha else 0.0
          for k in runs[0]["false_alarm"]}
    lat = [x["latency"]["median_clear_obs"] for x in runs
           if np.isfinite(x["latency"]["median_clear_obs"])]
    latd = [x["latency"]["median_days"] for x in runs if np.isfinite(x["latency"]["median_days"])]
    return {
        **o, "precision": p, "recall": r, "f1": f1,
        "pixel_precision": px["tp"] / max(px["tp"] + px["fp"], 1),
        "pixel_recall": px["tp"] / max(px["tp"] + px["fn"], 1),
        "pixel_iou": px["tp"] / max(px["tp"] + px["fp"] + px["fn"], 1),
        "specificity": px["tn"] / max(px["tn"] + px["fp"], 1),
        "fa_farm": fa.get("farm", 0.0), "fa_burn": fa.get("burn", 0.0),
        "fa_flood": fa.get("flood", 0.0), "fa_cloud": fa.get("cloud_shadow", 0.0),
        "latency_obs": float(np.median(lat)) if lat else float("nan"),
        "latency_days": float(np.median(latd)) if latd else float("nan"),
        "area_error": (det_ha - sum(x["area"]["truth_ha"] for x in runs))
        / max(sum(x["area"]["truth_ha"] for x in runs), 1e-9),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, default=128)
    ap.add_argument("--n-dates", type=int, default=24)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="write all results as JSON here")
    a = ap.parse_args()
    jobs = [(p, s) for p in a.presets for s in a.seeds]
    with ProcessPoolExecutor(a.workers) as ex:
        futs = [ex.submit(run_one, p, s, a.shape, a.n_dates) for p, s in jobs]
        runs = [f.result() for f in futs]
    table = {p: pool([r for r in runs if r["preset"] == p]) for p in a.presets}
    table["ALL"] = pool(runs)
    cols = ["n_truth", "detected_sites", "n_detected", "precision", "recall", "f1",
            "pixel_precision", "pixel_recall", "pixel_iou", "specificity", "fa_farm", "fa_burn",
            "fa_flood", "fa_cloud", "latency_obs", "latency_days", "area_error"]
    head = "| preset | " + " | ".join(cols) + " |"
    print(head)
    print("|" + "---|" * (len(cols) + 1))
    for name, row in table.items():
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if a.out:
        Path(a.out).write_text(json.dumps({"args": vars(a), "table": table, "runs": runs},
                                          indent=1, default=str))


if __name__ == "__main__":
    main()
