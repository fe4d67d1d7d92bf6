"""Accuracy of detected footprints against ground truth (simulator or field data).

Matching rule (object level)
----------------------------
Geometries are compared in a metric CRS (the CRS of the label raster, else the
local UTM zone of the truth).

* A **footprint is a true positive** when at least ``overlap_threshold``
  (default 50 %) of its area lies inside truth mining geometries; otherwise it
  is a false positive.
* A **truth mining site is detected** when the true-positive footprints that
  touch it cover it with an IoU of at least ``iou_threshold`` (default 0.25),
  IoU = area(site ∩ F) / area(site ∪ F) with F the union of those
  footprints, **or** they cover at least ``overlap_threshold`` of the site's
  area (so a site mapped as several pits still counts).

Object precision = TP footprints / footprints; object recall = detected sites /
truth sites; F1 is their harmonic mean.

Pixel level (needs ``truth_labels.tif``): footprints are rasterised on the
label grid; a pixel is positive when its label is 1 (mining). Precision,
recall, IoU and specificity (TN / (TN + FP)) follow.

False-alarm area by confounder: footprint pixels whose label is not mining are
attributed to ``farm`` (2), ``burn`` (3), ``flood`` (4), else to
``cloud_shadow`` when ``truth_cloud.tif`` shows cloud, shadow or thin cloud at
the footprint's ``first_detected`` date, else ``other``. Each is reported in
hectares and as a fraction of the detected area. The simulator's label raster
resolves overlapping confounders as mining > flood > farm > burn (a burnt or
cleared seasonal floodplain counts as ``flood``: it is under water every wet
season); ``truth_confounders.tif`` keeps every confounder as bits.

Latency, for each detected site, in days and in clear observations (dates on
which the majority of the site's pixels are clear in ``truth_cloud.tif``):

* **alert latency** (``latency``): from the true ``start_date`` to the
  earliest ``alert_date`` of its footprints — the date the detector could first
  have confirmed the site (clear dates strictly after the start, up to and
  including the alert date: 1 = confirmed on the first clear date showing it);
* **break offset** (``break_offset``): ``first_detected`` (the back-dated
  break) minus the true start — how well the detector dates a site it found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from kpgeo.errors import ConfigError, InvalidAOIError

__all__ = ["evaluate_footprints", "evaluate_files", "read_truth", "naive_ndvi_drop",
           "LABEL_CODES"]

#: truth_labels.tif codes (precedence where they overlap: mining > flood > farm > burn)
LABEL_CODES = {0: "none", 1: "mining", 2: "farm", 3: "burn", 4: "flood"}


def _f1(p: float, r: float) -> float:
    return 0.0 if (p + r) == 0 or not np.isfinite(p + r) else 2 * p * r / (p + r)


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def evaluate_footprints(
    truth: Any,
    footprints: Any,
    *,
    labels: Any = None,
    cloud: Any = None,
    dates: Any = None,
    iou_threshold: float = 0.25,
    overlap_threshold: float = 0.5,
    baseline_obs: int | None = None,
    confirm_obs: int | None = None,
) -> dict[str, Any]:
    """Compare footprints with truth polygons (and optionally label rasters).

    Parameters
    ----------
    truth : geopandas.GeoDataFrame
        Truth events with ``class`` (``mining`` rows are used as positives),
        ``start_date`` and a CRS (e.g. ``truth.geojson``).
    footprints : geopandas.GeoDataFrame
        Detected footprints (:func:`kpgeo.footprints.extract_footprints`), with
        ``first_detected``.
    labels : xarray.DataArray, optional
        ``truth_labels.tif`` (2-D, with CRS): enables the pixel metrics and
        the confounder breakdown.
    cloud : xarray.DataArray, optional
        ``truth_cloud.tif`` (band per date) on the label grid, with ``dates``:
        enables the cloud/shadow attribution and latency in clear observations.
    dates : sequence of dates, optional
        Acquisition date of each ``cloud`` band.
    iou_threshold, overlap_threshold : float
        Matching rule (see the module docstring).
    baseline_obs, confirm_obs : int, optional
        Don't-care protocol (needs ``labels``, ``cloud`` and ``dates``): a
        site with fewer than ``baseline_obs`` clear observations before its
        start is *pre-existing*, one with fewer than ``confirm_obs`` clear
        observations from its start to the last date is *pending*; both are
        excluded from recall, precision and the pixel metrics (see the
        module docstring). ``None`` disables the rule.

    Returns
    -------
    dict
        ``object`` (precision, recall, f1, counts), ``pixel`` (precision,
        recall, iou, specificity; when ``labels``), ``area`` (truth and
        detected ha, relative error), ``latency`` (median/mean days and clear
        observations, per-site lists), ``false_alarm`` (ha and fraction by
        confounder; when ``labels``).

    Raises
    ------
    kpgeo.errors.ConfigError
        Thresholds out of (0, 1] or inputs without CRS / required columns.
    """
    import rioxarray  # noqa: F401  (registers .rio)

    _check_inputs(truth, footprints, iou_threshold, overlap_threshold)
    sites, fps = _metric_frames(truth, footprints, labels)
    ctx = _site_context(sites, labels, cloud, dates, baseline_obs, confirm_obs)
    res = _object_results(sites, fps, ctx, iou_threshold, overlap_threshold)
    if labels is not None:
        res.update(_pixel_results(sites, fps, ctx, labels, cloud))
    return res


@dataclass(frozen=True)
class _SiteContext:
    """Per truth site: start date, clear dates and don't-care status (with the protocol)."""

    starts: Any
    dates_idx: Any
    clear_site: list[np.ndarray] | None
    status: np.ndarray
    n_before: np.ndarray
    n_after: np.ndarray
    protocol: dict[str, Any]

    @property
    def care(self) -> np.ndarray:
        """Sites that count (status ``new``)."""
        return self.status == "new"


