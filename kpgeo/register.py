"""Site register: a persistent inventory of mining sites per zone, carried from run to run.

Each run finds *footprints* (:mod:`kpgeo.footprints`), whose ids are only a
run's numbering. The register turns them into *sites* with a stable identity,
the way the JRC/USGS monitoring kept its inventories:

- **Stable ids by overlap.** A footprint that overlaps a site of the previous
  register (intersection at least ``min_overlap`` of the smaller of the two) is
  that site. Pairs are taken earliest-detected site first, largest overlap
  first, each site and each footprint once (:func:`match_sites`). A footprint
  overlapping several sites **merges** them: it keeps the id of the earliest
  detected, the others are kept as ``status = "merged"`` with ``merged_into``.
  Several footprints over one site **split** it: the largest overlap keeps the
  id, the others get new ids with ``split_from``. A site no footprint overlaps
  stays in the register as ``"not detected"`` (its history is kept). A footprint
  overlapping no site is a new site, numbered after the zone's highest id.
- **first_detected never moves later**: it is the earliest of the site's
  previous date, the footprint's and those of the sites merged into it (a split
  child inherits its parent's date).
- **History per period** (:func:`site_history`): cumulative mapped area, area
  added and activity state (``new`` in the period of first detection, ``active``
  while area grows or activity is seen later, ``inactive`` after the last
  activity, ``revegetating`` in the last period when the footprint is
  revegetating). With the run's ``first_detected`` raster the area per period
  counts the site's pixels detected by then; without it, the whole footprint
  from its first period. Rows of this run replace rows of the same site and
  period; earlier rows are kept.
- **Analyst triage** (:func:`set_triage`): a site is ``verified``, ``rejected``
  (a false alarm, with a reason), ``unclear`` or ``unreviewed``. Marks follow
  the ids (through merges: the surviving site's mark, else the first of
  verified, unclear, rejected; through splits: copied to each part) and are
  kept with the site's extent when marked. A **rejected site that grows** by
  more than ``regrow_fraction`` of its rejected area (and at least
  ``regrow_min_ha``) outside that extent is reopened: ``unreviewed`` again, with
  ``reopened = True`` and an event saying why. Rejected sites stay out of the
  totals and the default map layers (:func:`split_rejected`, :func:`triage_counts`).

All functions are pure: GeoDataFrames in, GeoDataFrames out. Geometries are
stored in EPSG:4326; overlaps and areas are computed in the zone's metric CRS.
Dates are ``datetime64[ns]`` (naive UTC) in memory. :mod:`kpgeo.store` reads
and writes registers.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import ConfigError, UnknownSiteError

__all__ = [
    "SITE_COLUMNS",
    "HISTORY_COLUMNS",
    "EVENT_COLUMNS",
    "TRIAGE_COLUMNS",
    "TRIAGE_STATUSES",
    "SITE_STATES",
    "RegisterParams",
    "Register",
    "RegisterUpdate",
    "match_sites",
    "update_register",
    "check_register",
    "site_history",
    "set_triage",
    "split_rejected",
    "label_footprints",
    "triage_counts",
]

#: activity states of a site in a period
SITE_STATES = ("new", "active", "inactive", "revegetating")
#: analyst marks
TRIAGE_STATUSES = ("unreviewed", "verified", "rejected", "unclear")
_MARK_PRIORITY = {"verified": 0, "unclear": 1, "rejected": 2}

SITE_COLUMNS = [
    "site_id", "zone", "geometry", "status", "footprint_id", "first_detected", "last_active",
    "first_seen", "last_seen", "area_ha", "max_area_ha", "state", "inside_zone",
    "distance_to_boundary_m", "merged_into", "split_from", "triage_status", "triage_reason",
    "triage_note", "triage_date", "reopened",
]
HISTORY_COLUMNS = ["site_id", "zone", "period", "area_ha", "new_area_ha", "state", "as_of"]
EVENT_COLUMNS = ["as_of", "zone", "event", "site_id", "other_site_id", "detail"]
TRIAGE_COLUMNS = ["site_id", "zone", "geometry", "status", "reason", "note", "date", "analyst",
                  "marked_area_ha"]
SITE_DATES = ("first_detected", "last_active", "first_seen", "last_seen", "triage_date")
_FREQ = {"QS": "Q", "MS": "M", "YS": "Y", "Q": "Q", "M": "M", "Y": "Y"}


@dataclass(frozen=True)
class RegisterParams:
    """Rules of the register (see the module docstring)."""

    min_overlap: float = 0.1
    """Smallest intersection, as a fraction of the smaller polygon, that links a footprint
    to a site."""
    regrow_fraction: float = 0.5
    """A rejected site is reopened when it grew by more than this fraction of its rejected
    area outside the rejected extent..."""
    regrow_min_ha: float = 0.1
    """...and by at least this many hectares."""
    period: str = "QS"
    """History period: ``MS``, ``QS`` or ``YS``."""

    def __post_init__(self) -> None:
        if not 0 < self.min_overlap <= 1:
            raise ConfigError(f"min_overlap must be in (0, 1], got {self.min_overlap!r}")
        if self.regrow_fraction < 0 or self.regrow_min_ha < 0:
            raise ConfigError("regrow_fraction and regrow_min_ha must be >= 0")
        if self.period not in _FREQ:
            raise ConfigError(f"period must be MS, QS or YS, got {self.period!r}")


def _empty_frame(columns: list[str], *, geo: bool) -> Any:
    import geopandas as gpd

    data = {c: pd.Series(dtype="object") for c in columns if c != "geometry"}
    if not geo:
        return pd.DataFrame(data)[columns]
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=4326), crs=4326)[columns]


@dataclass(frozen=True)
class Register:
    """The inventory: sites, their per-period history, identity events and triage marks."""

    sites: Any = field(default_factory=lambda: _empty_frame(SITE_COLUMNS, geo=True))
    """GeoDataFrame (EPSG:4326), :data:`SITE_COLUMNS`, one row per site id ever given."""
    history: Any = field(default_factory=lambda: _empty_frame(HISTORY_COLUMNS, geo=False))
    """DataFrame, :data:`HISTORY_COLUMNS`, one row per site and period."""
    events: Any = field(default_factory=lambda: _empty_frame(EVENT_COLUMNS, geo=False))
    """DataFrame, :data:`EVENT_COLUMNS`: new sites, merges, splits, reopenings."""
    triage: Any = field(default_factory=lambda: _empty_frame(TRIAGE_COLUMNS, geo=True))
    """GeoDataFrame (EPSG:4326), :data:`TRIAGE_COLUMNS`, one row per current site; the
    geometry of a marked site is its extent when it was marked."""

    def for_zone(self, zone: str) -> Register:
        """Return the part of the register that belongs to one zone."""
        return Register(*(frame[frame["zone"] == zone].reset_index(drop=True)
                          for frame in (self.sites, self.history, self.events, self.triage)))

    def replace_zones(self, other: Register) -> Register:
        """Return this register with the zones present in ``other`` replaced by its rows."""
        zones = set(other.sites["zone"]) | set(other.triage["zone"]) | set(other.history["zone"])
        parts = []
        for mine, theirs in zip(self.frames(), other.frames(), strict=True):
            kept = mine[~mine["zone"].isin(zones)]
            parts.append(_concat([kept, theirs], like=mine))
        return Register(*parts)

    def frames(self) -> tuple[Any, Any, Any, Any]:
        """Return ``(sites, history, events, triage)``."""
        return self.sites, self.history, self.events, self.triage


@dataclass(frozen=True)
class RegisterUpdate:
    """What :func:`update_register` returns."""

    register: Register
    """The zone's register after this run."""
    footprints: Any
    """This run's footprints with ``site_id`` and ``triage_status`` columns."""


