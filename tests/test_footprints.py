import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr

from kpgeo.errors import ConfigError
from kpgeo.footprints import FOOTPRINT_COLUMNS, change_rasters, extract_footprints


def make_change(state, *, x0=500000.0, y0=400000.0, res=10.0, crs="EPSG:32634"):
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_coords

    h, w = state.shape
    gbox = GeoBox.from_bbox((x0, y0, x0 + res * w, y0 + res * h), crs=crs, resolution=res)
    coords = xr_coords(gbox, crs_coord_name="spatial_ref")
    det = np.isin(state, [1, 2, 3, 4])
    first = np.where(det, np.datetime64("2019-06-01", "ns"), np.datetime64("NaT", "ns"))
    return xr.Dataset(
        {
            "state": (("y", "x"), state.astype("uint8")),
            "confidence": (("y", "x"), np.where(det, 0.8, 0.0).astype("float32")),
            "first_detected": (("y", "x"), first),
            "last_active": (("y", "x"), first),
            "water": (("y", "x"), det & (np.arange(w)[None, :] % 2 == 0)),
            "mean_ndvi": (("y", "x"), np.full(state.shape, 0.1, "float32")),
            "mean_mndwi": (("y", "x"), np.full(state.shape, -0.2, "float32")),
            "mean_bsi": (("y", "x"), np.full(state.shape, 0.1, "float32")),
        },
        coords=coords,
    ), gbox


def test_mmu_areas_attributes():
    st = np.zeros((40, 40), "uint8")
    st[5:15, 5:15] = 2  # 100 px = 1 ha
    st[30:32, 30:32] = 1  # 4 px = 0.04 ha, dry, below a 0.05 ha MMU
    st[25:28, 5:8] = 4  # 9 px = 0.09 ha
    ch, _ = make_change(st)
    ch["water"].values[30:32, 30:32] = False
    gdf = extract_footprints(ch, min_area_ha=0.05, closing_radius=0)
    assert list(gdf.columns) == FOOTPRINT_COLUMNS
    assert len(gdf) == 2
    assert sorted(gdf["area_ha"].round(4)) == [0.09, 1.0]
    big = gdf.loc[gdf["area_ha"].idxmax()]
    assert big["state"] == "active"
    assert gdf.loc[gdf["area_ha"].idxmin(), "state"] == "revegetating"
    assert big["water_fraction"] == pytest.approx(0.5)
    assert str(big["first_detected"])[:10] == "2019-06-01"
    assert gdf.crs.to_epsg() == 32634
    assert gdf["inside_zone"].all() and gdf["zone"].isna().all()
    # a larger MMU drops the small object
    assert len(extract_footprints(ch, min_area_ha=0.1, closing_radius=0)) == 1


def test_signed_distance_to_zone_boundary():
    from pyproj import Transformer

    st = np.zeros((40, 40), "uint8")
    st[5:9, 5:9] = 2   # upper-left block
    st[30:34, 30:34] = 2  # lower-right block
    ch, gbox = make_change(st)
    # zone = left half of the scene, in EPSG:4326
    tr = Transformer.from_crs(32634, 4326, always_xy=True)
    zone_utm = shapely.box(500000, 400000, 500200, 400400)
    zone = shapely.transform(zone_utm, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))
    gdf = extract_footprints(ch, zone=zone, min_area_ha=0.0, closing_radius=0)
    left = gdf[gdf.geometry.centroid.x < 500200].iloc[0]
    right = gdf[gdf.geometry.centroid.x > 500200].iloc[0]
    assert left["inside_zone"] and not right["inside_zone"]
    # left block centroid x = 500070 -> 70 m from the zone's west edge (closest)
    assert left["distance_to_boundary_m"] == pytest.approx(-70, abs=1.0)
    # right block centroid x = 500320 -> 120 m east of the boundary
    assert right["distance_to_boundary_m"] == pytest.approx(120, abs=1.0)


def test_empty_and_bad_params():
    ch, _ = make_change(np.zeros((10, 10), "uint8"))
    gdf = extract_footprints(ch)
    assert len(gdf) == 0 and list(gdf.columns) == FOOTPRINT_COLUMNS
    with pytest.raises(ConfigError):
        extract_footprints(ch, min_area_ha=-1)
    with pytest.raises(ConfigError):
        extract_footprints(ch, min_confidence=2)
    with pytest.raises(ConfigError):
        extract_footprints(ch.drop_vars("state"))


