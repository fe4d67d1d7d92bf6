"""kpgeo.io.write_vector: GeoJSON layer name and coordinate precision."""

import json

import geopandas as gpd
import shapely

from kpgeo import io


def test_geojson_coordinates_rounded_to_1e6_degree_and_layer_named_after_file(tmp_path):
    gdf = gpd.GeoDataFrame({"id": ["a"]}, geometry=[shapely.box(15.123456789, 4.2, 15.2, 4.3)],
                           crs="EPSG:4326")
    path = io.write_vector(gdf, tmp_path / "footprints.geojson")
    doc = json.loads(path.read_text())
    assert doc["name"] == "footprints"
    xs = [c[0] for c in doc["features"][0]["geometry"]["coordinates"][0]]
    assert 15.123457 in xs and all(len(repr(x).split(".")[-1]) <= 6 for x in xs)