def _metric_frames(truth: Any, footprints: Any, labels: Any) -> tuple[Any, Any]:
    """Truth mining sites and non-empty footprints, reprojected to the metric CRS."""
    metric_crs = _metric_crs(truth, footprints, labels)
    sites = truth[truth["class"] == "mining"].to_crs(metric_crs).reset_index(drop=True)
    fps = footprints.to_crs(metric_crs).reset_index(drop=True)
    fps = fps[~fps.geometry.is_empty & fps.geometry.notna()].reset_index(drop=True)
    return sites, fps


def _site_starts(sites: Any) -> Any:
    """Parse each site's true start date (NaT when the truth has no ``start_date``)."""
    import pandas as pd

    return pd.to_datetime(sites["start_date"]) if "start_date" in sites else \
        pd.Series(pd.NaT, index=sites.index)


def _protocol_clear_dates(sites: Any, labels: Any, cloud: Any, dates: Any, *,
                          baseline_obs: int | None,
                          confirm_obs: int | None) -> list[np.ndarray] | None:
    """Clear dates per site when labels, cloud and dates are given; else refuse the protocol."""
    if cloud is not None and labels is not None and dates is not None:
        return _site_clear_dates(sites, cloud, labels)
    if baseline_obs is not None or confirm_obs is not None:
        raise ConfigError("The don't-care protocol (baseline_obs/confirm_obs) needs labels, "
                          "cloud and dates.")
    return None


def _site_context(sites: Any, labels: Any, cloud: Any, dates: Any, baseline_obs: int | None,
                  confirm_obs: int | None) -> _SiteContext:
    """Start dates, clear dates and don't-care status of the truth sites."""
    import pandas as pd

    starts = _site_starts(sites)
    dates_idx = pd.to_datetime(list(dates)) if dates is not None else None
    clear_site = _protocol_clear_dates(sites, labels, cloud, dates, baseline_obs=baseline_obs,
                                       confirm_obs=confirm_obs)
    status, n_before, n_after = _site_status(starts, clear_site, dates_idx,
                                             baseline_obs=baseline_obs, confirm_obs=confirm_obs)
    return _SiteContext(starts=starts, dates_idx=dates_idx, clear_site=clear_site,
                        status=status, n_before=n_before, n_after=n_after,
                        protocol={"baseline_obs": baseline_obs, "confirm_obs": confirm_obs})


def _matching_rule(iou_threshold: float, overlap_threshold: float) -> str:
    """Describe the matching rule in words (``matching_rule`` of the results)."""
    return (f"footprint TP if >= {overlap_threshold:.0%} of its area inside truth "
            f"mining; site detected if TP footprints reach IoU >= {iou_threshold} "
            f"or cover >= {overlap_threshold:.0%} of the site")


def _area_metrics(sites: Any, fps: Any, on_mining: np.ndarray) -> dict[str, Any]:
    """Truth, detected and true-positive area (ha) and the relative area error."""
    fp_area = fps.geometry.area.to_numpy()
    truth_ha = float(sites.geometry.area.sum() / 1e4)
    det_ha = float(fp_area.sum() / 1e4)
    return {"truth_ha": truth_ha, "detected_ha": det_ha,
            "tp_detected_ha": float(fp_area[on_mining].sum() / 1e4),
            "relative_error": _safe_div(det_ha - truth_ha, truth_ha)}