def test_change_rasters_encoding():
    st = np.zeros((10, 10), "uint8")
    st[2:5, 2:5] = 2
    ch, _ = make_change(st)
    r = change_rasters(ch)
    fd = r["first_detected"].values
    assert fd.dtype == np.int32
    assert fd[3, 3] == (np.datetime64("2019-06-01") - np.datetime64("1970-01-01")).astype(int)
    assert fd[0, 0] == -1
    assert "spatial_ref" in r["state"].coords


def test_confirmed_objects_grow_over_adjacent_pending_pixels():
    st = np.zeros((40, 40), "uint8")
    st[5:15, 5:15] = 2  # confirmed, 1 ha
    st[30:32, 30:32] = 2  # confirmed but dry and below a 0.05 ha MMU
    ch, _ = make_change(st)
    ch["water"].values[30:32, 30:32] = False
    pend = np.zeros(st.shape, bool)
    pend[15:18, 5:15] = True  # next to the big object: 0.3 ha more
    pend[30:32, 32:36] = True  # next to the small object: does not rescue it
    pend[25:28, 20:30] = True  # isolated: never an object on its own
    ch["pending"] = (("y", "x"), pend)
    gdf = extract_footprints(ch, min_area_ha=0.05, closing_radius=0)
    assert len(gdf) == 1
    assert gdf["area_ha"].iloc[0] == pytest.approx(1.3)
    assert gdf["state"].iloc[0] == "active"
    # without the pending layer the object keeps its confirmed extent
    gdf0 = extract_footprints(ch.drop_vars("pending"), min_area_ha=0.05, closing_radius=0)
    assert gdf0["area_ha"].iloc[0] == pytest.approx(1.0)


def test_a_water_filled_pit_below_the_mapping_unit_is_kept():
    from kpgeo.footprints import POND_MIN_AREA_HA

    st = np.zeros((30, 30), "uint8")
    st[5:7, 5:7] = 2  # 4 px = 0.04 ha, mostly under water: a pit pond
    st[15:17, 15:17] = 2  # 4 px, dry: below the mapping unit
    st[25, 25:27] = 2  # 2 px under water: below the pond unit too
    ch, _ = make_change(st)
    water = np.zeros(st.shape, bool)
    water[5:7, 5:8] = True
    water[5, 5] = False  # 3 of its 4 pixels
    water[25, 25:27] = True
    ch["water"] = (("y", "x"), water)
    assert POND_MIN_AREA_HA == 0.03
    gdf = extract_footprints(ch, min_area_ha=0.05, closing_radius=0)
    assert gdf["area_ha"].round(2).tolist() == [0.04]
    assert gdf["water_fraction"].iloc[0] == pytest.approx(0.75)
    # a mapping unit at or below the pond unit keeps every object of its size
    assert len(extract_footprints(ch, min_area_ha=0.03, closing_radius=0)) == 2


def test_alert_date_is_when_the_object_reached_the_mapping_unit():
    st = np.zeros((20, 20), "uint8")
    st[5:8, 5:9] = 2  # 12 px
    ch, _ = make_change(st)
    alert = np.full(st.shape, np.datetime64("NaT"), "datetime64[ns]")
    days = np.datetime64("2019-06-01", "ns") + np.arange(12).astype("timedelta64[D]") * 10
    alert[5:8, 5:9] = days.reshape(3, 4)  # pixels confirmed one after another, 10 days apart
    ch["alert_date"] = (("y", "x"), alert)
    gdf = extract_footprints(ch, min_area_ha=0.05, closing_radius=0)  # MMU = 5 px
    assert len(gdf) == 1
    assert gdf["alert_date"].iloc[0] == pd.Timestamp(days[4])  # the fifth pixel


def test_footprint_mask_grows_by_hysteresis_never_from_pending_alone():
    from kpgeo.footprints import footprint_mask

    conf = np.zeros((12, 12), bool)
    conf[2:5, 2:5] = True
    pend = np.zeros_like(conf)
    pend[5:9, 2:5] = True  # touches the core: its newest pits
    pend[2:6, 9:11] = True  # alone
    mask = footprint_mask(conf, pend, min_pixels=5, closing_radius=0)
    assert mask[2:9, 2:5].all() and not mask[:, 8:].any()
    assert not footprint_mask(np.zeros_like(conf), pend, min_pixels=5).any()


