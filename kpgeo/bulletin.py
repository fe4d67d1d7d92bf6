"""The run bulletin: one self-contained HTML page per run (``bulletin.html``).

:func:`render_bulletin` turns a run's zones, footprints, activity table and
coverage (+ optional sample estimates, production capacity and site register)
into HTML with Jinja2 (``templates/bulletin.html.j2``) and autoescaping, so zone
names and other data are always HTML-escaped; images come in as PNG bytes and
are inlined as base64. :func:`kpgeo.report.write_report` gathers those inputs
and writes the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["render_bulletin"]

_PERIOD_NAMES = {"QS": "quarters", "MS": "months", "YS": "years"}
_MAX_SITES = 200
_HISTORY_SITES, _HISTORY_PERIODS = 10, 6
_METHOD_NAMES = {"volume_grade": "volume × grade", "miners_days": "miners × days"}


def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _f(value: Any, spec: str = ".2f") -> str:
    if value is None or pd.isna(value):
        return "–"
    return format(float(value), spec)


def _date(value: Any) -> str:
    if value is None or pd.isna(value):
        return "–"
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _sites(fp: Any) -> list[dict[str, Any]]:
    if not len(fp):
        return []
    import shapely

    from kpgeo.io import to_utc_naive
    from kpgeo.zones import utm_crs_for

    fp = fp.to_crs(4326)
    utm = utm_crs_for(shapely.box(*fp.total_bounds))
    centroids = fp.to_crs(utm).centroid.to_crs(4326)
    first = to_utc_naive(fp["first_detected"], what="footprints first_detected")
    last = (
        to_utc_naive(fp["last_active"], what="footprints last_active")
        if "last_active" in fp.columns
        else pd.Series(pd.NaT, index=fp.index)
    )
    order = first.sort_values(ascending=False, na_position="last").index
    rows = []
    for idx in order[:_MAX_SITES]:
        row = fp.loc[idx]
        pt = centroids.loc[idx]
        rows.append(
            {
                "id": str(row.get("id", idx)),
                "site_id": str(row.get("site_id") or "–"),
                "triage": str(row.get("triage_status") or "unreviewed"),
                "first_detected": _date(first.loc[idx]),
                "last_active": _date(last.loc[idx]),
                "state": str(row.get("state", "–")),
                "area_ha": _f(row.get("area_ha")),
                "confidence": _f(row.get("confidence")),
                "lat": f"{pt.y:.6f}",
                "lon": f"{pt.x:.6f}",
                "location": "inside" if bool(row.get("inside_zone", True)) else "outside (ring)",
            }
        )
    return rows


def _imaging(zone: Any, coverage: pd.DataFrame | None) -> dict[str, Any]:
    """Summarise what the imagery covered of a zone: imaged area and share, dates, last date."""
    out = {"imaged_ha": "–", "imaged_pct": "–", "n_images": 0, "last_image": "–"}
    if coverage is None or not len(coverage):
        return out
    rows = coverage[coverage["region"].astype(str) == str(zone.id)]
    if not len(rows):
        return out
    out["n_images"] = int(rows["date"].nunique())
    out["last_image"] = _date(pd.to_datetime(rows["date"]).max())
    if "imaged_area_ha" in rows.columns and pd.notna(rows["imaged_area_ha"].iloc[0]):
        imaged = float(rows["imaged_area_ha"].iloc[0])
        out["imaged_ha"] = f"{imaged:,.0f}" if imaged >= 100 else f"{imaged:,.1f}"
        share = 100.0 * imaged / zone.area_ha if zone.area_ha else float("nan")
        out["imaged_pct"] = f"{share:.2g}" if share < 10 else f"{share:.0f}"
    return out


def _window(start: str, end: str) -> str:
    return f"{start or 'start of the series'} – {end or 'last image'}"


def _zone_samples(samples: Any, zid: str) -> tuple[list[dict[str, Any]], str]:
    """Return a zone's labelling sheets for the bulletin, and its summary-table estimate."""
    if samples is None:
        return [], "–"
    rows = samples.sheets[samples.sheets["zone"] == zid]
    items = [
        {
            "window": _window(r["window_start"], r["window_end"]),
            "population": r["population"],
            "n_units": r["n_units"],
            "n_labelled": r["n_labelled"],
            "estimated": pd.notna(r["estimated_ha"]),
            "text": r["text"],
            "new_text": r["new_text"],
            "users": _f(r["users"]),
            "producers": _f(r["producers"]),
            "overall": _f(r["overall"], ".3f"),
            "overall_ci": _f(1.96 * r["overall_se"], ".3f"),
            "folder": Path(r["sheet"]).parent.name,
        }
        for r in rows.to_dict("records")
    ]
    done = rows[rows["estimated_ha"].notna()]
    if not len(done):
        return items, "–"
    # the zone's own population first, then the latest window (an open end is the latest)
    best = done.assign(end=done["window_end"].replace("", "9999")).sort_values(
        ["in_zone", "end"]
    ).iloc[-1]
    end = f" at {best['window_end']}" if best["window_end"] else ""
    return items, f"{best['estimated_ha']:,.1f} ± {best['ci_half_ha']:,.1f}{end}"