def _concat(frames: list[Any], *, like: Any) -> Any:
    import geopandas as gpd

    frames = [f for f in frames if len(f)]
    if not frames:
        return like.iloc[0:0].copy()
    out = pd.concat(frames, ignore_index=True)
    if isinstance(like, gpd.GeoDataFrame):
        out = gpd.GeoDataFrame(out, geometry="geometry", crs=like.crs or 4326)
    return out[list(like.columns)]


def _metric_crs(footprints: Any, sites: Any, metric_crs: Any) -> Any:
    if metric_crs is not None:
        return metric_crs
    if footprints.crs is not None and footprints.crs.is_projected:
        return footprints.crs
    frame = footprints if len(footprints) else sites
    if len(frame) == 0:
        return "EPSG:6933"
    return frame.to_crs(4326).estimate_utm_crs()


# --------------------------------------------------------------------------- matching


def match_sites(site_geoms: Any, footprint_geoms: Any, site_first: Any, *,
                min_overlap: float = 0.1) -> tuple[dict[int, int], list[tuple[int, int, float]]]:
    """Link footprints to sites by overlap, each site and each footprint at most once.

    Parameters
    ----------
    site_geoms, footprint_geoms
        Shapely geometries in one metric CRS (sequences).
    site_first
        Each site's first-detected date (sortable; NaT last): merges keep the earliest.
    min_overlap
        Smallest intersection area as a fraction of the smaller polygon.

    Returns
    -------
    assigned : dict
        Footprint index -> site index (the footprint *is* that site).
    pairs : list of (site index, footprint index, intersection area)
        Every overlapping pair, assigned or not (merges and splits are read from these).
    """
    import shapely

    site_geoms = np.asarray(list(site_geoms), dtype=object)
    footprint_geoms = np.asarray(list(footprint_geoms), dtype=object)
    if not len(site_geoms) or not len(footprint_geoms):
        return {}, []
    tree = shapely.STRtree(site_geoms)
    fp_idx, site_idx = tree.query(footprint_geoms, predicate="intersects")
    inter = shapely.area(shapely.intersection(footprint_geoms[fp_idx], site_geoms[site_idx]))
    smaller = np.minimum(shapely.area(footprint_geoms[fp_idx]), shapely.area(site_geoms[site_idx]))
    keep = inter >= min_overlap * np.maximum(smaller, 1e-9)
    pairs = [(int(s), int(f), float(a)) for s, f, a in
             zip(site_idx[keep], fp_idx[keep], inter[keep], strict=True)]
    first = pd.to_datetime(pd.Series(list(site_first)))
    rank = first.rank(method="first", na_option="bottom").to_numpy()
    assigned: dict[int, int] = {}
    taken: set[int] = set()
    for s, f, _ in sorted(pairs, key=lambda p: (rank[p[0]], -p[2], p[1])):
        if f not in assigned and s not in taken:
            assigned[f] = s
            taken.add(s)
    return assigned, pairs


