"""Zone-scale speed and memory of a kpgeo zone run, against the time it takes to decode the imagery.

Every figure is measured in this run, on this machine, each step in a fresh
subprocess whose peak resident memory is sampled for the **whole process tree**
(the step, and its Dask scheduler and workers when there are some) every 50 ms:

decode       every band of every date read once with rasterio, pixels discarded,
             one thread per core, kpgeo's GDAL settings: the floor no pipeline can
             beat. ``decode (run)`` reads only the files a zone run reads (the five
             bands of the decision and SCL; not swir22).
run          ``kpgeo run`` of one zone covering the scene (:func:`run_pipeline`,
             threads), then its time series: item checks, content fingerprint,
             block-streamed detection, the six COGs, the state store, footprints
             (GeoJSON, GeoParquet), coverage, ``timeseries.csv/.parquet``.
             ``blocks``: its block phase alone (every block read, masked and
             decided, state and raster blocks written: the "detect" of issue 7),
             compared with ``decode (run)``, which reads the same files.
report       maps and bulletin (:func:`kpgeo.report.write_report`) from that run,
             timed separately.
incremental  (``--incremental-size``, default 1,000 km²) a run over the first 64
             (69) dates, then the run over all 70: the cost of 6 (1) new dates,
             and its outputs compared with the full run's.
dask         the full run on a LocalCluster of 1 and 2 worker processes
             (``--scheduler local:N``); outputs compared with the threaded run's.
peer         pyxccd's ``cold_detect`` (COLD; PyPI ``pyxccd``) and kpgeo's decision on
             the same pixels (windows around the truth sites of the smallest scene,
             plus background windows): pixels/s/core (one core each, in-memory
             arrays) and object precision / recall / F1 on the simulator truth
             (:func:`kpgeo.evaluate.evaluate_footprints`, the accuracy suite's protocol).
profile      (``--profile``) py-spy samples of the run of the largest scene, all
             threads; the functions holding the most samples are printed.

Scenes are simulated Sentinel-2 L2A (``kpgeo.simulate``, 10 m, preset ``default``,
two years) written tile by tile to ``--workdir`` and reused by later runs::

    python benchmarks/zone_scale.py --sizes 100 1000 --dates 70 --profile
    python benchmarks/zone_scale.py --sizes 3000 --skip incremental dask peer
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

#: files a zone run reads (kpgeo.stream.DETECTION_BANDS + the mask)
RUN_BANDS = ("blue", "green", "red", "nir", "swir16", "scl")
RING_M = 1000.0


# --------------------------------------------------------------------------- scenes


def side_px(km2: float) -> int:
    return int(round((km2 * 1e6) ** 0.5 / 10.0))


def simulate(workdir: Path, km2: float, dates: int) -> Path:
    """The scene's folder (simulated once, tile by tile, then reused).

    The scene is written to ``<folder>.partial`` and renamed when complete, so an
    interrupted simulation is redone, never mistaken for a finished scene.
    """
    folder = workdir / f"scene-{km2:g}km2-{dates}d"
    if (folder / "items.json").is_file() and (folder / "truth.geojson").is_file():
        return folder
    from kpgeo.simulate import simulate_scene

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    t0 = time.perf_counter()
    simulate_scene(partial, center=(15.79, 4.26), shape=(side_px(km2),) * 2, n_dates=dates,
                   preset="default", seed=0, tile_size=1024)
    shutil.rmtree(folder, ignore_errors=True)  # a leftover of an older, unfinished layout
    partial.rename(folder)
    print(f"simulated {km2:g} km² x {dates} dates in {time.perf_counter() - t0:.0f} s -> "
          f"{folder}", flush=True)
    return folder


def first_dates(scene: Path, n: int) -> Path:
    """items.json with the scene's first ``n`` dates (absolute hrefs)."""
    path = scene / f"items-first{n}.json"
    if not path.is_file():
        items = json.loads((scene / "items.json").read_text())
        feats = sorted(items["features"], key=lambda f: f["properties"]["datetime"])[:n]
        for feature in feats:
            for asset in feature["assets"].values():
                asset["href"] = str((scene / asset["href"]).resolve())
        path.write_text(json.dumps(dict(items, features=feats)))
    return path