def _object_results(sites: Any, fps: Any, ctx: _SiteContext, iou_threshold: float,
                    overlap_threshold: float) -> dict[str, Any]:
    """Match footprints with sites; object, per-site, area and latency results."""
    on_mining, dont_care_fp = _footprint_truth(fps, sites, ctx.care, overlap_threshold)
    match = _match_sites(sites, fps, on_mining, iou_threshold, overlap_threshold)
    detected = match["detected"]
    counted = ctx.care & detected  # latency: sites that count only
    return {
        "matching_rule": _matching_rule(iou_threshold, overlap_threshold),
        "protocol": ctx.protocol,
        "object": _object_metrics(ctx.status, detected, on_mining, dont_care_fp),
        "sites": _site_rows(sites, ctx.status, detected, match["iou"], ctx.n_before,
                            ctx.n_after),
        "area": _area_metrics(sites, fps, on_mining),
        "latency": _latency(sites, counted, ctx.starts, match["alert"], ctx.clear_site,
                            ctx.dates_idx),
        "break_offset": _latency(sites, counted, ctx.starts, match["first"], ctx.clear_site,
                                 ctx.dates_idx),
    }


def _pixel_results(sites: Any, fps: Any, ctx: _SiteContext, labels: Any,
                   cloud: Any) -> dict[str, Any]:
    """Pixel metrics and false-alarm breakdown, with don't-care sites left out."""
    dc_mask = None
    if (~ctx.care).any():
        dc_mask = _rasterize(sites.geometry.values[~ctx.care],
                             np.ones(int((~ctx.care).sum())), labels) > 0
    return _pixel_metrics(fps, labels, cloud=cloud, dates=ctx.dates_idx, ignore=dc_mask)


def _object_metrics(status: np.ndarray, detected: np.ndarray, on_mining: np.ndarray,
                    dont_care_fp: np.ndarray) -> dict[str, Any]:
    """Object precision / recall / F1 and counts under the don't-care protocol."""
    care = status == "new"
    n_fp = int(len(on_mining) - dont_care_fp.sum())
    n_tp = int((on_mining & ~dont_care_fp).sum())
    n_care = int(care.sum())
    n_det = int((detected & care).sum())
    precision = _safe_div(n_tp, n_fp) if n_fp else (1.0 if n_care == 0 else 0.0)
    recall = _safe_div(n_det, n_care) if n_care else float("nan")
    return {
        "n_truth": n_care, "n_detected": n_fp, "tp_footprints": n_tp,
        "fp_footprints": n_fp - n_tp, "detected_sites": n_det,
        "precision": precision, "recall": recall,
        "f1": _f1(precision, recall) if n_care else float("nan"),
        "n_pre_existing": int((status == "pre-existing").sum()),
        "n_pending": int((status == "pending").sum()),
        "pre_existing_detected": int((detected & (status == "pre-existing")).sum()),
        "dont_care_footprints": int(dont_care_fp.sum()),
    }


def _site_rows(sites: Any, status: np.ndarray, detected: np.ndarray, iou: np.ndarray,
               n_before: np.ndarray, n_after: np.ndarray) -> list[dict[str, Any]]:
    """One row per truth site: status, detected, IoU, clear observations around its start."""
    return [
        {"site_id": sites["site_id"].iloc[i] if "site_id" in sites else i,
         "status": str(status[i]), "detected": bool(detected[i]),
         "iou": float(iou[i]) if np.isfinite(iou[i]) else 0.0,
         "clear_before": int(n_before[i]), "clear_after": int(n_after[i])}
        for i in range(len(sites))
    ]


def _check_inputs(truth: Any, footprints: Any, iou_threshold: Any,
                  overlap_threshold: Any) -> None:
    for name, v in (("iou_threshold", iou_threshold), ("overlap_threshold", overlap_threshold)):
        if not (isinstance(v, (int, float)) and 0 < v <= 1):
            raise ConfigError(f"{name} must be in (0, 1], got {v!r}.")
    for name, g in (("truth", truth), ("footprints", footprints)):
        if getattr(g, "crs", None) is None:
            raise ConfigError(f"The {name} GeoDataFrame has no CRS.")
    if "class" not in truth.columns:
        raise ConfigError("The truth table needs a `class` column (mining/farm/burn).")