def _next_number(zone: str, ids: Any) -> int:
    prefix = f"{zone}-s"
    numbers = [int(i[len(prefix):]) for i in ids
               if isinstance(i, str) and i.startswith(prefix) and i[len(prefix):].isdigit()]
    return max(numbers, default=0) + 1


def _as_utc(values: Any) -> Any:
    from kpgeo.io import to_utc_naive

    return to_utc_naive(values, what="site dates").to_numpy()


def _min_date(*values: Any) -> Any:
    dates = [pd.Timestamp(v) for v in values if v is not None and not pd.isna(v)]
    return min(dates) if dates else pd.NaT


def _max_date(*values: Any) -> Any:
    dates = [pd.Timestamp(v) for v in values if v is not None and not pd.isna(v)]
    return max(dates) if dates else pd.NaT


def _site_row(fp: Any, geom: Any, *, site_id: str, zone: str, as_of: Any, prev: Any = None,
              merged: tuple = (), split_from: Any = None) -> dict[str, Any]:
    """Build a detected site's row from this run's footprint (and its previous self)."""
    firsts = [fp["first_detected"], *(m["first_detected"] for m in merged)]
    if prev is not None:
        firsts.append(prev["first_detected"])
    return {
        "site_id": site_id, "zone": zone, "geometry": geom, "status": "detected",
        "footprint_id": fp["id"], "first_detected": _min_date(*firsts),
        "last_active": _max_date(fp["last_active"],
                                 prev["last_active"] if prev is not None else None),
        "first_seen": prev["first_seen"] if prev is not None else as_of, "last_seen": as_of,
        "area_ha": float(fp["area_ha"]),
        "max_area_ha": max(float(fp["area_ha"]), float(prev["max_area_ha"])
                           if prev is not None and pd.notna(prev["max_area_ha"]) else 0.0),
        "state": fp["state"], "inside_zone": bool(fp["inside_zone"]),
        "distance_to_boundary_m": float(fp["distance_to_boundary_m"]),
        "merged_into": None,
        "split_from": split_from if split_from is not None else (
            prev["split_from"] if prev is not None else None),
    }


