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
    # a second zone whose *id* is hostile too
    zone2 = make_zone(name="Séguéla", zid="z2" + EVIL)
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