def _metric_crs(truth: Any, footprints: Any, labels: Any) -> Any:
    """Pick the label raster's CRS, else a projected input CRS, else the local UTM zone."""
    if labels is not None:
        return labels.rio.crs
    if truth.crs.is_projected:
        return truth.crs
    if footprints.crs.is_projected:
        return footprints.crs
    return truth.estimate_utm_crs() if len(truth) else footprints.estimate_utm_crs()


def _site_status(starts: Any, clear_site: Any, dates_idx: Any, *, baseline_obs: int | None,
                 confirm_obs: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classify sites new / pre-existing / pending; count clear observations around starts."""
    import pandas as pd

    n = len(starts)
    status = np.array(["new"] * n, dtype=object)
    n_before, n_after = np.full(n, -1), np.full(n, -1)
    if clear_site is None:
        return status, n_before, n_after
    for i in range(n):
        if pd.isna(starts.iloc[i]):
            continue
        before = np.asarray(dates_idx < starts.iloc[i])
        n_before[i] = int(np.sum(clear_site[i] & before))
        n_after[i] = int(np.sum(clear_site[i] & ~before))
        if baseline_obs is not None and n_before[i] < baseline_obs:
            status[i] = "pre-existing"
        elif confirm_obs is not None and n_after[i] < confirm_obs:
            status[i] = "pending"
    return status, n_before, n_after


def _footprint_truth(fps: Any, sites: Any, care: np.ndarray,
                     overlap_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(on mining, mainly on don't-care sites) per footprint."""
    import shapely

    def union(mask):
        g = sites.geometry.values[mask]
        return shapely.union_all(g) if len(g) else shapely.Polygon()

    if not len(fps):
        return np.zeros(0, bool), np.zeros(0, bool)
    fp_area = fps.geometry.area.to_numpy()
    in_care = fps.geometry.intersection(union(care)).area.to_numpy()
    in_dc = fps.geometry.intersection(union(~care)).area.to_numpy()
    on_mining = ((in_care + in_dc) >= overlap_threshold * fp_area) & (fp_area > 0)
    return on_mining, on_mining & (in_dc > in_care)


def _match_sites(sites: Any, fps: Any, on_mining: np.ndarray, iou_threshold: float,
                 overlap_threshold: float) -> dict[str, Any]:
    """Per site: detected, IoU with its TP footprints, their earliest break and alert."""
    import pandas as pd
    import shapely

    def date_col(name):
        return pd.to_datetime(fps[name]) if name in fps else pd.Series(pd.NaT, index=fps.index)

    first, alert = date_col("first_detected"), date_col("alert_date")
    n = len(sites)
    out = {"detected": np.zeros(n, bool), "iou": np.full(n, np.nan),
           "first": [pd.NaT] * n, "alert": [pd.NaT] * n}
    if not len(fps):
        return out
    tree = shapely.STRtree(fps.geometry.values)
    for i, site in enumerate(sites.geometry.values):
        cand = [j for j in tree.query(site, predicate="intersects") if on_mining[j]]
        if not cand:
            out["iou"][i] = 0.0
            continue
        fu = shapely.union_all(fps.geometry.values[cand])
        inter = site.intersection(fu).area
        union_a = site.union(fu).area
        out["iou"][i] = inter / union_a if union_a else 0.0
        found = out["iou"][i] >= iou_threshold or _safe_div(inter, site.area) >= overlap_threshold
        out["detected"][i] = found
        if found:
            out["first"][i] = first.iloc[cand].min()
            out["alert"][i] = alert.iloc[cand].min()
    return out


def _latency(sites: Any, use: np.ndarray, starts: Any, when: list, clear_site: Any,
             dates_idx: Any) -> dict[str, Any]:
    """Days and clear observations from each site's true start to ``when`` (see module doc)."""
    import pandas as pd

    lat_days, lat_obs, per_site = [], [], []
    for i in range(len(sites)):
        if not use[i] or pd.isna(starts.iloc[i]) or pd.isna(when[i]):
            continue
        start, date = pd.Timestamp(starts.iloc[i]), pd.Timestamp(when[i])
        d = (date - start).days
        entry = {"site_id": sites["site_id"].iloc[i] if "site_id" in sites else i, "days": d}
        lat_days.append(d)
        if clear_site is not None:
            cl = clear_site[i]
            if d >= 0:
                n = int(np.sum(cl & np.asarray((dates_idx > start) & (dates_idx <= date))))
            else:
                n = -int(np.sum(cl & np.asarray((dates_idx <= start) & (dates_idx > date))))
            entry["clear_obs"] = n
            lat_obs.append(n)
        per_site.append(entry)
    return {
        "median_days": float(np.median(lat_days)) if lat_days else float("nan"),
        "mean_days": float(np.mean(lat_days)) if lat_days else float("nan"),
        "median_clear_obs": float(np.median(lat_obs)) if lat_obs else float("nan"),
        "days_all": [float(v) for v in lat_days],
        "clear_obs_all": [float(v) for v in lat_obs],
        "sites": per_site,
    }


def _rasterize(geoms: Any, values: Any, labels: Any, fill: int = 0) -> np.ndarray:
    import rasterio.features

    shape = labels.shape[-2:]
    items = [(g, int(v)) for g, v in zip(geoms, values, strict=True) if g is not None
             and not g.is_empty]
    if not items:
        return np.zeros(shape, "int32")
    return rasterio.features.rasterize(items, out_shape=shape, transform=labels.rio.transform(),
                                       fill=fill, dtype="int32")


def _site_clear_dates(sites: Any, cloud: Any, labels: Any) -> list[np.ndarray]:
    ids = _rasterize(sites.geometry.values, np.arange(1, len(sites) + 1), labels)
    cl = np.asarray(cloud.values) == 0
    out = []
    for i in range(len(sites)):
        m = ids == i + 1
        if not m.any():
            out.append(np.zeros(cl.shape[0], bool))
            continue
        out.append(cl[:, m].mean(axis=1) >= 0.5)
    return out


def _pixel_metrics(fps: Any, labels: Any, *, cloud: Any, dates: Any,
                   ignore: Any = None) -> dict[str, Any]:
    import pandas as pd

    lab = np.asarray(labels.values).squeeze()
    fid = _rasterize(fps.geometry.values, np.arange(1, len(fps) + 1), labels)
    valid = np.ones(lab.shape, bool) if ignore is None else ~np.asarray(ignore, bool)
    if ignore is not None:  # don't-care sites: neither positive nor negative
        fid = np.where(valid, fid, 0)
        lab = np.where(valid, lab, 0)
    pred = fid > 0
    truth = lab == 1
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    tn = int((~pred & ~truth & valid).sum())
    px_ha = abs(labels.rio.transform().a * labels.rio.transform().e) / 1e4
    precision = _safe_div(tp, tp + fp) if tp + fp else 1.0
    recall = _safe_div(tp, tp + fn)
    pixel = {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "iou": _safe_div(tp, tp + fp + fn),
        "specificity": _safe_div(tn, tn + fp),
    }
    detected_ha = pred.sum() * px_ha
    fa = {}
    for code, name in ((2, "farm"), (3, "burn"), (4, "flood")):
        fa[name] = int((pred & (lab == code)).sum())
    rest = pred & ~truth & ~np.isin(lab, [2, 3, 4])
    n_cloud = 0
    if cloud is not None and dates is not None and "first_detected" in fps:
        cl = np.asarray(cloud.values)
        first = pd.to_datetime(fps["first_detected"])
        for j in range(len(fps)):
            if pd.isna(first.iloc[j]):
                continue
            m = rest & (fid == j + 1)
            if not m.any():
                continue
            k = int(np.argmin(np.abs((dates - first.iloc[j]).days)))
            n_cloud += int((m & (cl[k] != 0)).sum())
    fa["cloud_shadow"] = n_cloud
    fa["other"] = int(rest.sum()) - n_cloud
    false_alarm = {
        name: {"ha": n * px_ha, "fraction_of_detected": _safe_div(n * px_ha, detected_ha)
               if detected_ha else 0.0}
        for name, n in fa.items()
    }
    return {"pixel": pixel, "false_alarm": false_alarm}


def _read_raster(path: str | os.PathLike) -> Any:
    import rioxarray

    try:
        return rioxarray.open_rasterio(path).load()
    except Exception as exc:  # noqa: BLE001 - turn GDAL errors into a clear message
        raise InvalidAOIError(f"Cannot read raster {path}: {exc}") from exc


def _read_vector(path: str | os.PathLike, what: str) -> Any:
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"Cannot read the {what} file {path}: {exc}") from exc
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    return gdf


