"""Web map: offline self-containment, layers, escaping (static checks of the HTML)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _report_data import EVIL, RING_M, make_footprints, make_rgb_cube, make_zone  # noqa: E402

from kpgeo.webmap import composite_overlays, leaflet_assets, make_map, write_map  # noqa: E402

SEGUELA_SHIFT = (-6.0, 4.0)  # degrees: puts a copy of the test zone in Cote d'Ivoire

EXTERNAL = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I
)


@pytest.fixture(scope="module")
def hostile_zone():
    return make_zone(name="Berbérati " + EVIL, zid="test-zone")


@pytest.fixture(scope="module")
def overlays():
    return composite_overlays(make_rgb_cube(), split_date="2020-07-01")


def test_offline_map_is_self_contained(tmp_path, hostile_zone, overlays):
    path = write_map(
        tmp_path / "map.html",
        make_footprints(),
        zones=[hostile_zone],
        overlays=overlays,
        offline=True,
        ring_width_m=RING_M,
    )
    page = path.read_text(encoding="utf-8")
    assert not EXTERNAL.search(page)
    assert "tile.openstreetmap" not in page and "arcgisonline" not in page and "{z}" not in page
    assert "cdn.jsdelivr" not in page and "jquery" not in page.lower()
    js, css = leaflet_assets()
    assert "L.version" in js or "version" in js
    assert js[:2000] in page  # Leaflet inlined from the installed package
    assert "url(images/" not in page  # control icons inlined as data URLs
    assert page.count("data:image/png;base64,") >= 2  # before/after composites


def test_default_map_inlines_leaflet_and_only_fetches_tiles(tmp_path, hostile_zone):
    # issue 8 item 13: without internet a CDN-loaded Leaflet leaves a white page
    path = write_map(tmp_path / "map.html", make_footprints(), zones=[hostile_zone])
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page)
    assert "cdn.jsdelivr" not in page and "jquery" not in page.lower()
    js, _ = leaflet_assets()
    assert js[:2000] in page  # Leaflet inlined
    assert "tile.openstreetmap.org" in page and "arcgisonline" in page  # basemaps online
    assert "tileerror" in page and "Basemap tiles could not be loaded" in page


def test_layers_slider_and_popups(hostile_zone):
    fp = make_footprints()
    page = make_map(fp, zones=[hostile_zone], ring_width_m=RING_M, offline=True).get_root().render()
    # one footprint layer per first-detected quarter, all driven by the slider
    quarters = sorted({f"2020Q{(d.month - 1) // 3 + 1}" for d in fp["first_detected"]})
    assert _slider(page)[0] == quarters
    for i in range(len(quarters)):
        assert f"kp-period-{i}" in page
    assert "L.control.scale" in page and "L.control.layers" in page and "kp-legend" in page
    # every footprint has a popup with its area
    for a in fp["area_ha"]:
        assert f"{a:.2f} ha" in page


def test_hostile_text_is_escaped(hostile_zone):
    fp = make_footprints()
    fp.loc[0, "state"] = "<script>alert(2)</script>"
    fp.loc[1, "id"] = "x' onmouseover='alert(3)"
    page = (
        make_map(
            fp,
            zones=[hostile_zone],
            ring_width_m=RING_M,
            offline=True,
            title="t</script><script>alert(4)</script>",
        )
        .get_root()
        .render()
    )
    assert "<img src=x onerror=alert(1)>" not in page
    assert "<script>alert(2)" not in page and "alert(4)</script>" not in page
    assert "onmouseover='alert(3)" not in page
    # the popup text, once JSON-decoded, is escaped HTML
    # popup HTML is escaped in Python, then JSON-embedded by tojson (& -> \u0026)
    assert "\\u0026lt;img src=x onerror=alert(1)\\u0026gt;" in page


def test_make_map_needs_zones():
    from kpgeo.errors import ConfigError

    with pytest.raises(ConfigError, match="zone"):
        make_map(make_footprints(), zones=[])


def test_overlays_are_epsg3857_pictures(overlays):
    assert [o["side"] for o in overlays] == ["before", "after"]
    # the cloudy Q2 dates (35 % of the grid clear) are left out of both sides
    assert list(overlays[0]["dates"].strftime("%m-%d")) == ["01-10", "02-20"]
    assert list(overlays[1]["dates"].strftime("%m-%d")) == ["07-10", "08-20", "10-05"]
    gbox = make_rgb_cube().odc.geobox
    bb = gbox.extent.to_crs(4326).boundingbox
    # the EPSG:3857 picture covers the cube grid, padded by at most ~3 of its pixels
    tol = 3 * gbox.resolution.x / 111_320  # degrees
    for o in overlays:
        (s, w), (n, e) = o["bounds"]
        for pad in (bb.bottom - s, bb.left - w, n - bb.top, e - bb.right):
            assert 0 <= pad < tol
    assert overlays[0]["bounds"] == overlays[1]["bounds"]
    assert overlays[1]["start"].month == 7


# --------------------------------------------------------------------------- helpers
def _slider(page):
    labels = json.loads(re.search(r"var labels = (\[.*?\]);", page).group(1))
    notes = json.loads(re.search(r"var notes = (\[.*?\]);", page).group(1))
    return labels, notes


def _layer_names(page):
    block = re.search(r"overlays :\s*\{(.*?)\},", page, re.S).group(1)
    return [json.loads(f'"{k}"') for k in re.findall(r'"((?:[^"\\]|\\.)*)" :', block)]


def _period_colours(page):
    """Period label -> fillColor of the footprint layers of that period."""
    labels, _ = _slider(page)
    found = re.findall(
        r'"className": "kp-footprint kp-period-(\d+)", "color": "#222222", "fillColor": "(#\w+)"',
        page,
    )
    out = {}
    for i, colour in found:
        out.setdefault(labels[int(i)], set()).add(colour)
    return out


def _fit_bounds(page):
    return json.loads(re.findall(r"\.fitBounds\(\s*(\[\[.*?\]\])", page)[-1])


def _two_zone_run():
    """Berbérati test zone (7 inside + 2 ring footprints) and a smaller copy further away."""
    import geopandas as gpd
    import pandas as pd
    from shapely.affinity import translate

    from kpgeo.timeseries import clear_coverage, zone_activity, zone_regions

    zone_a = make_zone(name="Berbérati", zid="zone-a")
    zone_b = type(zone_a)(
        id="zone-b",
        name="Séguéla",
        geometry=translate(zone_a.geometry, *SEGUELA_SHIFT),
        country="CIV",
    )
    fa = make_footprints("zone-a", crs="EPSG:4326")
    fb = make_footprints("zone-b", crs="EPSG:4326").iloc[[2, 8]]  # July and October only
    fb["geometry"] = fb.geometry.translate(*SEGUELA_SHIFT)
    fb["id"] = ["b-1", "b-2"]
    fp = gpd.GeoDataFrame(pd.concat([fa, fb], ignore_index=True), crs="EPSG:4326")
    cov = clear_coverage(make_rgb_cube(), zone_regions([zone_a], ring_width_m=RING_M))
    # zone B: the same dates, all clear
    cov_b = cov.assign(region=cov["region"].str.replace("zone-a", "zone-b"), clear_fraction=1.0)
    cov = pd.concat([cov, cov_b], ignore_index=True)
    act = zone_activity(fp, cov, zones=[zone_a, zone_b], ring_width_m=RING_M)
    return [zone_a, zone_b], fp, act


# ------------------------------------------------------------ issue 8, items 14 and 16
def test_multi_zone_map_opens_on_the_busiest_zone_with_zone_buttons():
    zones, fp, act = _two_zone_run()
    page = make_map(fp, zones=zones, activity=act, ring_width_m=RING_M).get_root().render()
    (s, w), (n, e) = _fit_bounds(page)
    minx, miny, maxx, maxy = fp[fp["zone"] == "zone-a"].total_bounds
    # opens on zone A's footprints (a few hundred metres), not on both zones (~800 km)
    assert (s, w, n, e) == pytest.approx((miny, minx, maxy, maxx), abs=1e-9)
    buttons = json.loads(re.search(r"var zones = (\[.*?\]);\n", page).group(1))
    assert [b["label"] for b in buttons] == ["Berbérati", "Séguéla", "all zones"]
    (bs, bw), (bn, be) = buttons[1]["bounds"]
    b_minx, b_miny, b_maxx, b_maxy = fp[fp["zone"] == "zone-b"].total_bounds
    assert (bs, bw, bn, be) == pytest.approx((b_miny, b_minx, b_maxy, b_maxx), abs=1e-9)


def test_every_layer_names_its_zone(overlays):
    zones, fp, act = _two_zone_run()
    ovs = composite_overlays(make_rgb_cube(), split_date="2020-07-01", zone=zones[0])
    page = make_map(fp, zones=zones, activity=act, overlays=ovs, ring_width_m=RING_M)
    names = _layer_names(page.get_root().render())
    assert len(names) == 2 * 2 + 2  # outline+ring and footprints per zone, before/after
    for name in names:
        assert name.startswith(("Berbérati — ", "Séguéla — ")), name
    assert "Séguéla — footprints (2)" in names


def test_slider_covers_every_period_and_marks_low_coverage():
    zones, fp, act = _two_zone_run()
    fp = fp[fp["first_detected"].dt.quarter != 2]  # no detection at all in the cloudy quarter
    page = make_map(fp, zones=zones, activity=act, ring_width_m=RING_M).get_root().render()
    labels, notes = _slider(page)
    assert labels == ["2020Q1", "2020Q2", "2020Q3", "2020Q4"]
    # Q2 is cloudy over zone A only
    assert notes == ["", "low clear coverage: Berbérati", "", ""]


def test_same_period_same_colour_on_every_map(tmp_path, monkeypatch):
    import kpgeo.staticmap as staticmap
    from kpgeo.report import write_report

    zones, fp, act = _two_zone_run()
    figures = {}
    real = staticmap.plot_zone_map

    def spy(footprints, zone, **kwargs):
        figures[zone.id] = real(footprints, zone, **kwargs)
        return figures[zone.id]

    monkeypatch.setattr(staticmap, "plot_zone_map", spy)
    write_report(tmp_path, footprints=fp, zones=zones, ring_width_m=RING_M, offline=True)
    page = (tmp_path / "map.html").read_text(encoding="utf-8")
    web = _period_colours(page)
    assert all(len(c) == 1 for c in web.values()), web  # one colour per period in both zones
    static = {}
    for zid, fig in figures.items():
        legend = fig.axes[0].get_legend()
        for patch, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            if text.get_text().startswith("first detected "):
                label = text.get_text().removeprefix("first detected ")
                static.setdefault(label, {})[zid] = _hex(patch.get_facecolor())
    # 2020Q3 and 2020Q4 are on both zone maps: same colour there and on the web map
    for label in ("2020Q3", "2020Q4"):
        assert set(static[label]) == {"zone-a", "zone-b"}
        assert set(static[label].values()) == web[label], (label, static[label], web[label])
    assert len({next(iter(c)) for c in web.values()}) == len(web)  # periods stay distinct


def _hex(rgba):
    from matplotlib.colors import to_hex

    return to_hex(rgba)


def test_map_coordinates_are_rounded_to_1e6_degree(hostile_zone):
    # issue 8 item 18: 1e-6 degree (~0.1 m) is far below a 10 m pixel; more digits are noise
    fp = make_footprints(crs="EPSG:4326")
    page = make_map(fp, zones=[hostile_zone], ring_width_m=RING_M, offline=True)
    page = page.get_root().render()
    coords = re.findall(r'"coordinates": (\[[-\d., \[\]]+\])', page)
    assert len(coords) >= len(fp) + 2  # footprints, zone outline, ring
    numbers = [n for block in coords for n in re.findall(r"-?\d+\.\d+", block)]
    assert numbers and max(len(n.split(".")[1]) for n in numbers) <= 6


def test_objects_left_out_by_the_footprint_tests_get_their_own_hidden_layer(hostile_zone):
    fps = make_footprints()
    left_out = fps.iloc[:2].assign(kind=["clearing", "shoreline"])
    page = make_map(fps.iloc[2:], zones=[hostile_zone], left_out=left_out).get_root().render()
    assert "left out as clearing / shoreline (2)" in page
    assert page.count("Left out as") == 2 and "kp-left-out" in page  # each popup says why
    assert "kp-rejected" not in page
    assert "clearing" in page and "shoreline" in page
    assert "left out as" not in make_map(fps, zones=[hostile_zone]).get_root().render()
