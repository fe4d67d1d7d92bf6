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


def test_online_map_uses_leaflet_cdn_and_basemaps(hostile_zone):
    page = make_map(make_footprints(), zones=[hostile_zone], offline=False).get_root().render()
    assert "leaflet.js" in page and "tile.openstreetmap.org" in page
    assert "jquery" not in page.lower()  # only Leaflet is loaded


def test_layers_slider_and_popups(hostile_zone):
    fp = make_footprints()
    page = make_map(fp, zones=[hostile_zone], ring_width_m=RING_M, offline=True).get_root().render()
    # one footprint layer per first-detected quarter, all driven by the slider
    quarters = sorted({f"2020Q{(d.month - 1) // 3 + 1}" for d in fp["first_detected"]})
    labels = json.loads(re.search(r"var labels = (\[.*?\]);", page).group(1))
    assert labels == quarters
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