def _identities(prev: Any, fps: Any, prev_m: Any, fps_m: Any, *, zone: str, as_of: Any,
                params: RegisterParams) -> tuple[list[dict], list[dict], dict[str, list[str]]]:
    """Site rows and events of this run; ``sources``: new site id -> previous ids it carries."""
    assigned, pairs = match_sites(prev_m.geometry, fps_m.geometry, prev["first_detected"],
                                  min_overlap=params.min_overlap)
    best_parent: dict[int, tuple[int, float]] = {}
    best_child: dict[int, tuple[int, float]] = {}
    for s, f, area in pairs:
        if area > best_parent.get(f, (-1, -1.0))[1]:
            best_parent[f] = (s, area)
        if area > best_child.get(s, (-1, -1.0))[1]:
            best_child[s] = (f, area)
    number = _next_number(zone, prev["site_id"])
    fp_site: dict[int, str] = {}
    rows, events, sources = [], [], {}
    prev_rows, taken = prev.to_dict("records"), set(assigned.values())
    merging: dict[int, list[dict]] = {}  # footprint -> previous sites merged into it
    for s, f, _ in pairs:
        if s not in taken and best_child[s][0] == f:
            merging.setdefault(f, []).append(prev_rows[s])
    for f, (fp, geom) in enumerate(zip(fps.to_dict("records"), fps.geometry, strict=True)):
        if f in assigned:
            parent, split_from = prev_rows[assigned[f]], None
            site_id = parent["site_id"]
            if parent["status"] == "not detected":
                events.append(_event(as_of, zone, "redetected", site_id, None, ""))
        else:
            site_id, parent = f"{zone}-s{number:05d}", None
            number += 1
            split_from = prev_rows[best_parent[f][0]]["site_id"] if f in best_parent else None
            events.append(_event(as_of, zone, "split" if split_from else "new", site_id,
                                 split_from, f"split from {split_from}" if split_from else ""))
        fp_site[f] = site_id
        merged = merging.get(f, [])
        row = _site_row(fp, geom, site_id=site_id, zone=zone, as_of=as_of, prev=parent,
                        merged=tuple(merged), split_from=split_from)
        if split_from:  # the part was seen as early as the site it split from
            row["first_detected"] = _min_date(row["first_detected"],
                                              prev.loc[prev["site_id"] == split_from,
                                                       "first_detected"].iloc[0])
        rows.append(row)
        sources[site_id] = ([site_id] if parent is not None else
                            [split_from] if split_from else []) + [m["site_id"] for m in merged]
    rows += _untouched_sites(prev, assigned, best_child, fp_site, zone=zone, as_of=as_of,
                             events=events)
    return rows, events, sources


def _untouched_sites(prev: Any, assigned: dict, best_child: dict, fp_site: dict, *, zone: str,
                     as_of: Any, events: list) -> list[dict]:
    """Previous sites that no footprint continues: merged into another, or not detected."""
    rows = []
    kept = set(assigned.values())
    for s in range(len(prev)):
        if s in kept:
            continue
        row = prev.iloc[s].to_dict()
        if s in best_child and prev["status"].iloc[s] != "merged":
            into = fp_site[best_child[s][0]]
            row |= {"status": "merged", "merged_into": into}
            events.append(_event(as_of, zone, "merge", row["site_id"], into,
                                 f"merged into {into}"))
        elif row["status"] == "detected":
            row["status"] = "not detected"
            events.append(_event(as_of, zone, "not detected", row["site_id"], None,
                                 "no footprint overlaps the site in this run"))
        rows.append(row)
    return rows


def _event(as_of: Any, zone: str, event: str, site: str, other: Any, detail: str) -> dict:
    return {"as_of": as_of, "zone": zone, "event": event, "site_id": site,
            "other_site_id": other, "detail": detail}


# --------------------------------------------------------------------------- triage


def _mark_row(site: Any, *, status: str, reason: Any = None, note: Any = None, date: Any = None,
              analyst: Any = None, geometry: Any = None, area: Any = None) -> dict[str, Any]:
    return {"site_id": site["site_id"], "zone": site["zone"],
            "geometry": site["geometry"] if geometry is None else geometry, "status": status,
            "reason": reason, "note": note, "date": date, "analyst": analyst,
            "marked_area_ha": float(site["area_ha"]) if area is None else float(area)}


def _chosen_mark(candidates: list[Any], own_id: str) -> Any:
    """Pick the mark a site carries: its own, else verified > unclear > rejected."""
    if not candidates:
        return None
    return min(enumerate(candidates), key=lambda im: (
        im[1]["site_id"] != own_id, _MARK_PRIORITY[im[1]["status"]], im[0]))[1]


