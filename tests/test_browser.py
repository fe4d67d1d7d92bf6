"""Open the offline ``map.html`` in a real headless Chromium with no network.

Needs Debian's Chromium at /usr/bin/chromium (``bash tests/browser_setup.sh``);
Playwright drives it through ``executable_path`` (no ``playwright install``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _report_data import EVIL, RING_M, make_footprints, make_rgb_cube, make_zone  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"{CHROMIUM} absent: run `bash tests/browser_setup.sh` (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def offline_map(tmp_path_factory):
    from kpgeo.timeseries import clear_coverage, zone_activity, zone_regions
    from kpgeo.webmap import composite_overlays, write_map

    out = tmp_path_factory.mktemp("map")
    zone = make_zone(name="Berbérati " + EVIL, zid="test-zone")
    # a second zone with a hostile name (ids are slugs: kpgeo.zones refuses others)
    zone2 = make_zone(name="Séguéla " + EVIL, zid="z2")
    from shapely.affinity import translate

    zone2 = type(zone)(
        id=zone2.id, name=zone2.name, geometry=translate(zone.geometry, 0.05, 0.0), country="CIV"
    )
    fp = make_footprints(zone.id)
    cube = make_rgb_cube()
    cov = clear_coverage(cube, zone_regions([zone], ring_width_m=RING_M))
    act = zone_activity(fp, cov, zones=[zone], ring_width_m=RING_M)
    overlays = composite_overlays(cube, split_date="2020-07-01")
    path = write_map(
        out / "map.html",
        fp,
        zones=[zone, zone2],
        activity=act,
        overlays=overlays,
        offline=True,
        ring_width_m=RING_M,
    )
    return path, fp, [zone, zone2]


def test_offline_map_in_chromium(offline_map):
    from playwright.sync_api import sync_playwright

    path, fp, zones = offline_map
    html_text = path.read_text(encoding="utf-8")
    assert "onerror=alert(1)>" not in html_text  # never unescaped in the file
    requests: list[str] = []
    console_errors: list[str] = []
    page_errors: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 800}, offline=True)
            page = context.new_page()

            def _route(route):
                url = route.request.url
                if url.startswith(("file:", "data:", "blob:", "about:")):
                    route.continue_()
                else:
                    requests.append(url)
                    route.abort()

            page.route("**/*", _route)
            page.on(
                "console",
                lambda msg: console_errors.append(msg.text) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))

            def _dialog(d):
                dialogs.append(d.message)
                d.dismiss()

            page.on("dialog", _dialog)
            page.goto(path.as_uri())
            page.wait_for_selector("path.kp-footprint")
            page.wait_for_timeout(300)

            n_zone = page.locator("path.kp-zone").count()
            n_ring = page.locator("path.kp-ring").count()
            n_fp = page.locator("path.kp-footprint").count()
            assert n_zone == len(zones)
            assert n_ring == len(zones)
            assert n_fp == len(fp)
            assert page.locator(".leaflet-overlay-pane svg path").count() == 2 * len(zones) + len(
                fp
            )
            assert page.locator(".leaflet-control-scale").count() == 1
            assert page.locator(".kp-legend").count() == 1
            assert page.locator("img.leaflet-image-layer").count() >= 1  # "after" composite shown

            # time control: first period only, then back to all
            slider = page.locator("input.kp-time-slider")
            first_period = page.locator("path.kp-period-0").count()
            assert 0 < first_period < len(fp)
            slider.fill("0")
            page.wait_for_timeout(100)
            assert page.locator("path.kp-footprint").count() == first_period
            assert "Q1" in page.locator(".kp-time-label").inner_text()
            slider.fill(str(int(slider.get_attribute("max"))))
            page.wait_for_timeout(100)
            assert page.locator("path.kp-footprint").count() == len(fp)

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "map.png"))

            # click the largest footprint: popup shows its area
            big = fp.loc[fp["area_ha"].idxmax()]
            target = page.locator(f"path.kp-period-{_period_index(fp, big)}").first
            target.click(force=True)
            popup = page.locator(".leaflet-popup-content")
            popup.wait_for(timeout=3000)
            text = popup.inner_text()
            assert "Area" in text and " ha" in text
            areas = {f"{a:.2f} ha" for a in fp["area_ha"]}
            assert any(a in text for a in areas), text
            page.wait_for_timeout(400)  # popup fade-in
            page.screenshot(path=str(ARTIFACTS / "map_popup.png"))

            # zone popup: hostile name is shown as text, nothing runs
            page.locator(".leaflet-popup-close-button").click()
            page.wait_for_timeout(300)
            assert page.locator(".leaflet-popup-content").count() == 0
            boxes = [p.bounding_box() for p in page.locator("path.kp-zone").all()]
            # the map opens on the detections, i.e. on the first zone (which has activity);
            # the other zone is off-screen and clipped by Leaflet to a tiny path
            box = max(boxes, key=lambda b: b["width"] * b["height"])
            # a point inside the zone, near its left edge, within the viewport
            x = max(box["x"], 0) + 5
            y = (max(box["y"], 0) + min(box["y"] + box["height"], 800)) / 2
            page.mouse.click(x, y)
            popup.wait_for(timeout=3000)
            ztext = popup.inner_text()
            assert "<img src=x onerror=alert(1)>" in ztext  # rendered as literal text
            assert page.locator(".leaflet-popup-content img[src='x']").count() == 0
            assert page.locator(".leaflet-popup-content img[alt='activity chart']").count() == 1
            assert page.locator(".leaflet-control-layers img[src='x']").count() == 0
            page.wait_for_timeout(400)
            page.screenshot(path=str(ARTIFACTS / "map_zone_popup.png"))
        finally:
            browser.close()
    assert requests == [], f"network requests attempted: {requests}"
    assert dialogs == [], f"alert dialogs fired: {dialogs}"
    assert page_errors == [], page_errors
    assert console_errors == [], console_errors


def _period_index(fp, row) -> int:
    from kpgeo.staticmap import period_labels

    labels = sorted(period_labels(fp["first_detected"]).unique())
    return labels.index(period_labels([row["first_detected"]]).iloc[0])


# ------------------------------------------------------------ issue 8, items 13-15
@pytest.fixture(scope="module")
def default_map(tmp_path_factory):
    """The default (online) map of two zones far apart, with imagery and chips."""
    import geopandas as gpd
    import pandas as pd
    from shapely.affinity import translate

    from kpgeo.staticmap import footprint_chips
    from kpgeo.timeseries import clear_coverage, zone_activity, zone_regions
    from kpgeo.webmap import composite_overlays, write_map

    out = tmp_path_factory.mktemp("default_map")
    zone_a = make_zone(name="Berbérati", zid="zone-a")
    shift = (-6.0, 4.0)
    zone_b = type(zone_a)(
        id="zone-b", name="Séguéla", geometry=translate(zone_a.geometry, *shift), country="CIV"
    )
    fa = make_footprints("zone-a", crs="EPSG:4326")
    fb = make_footprints("zone-b", crs="EPSG:4326").iloc[[2, 8]]
    fb["geometry"] = fb.geometry.translate(*shift)
    fb["id"] = ["b-1", "b-2"]
    fp = gpd.GeoDataFrame(pd.concat([fa, fb], ignore_index=True), crs="EPSG:4326")
    cube = make_rgb_cube()
    cov = clear_coverage(cube, zone_regions([zone_a], ring_width_m=RING_M))
    act = zone_activity(fp, cov, zones=[zone_a, zone_b], ring_width_m=RING_M)
    path = write_map(
        out / "map.html",
        fp,
        zones=[zone_a, zone_b],
        activity=act,
        overlays=composite_overlays(cube, split_date="2020-07-01", zone=zone_a),
        chips=footprint_chips(cube, fa),
        ring_width_m=RING_M,
    )
    return path, fp


def _open_without_network(pw, path):
    """Open ``path`` in Chromium with every network request refused; collect errors."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    page = browser.new_context(viewport={"width": 1200, "height": 800}, offline=True).new_page()
    seen = {"requests": [], "errors": [], "console": []}

    def _route(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            seen["requests"].append(url)
            route.abort()

    page.route("**/*", _route)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on(
        "console",
        lambda msg: seen["console"].append(msg.text) if msg.type == "error" else None,
    )
    page.goto(path.as_uri())
    return browser, page, seen


def _in_view(page, selector):
    """How many elements matching ``selector`` are drawn inside the viewport."""
    return page.evaluate(
        """sel => Array.from(document.querySelectorAll(sel)).filter(e => {
            const b = e.getBoundingClientRect();
            return b.width > 2 && b.height > 2 && b.right > 0 && b.bottom > 0
                && b.left < innerWidth && b.top < innerHeight; }).length""",
        selector,
    )


def test_default_map_renders_without_network(default_map):
    from playwright.sync_api import sync_playwright

    path, fp = default_map
    with sync_playwright() as pw:
        browser, page, seen = _open_without_network(pw, path)
        try:
            page.wait_for_selector("path.kp-footprint", timeout=5000)
            page.wait_for_selector(".kp-tile-notice", timeout=5000)  # tiles failed: say so
            assert "could not be loaded" in page.locator(".kp-tile-notice").inner_text()
            assert page.locator("path.kp-zone").count() == 2
            assert page.locator("path.kp-footprint").count() == len(fp)
            # opens on the busiest zone (A): its footprints are big enough to see
            n_a = int((fp["zone"] == "zone-a").sum())
            assert _in_view(page, "path.kp-footprint") == n_a
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "map_no_network.png"))
        finally:
            browser.close()
    assert seen["errors"] == [], seen["errors"]
    # only basemap tiles were asked for (and refused)
    assert seen["requests"] and all("tile" in u or "arcgisonline" in u for u in seen["requests"])
    assert all("ERR_" in m or "Failed to load resource" in m for m in seen["console"])


