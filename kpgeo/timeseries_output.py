"""Writers and plot of the per-zone activity table (:func:`kpgeo.timeseries.zone_activity`).

:func:`write_timeseries` writes ``timeseries.csv`` (rounded per unit), a full-precision
Parquet copy and the CSV on the Web (CSVW) data dictionary next to it
(:func:`csvw_metadata`, from :data:`kpgeo.timeseries.TIMESERIES_COLUMNS`);
:func:`plot_activity` draws a zone's series with its low-coverage periods shaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import ConfigError
from kpgeo.timeseries import TIMESERIES_COLUMNS

__all__ = ["write_timeseries", "csvw_metadata", "plot_activity"]

_CSV_DECIMALS = {"ha": 2, "fraction 0-1": 4, "ct/yr": 0}


def write_timeseries(
    activity: pd.DataFrame, out_dir: str | os.PathLike, *, stem: str = "timeseries"
) -> dict[str, Path]:
    """Write the activity table as CSV, CSVW sidecar and Parquet, atomically.

    ``<stem>.csv`` is for people and spreadsheets: dates as ``YYYY-MM-DD``,
    areas rounded to 0.01 ha, clear fractions to 1e-4, counts as integers,
    missing values as empty cells. ``<stem>.csv-metadata.json`` is its data
    dictionary (W3C CSV on the Web: column name, datatype, unit, meaning;
    from :data:`TIMESERIES_COLUMNS`). ``<stem>.parquet`` keeps full precision.

    Parameters
    ----------
    activity
        Table from :func:`zone_activity` (or any DataFrame; ``period_start``,
        ``period_end`` and ``date`` columns are formatted as dates in the CSV).
    out_dir
        Output folder (created when missing).
    stem
        File name stem of the files.

    Returns
    -------
    dict
        ``{"csv": path, "csv-metadata.json": path, "parquet": path}``.
    """
    from kpgeo.io import write_json, write_table

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "csv": write_table(_csv_frame(activity), out / f"{stem}.csv"),
        "csv-metadata.json": write_json(
            csvw_metadata(activity.columns, url=f"{stem}.csv"), out / f"{stem}.csv-metadata.json"
        ),
        "parquet": write_table(activity, out / f"{stem}.parquet"),
    }


def _csv_frame(activity: pd.DataFrame) -> pd.DataFrame:
    """Format the activity table for CSV: ISO dates, rounded numbers, integer counts."""
    csv_df = activity.copy()
    for col in ("period_start", "period_end", "date"):
        if col in csv_df.columns:
            csv_df[col] = pd.to_datetime(csv_df[col]).dt.strftime("%Y-%m-%d")
    for col in csv_df.columns:
        dtype, unit, _ = TIMESERIES_COLUMNS.get(col, ("", "", ""))
        if dtype == "integer" or _CSV_DECIMALS.get(unit) == 0:
            csv_df[col] = pd.to_numeric(csv_df[col]).round().astype("Int64")
        elif unit in _CSV_DECIMALS:
            csv_df[col] = pd.to_numeric(csv_df[col]).astype("float64").round(_CSV_DECIMALS[unit])
    return csv_df


def csvw_metadata(columns: Iterable[str], *, url: str) -> dict[str, Any]:
    """CSV on the Web (CSVW) metadata describing a time-series CSV's columns.

    Parameters
    ----------
    columns
        Column names of the CSV, in order; names missing from
        :data:`TIMESERIES_COLUMNS` are described as strings without a meaning.
    url
        The CSV file name, relative to the metadata file.

    Returns
    -------
    dict
        JSON-ready CSVW table description (``schema:unitText`` holds the unit).
    """
    cols = []
    for name in columns:
        dtype, unit, meaning = TIMESERIES_COLUMNS.get(str(name), ("string", "", ""))
        col = {"name": str(name), "titles": str(name), "datatype": dtype}
        if unit:
            col["schema:unitText"] = unit
        if meaning:
            col["dc:description"] = meaning
        cols.append(col)
    return {
        "@context": "http://www.w3.org/ns/csvw",
        "url": url,
        "dc:title": "kpgeo mining activity time series, per zone, region and period",
        "dc:description": "Areas in hectares (local UTM), dates ISO 8601 (UTC); empty cells "
        "are missing values. See docs/outputs.md.",
        "tableSchema": {
            "columns": cols,
            "primaryKey": [c for c in ("zone", "region", "period_start") if c in set(columns)],
            "null": "",
        },
    }


def plot_activity(
    activity: pd.DataFrame,
    *,
    zone: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (7.0, 4.0),
) -> Any:
    """Plot one zone's activity: new area bars, cumulative line, coverage shading.

    Inside-zone new area is drawn as solid bars, ring (outside) new area as
    lighter bars; the cumulative footprint is a line on a second y axis (right); clear
    coverage is drawn on a lower axis, and low-coverage periods are hatched grey
    on both, so a cloud gap reads as missing data.

    Parameters
    ----------
    activity
        Output of :func:`zone_activity`.
    zone
        Zone id to plot; required when ``activity`` holds several zones.
    title
        Figure title (plain text). Default: the zone id.

    Returns
    -------
    matplotlib.figure.Figure
        Created with the Agg canvas (no display needed).
    """
    from matplotlib.figure import Figure

    zone, inside, ring = _zone_rows(activity, zone)
    x = pd.to_datetime(inside["period_start"]).to_numpy()
    width_days = _bar_width_days(x)
    width = pd.Timedelta(days=width_days)

    fig = Figure(figsize=figsize, dpi=100)
    ax, axc = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    full_w = pd.Timedelta(days=width_days / 0.38)
    _shade_low_coverage((ax, axc), x, inside["low_coverage"].to_numpy(bool), full_w)
    _draw_new_area(ax, x, inside, ring, width)
    ax2 = _draw_cumulative(ax, x + full_w / 2, inside)
    ax.set_ylabel("new area (ha)")
    ax2.set_ylabel("cumulative (ha)")
    ax2.set_ylim(bottom=0)
    ax.set_ylim(bottom=0)
    _draw_coverage(axc, x, inside, full_w)
    _activity_legend(fig, ax, ax2)
    ax.set_title(title if title is not None else str(zone), fontsize=10)
    _slant_date_labels(axc)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _zone_rows(activity: pd.DataFrame, zone: str | None) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Pick the zone to plot; return it with its inside and ring rows, by period."""
    zones = list(pd.unique(activity["zone"]))
    if zone is None:
        if len(zones) != 1:
            raise ConfigError(f"activity holds zones {zones}; pass zone=")
        zone = zones[0]
    df = activity[activity["zone"] == zone]
    if df.empty:
        raise ConfigError(f"no activity rows for zone {zone!r}; have {zones}")
    inside = df[df["region"] == "zone"].sort_values("period_start")
    ring = df[df["region"] == "ring"].sort_values("period_start")
    return zone, inside, ring


