"""Interactive web map of a run (folium / Leaflet), optionally fully offline.

:func:`make_map` builds one map of all zones: zone outlines (click: a popup
with the zone's activity chart), the rings just outside them, footprints
coloured by the period they were first detected (one layer per period, with a
time slider that shows everything detected up to a period; click: area, dates,
state, confidence, zone, inside/outside), optional before/after true-colour
overlays made from the cube, a layer control, a legend and a scale bar.
:func:`write_map` writes it as ``map.html``.

Offline mode (``offline=True``) writes a self-contained HTML for field teams
without internet: no basemap tiles and no external ``<script src>`` or
``<link href>``; Leaflet's JavaScript, CSS and control icons are read at run
time from the installed PyPI package ``xstatic-leaflet`` (Leaflet 1.9.3, the
version folium pins) and inlined. Only Leaflet itself is needed: the map uses
no jQuery, Bootstrap or marker-icon plugin.

Every text from the data (zone names, ids, states...) is HTML-escaped before
it reaches a popup, tooltip, legend or layer name; data are embedded with
``tojson`` (which escapes ``<``, ``>``, ``&``), so a hostile zone name cannot
inject markup or script.
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
            "offline maps need Leaflet's files from an installed package: "
            "pip install xstatic-leaflet"
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
    cube: Any, *, split_date: Any, start: Any = None, end: Any = None
) -> list[dict[str, Any]]:
    """Before/after true-colour overlays around ``split_date`` for the web map.

    The medians of the clear observations before ``split_date`` and from it on
    are reprojected to EPSG:3857 (Leaflet's CRS, so the picture lines up
    exactly) and encoded as PNG data URLs.

    Parameters
    ----------
    cube
        Cube with ``red``, ``green``, ``blue`` and ``clear`` (see
        :func:`kpgeo.staticmap.true_colour`).
    split_date
        First date of the "after" side; earlier dates form the "before" side.
    start, end
        Optional outer limits of the before and after windows.

    Returns
    -------
    list of dict
        ``{"label", "url", "bounds" [[south, west], [north, east]], "start", "end"}``
        for each side that has data.
    """
    from kpgeo.errors import NoDataError
    from kpgeo.staticmap import true_colour

    split = pd.Timestamp(split_date)
    out = []
    times = pd.to_datetime(cube["time"].values)
    sides = (
        ("before", start, split - pd.Timedelta(1, "ns"), times < split),
        ("after", split, end, times >= split),
    )
    for side, a, b, sel in sides:
        if not sel.any():
            continue
        try:
            rgba = true_colour(cube, start=a, end=b, crs="EPSG:3857")
        except NoDataError:
            continue
        bbox = rgba.odc.geobox.extent.to_crs("EPSG:4326").boundingbox
        first, last = times[sel].min(), times[sel].max()
        label = f"True colour {side}: {first:%Y-%m-%d} – {last:%Y-%m-%d}"
        out.append(
            {
                "label": label,
                "side": side,
                "url": png_data_url(_rgba_png(rgba.values)),
                "bounds": [[bbox.bottom, bbox.left], [bbox.top, bbox.right]],
                "start": first,
                "end": last,
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


def _footprint_popup(row: Any, zone_name: str) -> str:
    inside = "inside zone" if bool(row.get("inside_zone", True)) else "outside zone (ring)"
    rows = [
        ("Site", _fmt(row.get("id"))),
        ("Area", f"{_fmt(row.get('area_ha'), '.2f')} ha"),
        ("First detected", _fmt(row.get("first_detected"))),
        ("Last active", _fmt(row.get("last_active"))),
        ("State", _fmt(row.get("state"))),
        ("Confidence", _fmt(row.get("confidence"), ".2f")),
        ("Zone", zone_name),
        ("Location", inside),
    ]
    return "<div class='kp-popup kp-footprint-popup'>" + _table(rows) + "</div>"


def _zone_popup(zone: Any, chart_png: bytes | None, totals: dict[str, Any]) -> str:
    rows = [("Zone", f"{zone.name} ({zone.id})"), ("Country", getattr(zone, "country", "") or "–")]
    rows += [(k, v) for k, v in totals.items()]
    img = ""
    if chart_png:
        img = f"<img alt='activity chart' style='width:440px' src='{png_data_url(chart_png)}'>"
    name = html.escape(str(zone.name))
    return f"<div class='kp-popup kp-zone-popup'><b>{name}</b>{_table(rows)}{img}</div>"


# --------------------------------------------------------------------------- map
_TIME_JS = """
{% macro script(this, kwargs) %}
(function () {
    var map = {{ this._parent.get_name() }};
    var layers = [{% for n in this.layer_names %}{{ n }}{{ "," if not loop.last }}{% endfor %}];
    var labels = {{ this.labels|tojson }};
    var Ctl = L.Control.extend({
        options: {position: "bottomleft"},
        onAdd: function () {
            var div = L.DomUtil.create("div", "kp-time-control leaflet-bar");
            div.style.background = "white"; div.style.padding = "6px 8px";
            div.style.font = "12px sans-serif";
            var title = L.DomUtil.create("div", "", div);
            title.textContent = "Footprints detected up to:";
            var input = L.DomUtil.create("input", "kp-time-slider", div);
            input.type = "range"; input.min = 0; input.max = labels.length - 1; input.step = 1;
            input.value = labels.length - 1; input.style.width = "180px";
            var label = L.DomUtil.create("span", "kp-time-label", div);
            label.style.marginLeft = "6px";
            function apply(v) {
                for (var i = 0; i < layers.length; i++) {
                    if (i <= v) { if (!map.hasLayer(layers[i])) { map.addLayer(layers[i]); } }
                    else if (map.hasLayer(layers[i])) { map.removeLayer(layers[i]); }
                }
                label.textContent = labels[v];
            }
            input.addEventListener("input", function () { apply(parseInt(input.value, 10)); });
            input.addEventListener("change", function () { apply(parseInt(input.value, 10)); });
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            apply(labels.length - 1);
            return div;
        }
    });
    new Ctl().addTo(map);
})();
{% endmacro %}
"""

_LEGEND_JS = """
{% macro script(this, kwargs) %}
(function () {
    var map = {{ this._parent.get_name() }};
    var Legend = L.Control.extend({
        options: {position: "bottomright"},
        onAdd: function () {
            var div = L.DomUtil.create("div", "kp-legend");
            div.style.background = "rgba(255,255,255,0.9)"; div.style.padding = "6px 8px";
            div.style.font = "12px sans-serif"; div.style.borderRadius = "4px";
            div.innerHTML = {{ this.html|tojson }};
            return div;
        }
    });
    new Legend().addTo(map);
})();
{% endmacro %}
"""


def _to_feature_collection(gdf: Any, props: list[dict[str, Any]]) -> dict[str, Any]:
    from shapely.geometry import mapping

    feats = [
        {"type": "Feature", "geometry": mapping(geom), "properties": p}
        for geom, p in zip(gdf.geometry, props, strict=True)
    ]
    return {"type": "FeatureCollection", "features": feats}


def make_map(
    footprints: Any,
    *,
    zones: list[Any],
    activity: pd.DataFrame | None = None,
    overlays: list[dict[str, Any]] | None = None,
    freq: str = "QS",
    ring_width_m: float = 5000.0,
    offline: bool = False,
    title: str = "kpgeo — artisanal mining footprints",
) -> Any:
    """Build the interactive map of a run.

    Parameters
    ----------
    footprints
        GeoDataFrame with the footprint column contract (any CRS).
    zones
        :class:`kpgeo.zones.Zone` objects to outline (with their rings).
    activity
        Output of :func:`kpgeo.timeseries.zone_activity`: adds each zone's
        chart and totals to its popup.
    overlays
        From :func:`composite_overlays` (before/after true colour).
    freq
        Period used for the colours, layers and slider (``"QS"`` quarters).
    ring_width_m
        Width of the outside rings, metres.
    offline
        Self-contained HTML: no tiles, Leaflet inlined (see module docstring).
    title
        Plain-text title shown in the legend.

    Returns
    -------
    folium.Map
    """
    import folium
    import geopandas as gpd
    from branca.element import Element, MacroElement, Template

    from kpgeo.io import to_utc_naive
    from kpgeo.staticmap import figure_png, period_colours, period_labels
    from kpgeo.timeseries import plot_activity

    if not zones:
        raise ConfigError("make_map needs at least one zone (kpgeo.zones.get_zone(...))")
    zgdf = gpd.GeoDataFrame(
        {"id": [str(z.id) for z in zones]}, geometry=[z.geometry for z in zones], crs="EPSG:4326"
    )
    rings = [z.ring(ring_width_m) for z in zones]
    minx, miny, maxx, maxy = gpd.GeoSeries(rings, crs=4326).total_bounds
    names = {str(z.id): str(z.name) for z in zones}

    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        control_scale=True,
        zoom_control=True,
    )
    m.get_root().header.add_child(
        Element(
            "<style>.kp-popup{font:12px/1.3 sans-serif}.kp-popup th,.kp-popup td{padding:1px 4px}"
            ".leaflet-control-layers{font:12px sans-serif}</style>"
        ),
        name="kp_css",
    )
    if offline:
        js, css = leaflet_assets()
        m.default_js = []
        m.default_css = []
        root = m.get_root()
        root.header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css_inline")
        root.header.add_child(Element(f"<script>{js}</script>"), name="leaflet_js_inline")
        root.header.add_child(
            Element("<style>.leaflet-container{background:#f2efe9}</style>"), name="kp_bg"
        )
    else:
        m.default_js = [("leaflet", m.default_js[0][1])]
        m.default_css = [("leaflet_css", m.default_css[0][1])]
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap").add_to(m)
        folium.TileLayer(
            "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
            attr="Esri World Imagery",
            name="Esri World Imagery",
        ).add_to(m)

    for ov in overlays or []:
        folium.raster_layers.ImageOverlay(
            ov["url"],
            bounds=ov["bounds"],
            name=html.escape(ov["label"]),
            show=ov.get("side") == "after",
            opacity=1.0,
            pixelated=False,
        ).add_to(m)

    # zones and rings
    charts: dict[str, bytes] = {}
    totals: dict[str, dict[str, Any]] = {}
    if activity is not None and len(activity):
        for zid in pd.unique(activity["zone"]):
            zid = str(zid)
            try:
                charts[zid] = figure_png(
                    plot_activity(activity, zone=zid, title=names.get(zid, zid)), dpi=70
                )
            except ConfigError:
                continue
            sub = activity[activity["zone"] == zid]
            last = sub.sort_values("period_start").groupby("region").last()
            totals[zid] = {
                "Footprint inside (ha)": _fmt(last["cumulative_area_ha"].get("zone"), ".2f"),
                "Footprint in ring (ha)": _fmt(last["cumulative_area_ha"].get("ring"), ".2f"),
            }
    rgdf = gpd.GeoDataFrame({"id": zgdf["id"]}, geometry=rings, crs="EPSG:4326")
    folium.GeoJson(
        _to_feature_collection(rgdf, [{"id": i} for i in rgdf["id"]]),
        name=html.escape(f"Outside rings ({ring_width_m / 1000:g} km)"),
        style_function=lambda f: _RING_STYLE,
    ).add_to(m)

    zprops = [
        {
            "id": str(z.id),
            "popup_html": _zone_popup(z, charts.get(str(z.id)), totals.get(str(z.id), {})),
        }
        for z in zones
    ]
    bind = (
        "function (feature, layer) {{ layer.bindPopup(feature.properties.popup_html, "
        "{{maxWidth: {w}, maxHeight: {h}}}); }}"
    )
    folium.GeoJson(
        _to_feature_collection(zgdf, zprops),
        name="Zones",
        style_function=lambda f: _ZONE_STYLE,
        on_each_feature=folium.JsCode(bind.format(w=480, h=520)),
    ).add_to(m)
    # footprints, one layer per first-detected period
    fp = footprints
    layer_names: list[str] = []
    labels: list[str] = []
    colours: list[str] = []
    if len(fp):
        fp = fp.to_crs(4326)
        first = to_utc_naive(fp["first_detected"], what="footprints first_detected")
        per = period_labels(first, freq=freq).fillna("undated")
        labels = sorted(per.unique(), key=lambda s: (s == "undated", s))
        colours = period_colours(len(labels))
        for i, (lab, colour) in enumerate(zip(labels, colours, strict=True)):
            sel = fp[(per == lab).to_numpy()]
            props = []
            for _, row in sel.iterrows():
                props.append(
                    {
                        "id": _fmt(row.get("id")),
                        "area_ha": float(row["area_ha"])
                        if "area_ha" in row and pd.notna(row["area_ha"])
                        else None,
                        "popup_html": _footprint_popup(
                            row, names.get(str(row["zone"]), str(row["zone"]))
                        ),
                    }
                )
            style = {
                "color": "#222222",
                "weight": 1,
                "fillColor": colour,
                "fillOpacity": 0.75,
                "className": f"kp-footprint kp-period-{i}",
            }
            fg = folium.FeatureGroup(name=html.escape(f"Detected {lab}"), show=True)
            folium.GeoJson(
                _to_feature_collection(sel, props),
                style_function=lambda f, s=style: s,
                on_each_feature=folium.JsCode(bind.format(w=320, h=400)),
            ).add_to(fg)
            fg.add_to(m)
            layer_names.append(fg.get_name())

    folium.LayerControl(collapsed=False).add_to(m)
    if layer_names:
        ctl = MacroElement()
        ctl._template = Template(_TIME_JS)
        ctl.layer_names = layer_names
        ctl.labels = labels
        m.add_child(ctl, name="kp_time_control")

    legend = MacroElement()
    legend._template = Template(_LEGEND_JS)
    items = [
        f"<div><b>{html.escape(title)}</b></div>",
        "<div><span style='display:inline-block;width:18px;border-top:3px solid #ffd400'></span>"
        " zone</div>",
        "<div><span style='display:inline-block;width:18px;border-top:2px dashed #00bcd4'></span> "
        f"{html.escape(f'{ring_width_m / 1000:g} km outside ring')}</div>",
    ]
    items += [
        f"<div><span style='display:inline-block;width:12px;height:12px;background:{c};"
        f"border:1px solid #222'></span> first detected {html.escape(lab)}</div>"
        for lab, c in zip(labels, colours, strict=True)
    ]
    legend.html = "".join(items)
    m.add_child(legend, name="kp_legend")
    # open on the detections (and imagery) when there are any, else on the zones
    focus = [tuple(fp.total_bounds)] if len(fp) else []
    focus += [
        (o["bounds"][0][1], o["bounds"][0][0], o["bounds"][1][1], o["bounds"][1][0])
        for o in overlays or []
    ]
    if focus:
        minx, miny = min(b[0] for b in focus), min(b[1] for b in focus)
        maxx, maxy = max(b[2] for b in focus), max(b[3] for b in focus)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def write_map(path: str | os.PathLike, footprints: Any, **kwargs: Any) -> Path:
    """Write :func:`make_map` to ``path`` (e.g. ``DIR/map.html``), atomically.

    Parameters are those of :func:`make_map`. Returns the path.
    """
    from kpgeo.io import atomic_path

    m = make_map(footprints, **kwargs)
    page = m.get_root().render()
    if kwargs.get("offline"):
        _check_offline(page, path)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return Path(path)


def _check_offline(page: str, path: Any) -> None:
    import re

    bad = re.findall(
        r"<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^\"' >]+", page
    )
    if bad:
        raise ConfigError(f"offline map {path} would still load external resources: {bad[:3]}")