def read_truth(
    truth: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    cloud: str | os.PathLike | None = None,
    dates: Any = None,
) -> dict[str, Any]:
    """Read ground-truth files once (for evaluating many footprint sets).

    ``cloud`` defaults to ``truth_cloud.tif`` next to ``labels`` when present;
    ``dates`` default to the band descriptions of ``cloud`` (ISO dates) or to
    the dates of ``items.json`` next to it.

    Returns
    -------
    dict
        ``truth`` (GeoDataFrame), ``labels``, ``cloud`` (DataArrays or None) and
        ``dates`` — keyword arguments of :func:`evaluate_footprints`.
    """
    import json
    from pathlib import Path

    truth_gdf = _read_vector(truth, "truth")
    lab = _read_raster(labels).squeeze("band", drop=True) if labels else None
    cl = None
    if labels and cloud is None and (Path(labels).parent / "truth_cloud.tif").exists():
        cloud = Path(labels).parent / "truth_cloud.tif"
    if cloud:
        cl = _read_raster(cloud)
        if dates is None:
            desc = cl.attrs.get("long_name")
            if isinstance(desc, (list, tuple)) and len(desc) == cl.shape[0]:
                try:
                    dates = [np.datetime64(str(d)[:10]) for d in desc]
                except ValueError:
                    dates = None
        items_path = Path(cloud).parent / "items.json"
        if dates is None and items_path.exists():
            feats = json.loads(items_path.read_text()).get("features", [])
            dates = sorted(np.datetime64(f["properties"]["datetime"][:10]) for f in feats)
        if dates is None or len(dates) != cl.shape[0]:
            cl, dates = None, None
    return {"truth": truth_gdf, "labels": lab, "cloud": cl, "dates": dates}


