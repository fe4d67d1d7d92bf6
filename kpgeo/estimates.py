"""A run's area estimates and production capacity, ready for its time series, map and bulletin.

The statistics live in :mod:`kpgeo.sampling` (sample design, labelling
sheets), :mod:`kpgeo.area` (stratified estimator) and
:mod:`kpgeo.production` (capacity in carats per year). This module gathers
what a run has of them for :func:`kpgeo.report.write_report`:

* :func:`load_samples` reads a run's labelling sheets: the error-adjusted area
  of every fully labelled sheet (per zone and window, with its population and
  accuracies), and every unit as a point for the web map, labelled or not;
* :func:`production_results` computes production capacity per zone, per
  time-series period and per year, and sets export figures beside it;
* :func:`add_area_estimates` and :func:`add_capacity` put them on the time
  series as its optional columns (:data:`kpgeo.timeseries.ESTIMATE_COLUMNS`,
  :data:`kpgeo.timeseries.CAPACITY_COLUMNS`).

Nothing here writes files. A sheet that cannot be read is skipped with a
logged warning, so one zone's sheet never stops the report of the others.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import ConfigError

__all__ = [
    "SampleResults",
    "ProductionResults",
    "load_samples",
    "production_results",
    "add_area_estimates",
    "add_capacity",
]

log = logging.getLogger(__name__)

#: columns of :attr:`SampleResults.sheets`
SHEET_TABLE_COLUMNS = [
    "zone", "window_start", "window_end", "sheet", "population", "in_zone", "n_units",
    "n_labelled", "mapped_ha", "estimated_ha", "ci_half_ha", "ci_low_ha", "ci_high_ha", "text",
    "new_text", "users", "producers", "overall", "overall_se",
]


@dataclass(frozen=True)
class SampleResults:
    """What a run's labelling sheets give the report."""

    sheets: pd.DataFrame
    """One row per sheet, zone and window (:data:`SHEET_TABLE_COLUMNS`): the area of all
    mining (``mapped_ha``, ``estimated_ha``, CI, ``text`` = "mapped X ha; estimated Y ha ± Z
    (95 % CI)"), of mining first seen in the window (``new_text``), the accuracies of the
    mining map; the estimate columns are NaN while ``n_labelled < n_units``."""
    units: Any
    """GeoDataFrame of every unit (:func:`kpgeo.sampling.sample_units_layer`) plus ``sheet``."""

    @property
    def estimated(self) -> pd.DataFrame:
        """The rows of :attr:`sheets` with an estimate (fully labelled sheets)."""
        return self.sheets[self.sheets["estimated_ha"].notna()]


