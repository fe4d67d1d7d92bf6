"""Interactive web map of a run (folium / Leaflet) that works with or without internet.

:func:`make_map` builds one map of all zones. Per zone, one layer group each
(named after the zone) for its outline and outside ring (click: a popup with
the zone's activity chart), its footprints and its before/after true-colour
views. Footprints are coloured by the period they were first detected, with
one palette for the whole run (:func:`kpgeo.staticmap.period_palette`); a time
slider covers every period of the time series (low-coverage periods marked)
and shows what was detected up to a period; a footprint's popup gives its
area, dates, state, confidence and location and, when imagery is given, small
before/after views around its own first detection
(:func:`kpgeo.staticmap.footprint_chips`). "Zoom to" buttons bookmark each
zone; the map opens on the zone with the most mapped mining. A swipe control
compares each zone's before and after views side by side. With a labelling
sheet (:func:`kpgeo.sampling.sample_units_layer`) each zone has a "sample
units" layer, off by default: one point per unit coloured by whether the
analyst's label agrees with the map, with its stratum, map class and label
in a popup. :func:`write_map` writes it as ``map.html``.

Leaflet's JavaScript, CSS and control icons are always inlined, read at run
time from the installed PyPI package ``xstatic-leaflet`` (Leaflet 1.9.3, the
version folium pins): the page loads no script or style sheet from the
internet, uses no jQuery, Bootstrap or marker plugin, and still draws zones,
footprints and imagery without a network. Online (the default) it adds
OpenStreetMap and Esri World Imagery basemap tiles and says so on the map if
they cannot be loaded; ``offline=True`` leaves the tiles out altogether (a
self-contained file for field teams, checked to reference nothing external).

Every text from the data (zone names, ids, states...) is HTML-escaped before
it reaches a popup, tooltip, legend or layer name, or set as text by the
controls; data are embedded with ``tojson`` (which escapes ``<``, ``>``,
``&``), so a hostile zone name cannot inject markup or script.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import ConfigError

__all__ = ["make_map", "write_map", "leaflet_assets", "png_data_url", "composite_overlays"]

_TEMPLATES = Path(__file__).parent / "templates"
_ZONE_STYLE = {
    "color": "#ffd400",
    "weight": 3,
    "fillColor": "#ffd400",
    "fillOpacity": 0.04,
    "className": "kp-zone",
}
_RING_STYLE = {
    "color": "#00bcd4",
    "weight": 1.5,
    "dashArray": "6 4",
    "fill": False,
    "className": "kp-ring",
}
_TILES = (
    ("OpenStreetMap", "OpenStreetMap", None),
    (
        "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
        "Esri World Imagery",
        "Esri World Imagery",
    ),
)
#: sample-unit colour by agreement of the analyst's label with the map class
_AGREEMENT_COLOURS = {
    "agrees": ("#1b9e77", "label agrees with the map"),
    "disagrees": ("#d62728", "label disagrees with the map"),
    "not labelled yet": ("#9e9e9e", "not labelled yet"),
}
_POPUP_BIND = (
    "function (feature, layer) {{ layer.bindPopup(feature.properties.popup_html, "
    "{{maxWidth: {w}, maxHeight: {h}}}); }}"
)


# --------------------------------------------------------------------------- assets
def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JavaScript and CSS (icons inlined as data URLs) from an installed package.

    Looks for ``xstatic-leaflet`` (module ``xstatic.pkg.leaflet``), then
    ``django-js-lib-leaflet`` (module ``js_lib_leaflet``). Nothing is copied
    into kpgeo's repository.

    Returns
    -------
    tuple of str
        ``(javascript, css)``.

    Raises
    ------
    ConfigError
        When neither package is installed (``pip install xstatic-leaflet``).
    """
    import importlib

    base = None
    try:
        base = Path(importlib.import_module("xstatic.pkg.leaflet").BASE_DIR)
    except ImportError:
        try:
            mod = importlib.import_module("js_lib_leaflet")
            base = Path(mod.__file__).parent / "static" / "js_lib_leaflet"
        except ImportError:
            pass
    if base is None or not (base / "leaflet.js").is_file():
        raise ConfigError(
            "web maps need Leaflet's files from an installed package: pip install xstatic-leaflet"
        )
    js = (base / "leaflet.js").read_text(encoding="utf-8")
    css = (base / "leaflet.css").read_text(encoding="utf-8")
    for name in ("layers.png", "layers-2x.png", "marker-icon.png"):
        img = base / "images" / name
        if img.is_file():
            uri = "data:image/png;base64," + base64.b64encode(img.read_bytes()).decode("ascii")
            css = css.replace(f"url(images/{name})", f"url({uri})")
    # never let inlined code close the <script>/<style> element early
    js = js.replace("</", "<\\/")
    css = css.replace("</", "<\\/")
    return js, css