def _carry_triage(prev_triage: Any, sources: dict[str, list[str]], sites: Any, *, crs: Any,
                  as_of: Any, params: RegisterParams, events: list) -> tuple[Any, set[str]]:
    """Triage rows of the current sites, marks carried through ids; reopen regrown rejections."""
    import geopandas as gpd
    import shapely

    marks = {r["site_id"]: r for _, r in prev_triage.iterrows()
             if r["status"] in _MARK_PRIORITY}
    rows, reopened = [], set()
    current = sites[sites["status"] != "merged"]
    metric = current.to_crs(crs).geometry.to_numpy()
    for (_, site), geom_m in zip(current.iterrows(), metric, strict=True):
        carried = sources.get(site["site_id"], [site["site_id"]])
        candidates = [marks[i] for i in carried if i in marks]
        mark = _chosen_mark(candidates, site["site_id"])
        if mark is None:
            rows.append(_mark_row(site, status="unreviewed"))
            continue
        row = {**mark.to_dict(), "site_id": site["site_id"], "zone": site["zone"]}
        if mark["status"] == "rejected":
            extents = [m["geometry"] for m in candidates if m["status"] == "rejected"]
            row["geometry"] = shapely.union_all(extents)
            extent_m = gpd.GeoSeries([row["geometry"]], crs=4326).to_crs(crs).iloc[0]
            marked_ha = extent_m.area / 1e4
            grown_ha = shapely.difference(geom_m, extent_m).area / 1e4
            if site["status"] == "detected" and grown_ha > max(
                    params.regrow_fraction * marked_ha, params.regrow_min_ha):
                note = (f"reopened {as_of:%Y-%m-%d}: grew {grown_ha:.2f} ha beyond the "
                        f"{marked_ha:.2f} ha rejected on {_iso(mark['date'])} "
                        f"({mark['reason']})")
                rows.append(_mark_row(site, status="unreviewed", note=note, date=as_of,
                                      analyst="kpgeo"))
                reopened.add(site["site_id"])
                events.append(_event(as_of, site["zone"], "reopened", site["site_id"], None, note))
                continue
        rows.append(row)
    triage = gpd.GeoDataFrame(rows, columns=TRIAGE_COLUMNS, geometry="geometry", crs=4326) \
        if rows else _empty_frame(TRIAGE_COLUMNS, geo=True)
    return triage, reopened


def _iso(value: Any) -> str:
    return "?" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d")


def _with_triage(sites: Any, triage: Any, reopened: set[str]) -> Any:
    """Copy each site's current mark onto its row (``triage_*`` columns, ``reopened``)."""
    sites = sites.copy()
    by_id = triage.set_index("site_id")
    for col, src in (("triage_status", "status"), ("triage_reason", "reason"),
                     ("triage_note", "note"), ("triage_date", "date")):
        sites[col] = sites["site_id"].map(by_id[src]) if len(by_id) else None
    sites.loc[sites["status"] == "merged", "triage_status"] = None
    previously = sites["reopened"].fillna(False).astype(bool) if "reopened" in sites else False
    sites["reopened"] = sites["site_id"].isin(reopened) | (
        previously & (sites["triage_status"] == "unreviewed"))
    return sites


def set_triage(register: Register, site_id: str, status: str, *, reason: str | None = None,
               note: str | None = None, date: Any = None, analyst: str | None = None
               ) -> Register:
    """Mark a site verified, rejected (with a reason), unclear or unreviewed.

    The mark records the site's current extent; a rejected site that later grows
    well beyond it is reopened (see the module docstring).

    Raises
    ------
    UnknownSiteError
        No such site (the message lists the zone's ids near it).
    ConfigError
        Unknown status, a rejection without reason, or a site merged into another.
    """
    status = str(status).strip().lower()
    if status not in TRIAGE_STATUSES:
        raise ConfigError(f"triage status must be one of {list(TRIAGE_STATUSES)}, got {status!r}")
    if status == "rejected" and not (reason and str(reason).strip()):
        raise ConfigError(f"{site_id}: a rejection needs a reason (e.g. 'farm clearing', "
                          "'river bank', 'cloud shadow')")
    sites = register.sites
    match = sites[sites["site_id"] == site_id]
    if match.empty:
        ids = sorted(sites["site_id"])
        near = [i for i in ids if i.rsplit("-s", 1)[0] == site_id.rsplit("-s", 1)[0]][:8] or ids[:8]
        raise UnknownSiteError(f"no site {site_id!r} in the register; sites include: "
                               f"{', '.join(near) or 'none (run kpgeo run first)'}")
    site = match.iloc[0]
    if site["status"] == "merged":
        raise ConfigError(f"{site_id} was merged into {site['merged_into']}; mark that site")
    when = pd.Timestamp(date or _dt.datetime.now(_dt.UTC).date()).tz_localize(None).normalize()
    row = _mark_row(site, status=status, reason=reason if status == "rejected" else None,
                    note=note, date=when, analyst=analyst)
    triage = register.triage[register.triage["site_id"] != site_id]
    triage = _concat([triage, _frame([row], TRIAGE_COLUMNS)], like=register.triage)
    reopened = set(sites.loc[sites["reopened"].fillna(False).astype(bool), "site_id"])
    if status != "unreviewed":
        reopened.discard(site_id)
    sites = _with_triage(sites.assign(reopened=False), triage, reopened)
    return _typed(Register(sites, register.history, register.events, triage))


