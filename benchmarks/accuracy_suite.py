"""Accuracy suite: every simulator preset x several seeds -> table, JSON, docs.

Usage::

    PYTHONPATH=. python benchmarks/accuracy_suite.py --out benchmarks/accuracy.json \\
        --update-docs

Each run simulates a scene (:func:`kpgeo.simulate.simulate_scene`, default
256 x 256 px at 10 m, 30 dates over 2019-2020), runs
:func:`kpgeo.footprints.detect_footprints` on the cube and scores the
footprints with :func:`kpgeo.evaluate.evaluate_files` against the simulator
truth, with the don't-care protocol of :mod:`kpgeo.evaluate`: sites with
fewer than ``ChangeParams.baseline_obs`` clear observations before their
start are *pre-existing*, sites with fewer than ``ChangeParams.persistence``
clear observations from their start to the last date are *pending*; both
are excluded from the scores and counted separately. Object metrics are
pooled per preset (sums of TP/FP footprints and detected sites), pixel
metrics are pooled confusion counts, latency is the median over detected
sites of all runs. ``--cache DIR`` keeps the simulated scenes for reuse;
``--param NAME=VALUE`` overrides a :class:`~kpgeo.change.ChangeParams` field
(experiments; the documented table uses the defaults).
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

PRESETS = ["default", "clean", "cloudy", "farm-heavy", "burn-heavy", "small-pits"]
DOCS = Path(__file__).resolve().parents[1] / "docs" / "accuracy.md"
BEGIN, END = "<!-- accuracy-table:begin -->", "<!-- accuracy-table:end -->"
COLS = ["n_truth", "detected_sites", "n_detected", "precision", "recall", "f1",
        "n_pre_existing", "pre_existing_detected", "n_pending", "pixel_precision",
        "pixel_recall", "specificity", "fa_farm", "fa_burn", "fa_flood", "fa_cloud",
        "latency_obs", "latency_days", "area_error"]


def run_one(preset: str, seed: int, shape: int, n_dates: int, cache: str | None,
            overrides: dict | None = None) -> dict:
    """Simulate (or reuse) one scene, detect, evaluate; returns the metrics dict."""
    from kpgeo import io
    from kpgeo.change import ChangeParams
    from kpgeo.cube import load_cube
    from kpgeo.evaluate import evaluate_files
    from kpgeo.footprints import detect_footprints
    from kpgeo.simulate import simulate_scene

    params = ChangeParams(**(overrides or {}))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(cache) if cache else Path(tmp)
        scene = root / f"{preset}_{seed}_{shape}_{n_dates}"
        t0 = time.perf_counter()
        if not (scene / "items.json").exists():
            simulate_scene(scene, shape=(shape, shape), n_dates=n_dates, preset=preset,
                           seed=seed, overwrite=True)
        t_sim = time.perf_counter() - t0
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cube = load_cube(scene / "items.json")
            change, fps = detect_footprints(cube, params=params)
        t_det = time.perf_counter() - t0
        fp_path = Path(tmp) / "fp.geojson"
        if len(fps):
            io.write_vector(fps, fp_path)
        else:
            fp_path.write_text('{"type": "FeatureCollection", "features": []}')
        m = evaluate_files(scene / "truth.geojson", fp_path, labels=scene / "truth_labels.tif",
                           baseline_obs=params.baseline_obs, confirm_obs=params.persistence)
        m["latency"].pop("sites", None)
        m.update(preset=preset, seed=seed, seconds_simulate=t_sim, seconds_detect=t_det,
                 n_insufficient=int((change["state"].values == 255).sum()))
        return m


def pool(runs: list[dict]) -> dict:
    """Pool the runs of one preset (or all) into one table row."""
    keys = ("n_truth", "n_detected", "tp_footprints", "detected_sites", "n_pre_existing",
            "pre_existing_detected", "n_pending")
    o = {k: sum(r["object"][k] for r in runs) for k in keys}
    p = o["tp_footprints"] / o["n_detected"] if o["n_detected"] else 1.0
    r = o["detected_sites"] / o["n_truth"] if o["n_truth"] else float("nan")
    f1 = 2 * p * r / (p + r) if np.isfinite(r) and p + r else float("nan")
    px = {k: sum(x["pixel"][k] for x in runs) for k in ("tp", "fp", "fn", "tn")}
    det_ha = sum(x["area"]["detected_ha"] for x in runs)
    fa = {k: sum(x["false_alarm"][k]["ha"] for x in runs) / det_ha if det_ha else 0.0
          for k in runs[0]["false_alarm"]}
    lat = [v for x in runs for v in x.get("latency_obs_all", [])]
    latd = [v for x in runs for v in x.get("latency_days_all", [])]
    truth_ha = sum(x["area"]["truth_ha"] for x in runs)
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
        "area_error": (det_ha - truth_ha) / max(truth_ha, 1e-9),
    }


def table_markdown(table: dict) -> str:
    """Markdown table of the pooled rows."""
    lines = ["| preset | " + " | ".join(COLS) + " |", "|" + "---|" * (len(COLS) + 1)]
    for name, row in table.items():
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in COLS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_docs(text: str, path: Path = DOCS) -> None:
    """Replace the generated block of docs/accuracy.md (between the markers)."""
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        doc = doc.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    path.write_text(doc[:a] + "\n" + text.strip() + "\n" + doc[b:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, default=256)
    ap.add_argument("--n-dates", type=int, default=30)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(12)))
    ap.add_argument("--presets", nargs="+", default=PRESETS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=None, help="keep/reuse simulated scenes in this folder")
    ap.add_argument("--out", default=None, help="write all results as JSON here")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a ChangeParams field (experiments; repeatable)")
    ap.add_argument("--update-docs", action="store_true",
                    help="write the table into docs/accuracy.md (between the markers)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    jobs = [(p, s) for p in a.presets for s in a.seeds]
    overrides = {}
    for kv in a.param:
        k, v = kv.split("=", 1)
        overrides[k] = int(v) if v.lstrip("-").isdigit() else float(v)
    with ProcessPoolExecutor(a.workers) as ex:
        futs = [ex.submit(run_one, p, s, a.shape, a.n_dates, a.cache, overrides)
                for p, s in jobs]
        runs = [f.result() for f in futs]
    for r in runs:  # per-site latencies are pooled, not medians of medians
        r["latency_obs_all"] = r["latency"].pop("clear_obs_all", [])
        r["latency_days_all"] = r["latency"].pop("days_all", [])
    table = {p: pool([r for r in runs if r["preset"] == p]) for p in a.presets}
    table["ALL"] = pool(runs)
    wall = time.perf_counter() - t0
    md = table_markdown(table)
    print(md)
    print(f"\n{len(runs)} scenes ({a.shape} x {a.shape} px, {a.n_dates} dates, seeds {a.seeds}) "
          f"in {wall:.0f} s with {a.workers} workers")
    if a.out:
        Path(a.out).write_text(json.dumps({"args": vars(a), "wall_seconds": wall,
                                           "table": table, "runs": runs},
                                          indent=1, default=str))
    if a.update_docs:
        seeds = " ".join(str(s) for s in a.seeds)
        cmd = (f"PYTHONPATH=. python benchmarks/accuracy_suite.py --shape {a.shape} "
               f"--n-dates {a.n_dates} --seeds {seeds} --workers {a.workers} --update-docs")
        update_docs(f"Command: `{cmd}`\n\n{len(runs)} scenes, wall time {wall:.0f} s "
                    f"({a.workers} workers).\n\n{md}")


if __name__ == "__main__":
    main()
