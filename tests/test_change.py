import warnings

import numpy as np
import pytest
import xarray as xr

from kpgeo.change import STATE_CODES, ChangeParams, detect_changes, detect_pixels
from kpgeo.errors import ConfigError, InsufficientDataWarning, MissingBandError

# reflectance end members (blue, green, red, nir, swir16, swir22) from published spectra
VEG = dict(blue=0.03, green=0.06, red=0.04, nir=0.32, swir16=0.19, swir22=0.09)
GRAVEL = dict(blue=0.14, green=0.18, red=0.225, nir=0.285, swir16=0.33, swir22=0.27)
WATER = dict(blue=0.07, green=0.09, red=0.1, nir=0.05, swir16=0.015, swir22=0.008)
CHAR = dict(blue=0.03, green=0.038, red=0.045, nir=0.075, swir16=0.12, swir22=0.11)
CLOUD = dict(blue=0.46, green=0.455, red=0.45, nir=0.47, swir16=0.38, swir22=0.28)
SHADOW = {k: v * 0.3 for k, v in VEG.items()}
CROP = dict(blue=0.035, green=0.075, red=0.045, nir=0.36, swir16=0.22, swir22=0.10)
NAN = {k: np.nan for k in VEG}
BANDS = list(VEG)


def run_series(seq, days=None, params=None, bands=BANDS):
    """Run the kernel on one pixel whose observations are ``seq`` (list of spectra)."""
    from kpgeo import indices

    arr = {b: np.array([s[b] for s in seq], "float64") for b in BANDS}
    days = np.arange(len(seq)) * 30.0 if days is None else np.asarray(days, float)
    green = arr["green"] if "green" in bands else None
    blue = arr["blue"] if "blue" in bands else None
    out = detect_pixels(
        indices.ndvi(arr["red"], arr["nir"]),
        indices.water_index(swir16=arr["swir16"], green=green, red=arr["red"]),
        indices.bsi(red=arr["red"], nir=arr["nir"], swir16=arr["swir16"], blue=blue),
        arr["red"], arr["swir16"], nir=arr["nir"], blue=blue, tdays=days, params=params)
    return out


def state(out):
    return int(out[3])


def test_stable_vegetation_no_change():
    assert state(run_series([VEG] * 24)) == 0


def test_single_cloud_and_shadow_outliers_rejected():
    seq = [VEG] * 24
    seq[8], seq[15] = CLOUD, SHADOW
    assert state(run_series(seq)) == 0


def test_two_consecutive_missed_clouds_rejected():
    seq = [VEG] * 24
    seq[10] = seq[11] = CLOUD
    assert state(run_series(seq)) == 0


def test_burn_that_recovers_rejected():
    seq = [VEG] * 10 + [CHAR] * 4 + [VEG] * 10
    assert state(run_series(seq)) == 0


def test_farm_clearing_that_regrows_rejected():
    soil = {b: 0.55 * GRAVEL[b] + 0.45 * VEG[b] for b in BANDS}
    seq = [VEG] * 10 + [soil] * 4 + [CROP] * 10
    assert state(run_series(seq)) == 0


def test_persistent_bare_gravel_detected_with_break_date():
    seq = [VEG] * 10 + [GRAVEL] * 14
    out = run_series(seq)
    assert state(out) == STATE_CODES["active"]
    assert out[0] == 300.0  # first mining-like observation, not the confirming one
    assert out[1] == 690.0
    assert 0.5 < out[2] <= 1.0


def test_persistent_water_pit_detected_and_flagged_water():
    seq = [VEG] * 12 + [WATER] * 12
    out = run_series(seq)
    assert state(out) in (1, 2)
    assert out[4] == 1.0


def test_nan_gaps_and_irregular_dates():
    seq = [VEG] * 10 + [GRAVEL] * 14
    seq[3] = seq[11] = seq[12] = NAN
    days = np.cumsum(np.r_[0, np.random.default_rng(0).integers(5, 40, 23)]).astype(float)
    out = run_series(seq, days=days)
    assert state(out) in (1, 2)
    assert out[0] == days[10]
    assert out[5] == 21  # clear observations counted


def test_recent_break_is_new_and_abandoned_site_revegetates():
    out = run_series([VEG] * 20 + [GRAVEL] * 4)
    assert state(out) == STATE_CODES["new"]
    mid = {b: 0.3 * GRAVEL[b] + 0.7 * VEG[b] for b in BANDS}
    veg_back = {b: 0.1 * GRAVEL[b] + 0.9 * VEG[b] for b in BANDS}
    seq = [VEG] * 4 + [GRAVEL] * 12 + [mid] + [veg_back] * 7
    p = ChangeParams(recovery_days=200)
    assert state(run_series(seq, params=p)) == STATE_CODES["revegetating"]


def test_landsat_bands_only():
    seq = [VEG] * 10 + [GRAVEL] * 14
    out = run_series(seq, bands=["red", "nir", "swir16"])
    assert state(out) == 2
    seq = [VEG] * 12 + [WATER] * 12
    assert state(run_series(seq, bands=["red", "nir", "swir16"])) in (1, 2)