def _frame(rows: list[dict], columns: list[str]) -> Any:
    import geopandas as gpd

    return gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=4326)


def split_rejected(frame: Any) -> tuple[Any, Any]:
    """Split sites or footprints (with ``triage_status``) into (counted, rejected)."""
    if "triage_status" not in frame:
        raise ConfigError("split_rejected needs a triage_status column (sites of a register, "
                          "or footprints from update_register)")
    rejected = frame["triage_status"] == "rejected"
    return frame[~rejected].reset_index(drop=True), frame[rejected].reset_index(drop=True)


def label_footprints(footprints: Any, register: Register) -> Any:
    """Add ``site_id`` and ``triage_status`` to footprints from the register's detected sites.

    For zones a run skipped (up to date), whose footprints are those of the run
    that made the register.
    """
    detected = register.sites[register.sites["status"] == "detected"]
    by_fp = detected.set_index("footprint_id")
    out = footprints.copy()
    out["site_id"] = out["id"].map(by_fp["site_id"])
    out["triage_status"] = out["id"].map(by_fp["triage_status"])
    return out


def triage_counts(register: Register, zone: str | None = None) -> dict[str, int]:
    """Count the current sites (not merged) per triage status, for the bulletin."""
    sites = register.sites if zone is None else register.sites[register.sites["zone"] == zone]
    current = sites[sites["status"] != "merged"]
    status = current["triage_status"].fillna("unreviewed")
    counts = {s: int((status == s).sum()) for s in TRIAGE_STATUSES}
    counts["sites"] = int(len(current))
    counts["reopened"] = int(current["reopened"].fillna(False).astype(bool).sum())
    return counts


# --------------------------------------------------------------------------- history


def _period_fractions(sites: Any, first_detected: Any, ends: Any) -> np.ndarray | None:
    """Per site and period end, the share of its pixels detected by then (None: no raster)."""
    if first_detected is None:
        return None
    import rasterio.features
    import rioxarray  # noqa: F401  (registers .rio)

    da = first_detected.squeeze(drop=True)
    values = np.asarray(da.values)
    if np.issubdtype(values.dtype, np.datetime64):
        days = values.astype("datetime64[D]").astype("float64")
        days[np.isnat(values)] = np.nan
    else:
        days = values.astype("float64")
        days[days < 0] = np.nan
    geoms = sites.to_crs(da.rio.crs).geometry
    labels = rasterio.features.rasterize(
        [(g, i + 1) for i, g in enumerate(geoms)], out_shape=days.shape,
        transform=da.rio.transform(), fill=0, dtype="int32")
    n = len(sites) + 1
    end_days = (np.asarray(ends, dtype="datetime64[D]").astype("int64")).astype("float64")
    valid = np.isfinite(days) & (labels > 0)
    labels, days = labels[valid], days[valid]  # the sites' detected pixels
    total = np.bincount(labels, minlength=n)[1:]
    out = np.zeros((len(sites), len(end_days)))
    for j, end in enumerate(end_days):
        out[:, j] = np.bincount(labels[days <= end], minlength=n)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total[:, None] > 0, out / np.maximum(total[:, None], 1), np.nan)