def _bar_width_days(x: np.ndarray) -> float:
    """Return the bar width in days: 0.38 of the median period (30 for a single period)."""
    if len(x) > 1:
        return float(np.median(np.diff(x).astype("timedelta64[D]").astype(float))) * 0.38
    return 30.0


def _shade_low_coverage(axes: tuple[Any, ...], x: np.ndarray, low: np.ndarray, full_w: Any) -> None:
    """Hatch the low-coverage periods grey on every axis."""
    for xi, flag in zip(x, low, strict=True):
        if flag:
            for a in axes:
                a.axvspan(
                    xi, xi + full_w, facecolor="0.85", hatch="//", edgecolor="0.6", lw=0, zorder=0
                )


def _draw_new_area(
    ax: Any, x: np.ndarray, inside: pd.DataFrame, ring: pd.DataFrame, width: pd.Timedelta
) -> None:
    """Draw the new-area bars: inside the zone, then (beside them) in the outside ring."""
    ax.bar(
        x,
        inside["new_area_ha"].fillna(0).to_numpy(),
        width=width,
        align="edge",
        color="#c0392b",
        label="new area, inside zone (ha)",
    )
    if len(ring):
        ax.bar(
            pd.to_datetime(ring["period_start"]).to_numpy() + width,
            ring["new_area_ha"].fillna(0).to_numpy(),
            width=width,
            align="edge",
            color="#f5b041",
            label="new area, outside ring (ha)",
        )


def _draw_cumulative(ax: Any, x_mid: np.ndarray, inside: pd.DataFrame) -> Any:
    """Draw the cumulative footprint line on a right-hand twin axis; return that axis."""
    ax2 = ax.twinx()
    ax2.plot(
        x_mid,
        inside["cumulative_area_ha"].to_numpy(),
        color="#2c3e50",
        marker="o",
        ms=3,
        label="cumulative footprint (ha)",
    )
    return ax2


def _draw_coverage(axc: Any, x: np.ndarray, inside: pd.DataFrame, full_w: Any) -> None:
    """Draw the clear-coverage bars (0-1) on the lower axis."""
    cov = inside["clear_fraction"].to_numpy(float)
    axc.bar(x, np.nan_to_num(cov), width=full_w * 0.9, align="edge", color="#5dade2")
    axc.set_ylim(0, 1)
    axc.set_ylabel("clear")


def _activity_legend(fig: Any, ax: Any, ax2: Any) -> None:
    """Add the figure legend: both axes' series and the low-coverage hatch."""
    from matplotlib.patches import Patch

    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    handles.append(Patch(facecolor="0.85", hatch="//", edgecolor="0.6", label="low clear coverage"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=7, frameon=False)


def _slant_date_labels(axc: Any) -> None:
    """Slant the lower axis' date labels so that they do not overlap."""
    for label in axc.get_xticklabels():
        label.set_rotation(25)
        label.set_ha("right")