def test_too_few_observations_is_insufficient():
    seq = [NAN] * 20 + [VEG] * 4
    assert state(run_series(seq)) == 255


def test_config_errors():
    with pytest.raises(ConfigError, match="persistence"):
        ChangeParams(persistence=0)
    with pytest.raises(ConfigError, match="baseline_quantile"):
        ChangeParams(baseline_quantile=1.5)
    with pytest.raises(ConfigError):
        ChangeParams(min_ndvi_drop=float("nan"))
    with pytest.raises(ConfigError, match="baseline_obs"):
        ChangeParams(baseline_obs=10, min_clear_obs=6)
    with pytest.raises(ConfigError):
        detect_changes(make_cube(), params={"persistence": 3})


# --------------------------------------------------------------------------- cubes
def make_cube(n_t=24, shape=(20, 24), *, bands=BANDS, seed=0, cloudy_rows=0):
    """A small cube: vegetation, a gravel pit (rows 4-9, cols 4-9) from date 10,
    a water pit (rows 12-15, cols 14-19) from date 8, random single-date clouds."""
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_coords

    rng = np.random.default_rng(seed)
    gbox = GeoBox.from_bbox((500000, 400000, 500000 + 10 * shape[1], 400000 + 10 * shape[0]),
                            crs="EPSG:32634", resolution=10)
    times = np.datetime64("2019-01-05") + (np.arange(n_t) * 30).astype("timedelta64[D]")
    data = {}
    for b in bands:
        a = np.full((n_t,) + shape, VEG[b], "float32")
        a[10:, 4:10, 4:10] = GRAVEL[b]
        a[8:, 12:16, 14:20] = WATER[b]
        a *= (1 + rng.normal(0, 0.01, a.shape)).astype("float32")
        data[b] = a
    cloud = rng.uniform(size=(n_t,) + shape) < 0.1
    cloud[:, :cloudy_rows] = rng.uniform(size=(n_t, cloudy_rows, shape[1])) < 0.9
    for b in bands:
        data[b][cloud] = np.nan
    coords = xr_coords(gbox, crs_coord_name="spatial_ref")
    ds = xr.Dataset({b: (("time", "y", "x"), v) for b, v in data.items()},
                    coords={"time": times, **coords})
    ds["clear"] = (("time", "y", "x"), ~cloud)
    ds["aoi_mask"] = (("y", "x"), np.ones(shape, bool))
    return ds


def test_detect_changes_on_cube_keeps_grid_and_finds_pits():
    cube = make_cube()
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsufficientDataWarning)
        ch = detect_changes(cube)
    assert "spatial_ref" in ch.coords and ch.odc.geobox == cube.odc.geobox
    st = ch["state"].values
    assert st.dtype == np.uint8
    assert (np.isin(st[4:10, 4:10], [1, 2])).mean() > 0.95
    assert (np.isin(st[12:16, 14:20], [1, 2])).mean() > 0.95
    assert ch["water"].values[12:16, 14:20].mean() > 0.9
    bg = np.ones(st.shape, bool)
    bg[3:11, 3:11] = bg[11:17, 13:21] = False
    assert (st[bg] == 0).all()
    fd = ch["first_detected"].values[4:10, 4:10]
    assert (fd <= cube.time.values[12]).all() and (fd >= cube.time.values[10]).all()
    assert np.isnat(ch["first_detected"].values[bg]).all()


def test_dask_equals_numpy_and_no_green_blue():
    cube = make_cube(bands=["red", "nir", "swir16"], seed=3)
    a = detect_changes(cube)
    b = detect_changes(cube.chunk({"time": 6, "y": 7, "x": 9}))
    for v in a.data_vars:
        xr.testing.assert_identical(a[v], b[v])
    assert np.isin(a["state"].values[4:10, 4:10], [1, 2]).mean() > 0.9


def test_insufficient_data_state_and_warning():
    cube = make_cube(cloudy_rows=5)
    with pytest.warns(InsufficientDataWarning, match=r"\d+\.\d%"):
        ch = detect_changes(cube)
    st = ch["state"].values
    assert (st[:5] == 255).mean() > 0.9
    assert (st[5:] != 255).all()


def test_missing_band_error():
    with pytest.raises(MissingBandError):
        detect_changes(make_cube().drop_vars("swir16"))


# --------------------------------------------------------------------------- seasonal confounders
# monthly observations over two years starting in January (dry season Dec-Apr)
WETGRASS = dict(blue=0.032, green=0.068, red=0.045, nir=0.33, swir16=0.2, swir22=0.095)
DRYGRASS = dict(blue=0.072, green=0.1, red=0.14, nir=0.26, swir16=0.34, swir22=0.24)


def mix(a, b, f):
    """Linear mixture ``(1 - f) a + f b`` of two spectra."""
    return {k: (1 - f) * a[k] + f * b[k] for k in BANDS}


FLOOD = mix(WETGRASS, dict(blue=0.07, green=0.09, red=0.1, nir=0.055, swir16=0.016,
                           swir22=0.009), 0.8)
DEEP = mix(WATER, VEG, 0.1)  # a pit: open water with 10 % vegetated edge