def site_history(sites: Any, *, as_of: Any, period: str = "QS", first_detected: Any = None,
                 own_first: Any = None) -> Any:
    """Per-period history rows of the detected sites of this run.

    Parameters
    ----------
    sites
        Site rows (:data:`SITE_COLUMNS`) with ``status == "detected"``.
    as_of
        Date the run's imagery runs to; the last period is the one holding it.
    period
        ``MS``, ``QS`` or ``YS``.
    first_detected
        The run's ``first_detected`` raster (DataArray with ``rio`` CRS/transform;
        datetime64, or int days since 1970-01-01 with negative nodata), or None.
    own_first
        Per site, the first date this run saw (the footprint's ``first_detected``):
        rows start in its period; earlier periods keep the previous run's rows.

    Returns
    -------
    pandas.DataFrame
        :data:`HISTORY_COLUMNS`.
    """
    freq = _FREQ[period]
    last = pd.Period(pd.Timestamp(as_of), freq)
    own_first = sites["first_detected"] if own_first is None else own_first
    starts = [pd.Period(pd.Timestamp(d), freq) if pd.notna(d) else last for d in own_first]
    first_all = min(starts, default=last)
    periods = pd.period_range(first_all, last, freq=freq)
    ends = [p.end_time.normalize() for p in periods]
    fractions = _period_fractions(sites, first_detected, ends)
    rows = []
    for i, (_, site) in enumerate(sites.iterrows()):
        site_first = pd.Period(pd.Timestamp(site["first_detected"]), freq) \
            if pd.notna(site["first_detected"]) else starts[i]
        previous_area = 0.0
        for j, p in enumerate(periods):
            if p < starts[i]:
                continue
            share = 1.0 if fractions is None or np.isnan(fractions[i, j]) else fractions[i, j]
            area = float(site["area_ha"]) * share
            rows.append({"site_id": site["site_id"], "zone": site["zone"],
                         "period": p.start_time, "area_ha": round(area, 4),
                         "new_area_ha": round(max(area - previous_area, 0.0), 4),
                         "state": _period_state(site, p, area - previous_area, site_first, last),
                         "as_of": pd.Timestamp(as_of)})
            previous_area = area
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def _period_state(site: Any, p: Any, gain: float, site_first: Any, last: Any) -> str:
    if p == site_first:
        return "new"
    active = gain > 1e-9 or (pd.notna(site["last_active"])
                             and pd.Timestamp(site["last_active"]) >= p.start_time)
    if p == last and site["state"] == "revegetating":
        return "revegetating"
    return "active" if active else "inactive"


def _merge_history(previous: Any, new: Any) -> Any:
    """Rows of this run replace the previous rows of the same site and period."""
    if previous.empty:
        return new.reset_index(drop=True)
    key = ["site_id", "period"]
    prev = previous.copy()
    prev["period"] = pd.to_datetime(prev["period"])
    fresh = set(map(tuple, new[key].astype(str).to_numpy()))
    keep = [tuple(k) not in fresh for k in prev[key].astype(str).to_numpy()]
    out = pd.concat([prev[keep], new], ignore_index=True) if len(new) else prev
    return out.sort_values(key, kind="stable").reset_index(drop=True)[HISTORY_COLUMNS]


# --------------------------------------------------------------------------- update


_FOOTPRINT_NEEDS = ("id", "geometry", "area_ha", "first_detected", "last_active", "state",
                    "inside_zone", "distance_to_boundary_m")


def _check_footprints(footprints: Any) -> Any:
    missing = [c for c in _FOOTPRINT_NEEDS if c not in footprints.columns]
    if missing:
        raise ConfigError(f"footprints lack column(s) {missing}; pass the output of "
                          "kpgeo.footprints.extract_footprints")
    if footprints.crs is None:
        raise ConfigError("footprints have no CRS")
    fps = footprints.copy()
    for col in ("first_detected", "last_active"):
        fps[col] = _as_utc(fps[col])
    return fps.sort_values(["first_detected", "area_ha", "id"], ascending=[True, False, True],
                           kind="stable", na_position="last").reset_index(drop=True)


def _check_status(value: Any, site_id: Any) -> str:
    """Read a triage status as typed in QGIS ('Rejected ', empty...): one of TRIAGE_STATUSES."""
    if value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value).strip():
        return "unreviewed"
    status = str(value).strip().lower()
    if status not in TRIAGE_STATUSES:
        raise ConfigError(f"triage of site {site_id}: status {value!r} is not one of "
                          f"{list(TRIAGE_STATUSES)}; correct it in the triage layer")
    return status


def _typed(register: Register) -> Register:
    """Return the register with its date columns as ``datetime64[ns]`` (None -> NaT)."""
    sites, history, events, triage = (f.copy() for f in register.frames())
    for frame, cols in ((sites, SITE_DATES), (history, ("period", "as_of")),
                        (events, ("as_of",)), (triage, ("date",))):
        for col in cols:
            frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    return Register(sites, history, events, triage)


