"""Zone API: lookup, areas against the source polygons, rings, ad-hoc AOIs, CLI."""

from __future__ import annotations

import json

import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import Polygon, box

from kpgeo.cli import main
from kpgeo.errors import InvalidAOIError, UnknownZoneError
from kpgeo.zones import get_zone, list_zones, load_aoi, zones_frame

# Areas (km²) stated by the providers of the source polygons (SOURCE.md of the
# Who's On First and geoBoundaries extracts), computed independently of kpgeo.
SOURCE_AREAS_KM2 = {
    "caf-berberati": 9029,
    "caf-carnot": 6192,
    "caf-gadzi": 6425,
    "caf-boda": 3116,
    "caf-nola": 8809,
    "civ-seguela": 824,
    "civ-tortiya": 627,
}


def test_bundled_zones_have_provenance():
    zones = {z.id: z for z in list_zones()}
    assert set(zones) == set(SOURCE_AREAS_KM2)
    for zone in zones.values():
        assert zone.country in {"CAF", "CIV"}
        assert zone.source and zone.licence and zone.kp_status and zone.kp_status_date
        assert zone.geometry.is_valid
    assert zones["caf-berberati"].name == "Berbérati"
    assert zones["civ-seguela"].name == "Séguéla"
    assert zones["civ-seguela"].kp_status_date == "2014-04-29"


@pytest.mark.parametrize("zone_id", sorted(SOURCE_AREAS_KM2))
def test_zone_area_matches_source(zone_id):
    area_km2 = get_zone(zone_id).area_ha / 100
    assert area_km2 == pytest.approx(SOURCE_AREAS_KM2[zone_id], rel=0.005)


def test_area_agrees_with_equal_area_projection():
    gdf = zones_frame()
    ease = gdf.to_crs(6933).area / 10_000  # EASE-Grid 2.0, equal-area
    assert (abs(ease - gdf["area_ha"]) / gdf["area_ha"]).max() < 0.005


@pytest.mark.parametrize(
    "key", ["Berbérati", "berberati", "caf-berberati", "BERBERATI", " Berbérati "]
)
def test_lookup_is_case_and_accent_insensitive(key):
    assert get_zone(key).id == "caf-berberati"


def test_unknown_zone_lists_valid_ids():
    with pytest.raises(UnknownZoneError) as err:
        get_zone("Bangui")
    message = str(err.value)
    assert "Bangui" in message
    for zone_id in SOURCE_AREAS_KM2:
        assert zone_id in message
    assert isinstance(err.value, KeyError)


def test_utm_crs_is_local():
    assert get_zone("caf-berberati").utm_crs.to_epsg() == 32633
    assert get_zone("civ-seguela").utm_crs.to_epsg() == 32629
    assert get_zone("civ-tortiya").utm_crs.to_epsg() == 32630


def test_ring_lies_just_outside():
    zone = get_zone("caf-boda")
    ring = zone.ring(2000)
    assert ring.intersection(zone.geometry).area < 1e-9
    # every ring point is within ~2 km of the zone, and the ring touches the zone
    from kpgeo.zones import to_crs

    ring_utm = to_crs(ring, "EPSG:4326", zone.utm_crs)
    zone_utm = to_crs(zone.geometry, "EPSG:4326", zone.utm_crs)
    assert ring_utm.hausdorff_distance(zone_utm.boundary) == pytest.approx(2000, rel=0.05)
    assert ring_utm.distance(zone_utm) < 1.0


def test_load_aoi_from_file_and_geometry(tmp_path):
    poly = box(15.7, 4.2, 15.8, 4.3)
    path = tmp_path / "my site.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "My site"},
                        "geometry": shapely.geometry.mapping(poly),
                    }
                ],
            }
        )
    )
    zone = load_aoi(path)
    assert zone.name == "My site"
    assert zone.geometry.equals(poly)
    assert 11_000 < zone.area_ha < 12_500  # ~0.1° x 0.1° near the equator
    assert load_aoi(poly, name="box").id == "box"
    assert load_aoi("Nola").id == "caf-nola"


def test_invalid_aoi_is_refused(tmp_path):
    bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    with pytest.raises(InvalidAOIError, match="invalid polygon.*Self-intersection"):
        load_aoi(bowtie)
    with pytest.raises(InvalidAOIError, match="empty"):
        load_aoi(Polygon())
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InvalidAOIError, match="empty.geojson"):
        load_aoi(empty)
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("{not json")
    with pytest.raises(InvalidAOIError, match="garbage.geojson"):
        load_aoi(garbage)


def test_user_zone_folder(tmp_path, monkeypatch):
    (tmp_path / "x-site.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"id": "x-site", "name": "Sité X", "country": "CAF"},
                        "geometry": shapely.geometry.mapping(box(16, 4, 16.1, 4.1)),
                    }
                ],
            }
        )
    )
    monkeypatch.setenv("KPGEO_AOI_DIR", str(tmp_path))
    assert [z.id for z in list_zones()] == ["x-site"]
    assert get_zone("site x").id == "x-site"


def test_cli_zones_lists_zones_with_area():
    result = CliRunner().invoke(main, ["zones"])
    assert result.exit_code == 0, result.output
    assert "caf-berberati" in result.output and "Séguéla" in result.output
    assert "902,944" in result.output  # Berbérati, hectares


def test_cli_version_and_help():
    runner = CliRunner()
    assert runner.invoke(main, ["--version"]).output.startswith("kpgeo, version")
    out = runner.invoke(main, ["--help"]).output
    assert "--verbose" in out and "--quiet" in out and "zones" in out