def test_zone_buttons_and_swipe(default_map):
    from playwright.sync_api import sync_playwright

    path, fp = default_map
    with sync_playwright() as pw:
        browser, page, seen = _open_without_network(pw, path)
        try:
            page.wait_for_selector("path.kp-footprint", timeout=5000)
            page.locator("button.kp-zone-button", has_text="Séguéla").click()
            page.wait_for_timeout(700)
            assert _in_view(page, "path.kp-footprint") == int((fp["zone"] == "zone-b").sum())
            page.locator("button.kp-zone-button", has_text="Berbérati").click()
            page.wait_for_timeout(700)
            assert _in_view(page, "path.kp-footprint") == int((fp["zone"] == "zone-a").sum())

            # swipe: "before" left of the divider, "after" right of it
            page.locator("input.kp-swipe-toggle").check()
            page.wait_for_timeout(200)
            before = page.locator("img.kp-overlay-before")
            after = page.locator("img.kp-overlay-after")
            assert before.count() == 1 and after.count() == 1
            box = after.bounding_box()
            line = page.locator(".kp-swipe-line").bounding_box()
            assert box["x"] < line["x"] < box["x"] + box["width"]
            y = box["y"] + box["height"] / 2

            def visible_at(x):
                # the overlay images whose clipped box contains x (they take no pointer events)
                return page.evaluate(
                    """([x, y]) => Array.from(document.querySelectorAll('img.kp-overlay'))
                        .filter(e => { const r = e.getBoundingClientRect();
                            const m = /inset\\(([\\d.]+)px ([\\d.]+)px ([\\d.]+)px ([\\d.]+)px\\)/
                                .exec(e.style.clipPath) || [0, 0, 0, 0, 0];
                            return x >= r.left + +m[4] && x <= r.right - +m[2]; })
                        .map(e => e.classList.contains('kp-overlay-before')
                            ? 'before' : 'after')""",
                    [x, y],
                )

            assert visible_at(line["x"] - 20) == ["before"]
            assert visible_at(line["x"] + 20) == ["after"]
            page.locator("input.kp-swipe-range").fill("80")
            page.wait_for_timeout(100)
            moved = page.locator(".kp-swipe-line").bounding_box()["x"]
            assert moved > line["x"] + 100
            assert visible_at(line["x"] + 20) == ["before"]
            page.screenshot(path=str(ARTIFACTS / "map_swipe.png"))

            # a footprint popup shows before/after views around its first detection
            page.locator("input.kp-swipe-toggle").uncheck()
            page.locator("path.kp-period-0").first.click(force=True)
            page.locator(".leaflet-popup-content").wait_for(timeout=3000)
            assert page.locator(".leaflet-popup-content img.kp-chip-after").count() == 1
            assert "after: 2020-" in page.locator(".leaflet-popup-content").inner_text()
        finally:
            browser.close()
    assert seen["errors"] == [], seen["errors"]