def _zone_capacity(production: Any, zid: str) -> list[dict[str, str]]:
    """Return a zone's production capacity per calendar year, both methods."""
    if production is None:
        return []
    yearly = production.yearly[production.yearly["zone"].astype(str) == zid]
    return [
        {"year": str(r["period_start"])[:4], "volume_grade": r["volume_grade_text"],
         "miners_days": r["miners_days_text"]}
        for r in yearly.to_dict("records")
    ]


def _production_section(production: Any) -> dict[str, Any] | None:
    """Run-level production values: exports beside capacity per country and year."""
    if production is None:
        return None
    rows = []
    check = production.exports if production.exports is not None else pd.DataFrame()
    for (country, year), grp in (check.groupby(["country", "year"]) if len(check) else []):
        by = grp.set_index("method")
        over = [_METHOD_NAMES[m] for m in _METHOD_NAMES if bool(by.loc[m, "exceeds_capacity"])]
        rows.append(
            {
                "country": str(country),
                "year": int(year),
                "exports": f"{by['exports_ct'].iloc[0]:,.0f}",
                **{
                    m: f"{by.loc[m, 'median_ct_per_year']:,.0f} "
                    f"({by.loc[m, 'p05_ct_per_year']:,.0f}–{by.loc[m, 'p95_ct_per_year']:,.0f})"
                    for m in _METHOD_NAMES
                },
                "flagged": bool(over),
                "flag": "exports exceed the " + " and the ".join(over) + " capacity"
                if over else "within capacity",
            }
        )
    figures = production.figures
    skipped: set[str] = set()
    if figures is not None:
        compared = {(r["country"], r["year"]) for r in rows}
        countries = figures["country"] if "country" in figures else ["all zones"] * len(figures)
        skipped = {f"{c} {int(y)}" for c, y in zip(countries, figures["year"], strict=True)
                   if (str(c), int(y)) not in compared}
    return {
        "has_exports": figures is not None,
        "rows": rows,
        "n_flagged": sum(r["flagged"] for r in rows),
        "not_compared": ", ".join(sorted(skipped)),
        "placeholders": ", ".join(production.placeholders),
    }


def _zone_register(register: Any, zid: str, freq: str) -> dict[str, Any] | None:
    """Triage counts and the history of the zone's largest sites, from the site register."""
    if register is None:
        return None
    from kpgeo.register import triage_counts
    from kpgeo.staticmap import period_labels

    sites = register.sites[(register.sites["zone"] == zid) & (register.sites["status"] != "merged")]
    history = register.history[register.history["zone"] == zid]
    periods = sorted(pd.to_datetime(history["period"]).unique())[-_HISTORY_PERIODS:]
    top = sites.sort_values(["area_ha", "first_detected"], ascending=False).head(_HISTORY_SITES)
    rows = []
    for _, site in top.iterrows():
        own = history[history["site_id"] == site["site_id"]].set_index("period")
        cells = [f"{_f(own.at[p, 'area_ha'])} ({own.at[p, 'state']})" if p in own.index else "–"
                 for p in periods]
        rows.append({"id": site["site_id"], "triage": site["triage_status"] or "unreviewed",
                     "status": site["status"], "first_detected": _date(site["first_detected"]),
                     "area_ha": _f(site["area_ha"]), "cells": cells})
    return {"counts": triage_counts(register, zid), "sites": rows,
            "periods": list(period_labels(pd.Series(periods), freq=freq))}


def _zone_row(zone, act, zfp, coverage, charts, maps, map_periods, freq) -> dict[str, Any]:
    """Template values of one zone of the bulletin."""
    from kpgeo.staticmap import period_labels
    from kpgeo.webmap import png_data_url

    zid = str(zone.id)
    ins, ring = act[act["region"] == "zone"], act[act["region"] == "ring"]
    inside = zfp["inside_zone"].astype(bool) if len(zfp) else pd.Series([], dtype=bool)
    low = ins[ins["low_coverage"]]
    sites = _sites(zfp)

    def last(frame, col, spec=".2f"):
        return _f(frame[col].iloc[-1] if len(frame) else None, spec)

    return {
        "id": zid,
        "name": str(zone.name),
        "country": str(getattr(zone, "country", "") or "–"),
        "area_ha": f"{zone.area_ha:,.0f}",
        **_imaging(zone, coverage),
        "inside_ha": last(ins, "cumulative_area_ha"),
        "ring_ha": last(ring, "cumulative_area_ha"),
        "first_last_ha": last(ins, "new_area_ha"),
        "first_last_sites": last(ins, "new_sites", ".0f"),
        "ring_first_last_ha": last(ring, "new_area_ha"),
        "ring_first_last_sites": last(ring, "new_sites", ".0f"),
        "inside_sites": int(inside.sum()),
        "ring_sites": int((~inside).sum()),
        "low_periods": int(len(low)),
        "n_periods": int(len(ins)),
        "low_list": ", ".join(period_labels(low["period_start"], freq=freq)),
        "chart": png_data_url(charts[zid]) if zid in charts else "",
        "map": png_data_url(maps[zid]) if zid in maps else "",
        "map_period": map_periods.get(zid, ""),
        "sites": sites,
        "n_sites": int(len(zfp)),
        "sites_truncated": len(zfp) > len(sites),
    }