def _population(sheet: Path, zone: str) -> tuple[str, bool]:
    """Describe what a sample covers (its ``design.json``); True when it is the zone itself."""
    try:
        region = json.loads((sheet.parent / "design.json").read_text(encoding="utf-8"))["region"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown (no readable design.json next to the sheet)", False
    if region == zone:
        return "the imaged part of the zone", True
    if region is None:
        return "the imaged part of the zone and its outside ring", False
    return f"the imaged part of {Path(str(region)).name}", False


def _sheet_rows(labels: pd.DataFrame, sheet: Path) -> list[dict[str, Any]]:
    """Rows of :attr:`SampleResults.sheets` for one sheet (estimated when fully labelled)."""
    from kpgeo.area import ALL_MINING, estimate_sheet, zone_area_summary

    keys = ["zone", "period_start", "period_end"]
    done = (labels["ref_class"] != "").groupby([labels[k] for k in keys]).agg(["size", "sum"])
    estimates: dict[tuple, dict[str, Any]] = {}
    if done["size"].eq(done["sum"]).all():
        est = estimate_sheet(labels)
        acc = est.accuracy.set_index([*keys, "class"])
        new = zone_area_summary(est.area, cls="new mining").set_index(keys)["text"]
        for row in zone_area_summary(est.area).to_dict("records"):
            key = tuple(row[k] for k in keys)
            estimates[key] = {k: row[k] for k in ("mapped_ha", "estimated_ha", "ci_half_ha",
                                                  "ci_low_ha", "ci_high_ha", "text")} | {
                "new_text": new.get(key, ""),
                "users": acc.loc[(*key, ALL_MINING), "users"],
                "producers": acc.loc[(*key, ALL_MINING), "producers"],
                "overall": acc.loc[(*key, "overall"), "overall"],
                "overall_se": acc.loc[(*key, "overall"), "overall_se"]}
    rows = []
    for key, counts in done.iterrows():
        population, in_zone = _population(sheet, str(key[0]))
        rows.append({"zone": str(key[0]), "window_start": key[1], "window_end": key[2],
                     "sheet": str(sheet), "population": population, "in_zone": in_zone,
                     "n_units": int(counts["size"]), "n_labelled": int(counts["sum"])}
                    | estimates.get(key, {}))
    return rows


def load_samples(sheets: Iterable[str | os.PathLike]) -> SampleResults:
    """Read labelling sheets (``labels.csv`` of ``kpgeo sample``): estimates and units.

    Parameters
    ----------
    sheets
        Sheet paths, e.g. :func:`kpgeo.area.sheet_paths` of a run folder.

    Returns
    -------
    SampleResults
        Empty tables when there is no readable sheet. A sheet still being
        labelled gives its units (``ref_class`` None where not labelled yet)
        and a row without estimate; a sheet that cannot be read or
        estimated is skipped with a logged warning.
    """
    from kpgeo.area import read_labels
    from kpgeo.sampling import sample_units_layer

    rows, layers = [], []
    for path in map(Path, sheets):
        try:
            labels = read_labels(path, complete=False)
            sheet_rows = _sheet_rows(labels, path)
        except ConfigError as exc:
            log.warning("%s: sample skipped (%s)", path, exc)
            continue
        for row in sheet_rows:
            if row["n_labelled"] < row["n_units"]:
                log.info("%s: %d of %d units labelled, no estimate until every unit is",
                         path, row["n_labelled"], row["n_units"])
        rows += sheet_rows
        layers.append(sample_units_layer(labels).assign(sheet=str(path)))
    import geopandas as gpd

    units = (gpd.GeoDataFrame(pd.concat(layers, ignore_index=True), crs=4326) if layers
             else gpd.GeoDataFrame({"zone": [], "sheet": []}, geometry=[], crs=4326))
    return SampleResults(sheets=pd.DataFrame(rows, columns=SHEET_TABLE_COLUMNS), units=units)


@dataclass(frozen=True)
class ProductionResults:
    """Production capacity of a run's zones and, with export figures, the comparison."""

    capacity: pd.DataFrame
    """:func:`kpgeo.production.production_capacity` per zone and time-series period."""
    yearly: pd.DataFrame
    """:func:`kpgeo.production.production_summary` per zone and calendar year."""
    exports: pd.DataFrame | None
    """:func:`kpgeo.production.compare_exports` (per country and year), or None."""
    figures: pd.DataFrame | None
    """The export figures given (:func:`kpgeo.production.read_exports`), or None."""
    placeholders: tuple[str, ...]
    """Parameters still at their placeholder (unsourced) defaults."""


def production_results(footprints: Any, *, freq: str = "QS", params: Any = None,
                       exports: Any = None, inside_only: bool = True) -> ProductionResults:
    """Production capacity from a run's footprints, and export figures beside it.

    Parameters
    ----------
    footprints
        Footprints with ``zone, area_ha, first_detected, last_active, inside_zone``
        (inside each zone only, as ``kpgeo production`` does by default).
    freq
        Period of the time series (``QS``, ``MS``, ``YS``).
    params
        :class:`kpgeo.production.ProductionParams`; default: the placeholders.
    exports
        KP export statistics: a CSV path (:func:`kpgeo.production.read_exports`)
        or its table; None: no comparison.
    inside_only
        Count only footprints inside their zone (False: the outside ring too).
    """
    from kpgeo.production import (
        PlaceholderParameterWarning,
        ProductionParams,
        compare_exports,
        mining_area_by_period,
        production_capacity,
        production_summary,
        read_exports,
    )

    params = params or ProductionParams()
    table = pd.DataFrame(footprints).drop(columns="geometry", errors="ignore")
    if params.placeholders:
        log.warning("production capacity uses placeholder ranges for %s: figures are "
                    "illustrative; set sourced values in a [production] table",
                    ", ".join(params.placeholders))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlaceholderParameterWarning)
        capacity = production_capacity(
            mining_area_by_period(table, freq=freq, inside_only=inside_only), params)
        years = mining_area_by_period(table, freq="YS", inside_only=inside_only)
        yearly = production_summary(production_capacity(years, params))
    check = figures = None
    if exports is not None:
        figures = exports if isinstance(exports, pd.DataFrame) else read_exports(exports)
        check = compare_exports(years, figures, params)
    return ProductionResults(capacity=capacity, yearly=yearly, exports=check, figures=figures,
                             placeholders=tuple(params.placeholders))