def write_config(scene: Path, items: Path, folder: Path) -> Path:
    """A run file with one zone: the scene less a 1 km border (the ring covers the border)."""
    import geopandas as gpd
    import shapely

    folder.mkdir(parents=True, exist_ok=True)
    bbox = json.loads((scene / "items.json").read_text())["features"][0]["bbox"]
    box = gpd.GeoSeries([shapely.box(*bbox)], crs=4326)
    inner = box.to_crs(box.estimate_utm_crs()).buffer(-RING_M).to_crs(4326)
    aoi = folder / "zone.geojson"
    gpd.GeoDataFrame({"id": [f"bench-{scene.name}"], "name": [scene.name]},
                     geometry=inner.values, crs=4326).to_file(aoi)
    cfg = folder / f"run-{items.stem}.toml"
    cfg.write_text(f'[run]\nname = "zone-scale benchmark"\nring_width_m = {RING_M}\n'
                   f'min_area_ha = 0.05\n\n[[zones]]\naoi = "{aoi}"\nitems = "{items}"\n')
    return cfg


# --------------------------------------------------------------------------- child steps


def step_decode(items: str, which: str) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import rasterio

    from kpgeo.gdal_env import limit_block_cache, rio_env
    from kpgeo.items import read_items

    limit_block_cache()
    hrefs = [a.get_absolute_href() for it in read_items(items) for k, a in it.assets.items()
             if (a.get_absolute_href() or "").endswith(".tif")
             and (which == "all" or k in RUN_BANDS)]

    def read(href: str) -> int:
        with rio_env(), rasterio.open(href) as src:
            return int(src.read().nbytes)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        nbytes = sum(pool.map(read, hrefs))
    return {"seconds": time.perf_counter() - t0, "files": len(hrefs),
            "decoded_mb": nbytes / 2**20}


def _time_block_phase() -> dict:
    """Time the zone run's block phase: every block read, masked and decided (issue 7's
    "detect"), its state and raster blocks written; from the first block submitted to
    the last one received (:func:`kpgeo.stream.map_blocks`, wrapped in this process)."""
    import kpgeo.stream

    spans = {"seconds": 0.0}
    blocks = kpgeo.stream.map_blocks

    def timed(task, windows):
        t0 = time.perf_counter()
        try:
            yield from blocks(task, windows)
        finally:
            spans["seconds"] += time.perf_counter() - t0

    kpgeo.stream.map_blocks = timed
    return spans


def step_run(cfg: str, out: str, scheduler: str | None) -> dict:
    import warnings

    from kpgeo.pipeline import dask_scheduler, load_config, run_pipeline
    from kpgeo.timeseries import zone_activity
    from kpgeo.timeseries_output import write_timeseries

    warnings.simplefilter("ignore")
    config = load_config(cfg)
    blocks = _time_block_phase()
    t0 = time.perf_counter()
    with dask_scheduler(scheduler):
        t_cluster = time.perf_counter() - t0
        res = run_pipeline(config, out, report=False)
    t_zone = time.perf_counter() - t0
    import geopandas as gpd
    import pandas as pd

    fps = gpd.read_parquet(Path(out) / "footprints.parquet")
    cov = pd.read_csv(Path(out) / "coverage.csv", parse_dates=["date"])
    ts = zone_activity(fps, cov, zones=[j.zone for j in config.jobs], ring_width_m=RING_M)
    write_timeseries(ts, out)
    zone = res["zones"][0]
    return {"seconds": time.perf_counter() - t0, "zone_seconds": t_zone,
            "cluster_start_seconds": t_cluster, "blocks_seconds": blocks["seconds"],
            "footprints": zone.get("footprints"),
            "shape_yx": zone.get("shape_yx"), "dates": zone.get("n_dates"),
            "dates_read": zone.get("dates_read")}