def test_seasonal_flood_recurring_each_wet_season_rejected():
    seq = ([VEG] * 6 + [FLOOD] * 5 + [VEG]) * 2  # Jul-Nov flooded, both years
    assert state(run_series(seq)) == 0


def test_flood_seen_once_then_pit_dug_in_the_floodplain_detected():
    # year 1: seasonal flood; year 2: a deep water pit from June to the end
    seq = [VEG] * 6 + [FLOOD] * 5 + [VEG] * 6 + [DEEP] * 7
    out = run_series(seq)
    assert state(out) in (1, 2)
    assert out[0] == 17 * 30.0


def test_same_flood_next_year_without_stronger_signal_rejected():
    seq = [VEG] * 6 + [FLOOD] * 5 + [VEG] * 6 + [FLOOD] * 7
    assert state(run_series(seq)) == 0


def test_dry_season_grass_below_wet_baseline_rejected():
    # baseline in the wet season, then a long dry season that looks bare, then green-up
    seq = [WETGRASS] * 5 + [DRYGRASS] * 6 + [WETGRASS] * 6 + [DRYGRASS] * 5
    assert state(run_series(seq)) == 0


def test_abandoned_pit_revegetating_slowly_is_still_mining():
    # 8 months of bare gravel, then slow regrowth over a year (never fully back)
    reveg = [mix(GRAVEL, VEG, f) for f in np.linspace(0.15, 0.75, 10)]
    seq = [VEG] * 6 + [GRAVEL] * 8 + reveg
    out = run_series(seq)
    assert state(out) in (STATE_CODES["inactive"], STATE_CODES["revegetating"])
    assert out[0] == 6 * 30.0


def test_baseline_contaminated_by_the_pit_still_detected():
    # the pit opens inside the baseline window: a huge MAD must not hide it
    seq = [VEG, VEG, GRAVEL, GRAVEL] + [GRAVEL] * 12
    assert state(run_series(seq)) in (1, 2)


def test_new_water_needs_out_of_season_evidence_when_last_season_was_unseen():
    # year 1: months 4-11 entirely clouded; year 2: water from month 18 to the end
    seq = [VEG] * 4 + [NAN] * 8 + [VEG] * 6 + [DEEP] * 6
    assert state(run_series(seq)) == 0  # could be an inundation never seen before
    # same water, but year 1 was seen vegetated at that time of year: a new pit
    seq = [VEG] * 18 + [DEEP] * 6
    assert state(run_series(seq)) in (1, 2)


def test_dates_are_the_utc_day_of_an_afternoon_acquisition():
    """A 17:30 UTC pass (e.g. Landsat over the Americas) is dated that day, not the next."""
    cube = make_cube()
    cube = cube.assign_coords(time=cube.time.values + np.timedelta64(17 * 60 + 30, "m"))
    ch = detect_changes(cube)
    fd = ch["first_detected"].values[4:10, 4:10]
    acquisition_days = cube.time.values.astype("datetime64[D]")
    assert np.isin(fd.astype("datetime64[D]"), acquisition_days).all()
    assert (fd == fd.astype("datetime64[D]")).all()  # a date, at midnight


def test_fuller_clearer_flood_next_year_rejected():
    # year 1: a partial, turbid flood Jul-Nov; year 2: a full, clearer flood Jul-Nov that the
    # series ends in (no recovery seen). It is much "stronger" than last year's, but there is
    # no water or bare ground at a time of year when the pixel was seen dry: a flood, not a pit
    full = mix(WATER, WETGRASS, 0.1)
    seq = [VEG] * 6 + [FLOOD] * 5 + [VEG] * 7 + [full] * 5
    assert state(run_series(seq)) == 0
    # the same water present since the dry season of year 2 (May, seen dry in year 1): a pit
    seq = [VEG] * 6 + [FLOOD] * 5 + [VEG] * 5 + [full] * 7
    out = run_series(seq)
    assert state(out) in (1, 2)
    assert out[0] == 16 * 30.0


# dark, wet-looking observation of a pit (turbid water over spoil): neither bright bare ground
# nor open water
DARKWET = dict(blue=0.05, green=0.06, red=0.06, nir=0.07, swir16=0.072, swir22=0.05)


def test_dark_wet_observations_do_not_break_a_run():
    seq = [VEG] * 12 + [GRAVEL, DARKWET, GRAVEL, DARKWET, GRAVEL]
    out = run_series(seq)
    assert state(out) in (1, 2)
    assert out[0] == 12 * 30.0  # the first bare observation, not a dark one
    # dark wet observations alone are not mining
    assert state(run_series([VEG] * 12 + [DARKWET] * 6)) == 0


def test_pending_flag_marks_a_short_bare_run_at_the_end():
    out = run_series([VEG] * 12 + [GRAVEL] * 2)
    assert state(out) == 0 and out[10] == 1.0  # too short to confirm: pending
    assert run_series([VEG] * 12 + [DEEP] * 2)[10] == 0.0  # water: could be a flood
    assert run_series([VEG] * 14)[10] == 0.0
    assert state(run_series([VEG] * 12 + [GRAVEL] * 3)) in (1, 2)