def test_dry_uniform_clearing_is_rejected_unless_it_is_part_of_a_pit_site():
    import pandas as pd

    from kpgeo.footprint_kinds import near_wet_objects, object_kind

    labels = np.zeros((30, 30), "int32")
    labels[2:8, 2:8] = 1  # a water-bearing pit cluster
    labels[2:8, 10:14] = 2  # a dry gravel heap 20 m away: part of the same site
    labels[20:28, 18:28] = 3  # a dry, uniform field far from any pit
    attrs = pd.DataFrame({"water_any": [0.6, 0.0, 0.0], "texture": [0.2, 0.01, 0.01]})
    near = near_wet_objects(labels, attrs["water_any"].to_numpy() >= 0.05, radius=3)
    assert near.tolist() == [False, True, False]
    kind = object_kind(attrs, np.array([0.36, 0.24, 0.8]), clearing_min_area_ha=0.0,
                       pit_context=near)
    assert kind.tolist() == ["mining", "mining", "clearing"]
    assert (object_kind(attrs, np.ones(3), clearing_min_area_ha=None) == "mining").all()


def test_a_hectare_that_never_held_water_is_a_field_however_textured():
    import pandas as pd

    from kpgeo.footprint_kinds import FIELD_MIN_HA, object_kind

    # textured dry objects: 1.2 ha never water, 1.2 ha with a few water pixels, 0.6 ha never
    attrs = pd.DataFrame({"water_any": [0.0, 0.03, 0.0], "texture": [0.15, 0.15, 0.15]})
    area = np.array([1.2, 1.2, 0.6])
    next_to_pits = np.ones(3, bool)  # not even a water-bearing neighbour keeps the field
    kind = object_kind(attrs, area, clearing_min_area_ha=0.0, pit_context=next_to_pits)
    assert FIELD_MIN_HA == 1.0
    assert kind.tolist() == ["clearing", "mining", "mining"]
    # a larger clearing_min_area_ha wins
    assert (object_kind(attrs, area, clearing_min_area_ha=2.0) == "mining").all()


def test_uniform_bare_soil_left_by_a_flood_is_a_clearing_a_pit_mosaic_is_not():
    import pandas as pd

    from kpgeo.footprint_kinds import flood_margins, object_kind

    # 0.5 ha each, all once under water on some pixels (water_any 0.4):
    # 0 receded flood: uniform bare soil, no pixel under water now -> flood margin
    # 1 the same surface as a pit-and-spoil mosaic (textured)       -> mining
    # 2 uniform, but most pixels are water-filled pits             -> mining
    # 3 uniform, dry now, but gravel and water mix, not bare soil (BSI 0.1) -> mining
    attrs = pd.DataFrame({"water_any": [0.4] * 4, "texture": [0.01, 0.08, 0.01, 0.01],
                          "water_fraction": [0.0, 0.0, 0.7, 0.0],
                          "mean_bsi": [0.3, 0.3, 0.3, 0.1]})
    assert flood_margins(attrs).tolist() == [True, False, False, False]
    kind = object_kind(attrs, np.full(4, 0.5), clearing_min_area_ha=0.0)
    assert kind.tolist() == ["clearing", "mining", "mining", "mining"]
    assert (object_kind(attrs, np.full(4, 0.5), clearing_min_area_ha=None) == "mining").all()
    # without the spectral attributes the rule cannot apply
    assert not flood_margins(attrs[["water_any", "texture"]]).any()


def test_small_dry_object_beside_a_river_is_a_pit_a_field_is_not():
    st = np.zeros((60, 60), "uint8")
    st[10:14, 20:24] = 2  # 0.16 ha of dry gravel 30 m from the river bank
    st[40:52, 40:52] = 2  # 1.44 ha dry, uniform field
    st[45:48, 5:8] = 2  # 0.09 ha dry patch 200 m from the river
    st[30:32, 15:19] = 2  # 0.08 ha dry patch 80 m from the river: a field on its flood plain
    ch, _ = make_change(st)
    ch["water_share"] = (("y", "x"), np.zeros(st.shape, "float32"))
    base = np.zeros(st.shape, "uint8")
    base[:, 27:30] = 2  # a river: water from the start
    ch["baseline_class"] = (("y", "x"), base)
    cand = extract_footprints_kinds(ch)
    assert cand == {0.16: "mining", 1.44: "clearing", 0.09: "clearing", 0.08: "clearing"}


def extract_footprints_kinds(ch):
    from kpgeo.footprints import footprint_candidates

    cand = footprint_candidates(ch, min_area_ha=0.05, closing_radius=0)
    return {round(a, 2): k for a, k in zip(cand["area_ha"], cand["kind"], strict=True)}