def check_register(register: Register) -> Register:
    """Return a register read from a store with dates as datetime64 and statuses checked.

    Raises
    ------
    ConfigError
        A date that does not parse, or a triage status (as typed in QGIS) that is
        none of :data:`TRIAGE_STATUSES` (case and spaces are forgiven).
    """
    sites, history, events, triage = (f.copy() for f in register.frames())
    for col in SITE_DATES:
        sites[col] = _as_utc(sites[col]) if len(sites) else pd.Series(dtype="datetime64[ns]")
    triage["date"] = _as_utc(triage["date"]) if len(triage) else pd.Series(
        dtype="datetime64[ns]")
    triage["status"] = [_check_status(s, site) for s, site in
                        zip(triage["status"], triage["site_id"], strict=True)]
    for frame, cols in ((history, ("period", "as_of")), (events, ("as_of",))):
        for col in cols:
            frame[col] = _as_utc(frame[col]) if len(frame) else pd.Series(
                dtype="datetime64[ns]")
    return Register(sites, history, events, triage)


def update_register(previous: Register | None, footprints: Any, *, zone: str, as_of: Any,
                    metric_crs: Any = None, first_detected: Any = None,
                    params: RegisterParams | None = None) -> RegisterUpdate:
    """Carry a zone's register into this run: stable ids, history, triage marks.

    Parameters
    ----------
    previous
        The register of the previous run (any zones; only ``zone`` is read), or None.
    footprints
        This run's footprints of the zone (:data:`kpgeo.footprints.FOOTPRINT_COLUMNS`).
    zone
        Zone id.
    as_of
        Date the run's imagery runs to (its last image date).
    metric_crs
        CRS for overlaps and areas (default: the footprints' projected CRS, else UTM).
    first_detected
        The run's ``first_detected`` raster of the zone, for the area per period.
    params
        :class:`RegisterParams`.

    Returns
    -------
    RegisterUpdate
        The zone's register and the footprints with ``site_id`` and ``triage_status``.
    """
    import geopandas as gpd

    params = params or RegisterParams()
    as_of = pd.Timestamp(as_of).tz_localize(None).normalize() if pd.Timestamp(as_of).tzinfo \
        is None else pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None).normalize()
    prev = check_register((previous or Register()).for_zone(zone))
    fps = _check_footprints(footprints)
    crs = _metric_crs(fps, prev.sites, metric_crs)
    sites_prev = prev.sites.set_crs(4326, allow_override=True)
    active = sites_prev[sites_prev["status"] != "merged"].reset_index(drop=True)
    retired = sites_prev[sites_prev["status"] == "merged"]
    fps_4326 = fps.to_crs(4326)
    rows, events, sources = _identities(active, fps_4326, active.to_crs(crs), fps.to_crs(crs),
                                        zone=zone, as_of=as_of, params=params)
    sites = gpd.GeoDataFrame(rows, columns=[c for c in SITE_COLUMNS if c not in (
        "triage_status", "triage_reason", "triage_note", "triage_date", "reopened")],
        geometry="geometry", crs=4326) if rows else _empty_frame(SITE_COLUMNS, geo=True)
    sites = sites.assign(reopened=sites["site_id"].map(
        active.set_index("site_id")["reopened"]) if len(active) else False)
    triage, reopened = _carry_triage(prev.triage, sources, sites, crs=crs, as_of=as_of,
                                     params=params, events=events)
    sites = _with_triage(sites, triage, reopened)
    sites = _concat([sites, retired], like=_empty_frame(SITE_COLUMNS, geo=True))
    detected = sites[sites["status"] == "detected"].reset_index(drop=True)
    own = detected["footprint_id"].map(fps.set_index("id")["first_detected"]) if len(detected) \
        else pd.Series([], dtype="datetime64[ns]")  # a zone with no footprint this run
    history = _merge_history(prev.history, site_history(
        detected, as_of=as_of, period=params.period, first_detected=first_detected,
        own_first=own))
    events_df = _concat([prev.events, pd.DataFrame(events, columns=EVENT_COLUMNS)],
                        like=_empty_frame(EVENT_COLUMNS, geo=False))
    by_fp = detected.set_index("footprint_id")
    out_fps = footprints.copy()
    out_fps["site_id"] = out_fps["id"].map(by_fp["site_id"])
    out_fps["triage_status"] = out_fps["id"].map(by_fp["triage_status"])
    register = _typed(Register(sites.sort_values("site_id").reset_index(drop=True), history,
                               events_df, triage.sort_values("site_id").reset_index(drop=True)))
    return RegisterUpdate(register=register, footprints=out_fps)
