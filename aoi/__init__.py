"""Bundled zone polygons (one GeoJSON per zone); see README.md here for provenance."""