def render_bulletin(
    *,
    zones: list[Any],
    footprints: Any,
    activity: pd.DataFrame,
    coverage: pd.DataFrame | None = None,
    charts: Mapping[str, bytes] | None = None,
    maps: Mapping[str, bytes] | None = None,
    map_periods: Mapping[str, str] | None = None,
    freq: str = "QS",
    ring_width_m: float = 5000.0,
    min_coverage: float = 0.3,
    title: str = "kpgeo monitoring run",
    samples: Any = None,
    production: Any = None,
    register: Any = None,
) -> str:
    """Render the bulletin HTML (self-contained: images as base64 data URLs).

    Parameters
    ----------
    zones
        Zones reported (:class:`kpgeo.zones.Zone`).
    footprints
        Footprints GeoDataFrame (column contract of
        :func:`kpgeo.footprints.extract_footprints`).
    activity
        Output of :func:`kpgeo.timeseries.zone_activity`.
    coverage
        :func:`kpgeo.timeseries.clear_coverage` output: each zone's imaged area
        (and its share of the zone), number of images and last image date.
    charts, maps
        PNG bytes per zone id (time-series chart, static map).
    map_periods
        Text describing each map's composite period, per zone id.
    samples
        :func:`kpgeo.estimates.load_samples` of the run, or None: each zone's
        error-adjusted area (or, without one, a line on how to get it).
    production
        :func:`kpgeo.estimates.production_results`, or None: capacity per zone
        and year, and export figures beside it.
    register
        The run's :class:`kpgeo.register.Register`, or None: per zone the number of
        sites verified, rejected, unclear and unreviewed, and the largest sites' history.

    Returns
    -------
    str
        HTML; every value is escaped by Jinja2's autoescape.
    """
    from kpgeo.timeseries import norm_freq

    freq = norm_freq(freq)
    last_period = _last_period(activity, freq)
    zrows = _bulletin_zones(
        zones, footprints, activity, coverage, charts or {}, maps or {}, map_periods or {},
        freq=freq, samples=samples, production=production, register=register,
    )
    header = _bulletin_header(zrows, title=title, last_period=last_period, freq=freq,
                              ring_width_m=ring_width_m, min_coverage=min_coverage)
    template = _env().get_template("bulletin.html.j2")
    return template.render(**header, zones=zrows, **_estimate_note(zrows),
                           production=_production_section(production))


def _last_period(activity: pd.DataFrame, freq: str) -> str:
    """Label of the last period of the activity table ("–" when it is empty)."""
    from kpgeo.staticmap import period_labels

    last_start = activity["period_start"].max() if len(activity) else None
    return period_labels([last_start], freq=freq).iloc[0] if last_start is not None else "–"


def _bulletin_zones(zones: list[Any], footprints: Any, activity: pd.DataFrame,
                    coverage: pd.DataFrame | None, charts: Mapping[str, bytes],
                    maps: Mapping[str, bytes], map_periods: Mapping[str, str], *, freq: str,
                    samples: Any, production: Any, register: Any) -> list[dict[str, Any]]:
    """Template values of each zone: its row, sample sheets and estimate, capacity, register."""
    rows = []
    for zone in zones:
        zid = str(zone.id)
        act = activity[activity["zone"] == zid].sort_values("period_start")
        zfp = footprints[footprints["zone"].astype(str) == zid] if len(footprints) else footprints
        row = _zone_row(zone, act, zfp, coverage, charts, maps, map_periods, freq)
        rows.append(row)
        row["samples"], row["estimate"] = _zone_samples(samples, zid)
        row["capacity"] = _zone_capacity(production, zid)
        row["register"] = _zone_register(register, zid, freq)
    return rows


def _bulletin_header(zrows: list[dict[str, Any]], *, title: str, last_period: str, freq: str,
                     ring_width_m: float, min_coverage: float) -> dict[str, Any]:
    """Run-level values of the bulletin header: title, run time, version, periods, last image."""
    from datetime import UTC, datetime

    from kpgeo._version import __version__

    last_images = [z["last_image"] for z in zrows if z["last_image"] != "–"]
    return {
        "title": title,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "period_name": _PERIOD_NAMES.get(freq, freq),
        "last_image": max(last_images) if last_images else "–",
        "last_period": last_period,
        "ring_km": f"{ring_width_m / 1000:g}",
        "min_coverage_pct": f"{min_coverage * 100:g}",
    }


def _estimate_note(zrows: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether any zone has an error-adjusted area, and the names of those that have none."""
    unsampled = [z["name"] for z in zrows if z["estimate"] == "–"]
    return {
        "has_estimates": len(unsampled) < len(zrows),
        "unsampled": ", ".join(unsampled) if len(unsampled) < len(zrows) else "",
    }