def test_outline_share_counts_the_bordering_pixels_in_a_region():
    from kpgeo.footprint_kinds import outline_share

    labels = np.zeros((10, 10), "int32")
    labels[4:6, 4:6] = 1  # 2 x 2 object: 12 bordering pixels
    region = np.zeros((10, 10), bool)
    region[3, :] = True  # the row above it: 4 of them
    assert outline_share(labels, 1, region).tolist() == [pytest.approx(4 / 12)]


def test_water_band_along_a_lake_shore_is_a_shoreline_a_bank_pit_is_not():
    from kpgeo.footprint_kinds import shoreline_objects

    river = np.zeros((40, 40), bool)
    river[:, :10] = True  # a lake, water from the start
    labels = np.zeros((40, 40), "int32")
    labels[5:25, 10:12] = 1  # a 2-px band of new water along the whole shore
    labels[30:34, 10:14] = 2  # a water pit touching the lake on one side only ...
    labels[30:34, 16:20] = 3  # ... among its gravel and spoil (not all water)
    labels[5:9, 30:34] = 4  # a water pit far from any shore
    water = np.array([1.0, 1.0, 0.2, 1.0])
    shore = shoreline_objects(labels, 4, water, river, site_radius=3)
    assert shore.tolist() == [True, False, False, False]
    # the same band is a pit site when spoil lies next to it
    labels[5:9, 13:16] = 3
    assert not shoreline_objects(labels, 4, water, river, site_radius=3)[0]
    assert not shoreline_objects(labels, 4, water, np.zeros_like(river), site_radius=3).any()


def test_footprint_candidates_mark_shorelines_and_extract_drops_them():
    st = np.zeros((50, 50), "uint8")
    st[5:30, 10:13] = 2  # new water along the lake shore: 0.75 ha
    st[38:44, 30:36] = 2  # a water pit in the field: 0.36 ha
    ch, _ = make_change(st)
    ch["water"] = (("y", "x"), st > 0)
    ch["water_share"] = (("y", "x"), np.where(st > 0, 1.0, 0.0).astype("float32"))
    base = np.zeros(st.shape, "uint8")
    base[:, :10] = 2
    ch["baseline_class"] = (("y", "x"), base)
    assert extract_footprints_kinds(ch) == {0.75: "shoreline", 0.36: "mining"}
    fps = extract_footprints(ch, min_area_ha=0.05, closing_radius=0)
    assert fps["area_ha"].round(2).tolist() == [0.36]


def test_zone_runs_and_extract_footprints_share_their_default_options():
    import inspect

    from kpgeo.footprints import FOOTPRINT_DEFAULTS, footprint_candidates

    for fn in (extract_footprints, footprint_candidates):
        sig = inspect.signature(fn).parameters
        assert {k: sig[k].default for k in FOOTPRINT_DEFAULTS} == FOOTPRINT_DEFAULTS


def test_rejected_objects_are_written_with_their_kind(tmp_path):
    import geopandas as gpd

    from kpgeo.footprints import footprint_candidates, rejected_objects, write_detection

    st = np.zeros((50, 50), "uint8")
    st[5:30, 10:13] = 2  # new water along the lake shore
    st[38:44, 30:36] = 2  # a water pit in the field
    st[38:48, 0:10] = 2  # a dry, uniform field far from any pit
    ch, _ = make_change(st)
    wet = (st > 0) & (np.arange(50)[None, :] >= 10)
    ch["water"] = (("y", "x"), wet)
    ch["water_share"] = (("y", "x"), np.where(wet, 1.0, 0.0).astype("float32"))
    base = np.zeros(st.shape, "uint8")
    base[:, :10] = 2
    base[36:50, :] = 0
    ch["baseline_class"] = (("y", "x"), base)
    cand = footprint_candidates(ch, min_area_ha=0.05, closing_radius=0)
    rejected = rejected_objects(cand)
    assert sorted(rejected["kind"]) == ["clearing", "shoreline"]
    fps = extract_footprints(ch, min_area_ha=0.05, closing_radius=0)
    assert not set(rejected["id"]) & set(fps["id"])
    paths = write_detection(ch, fps, tmp_path / "det", rejected=rejected)
    back = gpd.read_file(paths["rejected.geojson"])
    assert sorted(back["kind"]) == ["clearing", "shoreline"]
    assert back.crs.to_epsg() == 4326