def step_report(cfg: str, out: str) -> dict:
    import warnings

    import geopandas as gpd
    import pandas as pd

    from kpgeo.pipeline import load_config
    from kpgeo.report import write_report

    warnings.simplefilter("ignore")
    config = load_config(cfg)
    t0 = time.perf_counter()
    write_report(Path(out) / "report", footprints=gpd.read_parquet(Path(out) /
                                                                    "footprints.parquet"),
                 coverage=pd.read_csv(Path(out) / "coverage.csv", parse_dates=["date"]),
                 zones=[j.zone for j in config.jobs],
                 items={j.zone.id: j.items for j in config.jobs}, ring_width_m=RING_M,
                 offline=True)
    return {"seconds": time.perf_counter() - t0}


def peer_windows(truth, gbox, side: int) -> list[tuple[int, int, int, int]]:
    """Windows around every truth mining site, plus four background windows, not overlapping."""
    inv = ~gbox.transform
    sites = truth[truth["class"] == "mining"].to_crs(gbox.crs.to_wkt())
    h, w = gbox.shape
    centres = [inv * (c.x, c.y) for c in sites.geometry.centroid]
    centres += [(fx * w, fy * h) for fx in (0.15, 0.85) for fy in (0.15, 0.85)]
    out: list[tuple[int, int, int, int]] = []
    for cx, cy in centres:
        y0 = int(min(max(cy - side / 2, 0), h - side))
        x0 = int(min(max(cx - side / 2, 0), w - side))
        win = (y0, y0 + side, x0, x0 + side)
        if all(win[1] <= o[0] or o[1] <= win[0] or win[3] <= o[2] or o[3] <= win[2] for o in out):
            out.append(win)
    return out


def cold_change(rec_list, shape, dates_ord):
    """pyxccd COLD results -> a change Dataset's arrays: the first vegetation-loss break."""
    import datetime as dt

    import numpy as np

    first = np.full(shape, np.datetime64("NaT"), "datetime64[ns]")
    for (y, x), rec in rec_list:
        breaks = rec[(rec["t_break"] > 0) & (rec["change_prob"] >= 100)
                     & (rec["magnitude"][:, 3] < 0)]  # NIR down: vegetation lost
        if breaks.size:
            day = dt.date.fromordinal(int(breaks["t_break"].min()))
            first[y, x] = np.datetime64(day.isoformat(), "ns")
    return first