# --------------------------------------------------------------------------- time series


def add_area_estimates(activity: pd.DataFrame, estimates: pd.DataFrame) -> pd.DataFrame:
    """Add the error-adjusted area columns (:data:`~kpgeo.timeseries.ESTIMATE_COLUMNS`).

    Each estimate (the area of all mining at the end of its sample window, a
    state like ``cumulative_area_ha``) goes on its zone's ``zone`` row whose
    period holds the window end; an open window, or one ending after the
    series, goes on the last period; one ending before the series is left
    out. Of two estimates for one row the narrower interval is kept. Every
    other row is empty.

    Parameters
    ----------
    activity
        :func:`kpgeo.timeseries.zone_activity` output.
    estimates
        One row per zone and window of the zone's own population: ``zone``,
        ``window_end`` (ISO date, ``""`` when open), ``mapped_ha``,
        ``estimated_ha``, ``ci_half_ha``, ``ci_low_ha``, ``ci_high_ha``
        (e.g. :attr:`SampleResults.estimated` rows with ``in_zone``).
    """
    from kpgeo.timeseries import ESTIMATE_COLUMNS

    out = activity.copy()
    for col in ESTIMATE_COLUMNS:
        out[col] = np.nan
    order = estimates.sort_values("ci_half_ha", ascending=False, na_position="first")
    for row in order.itertuples(index=False):
        rows = out[(out["region"] == "zone") & (out["zone"].astype(str) == str(row.zone))]
        if not len(rows):
            continue
        end = pd.to_datetime(row.window_end or None)
        if pd.isna(end) or end > rows["period_end"].max():
            hit = rows.index[[rows["period_start"].argmax()]]
        else:
            hit = rows.index[(rows["period_start"] <= end) & (rows["period_end"] >= end)]
        if len(hit):
            out.loc[hit[0], list(ESTIMATE_COLUMNS)] = [
                row.mapped_ha, row.estimated_ha, row.ci_low_ha, row.ci_high_ha]
    return out


def add_capacity(activity: pd.DataFrame, capacity: pd.DataFrame) -> pd.DataFrame:
    """Add the production-capacity columns (:data:`~kpgeo.timeseries.CAPACITY_COLUMNS`).

    Zone rows get the median, 5th and 95th percentiles of both methods; a
    period without mapped mining has capacity 0; low-coverage periods and
    ring rows are empty.

    Parameters
    ----------
    activity
        :func:`kpgeo.timeseries.zone_activity` output.
    capacity
        :func:`kpgeo.production.production_capacity` at the same period as
        ``activity``, from the same footprints.

    Raises
    ------
    ConfigError
        ``capacity`` has periods the time series does not (another period length).
    """
    from kpgeo.production import METHODS

    out = activity.copy()
    cap = capacity.assign(period_start=pd.to_datetime(capacity["period_start"]),
                          zone=capacity["zone"].astype(str))
    periods = set(zip(pd.to_datetime(out["period_start"]), pd.to_datetime(out["period_end"]),
                      strict=True))
    extra = set(zip(cap["period_start"], pd.to_datetime(cap["period_end"]), strict=True)) - periods
    if extra:
        first = sorted(f"{a:%Y-%m-%d}/{b:%Y-%m-%d}" for a, b in extra)[:3]
        raise ConfigError(f"capacity periods {first} are not periods of the time series: "
                          "compute both with the same period")
    key = pd.MultiIndex.from_arrays([out["zone"].astype(str), pd.to_datetime(out["period_start"])])
    blank = (out["region"] != "zone") | out["low_coverage"].astype(bool)
    for method in METHODS:
        per = cap[cap["method"] == method].set_index(["zone", "period_start"])
        for stat, src in (("", "median"), ("_p05", "p05"), ("_p95", "p95")):
            values = per[f"{src}_ct_per_year"].reindex(key).fillna(0.0).to_numpy(float)
            out[f"capacity_{method}{stat}_ct_yr"] = np.where(blank, np.nan, values)
    return out