def evaluate_files(
    truth: str | os.PathLike,
    footprints: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    cloud: str | os.PathLike | None = None,
    dates: Any = None,
    iou_threshold: float = 0.25,
    overlap_threshold: float = 0.5,
    baseline_obs: int | None = None,
    confirm_obs: int | None = None,
) -> dict[str, Any]:
    """Evaluate footprint files (GeoJSON/GeoParquet) against truth files (:func:`read_truth`)."""
    import geopandas as gpd

    ref = read_truth(truth, labels=labels, cloud=cloud, dates=dates)
    if str(footprints).endswith(".parquet"):
        fps = gpd.read_parquet(footprints)
    else:
        fps = _read_vector(footprints, "footprints")
    if ref["cloud"] is None and (baseline_obs is not None or confirm_obs is not None):
        raise ConfigError("The don't-care protocol needs truth_cloud.tif with its dates "
                          f"(none usable next to {labels}).")
    return evaluate_footprints(ref["truth"], fps, labels=ref["labels"], cloud=ref["cloud"],
                               dates=ref["dates"], iou_threshold=iou_threshold,
                               overlap_threshold=overlap_threshold, baseline_obs=baseline_obs,
                               confirm_obs=confirm_obs)


def naive_ndvi_drop(cube: Any, *, drop: float = 0.2, period_fraction: float = 0.25) -> Any:
    """Detect with the reference baseline: a two-period NDVI drop (no persistence or seasons).

    A pixel is "mining" when the median NDVI of its clear observations in the last
    ``period_fraction`` of the dates is lower than in the first one by more than
    ``drop``; it is dated at the first date of the last period. The accuracy suite
    and the tests keep it beside the detector: targets that it also meets do not
    bite.

    Returns
    -------
    xarray.Dataset
        ``state``, ``confidence``, ``first_detected``, ``alert_date``,
        ``last_active`` on the cube grid (input of
        :func:`kpgeo.footprints.extract_footprints`).
    """
    import warnings

    import xarray as xr

    from kpgeo.indices import ndvi

    cube = cube.sortby("time")
    v = np.asarray(ndvi(cube["red"], cube["nir"]).values, dtype="float64")
    n = v.shape[0]
    k = max(1, int(round(n * period_fraction)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        first = np.nanmedian(v[:k], axis=0)
        last = np.nanmedian(v[-k:], axis=0)
    det = (first - last) > drop
    t = np.where(det, cube.time.values[n - k], np.datetime64("NaT")).astype("datetime64[ns]")
    coords = {name: c for name, c in cube.coords.items() if "time" not in c.dims}
    dims = ("y", "x")
    return xr.Dataset({"state": (dims, np.where(det, 2, 0).astype("uint8")),
                       "confidence": (dims, det.astype("float32")),
                       "first_detected": (dims, t), "alert_date": (dims, t),
                       "last_active": (dims, t)}, coords=coords)