def step_peer(scene: str, side: str) -> dict:
    """kpgeo's decision and pyxccd's COLD on the same windows: speed (one core) and accuracy."""
    import datetime as dt
    import warnings

    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely
    import xarray as xr
    from odc.geo.xr import xr_coords
    from pyxccd import cold_detect

    from kpgeo._cube_read import read_block
    from kpgeo.change import ChangeParams, DetectorState, change_dataset
    from kpgeo.change.detect import days_since_epoch
    from kpgeo.cube import plan_cube
    from kpgeo.evaluate import evaluate_footprints, read_truth
    from kpgeo.footprints import extract_footprints
    from kpgeo.items import norm_items

    warnings.simplefilter("ignore")
    scene = Path(scene)
    plan = plan_cube(norm_items(scene / "items.json"))
    spec, gbox, n_t = plan.spec, plan.spec.gbox, len(plan.times)
    ref = read_truth(scene / "truth.geojson", labels=scene / "truth_labels.tif")
    windows = peer_windows(ref["truth"], gbox, int(side))
    tdays = days_since_epoch(plan.times)
    ords = np.array([dt.date.fromisoformat(str(t)[:10]).toordinal() for t in plan.times],
                    dtype=np.int64)
    params = ChangeParams()
    DetectorState.new((1,)).update(red=np.ones((1, 2)), nir=np.ones((1, 2)),
                                   swir16=np.ones((1, 2)), tdays=[1.0, 2.0])  # compile
    fps = {"kpgeo": [], "pyxccd": []}
    secs = {"kpgeo": 0.0, "pyxccd": 0.0}
    n_px = 0
    for win in windows:
        y0, y1, x0, x1 = win
        block = read_block(spec, 0, n_t, *win)
        refl = {}
        for i, b in enumerate(spec.bands):
            r = block["raw"][b].astype(np.float32) * plan.scale[:, i, None, None]
            r += plan.offset[:, i, None, None]
            r[~block["clear"]] = np.nan
            refl[b] = r
        coords = xr_coords(gbox[y0:y1, x0:x1], crs_coord_name="spatial_ref")
        n_px += (y1 - y0) * (x1 - x0)
        t0 = time.perf_counter()
        st = DetectorState.new((y1 - y0, x1 - x0))
        st.update(**{b: np.moveaxis(refl[b], 0, -1) for b in
                     ("blue", "green", "red", "nir", "swir16")}, tdays=tdays, params=params)
        out = st.outputs(params=params).astype("float32")
        secs["kpgeo"] += time.perf_counter() - t0
        change = change_dataset(out, dims=("y", "x"), coords=coords)
        fps["kpgeo"].append(extract_footprints(change, min_area_ha=0.05))
        dn = {b: np.where(np.isnan(refl[b]), 0, np.round(refl[b] * 10000)).astype(np.int64)
              for b in spec.bands}
        qa = np.where(block["clear"], 0, 4).astype(np.int64)
        zero = np.zeros(n_t, np.int64)
        recs = []
        t0 = time.perf_counter()
        for y in range(y1 - y0):
            for x in range(x1 - x0):
                recs.append(((y, x), cold_detect(
                    ords, dn["blue"][:, y, x], dn["green"][:, y, x], dn["red"][:, y, x],
                    dn["nir"][:, y, x], dn["swir16"][:, y, x], dn["swir22"][:, y, x], zero,
                    qa[:, y, x])))
        secs["pyxccd"] += time.perf_counter() - t0
        first = cold_change(recs, (y1 - y0, x1 - x0), ords)
        det = ~np.isnat(first)
        cold = xr.Dataset({"state": (("y", "x"), np.where(det, 2, 0).astype("uint8")),
                           "confidence": (("y", "x"), det.astype("float32")),
                           "first_detected": (("y", "x"), first), "alert_date": (("y", "x"), first),
                           "last_active": (("y", "x"), first)}, coords=coords)
        fps["pyxccd"].append(extract_footprints(cold, min_area_ha=0.05, clearing_min_area_ha=None))
    boxes = [shapely.box(*gbox[y0:y1, x0:x1].boundingbox[:4]) for y0, y1, x0, x1 in windows]
    subset = gpd.GeoSeries([shapely.union_all(boxes)], crs=gbox.crs.to_wkt())
    truth = gpd.clip(ref["truth"].to_crs(subset.crs), subset)
    out = {"pixels": n_px, "dates": n_t, "windows": len(windows),
           "truth_sites": int((truth["class"] == "mining").sum())}
    for name, parts in fps.items():
        f = pd.concat(parts, ignore_index=True)
        f = gpd.GeoDataFrame(f, geometry="geometry", crs=parts[0].crs)
        m = evaluate_footprints(truth, f, labels=ref["labels"], cloud=ref["cloud"],
                                dates=ref["dates"], baseline_obs=params.baseline_obs,
                                confirm_obs=params.persistence)["object"]
        out[name] = {"seconds": secs[name], "px_per_s_core": n_px / secs[name],
                     "footprints": len(f), "precision": m["precision"], "recall": m["recall"],
                     "f1": m["f1"], "n_truth": m["n_truth"]}
    return out


STEPS = {"decode": step_decode, "run": step_run, "report": step_report, "peer": step_peer}


# --------------------------------------------------------------------------- measuring


def _tree_rss(proc) -> int:
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_child(step: str, *args, profile: Path | None = None) -> dict:
    """Run one step in a fresh process; its JSON result plus the process tree's peak RSS."""
    import psutil

    cmd = [sys.executable, __file__, "--child", step, json.dumps([str(a) for a in args])]
    if profile is not None:
        cmd = ["py-spy", "record", "-r", "50", "-f", "raw", "-o", str(profile), "--"] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], _tree_rss(p))
            except psutil.Error:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"step {step} {args} failed:\n{err[-3000:]}")
    # the step's JSON is its last line of its own (py-spy adds lines of its own after it)
    result = json.loads(next(ln for ln in reversed(out.splitlines()) if ln.startswith("{")))
    result["peak_rss_mb"] = peak[0] / 2**20
    return result