def png_data_url(png: bytes) -> str:
    """``data:image/png;base64,...`` URL for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _rgba_png(rgba: np.ndarray) -> bytes:
    import io

    from matplotlib.image import imsave

    buf = io.BytesIO()
    imsave(buf, np.ascontiguousarray(rgba), format="png")
    return buf.getvalue()


def composite_overlays(
    cube: Any,
    *,
    split_date: Any = None,
    dates: tuple[Any, Any] | None = None,
    clear_fraction: Any = None,
    n_dates: int = 3,
    zone: Any = None,
) -> list[dict[str, Any]]:
    """Before/after true-colour overlays for the web map.

    "Before" and "after" are medians of a few clear dates
    (:func:`kpgeo.staticmap.compare_dates`): the ``n_dates`` clear dates just
    before ``split_date`` and those from it on; without ``split_date``, the
    earliest and the most recent clear dates. They are reprojected to
    EPSG:3857 (Leaflet's CRS, so the picture lines up exactly) and encoded as
    PNG data URLs.

    Parameters
    ----------
    cube
        Cube with ``red``, ``green``, ``blue`` and ``clear`` (see
        :func:`kpgeo.staticmap.true_colour`).
    split_date
        First date of the "after" side.
    dates
        ``(before_dates, after_dates)`` chosen by the caller, instead of ``split_date``.
    clear_fraction
        Clear fraction of each cube date; default: computed from ``clear``.
    n_dates
        Dates per side.
    zone
        The zone shown (its name prefixes the labels).

    Returns
    -------
    list of dict
        ``{"label", "side", "zone", "url", "bounds" [[south, west], [north, east]],
        "start", "end", "dates"}`` for each side that has data.
    """
    from kpgeo.errors import NoDataError
    from kpgeo.staticmap import compare_dates, true_colour

    times = pd.DatetimeIndex(pd.to_datetime(cube["time"].values))
    if dates is None:
        if clear_fraction is None and "clear" in cube:
            clear_fraction = np.asarray(cube["clear"].mean(("y", "x")).values)
        dates = compare_dates(times, clear_fraction, split=split_date, n_dates=n_dates)
    prefix = f"{zone.name} — " if zone is not None else ""
    out = []
    for side, sel in zip(("before", "after"), dates, strict=True):
        sel = pd.DatetimeIndex(pd.to_datetime(list(sel)))
        if not len(sel):
            continue
        try:
            rgba = true_colour(cube, dates=sel, crs="EPSG:3857")
        except NoDataError:
            continue
        bbox = rgba.odc.geobox.extent.to_crs("EPSG:4326").boundingbox
        first, last = sel.min(), sel.max()
        n = f"{len(sel)} clear date{'s' if len(sel) > 1 else ''}"
        out.append(
            {
                "label": f"{prefix}True colour {side}: {first:%Y-%m-%d} – {last:%Y-%m-%d} ({n})",
                "side": side,
                "zone": None if zone is None else str(zone.id),
                "url": png_data_url(_rgba_png(rgba.values)),
                "bounds": [[bbox.bottom, bbox.left], [bbox.top, bbox.right]],
                "start": first,
                "end": last,
                "dates": sel,
            }
        )
    return out


# --------------------------------------------------------------------------- popups
def _fmt(value: Any, spec: str = "") -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:8px'>{html.escape(k)}</th>"
        f"<td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table class='kp-table'>{cells}</table>"


def _chips_html(chips: dict[str, Any] | None) -> str:
    """Before/after thumbnails of one footprint (from footprint_chips)."""
    if not chips:
        return ""
    figs = []
    for side in ("before", "after"):
        chip = chips.get(side)
        if chip is None:
            figs.append(f"<figure><figcaption>{side}: no clear image</figcaption></figure>")
            continue
        days = ", ".join(f"{d:%Y-%m-%d}" for d in chip["dates"])
        figs.append(
            f"<figure><img class='kp-chip kp-chip-{side}' alt='{side}' "
            f"src='{png_data_url(_rgba_png(chip['rgba']))}'>"
            f"<figcaption>{side}: {html.escape(days)}</figcaption></figure>"
        )
    return "<div class='kp-chips'>" + "".join(figs) + "</div>"


def _footprint_popup(row: Any, zone_name: str, chips: dict[str, Any] | None = None) -> str:
    inside = "inside zone" if bool(row.get("inside_zone", True)) else "outside zone (ring)"
    rows = [
        ("Site", _fmt(row.get("id"))),
        *([("Register site", _fmt(row.get("site_id")))] if "site_id" in row else []),
        *([("Analyst check", _fmt(row.get("triage_status") or "unreviewed"))]
          if "triage_status" in row else []),
        *([("Left out as", _fmt(row.get("kind")))] if "kind" in row else []),
        ("Area", f"{_fmt(row.get('area_ha'), '.2f')} ha"),
        ("First detected", _fmt(row.get("first_detected"))),
        ("Last active", _fmt(row.get("last_active"))),
        ("State (last image)", _fmt(row.get("state"))),
        ("Confidence", _fmt(row.get("confidence"), ".2f")),
        ("Zone", zone_name),
        ("Location", inside),
    ]
    return (
        "<div class='kp-popup kp-footprint-popup'>" + _table(rows) + _chips_html(chips) + "</div>"
    )


def _agreement(agrees: Any) -> str:
    if agrees is None or pd.isna(agrees):
        return "not labelled yet"
    return "agrees" if bool(agrees) else "disagrees"


def _unit_popup(row: Any, zone_name: str) -> str:
    start, end = (str(row.get(k) or "") for k in ("period_start", "period_end"))
    rows = [
        ("Sample unit", _fmt(row.get("unit_id"))),
        ("Zone", zone_name),
        ("Window", f"{start or 'start'} – {end or 'end'}"),
        ("Stratum", _fmt(row.get("stratum"))),
        ("Map class", _fmt(row.get("map_class"))),
        ("Label (analyst)", _fmt(row.get("ref_class"))),
        ("Agreement", _agreement(row.get("agrees"))),
    ]
    return "<div class='kp-popup kp-unit-popup'>" + _table(rows) + "</div>"


def _zone_popup(zone: Any, chart_png: bytes | None, totals: dict[str, Any]) -> str:
    rows = [("Zone", f"{zone.name} ({zone.id})"), ("Country", getattr(zone, "country", "") or "–")]
    rows += [(k, v) for k, v in totals.items()]
    img = ""
    if chart_png:
        img = f"<img alt='activity chart' style='width:440px' src='{png_data_url(chart_png)}'>"
    name = html.escape(str(zone.name))
    return f"<div class='kp-popup kp-zone-popup'><b>{name}</b>{_table(rows)}{img}</div>"


# --------------------------------------------------------------------------- pieces
def _control(template: str, **attrs: Any) -> Any:
    """Return a branca MacroElement rendering ``templates/<template>`` with ``attrs``."""
    from branca.element import MacroElement, Template

    el = MacroElement()
    el._template = Template((_TEMPLATES / template).read_text(encoding="utf-8"))
    for key, value in attrs.items():
        setattr(el, key, value)
    return el


def _to_feature_collection(gdf: Any, props: list[dict[str, Any]]) -> dict[str, Any]:
    from shapely.geometry import mapping

    feats = [
        {"type": "Feature", "geometry": _round_coords(mapping(geom)), "properties": p}
        for geom, p in zip(gdf.geometry, props, strict=True)
    ]
    return {"type": "FeatureCollection", "features": feats}


def _round_coords(geo: Any, decimals: int = 6) -> Any:
    """GeoJSON geometry mapping with coordinates rounded (1e-6 degree is about 0.1 m)."""
    if isinstance(geo, dict):
        return {k: _round_coords(v, decimals) for k, v in geo.items()}
    if isinstance(geo, list | tuple):
        return [_round_coords(v, decimals) for v in geo]
    if isinstance(geo, float):
        return round(geo, decimals)
    return geo


def _base_map(offline: bool) -> Any:
    """Return a folium map with Leaflet inlined and basemap tiles unless offline."""
    import folium
    from branca.element import Element

    m = folium.Map(location=[0, 0], tiles=None, control_scale=True, zoom_control=True)
    js, css = leaflet_assets()
    m.default_js = []
    m.default_css = []
    root = m.get_root()
    root.header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css_inline")
    root.header.add_child(Element(f"<script>{js}</script>"), name="leaflet_js_inline")
    kp_css = (_TEMPLATES / "map.css").read_text(encoding="utf-8").replace("</", "<\\/")
    root.header.add_child(Element(f"<style>{kp_css}</style>"), name="kp_css")
    if offline:
        root.header.add_child(
            Element("<style>.leaflet-container{background:#f2efe9}</style>"), name="kp_bg"
        )
        return m
    tiles = []
    for url, name, attr in _TILES:
        layer = folium.TileLayer(url, name=name, **({"attr": attr} if attr else {}))
        layer.add_to(m)
        tiles.append(layer.get_name())
    m.add_child(_control("map_tile_notice.js.j2", tile_layers=tiles), name="kp_tile_notice")
    return m


def _period_axis(
    activity: pd.DataFrame | None, labels: pd.Series, freq: str, names: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Slider steps: every period of the time series (+ footprint periods outside it).

    Returns the period labels in order and, per period, a note naming the zones
    whose coverage was low then ("" when none).
    """
    from kpgeo.staticmap import UNDATED, period_labels

    low: dict[str, list[str]] = {}
    steps: set[str] = set()
    if activity is not None and len(activity):
        inside = activity[activity["region"] == "zone"]
        plabels = period_labels(inside["period_start"], freq=freq).to_numpy()
        steps |= set(plabels)
        for lab, zid, flag in zip(plabels, inside["zone"], inside["low_coverage"], strict=True):
            if bool(flag):
                low.setdefault(lab, []).append(names.get(str(zid), str(zid)))
    steps |= set(labels.unique())
    order = sorted(steps, key=lambda s: (s == UNDATED, s))
    notes = [
        "low clear coverage: " + ", ".join(dict.fromkeys(low[lab])) if lab in low else ""
        for lab in order
    ]
    return order, notes


def _zone_totals(activity: pd.DataFrame | None, names: dict[str, str]) -> tuple[dict, dict]:
    """Per zone id: activity chart PNG and popup totals."""
    from kpgeo.staticmap import figure_png
    from kpgeo.timeseries_output import plot_activity

    charts: dict[str, bytes] = {}
    totals: dict[str, dict[str, Any]] = {}
    if activity is None or not len(activity):
        return charts, totals
    for zid in pd.unique(activity["zone"]):
        zid = str(zid)
        try:
            fig = plot_activity(activity, zone=zid, title=names.get(zid, zid))
        except ConfigError:
            continue
        charts[zid] = figure_png(fig, dpi=70)
        sub = activity[activity["zone"] == zid]
        last = sub.sort_values("period_start").groupby("region").last()
        totals[zid] = {
            "Footprint inside (ha)": _fmt(last["cumulative_area_ha"].get("zone"), ".2f"),
            "Footprint in ring (ha)": _fmt(last["cumulative_area_ha"].get("ring"), ".2f"),
        }
    return charts, totals


def _add_zone_layers(m: Any, zones: list[Any], activity: Any, ring_width_m: float) -> None:
    """One layer group per zone: outline (popup: chart and totals) and outside ring."""
    import folium
    import geopandas as gpd

    names = {str(z.id): str(z.name) for z in zones}
    charts, totals = _zone_totals(activity, names)
    km = f"{ring_width_m / 1000:g} km"
    for zone in zones:
        zid = str(zone.id)
        fg = folium.FeatureGroup(name=html.escape(f"{zone.name} — zone and {km} ring"))
        ring = gpd.GeoDataFrame({"id": [zid]}, geometry=[zone.ring(ring_width_m)], crs=4326)
        folium.GeoJson(
            _to_feature_collection(ring, [{"id": zid}]), style_function=lambda f: _RING_STYLE
        ).add_to(fg)
        outline = gpd.GeoDataFrame({"id": [zid]}, geometry=[zone.geometry], crs=4326)
        props = [{"id": zid, "popup_html": _zone_popup(zone, charts.get(zid), totals.get(zid, {}))}]
        folium.GeoJson(
            _to_feature_collection(outline, props),
            style_function=lambda f: _ZONE_STYLE,
            on_each_feature=folium.JsCode(_POPUP_BIND.format(w=480, h=520)),
        ).add_to(fg)
        fg.add_to(m)


def _add_footprints(
    m: Any,
    fp: Any,
    labels: pd.Series,
    zones: list[Any],
    order: list[str],
    palette: dict[str, str],
    chips: dict[str, Any],
) -> list[list[tuple[str, str]]]:
    """Per zone a footprint layer group holding one GeoJSON layer per period.

    Returns, per period of ``order``, the ``(group, layer)`` JS names the slider drives.
    """
    import folium

    names = {str(z.id): str(z.name) for z in zones}
    steps: list[list[tuple[str, str]]] = [[] for _ in order]
    zone_of = fp["zone"].astype(str).to_numpy()
    for zid in dict.fromkeys([str(z.id) for z in zones] + list(zone_of)):
        in_zone = zone_of == zid
        if not in_zone.any():
            continue
        zname = names.get(zid, zid)
        fg = folium.FeatureGroup(name=html.escape(f"{zname} — footprints ({int(in_zone.sum())})"))
        fg.add_to(m)
        for i, lab in enumerate(order):
            sel = fp[in_zone & (labels == lab).to_numpy()]
            if not len(sel):
                continue
            props = [
                {
                    "id": _fmt(row.get("id")),
                    "popup_html": _footprint_popup(row, zname, chips.get(str(row.get("id")))),
                }
                for _, row in sel.iterrows()
            ]
            style = {
                "color": "#222222",
                "weight": 1,
                "fillColor": palette.get(lab, "#9e9e9e"),
                "fillOpacity": 0.75,
                "className": f"kp-footprint kp-period-{i}",
            }
            layer = folium.GeoJson(
                _to_feature_collection(sel, props),
                style_function=lambda f, s=style: s,
                on_each_feature=folium.JsCode(_POPUP_BIND.format(w=340, h=460)),
            )
            layer.add_to(fg)
            steps[i].append((fg.get_name(), layer.get_name()))
    return steps


_REJECTED = {"color": "#555555", "weight": 1, "dashArray": "4 3", "fillColor": "#9e9e9e",
             "fillOpacity": 0.3, "className": "kp-footprint kp-rejected"}
#: objects the footprint tests left out (clearings, shorelines)
_LEFT_OUT = {"color": "#1f78b4", "weight": 1, "dashArray": "2 4", "fillColor": "#a6cee3",
             "fillOpacity": 0.25, "className": "kp-footprint kp-left-out"}


def _add_rejected(m: Any, rejected: Any, zones: list[Any], *,
                  what: str = "rejected by analyst", style: dict | None = None) -> None:
    """Per zone a layer group of objects not counted (hidden at first), named ``what``."""
    import folium

    names = {str(z.id): str(z.name) for z in zones}
    rejected = rejected.to_crs(4326).reset_index(drop=True)
    for zid, sel in rejected.groupby(rejected["zone"].astype(str), sort=False):
        zname = names.get(zid, zid)
        fg = folium.FeatureGroup(
            name=html.escape(f"{zname} — {what} ({len(sel)})"), show=False)
        props = [{"id": _fmt(row.get("id")), "popup_html": _footprint_popup(row, zname)}
                 for _, row in sel.iterrows()]
        folium.GeoJson(_to_feature_collection(sel, props),
                       style_function=lambda f, s=style or _REJECTED: s,
                       on_each_feature=folium.JsCode(_POPUP_BIND.format(w=340, h=460))).add_to(fg)
        fg.add_to(m)


def _add_sample_units(m: Any, units: Any, zones: list[Any]) -> None:
    """Per zone a "sample units" layer group (hidden at first): points coloured by agreement."""
    import folium

    names = {str(z.id): str(z.name) for z in zones}
    units = units.to_crs(4326).reset_index(drop=True)
    zone_of = units["zone"].astype(str).to_numpy()
    for zid in dict.fromkeys([str(z.id) for z in zones] + list(zone_of)):
        sel = units[zone_of == zid]
        if not len(sel):
            continue
        zname = names.get(zid, zid)
        fg = folium.FeatureGroup(
            name=html.escape(f"{zname} — sample units ({len(sel)})"), show=False
        )
        props = [
            {"id": f"unit-{i}", "agreement": _agreement(row.get("agrees")),
             "popup_html": _unit_popup(row, zname)}
            for i, (_, row) in enumerate(sel.iterrows())
        ]
        folium.GeoJson(
            _to_feature_collection(sel, props),
            marker=folium.CircleMarker(radius=5, weight=1, color="#222222", fill=True,
                                       fill_opacity=0.9),
            style_function=lambda f: {
                "fillColor": _AGREEMENT_COLOURS[f["properties"]["agreement"]][0],
                "className": "kp-unit kp-unit-" + f["properties"]["agreement"].replace(" ", "-"),
            },
            on_each_feature=folium.JsCode(_POPUP_BIND.format(w=320, h=360)),
        ).add_to(fg)
        fg.add_to(m)


def _add_overlays(m: Any, overlays: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Image overlays ("after" shown); returns the (before, after) JS name pairs per zone."""
    import folium

    sides: dict[Any, dict[str, str]] = {}
    for ov in overlays:
        layer = folium.raster_layers.ImageOverlay(
            ov["url"],
            bounds=ov["bounds"],
            name=html.escape(ov["label"]),
            show=ov.get("side") == "after",
            opacity=1.0,
            pixelated=False,
            class_name=f"kp-overlay kp-overlay-{ov.get('side')}",
        )
        layer.add_to(m)
        sides.setdefault(ov.get("zone"), {})[ov.get("side")] = layer.get_name()
    return [(s["before"], s["after"]) for s in sides.values() if "before" in s and "after" in s]


def _zone_views(
    zones: list[Any], fp: Any, overlays: list[dict[str, Any]], ring_width_m: float
) -> list[dict[str, Any]]:
    """Per zone: the bounds to zoom to (its footprints and imagery, else its outline)."""
    views = []
    zone_of = fp["zone"].astype(str).to_numpy() if len(fp) else np.array([], dtype=str)
    for zone in zones:
        zid = str(zone.id)
        boxes = [tuple(fp[zone_of == zid].total_bounds)] if (zone_of == zid).any() else []
        boxes += [
            (o["bounds"][0][1], o["bounds"][0][0], o["bounds"][1][1], o["bounds"][1][0])
            for o in overlays
            if o.get("zone") == zid
        ]
        n = int((zone_of == zid).sum())
        if not boxes:
            boxes = [zone.ring(ring_width_m).bounds]
        w, s = min(b[0] for b in boxes), min(b[1] for b in boxes)
        e, n_ = max(b[2] for b in boxes), max(b[3] for b in boxes)
        views.append(
            {
                "id": zid,
                "label": str(zone.name),
                "title": f"{zone.name}: {n} footprint(s)" if n else f"{zone.name}: whole zone",
                "bounds": [[s, w], [n_, e]],
            }
        )
    return views


def _busiest_zone(zones: list[Any], fp: Any, activity: pd.DataFrame | None) -> int:
    """Index of the zone with the most mapped mining (final cumulative area, else footprints)."""
    score = {str(z.id): 0.0 for z in zones}
    if activity is not None and len(activity):
        last = activity.sort_values("period_start").groupby(["zone", "region"]).last()
        for (zid, _), value in last["cumulative_area_ha"].items():
            if str(zid) in score and pd.notna(value):
                score[str(zid)] += float(value)
    if not any(score.values()) and len(fp):
        counts = fp["zone"].astype(str).value_counts()
        score = {k: float(counts.get(k, 0)) for k in score}
    return int(np.argmax([score[str(z.id)] for z in zones]))


def _legend_html(title: str, ring_width_m: float, order, palette, present,
                 agreements=()) -> str:
    items = [
        f"<div><b>{html.escape(title)}</b></div>",
        "<div><span style='display:inline-block;width:18px;border-top:3px solid #ffd400'></span>"
        " zone</div>",
        "<div><span style='display:inline-block;width:18px;border-top:2px dashed #00bcd4'></span> "
        f"{html.escape(f'{ring_width_m / 1000:g} km outside ring')}</div>",
    ]
    items += [
        f"<div><span class='kp-swatch' style='background:{palette.get(lab, '#9e9e9e')}'></span>"
        f" first detected {html.escape(lab)}</div>"
        for lab in order
        if lab in present
    ]
    items += [
        f"<div><span class='kp-swatch' style='border-radius:50%;background:{colour}'></span>"
        f" sample unit: {text}</div>"
        for key, (colour, text) in _AGREEMENT_COLOURS.items()
        if key in agreements
    ]
    items.append(
        "<div><span class='kp-swatch kp-swatch-low'></span>"
        " slider: low clear coverage</div>"
    )
    return "".join(items)


# --------------------------------------------------------------------------- map
def make_map(
    footprints: Any,
    *,
    zones: list[Any],
    activity: pd.DataFrame | None = None,
    overlays: list[dict[str, Any]] | None = None,
    chips: dict[str, Any] | None = None,
    palette: dict[str, str] | None = None,
    freq: str = "QS",
    ring_width_m: float = 5000.0,
    offline: bool = False,
    title: str = "kpgeo — artisanal mining footprints",
    sample_units: Any = None,
    rejected: Any = None,
    left_out: Any = None,
) -> Any:
    """Build the interactive map of a run.

    Parameters
    ----------
    footprints
        GeoDataFrame with the footprint column contract (any CRS).
    zones
        :class:`kpgeo.zones.Zone` objects to outline (with their rings).
    activity
        Output of :func:`kpgeo.timeseries.zone_activity`: each zone's chart
        and totals in its popup, the slider's periods and their coverage, the
        zone the map opens on.
    overlays
        From :func:`composite_overlays` (before/after true colour, per zone).
    chips
        From :func:`kpgeo.staticmap.footprint_chips`: before/after views in
        the footprint popups.
    palette
        Period label -> colour for the whole run
        (:func:`kpgeo.staticmap.period_palette`); default: over the slider's periods.
    freq
        Period used for the colours, layers and slider (``"QS"`` quarters).
    ring_width_m
        Width of the outside rings, metres.
    offline
        No basemap tiles (see the module docstring; Leaflet is inlined either way).
    title
        Plain-text title shown in the legend.
    sample_units
        Points of :func:`kpgeo.sampling.sample_units_layer` (``zone``,
        ``unit_id``, ``stratum``, ``map_class``, ``ref_class``, ``agrees``):
        a "sample units" layer per zone, off by default. None: no layer.
    rejected
        Footprints of sites an analyst rejected (:func:`kpgeo.register.split_rejected`):
        a "rejected by analyst" layer per zone, off by default. None: no layer.
    left_out
        Objects the footprint tests left out, with ``kind``
        (:func:`kpgeo.footprints.rejected_objects`, the zones' ``rejected.geojson``):
        a "left out as clearing / shoreline" layer per zone, off by default.

    Returns
    -------
    folium.Map
    """
    from kpgeo.io import to_utc_naive
    from kpgeo.staticmap import UNDATED, period_labels, period_palette

    if not zones:
        raise ConfigError("make_map needs at least one zone (kpgeo.zones.get_zone(...))")
    overlays = list(overlays or [])
    names = {str(z.id): str(z.name) for z in zones}
    fp = footprints.to_crs(4326) if len(footprints) else footprints
    if len(fp):
        first = to_utc_naive(fp["first_detected"], what="footprints first_detected")
        labels = period_labels(first, freq=freq).fillna(UNDATED).reset_index(drop=True)
        fp = fp.reset_index(drop=True)
    else:
        labels = pd.Series([], dtype=object)
    order, notes = _period_axis(activity, labels, freq, names)
    palette = period_palette(order) | (palette or {})

    m = _base_map(offline)
    pairs = _add_overlays(m, overlays)
    _add_zone_layers(m, zones, activity, ring_width_m)
    steps = _add_footprints(m, fp, labels, zones, order, palette, chips or {}) if len(fp) else []
    has_units = sample_units is not None and len(sample_units)
    if has_units:
        _add_sample_units(m, sample_units, zones)
    if rejected is not None and len(rejected):
        _add_rejected(m, rejected, zones)
    if left_out is not None and len(left_out):
        _add_rejected(m, left_out, zones, what="left out as clearing / shoreline",
                      style=_LEFT_OUT)

    import folium

    folium.LayerControl(collapsed=False).add_to(m)
    if order:
        m.add_child(
            _control("map_time_control.js.j2", period_layers=steps or [[] for _ in order],
                     labels=order, notes=notes),
            name="kp_time_control",
        )
    views = _zone_views(zones, fp, overlays, ring_width_m)
    if len(zones) > 1:
        every = [[min(v["bounds"][0][0] for v in views), min(v["bounds"][0][1] for v in views)],
                 [max(v["bounds"][1][0] for v in views), max(v["bounds"][1][1] for v in views)]]
        buttons = views + [{"id": "", "label": "all zones", "title": "all zones", "bounds": every}]
        m.add_child(_control("map_zone_buttons.js.j2", zones=buttons), name="kp_zone_buttons")
    if pairs:
        m.add_child(_control("map_swipe.js.j2", pairs=pairs), name="kp_swipe")
    present = set(labels.unique())
    agreements = {_agreement(a) for a in sample_units["agrees"]} if has_units else set()
    legend = _legend_html(title, ring_width_m, order, palette, present, agreements)
    m.add_child(_control("map_legend.js.j2", html=legend), name="kp_legend")
    # open on the detections (and imagery) of the busiest zone
    m.fit_bounds(views[_busiest_zone(zones, fp, activity)]["bounds"])
    return m


def write_map(path: str | os.PathLike, footprints: Any, **kwargs: Any) -> Path:
    """Write :func:`make_map` to ``path`` (e.g. ``DIR/map.html``), atomically.

    Parameters are those of :func:`make_map`. Returns the path.
    """
    from kpgeo.io import atomic_path

    m = make_map(footprints, **kwargs)
    page = m.get_root().render()
    _check_no_external_code(page, path, offline=bool(kwargs.get("offline")))
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return Path(path)


def _check_no_external_code(page: str, path: Any, *, offline: bool) -> None:
    """Refuse a map that loads scripts or styles (or, offline, anything) from the network."""
    import re

    tags = r"(?:script|link|img)" if offline else r"(?:script|link)"
    bad = re.findall(
        rf"<{tags}\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^\"' >]+", page
    )
    if bad:
        raise ConfigError(f"map {path} would load external resources: {bad[:3]}")