# --------------------------------------------------------------------------- comparisons


#: run-level columns of the site register (kpgeo.register): site ids are numbered over the
#: output folder's run history (a site keeps its id from run to run), so a run after
#: earlier runs and a first run number new sites differently; not detection outputs
REGISTER_COLUMNS = ["site_id", "triage_status"]


def same_outputs(a: Path, b: Path) -> bool:
    """Footprints (canonical sort), coverage, time series and the six rasters are identical.

    Footprints: every column of the zone's ``footprints.parquet`` and of the run's,
    less the site register's :data:`REGISTER_COLUMNS`.
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import rasterio

    zone = next((a / "zones").iterdir()).name
    for rel in ("footprints.parquet", f"zones/{zone}/footprints.parquet"):
        fa = gpd.read_parquet(a / rel).sort_values("id").reset_index(drop=True)
        fb = gpd.read_parquet(b / rel).sort_values("id").reset_index(drop=True)
        drop = ["geometry", *(c for c in REGISTER_COLUMNS if c in fa or c in fb)]
        if not (fa.drop(columns=drop).equals(fb.drop(columns=drop, errors="ignore"))
                and list(fa.geometry.to_wkb()) == list(fb.geometry.to_wkb())):
            return False
    for name in ("coverage.csv", "timeseries.csv"):
        if not pd.read_csv(a / name).equals(pd.read_csv(b / name)):
            return False
    for tif in sorted((next((a / "zones").iterdir())).glob("*.tif")):
        other = b / "zones" / tif.parent.name / tif.name
        with rasterio.open(tif) as x, rasterio.open(other) as y:
            if not np.array_equal(x.read(), y.read()):
                return False
    return True


def summarise_profile(raw: Path, top: int = 25) -> list[str]:
    """py-spy raw stacks -> the functions in the most busy samples (inclusive), all threads."""
    import collections
    import re

    idle = ("wait (threading", "_wait_for_tstate_lock", "select (selectors", "acquire (",
            "_worker (concurrent", "get (queue", "sleep", "poll (")
    incl: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, n = line.rsplit(" ", 1)
        frames = stack.split(";")
        if any(frames[-1].startswith(k) or k in frames[-1] for k in idle):
            continue
        total += int(n)
        for name in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            incl[name] += int(n)
    keep = [(n, k) for k, n in incl.most_common(200)
            if "kpgeo" in k or any(s in k for s in ("numba", "rasterio", "zarr", "skimage",
                                                    "shapely", "odc"))]
    return [f"{n / total:6.1%}  {k}" for n, k in keep[:top]]


# --------------------------------------------------------------------------- main


def fmt_row(*cells, widths=(22, 10, 12, 12, 12, 13)) -> str:
    return " ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in
                    enumerate(zip(cells, widths, strict=False)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[100, 1000, 3000],
                    help="scene sizes, km² (square, 10 m pixels)")
    ap.add_argument("--dates", type=int, default=70)
    ap.add_argument("--workdir", type=Path, default=Path("/work/cache/kpgeo-bench"),
                    help="scenes and outputs (not inside the repository)")
    ap.add_argument("--incremental-size", type=float, default=1000)
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["report", "incremental", "dask", "peer"])
    ap.add_argument("--peer-window", type=int, default=96, help="side of the peer windows, px")
    ap.add_argument("--profile", action="store_true", help="py-spy profile of the largest run")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        step, raw = args.child
        print(json.dumps(STEPS[step](*json.loads(raw))))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    ncpu = os.cpu_count()
    print(f"{ncpu} cores, load average {os.getloadavg()[0]:.1f}; workdir {work}", flush=True)
    results: dict = {"cores": ncpu, "dates": args.dates, "sizes": {}}
    threaded: dict[float, Path] = {}
    for km2 in args.sizes:
        scene = simulate(work, km2, args.dates)
        cfg = write_config(scene, scene / "items.json", work / f"run-{km2:g}")
        out = work / f"out-{km2:g}-threads"
        shutil.rmtree(out, ignore_errors=True)
        row = {"decode_all": run_child("decode", scene / "items.json", "all"),
               "decode_run": run_child("decode", scene / "items.json", "run")}
        row["run"] = run_child("run", cfg, out, "threads")
        if "report" not in args.skip:
            row["report"] = run_child("report", cfg, out)
        if args.profile and km2 == max(args.sizes):  # an extra run: py-spy slows what it samples
            prof = work / f"profile-{km2:g}.txt"
            again = work / f"out-{km2:g}-profiled"
            shutil.rmtree(again, ignore_errors=True)
            row["profiled_run"] = run_child("run", cfg, again, "threads", profile=prof)
            row["profile"] = summarise_profile(prof)
        threaded[km2] = out
        results["sizes"][f"{km2:g}"] = row
        (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
        r = row["run"]
        px = r["shape_yx"][0] * r["shape_yx"][1]
        print(f"{km2:g} km²: {px:,} px x {r['dates']} dates; decode "
              f"{row['decode_all']['seconds']:.1f} s, run {r['seconds']:.1f} s, peak "
              f"{r['peak_rss_mb']:.0f} MB", flush=True)
    km2 = args.incremental_size
    if "incremental" not in args.skip and km2 in threaded:
        results["incremental"] = incremental(work, km2, args.dates, threaded[km2])
    if "dask" not in args.skip and km2 in threaded:
        results["dask"] = dask_runs(work, km2, threaded[km2])
    if "peer" not in args.skip:
        scene = simulate(work, min(args.sizes), args.dates)
        results["peer"] = run_child("peer", scene, args.peer_window)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    report(results)


def incremental(work: Path, km2: float, dates: int, full_out: Path) -> dict:
    scene = simulate(work, km2, dates)
    cfg_all = write_config(scene, scene / "items.json", work / f"run-{km2:g}")
    out = {}
    base = work / f"out-{km2:g}-inc"
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(base.with_name(base.name + "6"), ignore_errors=True)
    first = write_config(scene, first_dates(scene, dates - 6), work / f"run-{km2:g}")
    out["setup_first"] = run_child("run", first, base, "threads")
    shutil.copytree(base, base.with_name(base.name + "6"))
    out["plus6"] = run_child("run", cfg_all, base.with_name(base.name + "6"), "threads")
    out["plus6"]["identical_to_full"] = same_outputs(base.with_name(base.name + "6"), full_out)
    five = write_config(scene, first_dates(scene, dates - 1), work / f"run-{km2:g}")
    out["setup_plus5"] = run_child("run", five, base, "threads")
    out["plus1"] = run_child("run", cfg_all, base, "threads")
    out["plus1"]["identical_to_full"] = same_outputs(base, full_out)
    out["size"] = f"{km2:g}"
    return out


def dask_runs(work: Path, km2: float, full_out: Path) -> dict:
    cfg = work / f"run-{km2:g}" / "run-items.toml"
    out = {}
    for n in (1, 2):
        folder = work / f"out-{km2:g}-local{n}"
        shutil.rmtree(folder, ignore_errors=True)
        out[f"local{n}"] = run_child("run", cfg, folder, f"local:{n}")
        out[f"local{n}"]["identical_to_threads"] = same_outputs(folder, full_out)
    return out


def report(results: dict) -> None:
    print("\n" + fmt_row("size", "decode s", "decode(run)s", "run s", "run/decode",
                         "Mpx-dates/s"), "   peak RSS MB (run)  maps+bulletin s"
          "  blocks s  blocks/decode(run)")
    peaks = []
    ok_ratio = True
    for km2, row in results["sizes"].items():
        r = row["run"]
        px = r["shape_yx"][0] * r["shape_yx"][1]
        ratio = r["seconds"] / row["decode_all"]["seconds"]
        ok_ratio &= ratio <= 2.0
        peaks.append(r["peak_rss_mb"])
        blocks = r.get("blocks_seconds", float("nan"))
        print(fmt_row(f"{km2} km² x {r['dates']} d", f"{row['decode_all']['seconds']:.1f}",
                      f"{row['decode_run']['seconds']:.1f}", f"{r['seconds']:.1f}",
                      f"{ratio:.2f}x", f"{px * r['dates'] / r['seconds'] / 1e6:.1f}"),
              f"   {r['peak_rss_mb']:>8.0f}           "
              f"{row.get('report', {}).get('seconds', float('nan')):>5.1f}"
              f"     {blocks:>5.1f}        {blocks / row['decode_run']['seconds']:.2f}x")
    inc = results.get("incremental")
    if inc:
        full = results["sizes"][inc["size"]]["run"]
        for key in ("plus1", "plus6"):
            r = inc[key]
            print(f"incremental {key}: {r['seconds']:.1f} s = {r['seconds'] / full['seconds']:.1%}"
                  f" of the full run, {r['dates_read']} date(s) read, peak "
                  f"{r['peak_rss_mb']:.0f} MB, identical to the full run: "
                  f"{r['identical_to_full']}")
    dk = results.get("dask")
    if dk:
        one, two = dk["local1"], dk["local2"]
        print(f"dask LocalCluster: 1 worker {one['seconds']:.1f} s (peak {one['peak_rss_mb']:.0f}"
              f" MB), 2 workers {two['seconds']:.1f} s (peak {two['peak_rss_mb']:.0f} MB): "
              f"speed-up {one['seconds'] / two['seconds']:.2f}x; identical to threads: "
              f"{one['identical_to_threads']} / {two['identical_to_threads']}")
    peer = results.get("peer")
    if peer:
        for name in ("kpgeo", "pyxccd"):
            p = peer[name]
            print(f"peer {name:<7}: {p['px_per_s_core']:>10,.0f} px/s/core ({peer['pixels']:,} px x"
                  f" {peer['dates']} dates), object P {p['precision']:.3f} R {p['recall']:.3f}"
                  f" F1 {p['f1']:.3f}")
    for km2, row in results["sizes"].items():
        if row.get("profile"):
            print(f"\nprofile of the {km2} km² run (share of busy samples, all threads):")
            print("\n".join(row["profile"]))
    print("\ntargets:")
    print(f"  run <= 2x decode at every size: {'met' if ok_ratio else 'NOT met'}")
    flat = max(peaks) <= 1.2 * min(peaks)
    print(f"  peak RSS <= 2 GiB: {'met' if max(peaks) <= 2048 else 'NOT met'} "
          f"(max {max(peaks):.0f} MB); flat within 20 %: {'met' if flat else 'NOT met'} "
          f"({min(peaks):.0f}..{max(peaks):.0f} MB)")
    if inc:
        share = inc["plus1"]["seconds"] / full["seconds"]
        print(f"  +1 date <= 10 % of the full run: {'met' if share <= 0.10 else 'NOT met'}"
              f" ({share:.1%})")
    if peer:
        speed = peer["kpgeo"]["px_per_s_core"] / peer["pyxccd"]["px_per_s_core"]
        better = peer["kpgeo"]["f1"] >= peer["pyxccd"]["f1"]
        print(f"  >= 100x pyxccd px/s/core at equal or better F1: "
              f"{'met' if speed >= 100 and better else 'NOT met'} ({speed:.0f}x, F1 "
              f"{peer['kpgeo']['f1']:.3f} vs {peer['pyxccd']['f1']:.3f})")
    if dk:
        speed = dk["local1"]["seconds"] / dk["local2"]["seconds"]
        same = dk["local1"]["identical_to_threads"] and dk["local2"]["identical_to_threads"]
        print(f"  dask 2 workers >= 1.7x 1 worker: {'met' if speed >= 1.7 else 'NOT met'} "
              f"({speed:.2f}x); identical to threads: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
