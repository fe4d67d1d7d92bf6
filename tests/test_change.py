"""The per-pixel decision (kpgeo.change): components and hand-made pixel series.

Spectra are surface reflectance end members from published spectra (blue, green, red,
nir, swir16); series are monthly from January 2019 unless said otherwise, so index 12
is January of the second year (dry season December-April, wet season June-October).
"""

import warnings

import numpy as np
import pytest
import xarray as xr

from kpgeo.change import (
    OUTPUT_FIELDS,
    REASON_CODES,
    STATE_CODES,
    ChangeParams,
    DetectorState,
    detect_changes,
    detect_pixels,
)
from kpgeo.change import _decision as dec
from kpgeo.change import _season as season
from kpgeo.change import _surface as surf
from kpgeo.change._state import new_state, param_vector
from kpgeo.errors import ConfigError, InsufficientDataWarning, MissingBandError

VEG = dict(blue=0.03, green=0.06, red=0.04, nir=0.32, swir16=0.19)
CROP = dict(blue=0.035, green=0.075, red=0.045, nir=0.36, swir16=0.22)
WETGRASS = dict(blue=0.032, green=0.068, red=0.045, nir=0.33, swir16=0.2)
DRYGRASS = dict(blue=0.072, green=0.1, red=0.14, nir=0.26, swir16=0.34)
GRAVEL = dict(blue=0.14, green=0.18, red=0.225, nir=0.285, swir16=0.33)
SAND = dict(blue=0.18, green=0.22, red=0.26, nir=0.3, swir16=0.4)
WATER = dict(blue=0.07, green=0.09, red=0.1, nir=0.05, swir16=0.015)
CHAR = dict(blue=0.03, green=0.038, red=0.045, nir=0.075, swir16=0.12)
CLOUD = dict(blue=0.46, green=0.455, red=0.45, nir=0.47, swir16=0.38)
CIRRUS = dict(blue=0.3, green=0.295, red=0.29, nir=0.3, swir16=0.24)
SHADOW = {k: v * 0.3 for k, v in VEG.items()}
NAN = {k: np.nan for k in VEG}
BANDS = list(VEG)
T0 = 17897.0  # 2019-01-01, days since 1970-01-01
P = param_vector(ChangeParams())


def mix(a, b, f):
    """Linear mixture ``(1 - f) a + f b`` of two spectra."""
    return {k: (1 - f) * a[k] + f * b[k] for k in BANDS}


FLOOD = mix(WETGRASS, WATER, 0.8)
PIT = mix(WATER, VEG, 0.1)  # open pit water with a 10 % vegetated edge
TURBID = mix(WATER, GRAVEL, 0.3)
DARKWET = dict(blue=0.05, green=0.06, red=0.06, nir=0.07, swir16=0.072)
POND = dict(blue=0.061, green=0.074, red=0.049, nir=0.021, swir16=0.007)  # clear, dark water


def run(seq, days=None, params=None, bands=BANDS):
    """Outputs (a dict) of one pixel whose observations are ``seq``."""
    arr = {b: np.array([[s[b] for s in seq]], "float64") for b in BANDS}
    days = T0 + np.arange(len(seq)) * 30.4 if days is None else np.asarray(days, float)
    out = detect_pixels(red=arr["red"], nir=arr["nir"], swir16=arr["swir16"],
                        green=arr["green"] if "green" in bands else None,
                        blue=arr["blue"] if "blue" in bands else None,
                        tdays=days, params=params)[0]
    return dict(zip(OUTPUT_FIELDS, out, strict=True)), days


def state(seq, **kw):
    return int(run(seq, **kw)[0]["state"])


def reason(seq, **kw):
    return int(run(seq, **kw)[0]["reason"])


def mining(seq, **kw):
    return state(seq, **kw) in (1, 2, 3, 4)


def cls(s):
    nd = surf.normalized_difference(s["nir"], s["red"])
    wi = surf.normalized_difference(s["green"], s["swir16"])
    return surf.surface_class(s["blue"], s["red"], s["nir"], s["swir16"], nd, wi, P)


# --------------------------------------------------------------------------- surface classes


@pytest.mark.parametrize("spectrum, expected", [
    (VEG, surf.VEG), (CROP, surf.VEG), (GRAVEL, surf.BARE), (SAND, surf.BARE),
    (DRYGRASS, surf.BARE), (WATER, surf.WATER), (PIT, surf.WATER), (TURBID, surf.WATER),
    (CHAR, surf.DARK), (SHADOW, surf.VEG), (CLOUD, surf.HAZE), (CIRRUS, surf.HAZE),
    (DARKWET, surf.DARK),
])
def test_surface_classes_of_end_members(spectrum, expected):
    assert cls(spectrum) == expected


def test_wet_mud_is_neutral_and_flooded_green_grass_is_vegetation():
    mud = dict(blue=0.08, green=0.11, red=0.12, nir=0.14, swir16=0.12)  # wet, not water
    assert cls(mud) == surf.WET and surf.is_neutral(surf.WET)
    assert cls(mix(WETGRASS, WATER, 0.3)) == surf.VEG
    assert surf.is_mining_like(surf.BARE) and surf.is_mining_like(surf.WATER)
    assert not surf.is_mining_like(surf.VEG) and not surf.is_mining_like(surf.DARK)


def test_without_blue_a_bright_flat_cloud_is_haze_but_sand_is_bare():
    def c(s):
        nd = surf.normalized_difference(s["nir"], s["red"])
        wi = surf.normalized_difference(s["red"], s["swir16"])
        return surf.surface_class(np.nan, s["red"], s["nir"], s["swir16"], nd, wi, P)

    assert c(CLOUD) == surf.HAZE and c(CIRRUS) == surf.HAZE
    assert c(SAND) == surf.BARE and c(GRAVEL) == surf.BARE


def test_normalized_difference_handles_zero_and_nan():
    assert surf.normalized_difference(0.3, 0.1) == pytest.approx(0.5)
    assert np.isnan(surf.normalized_difference(0.0, 0.0))
    assert np.isnan(surf.normalized_difference(np.nan, 0.1))


# --------------------------------------------------------------------------- seasonal memory


def test_season_bins_windows_and_circular_distance():
    assert season.season_bin(T0) == 0  # 1 January
    assert season.season_bin(T0 + 364.9) == season.N_BINS - 1
    assert season.season_bin(T0 + 365.25 + 20) == 1
    assert season.window_bins(60) == 4 and season.window_bins(0) == 0
    mask = season.bin_mask(23) | season.bin_mask(5)
    assert season.nearest(mask, 0) == 1  # wraps around the year
    assert season.nearest(mask, 10) == 5
    assert season.nearest(0, 3) == season.NEVER
    assert season.seen(mask, 2, 1) is False and season.seen(mask, 2, 3) is True
    assert season.bin_range(22, 1) == sum(1 << b for b in (22, 23, 0, 1))


def test_memory_matures_after_an_epoch_and_never_within_the_season():
    m = np.zeros(18, "int64")
    m[0] = 0b101  # current epoch
    season.roll_epoch(m, 0, 6, 1)
    assert (m[0], m[1], m[2]) == (0, 0b101, 0)  # previous epoch: not yet usable
    season.roll_epoch(m, 0, 6, 1)
    assert (m[0], m[1], m[2]) == (0, 0, 0b101)  # mature
    m[0] = 0b1000
    season.roll_epoch(m, 0, 6, 3)  # a long gap: everything older is mature
    assert m[2] == 0b1101 and m[0] == m[1] == 0
    # a bin observed now matures 4-8 months later: in time for the same season next year
    assert 120 < season.EPOCH_DAYS < 365.25 - 2 * season.EPOCH_DAYS + 120


# --------------------------------------------------------------------------- decision steps


def pixel_with_baseline(base_cls, base_ndvi=0.75):
    f, m = new_state(1)
    f, m = f[0], m[0]
    f[dec.BASE_CLS], f[dec.BASE_NDVI] = base_cls, base_ndvi
    return f, m


def test_departs_from_baseline_needs_no_ndvi_drop_on_bare_or_wet_ground():
    f, _ = pixel_with_baseline(surf.VEG, 0.75)
    assert dec.departs_from_baseline(surf.BARE, 0.2, f, P)
    assert not dec.departs_from_baseline(surf.BARE, 0.7, f, P)  # lost too little NDVI
    assert dec.departs_from_baseline(surf.WATER, 0.0, f, P)
    f, _ = pixel_with_baseline(surf.WATER, -0.3)
    assert dec.departs_from_baseline(surf.BARE, 0.1, f, P)  # a channel dug out, water -> gravel
    assert not dec.departs_from_baseline(surf.WATER, -0.2, f, P)
    f, _ = pixel_with_baseline(surf.BARE, 0.15)
    assert dec.departs_from_baseline(surf.WATER, -0.1, f, P)  # pits on a sand bar
    assert not dec.departs_from_baseline(surf.BARE, 0.12, f, P)
    f[dec.BASE_WATER_N] = 1  # the same bar seen under water once at the start: a shore
    assert not dec.departs_from_baseline(surf.WATER, -0.1, f, P)
    f, _ = pixel_with_baseline(surf.VEG, 0.75)
    f[dec.BASE_WATER_N] = 1  # a vegetated pixel with one dark (shadow, flood) start
    assert dec.departs_from_baseline(surf.WATER, 0.0, f, P)


def test_season_evidence_in_season_and_out_of_season():
    f, m = pixel_with_baseline(surf.VEG)
    old = 2  # mature masks
    m[dec.M_WATER + old] = season.bin_range(14, 20)  # flooded mid-July to late October
    m[dec.M_DRY + old] = season.bin_range(0, 12) | season.bin_range(21, 23)
    m[dec.M_GREEN + old] = season.bin_range(10, 20)
    m[dec.M_BARE + old] = season.bin_range(0, 3)  # a field ploughed in January-February
    deep = 0.5  # water index of a pit
    # (seasonal, contrary, strong)
    assert dec.season_evidence(surf.WATER, deep, 16, m, P) == (True, False, False)  # the flood
    assert dec.season_evidence(surf.WATER, deep, 11, m, P) == (True, False, False)  # early
    assert dec.season_evidence(surf.WATER, deep, 5, m, P) == (False, True, True)  # March: a pit
    assert dec.season_evidence(surf.BARE, 0.0, 15, m, P) == (False, True, True)  # bare, green
    assert dec.season_evidence(surf.BARE, 0.0, 11, m, P) == (False, True, False)  # near season
    assert dec.season_evidence(surf.BARE, 0.0, 2, m, P) == (True, False, False)  # ploughing


def test_deep_water_where_the_pixel_was_only_ever_wet_is_not_seasonal():
    f, m = pixel_with_baseline(surf.VEG)
    m[dec.M_WET + 2] = season.bin_range(18, 21)  # flood margins in October-November
    m[dec.M_DRY + 2] = season.bin_range(0, 16) | season.bin_range(22, 23)
    assert dec.season_evidence(surf.WATER, 0.05, 19, m, P)[0]  # margin water: seasonal
    seasonal, contrary, strong = dec.season_evidence(surf.WATER, 0.5, 23, m, P)
    assert not seasonal and contrary and not strong  # a deep pit in December: counted
    assert dec.season_evidence(surf.WATER, 0.5, 8, m, P) == (False, True, True)  # in May


def test_can_confirm_water_needs_out_of_season_evidence_or_time():
    f, _ = pixel_with_baseline(surf.VEG)
    f[dec.EP_N], f[dec.EP_WATER], f[dec.EP_STRONG], f[dec.EP_START] = 3, 3, 0, T0
    assert not dec.can_confirm(f, T0 + 100, P)  # could be a flood seen for the first time
    assert dec.can_confirm(f, T0 + 200, P)  # lasted longer than a flood season
    f[dec.EP_STRONG] = 1
    assert dec.can_confirm(f, T0 + 60, P)
    f[dec.EP_WATER] = 0  # a bare run: persistence alone
    f[dec.EP_STRONG] = 0
    assert dec.can_confirm(f, T0 + 60, P)
    f[dec.EP_N] = 2
    assert not dec.can_confirm(f, T0 + 60, P)
    f[dec.EP_STRONG] = 2  # two out-of-season observations suffice
    assert dec.can_confirm(f, T0 + 60, P)


def test_recovery_means_the_pre_disturbance_surface_is_back():
    f, _ = pixel_with_baseline(surf.VEG, 0.75)
    f[dec.REC_LEVEL] = 0.6
    f[dec.EP_ANOM], f[dec.EP_ANOM_WATER] = 4, 0
    assert dec.recovery(surf.VEG, 0.7, f, P) == 2  # a green canopy back at once: a crop
    assert dec.recovery(surf.VEG, 0.45, f, P) == 0  # regrowing below its normal level
    f[dec.REC_LEVEL] = 0.45
    assert dec.recovery(surf.VEG, 0.47, f, P) == 1
    f[dec.EP_ANOM_WATER] = 4  # a flood receding to wet grass
    assert dec.recovery(surf.VEG, 0.35, f, P) == 1 and dec.recovery(surf.BARE, 0.1, f, P) == 0
    f, _ = pixel_with_baseline(surf.WATER, -0.3)
    assert dec.recovery(surf.WATER, -0.3, f, P) == 1 and dec.recovery(surf.BARE, 0.1, f, P) == 0
    assert dec.recovery(surf.VEG, 0.4, f, P) == 0  # grass taking a gravel bar: not recovery
    assert dec.recovery(surf.VEG, 0.7, f, P) == 2  # a green canopy: the flood plain's crop
    f, _ = pixel_with_baseline(surf.BARE, 0.2)  # a field: bare is not recovery, a crop is
    f[dec.EP_ANOM], f[dec.REC_LEVEL] = 4, np.nan
    assert dec.recovery(surf.BARE, 0.2, f, P) == 0
    assert dec.recovery(surf.VEG, 0.35, f, P) == 1 and dec.recovery(surf.VEG, 0.7, f, P) == 2


# --------------------------------------------------------------------------- pixel series


def test_stable_vegetation_and_single_date_outliers_are_no_change():
    assert state([VEG] * 24) == 0
    seq = [VEG] * 24
    seq[8], seq[15], seq[16], seq[20] = CLOUD, SHADOW, CIRRUS, CHAR
    assert state(seq) == 0
    seq[10] = seq[11] = CLOUD  # two missed clouds in a row
    assert state(seq) == 0


def test_persistent_gravel_is_mining_with_break_alert_and_last_active():
    out, days = run([VEG] * 10 + [GRAVEL] * 14)
    assert out["state"] == STATE_CODES["active"]
    assert out["reason"] == REASON_CODES["mining"]
    assert out["first_detected"] == pytest.approx(days[10], abs=0.01)  # the first bare observation
    assert days[10] < out["alert_date"] <= days[12] + 0.01  # confirmed within three observations
    assert out["last_active"] == pytest.approx(days[23], abs=0.01)
    assert 0.5 < out["confidence"] <= 1.0 and out["water"] == 0


def test_water_pit_in_forest_is_mining_and_flagged_water():
    out, days = run([VEG] * 12 + [PIT] * 12)
    assert out["state"] in (1, 2) and out["water"] == 1
    assert out["alert_date"] <= days[14] + 0.01  # seen dry at this time last year: no waiting


def test_water_filling_part_of_a_vegetated_pixel_counts_as_water():
    f, _ = pixel_with_baseline(surf.VEG, 0.78)
    f[dec.N_BASE] = P[dec.P_BASE_OBS]
    f[dec.BASE_WI] = surf.normalized_difference(VEG["green"], VEG["swir16"])

    def in_canopy(s):
        nd = surf.normalized_difference(s["nir"], s["red"])
        wi = surf.normalized_difference(s["green"], s["swir16"])
        return dec.water_in_canopy(cls(s), nd, s["nir"], wi, f, P)

    ponds = mix(VEG, POND, 0.75)  # pits over three quarters of the pixel: NDVI still ~0.35
    assert cls(ponds) == surf.VEG and in_canopy(ponds)
    assert not in_canopy(mix(VEG, POND, 0.5))  # a quarter of the pixel less: the index moves less
    assert not in_canopy(VEG) and not in_canopy(SHADOW)  # a shadow darkens every band alike
    assert not in_canopy(DRYGRASS) and not in_canopy(WETGRASS)
    f[dec.N_BASE] = 0  # no baseline yet: nothing to compare with
    assert not in_canopy(ponds)


def test_small_pits_in_forest_are_mining_a_recurring_flood_in_the_grass_is_not():
    ponds = mix(VEG, POND, 0.75)
    out, _ = run([VEG] * 12 + [ponds] * 12)
    assert out["state"] in (1, 2) and out["water"] == 1
    assert not mining([VEG] * 12 + [ponds] * 12, params=ChangeParams(canopy_water_rise=2.0))
    year = [VEG] * 6 + [ponds] * 4 + [VEG] * 2  # the same water every wet season
    assert state(year * 3) == 0 and reason(year * 3) == REASON_CODES["seasonal"]


def test_water_to_gravel_and_bare_to_turbid_water_need_no_ndvi_drop():
    out, days = run([WATER] * 12 + [GRAVEL] * 8)  # a river channel dug out
    assert out["state"] in (1, 2) and out["first_detected"] == pytest.approx(days[12], abs=0.01)
    out, days = run([SAND] * 12 + [TURBID] * 8)  # pits on a sand bar
    assert out["state"] in (1, 2) and out["first_detected"] == pytest.approx(days[12], abs=0.01)
    assert state([SAND] * 24) == 0 and state([WATER] * 24) == 0


def test_a_shore_that_was_under_water_at_the_start_is_not_flagged_when_the_water_rises():
    start = [WATER, SAND, SAND, SAND]  # a mud flat, under water on the first date
    risen = start + [SAND] * 4 + [WATER] * 16  # the lake stands higher for a year and more
    assert not mining(risen)
    assert mining(start[1:] * 2 + [SAND] * 2 + [WATER] * 16)  # never water before: pits


def test_green_canopy_after_a_flood_on_a_river_pixel_is_retracted_a_gravel_bar_is_not():
    flood_plain = [WATER] * 4 + [GRAVEL] * 4 + [CROP] * 3  # the flood recedes, mud, a crop
    assert not mining(flood_plain)
    assert reason(flood_plain) == REASON_CODES["transient"]
    assert mining([WATER] * 4 + [GRAVEL] * 4 + [mix(GRAVEL, VEG, 0.4)] * 3)  # grass on spoil


def test_farm_cycle_and_burn_are_rejected_with_their_reason():
    soil = mix(GRAVEL, VEG, 0.25)  # ploughed soil with crop residue
    seq = [VEG] * 10 + [soil] * 4 + [CROP] * 10
    assert state(seq) == 0 and reason(seq) == REASON_CODES["transient"]
    burn = [VEG] * 10 + [CHAR] * 3 + [mix(CHAR, VEG, 0.5)] + [VEG] * 10
    assert state(burn) == 0 and reason(burn) == REASON_CODES["dark only"]
    # the same clearing every dry season: learnt as the field's season
    cycle = ([CROP] * 6 + [soil] * 3 + [CROP] * 3) * 3
    assert state(cycle) == 0


def test_a_crop_after_a_long_fallow_is_retracted_a_slow_regrowth_is_not():
    soil = mix(GRAVEL, VEG, 0.25)
    fallow = [VEG] * 6 + [soil] * 13  # cleared in July, bare for more than a year
    out, _ = run(fallow + [mix(soil, CROP, 0.5), CROP, CROP, CROP])  # sown: canopy in weeks
    assert out["state"] == 0 and out["reason"] == REASON_CODES["transient"]
    reveg = [mix(GRAVEL, VEG, f) for f in np.linspace(0.1, 0.95, 12)]  # a year to regrow
    assert mining([VEG] * 6 + [GRAVEL] * 13 + reveg)


def test_recurring_flood_is_seasonal_even_when_it_comes_early_or_fuller():
    year1 = [VEG] * 6 + [FLOOD] * 5 + [VEG]
    assert state(year1 * 2) == 0 and reason(year1 * 2) == REASON_CODES["seasonal"]
    early = [VEG] * 5 + [FLOOD] * 7  # a month earlier, a month longer
    assert state(year1 + early) == 0
    fuller = [VEG] * 6 + [mix(WATER, WETGRASS, 0.1)] * 5 + [VEG]
    assert state(year1 + fuller) == 0


def test_water_in_the_dry_season_where_floods_never_reach_is_a_pit():
    year1 = [VEG] * 6 + [FLOOD] * 5 + [VEG]
    seq = year1 + [VEG] * 1 + [PIT] * 11  # a pit dug in February of year 2
    out, days = run(seq)
    assert out["state"] in (1, 2) and out["first_detected"] == pytest.approx(days[13], abs=0.01)


def test_new_water_with_no_dry_season_evidence_waits():
    # year 1: wet season entirely clouded; year 2: water from July to November
    seq = [VEG] * 4 + [NAN] * 8 + [VEG] * 6 + [PIT] * 5
    out, _ = run(seq)
    assert out["state"] == 0 and out["reason"] == REASON_CODES["water awaiting dry season"]
    assert out["pending"] == 1
    # the water is still there in the dry season (December-January): a pit
    assert mining(seq + [PIT] * 2)


def test_dry_season_grass_is_seasonal_not_mining():
    seq = [WETGRASS] * 5 + [DRYGRASS] * 6 + [WETGRASS] * 6 + [DRYGRASS] * 5
    assert state(seq) == 0
    # ... but gravel through the rains where the grass was green last year is mining
    seq = ([DRYGRASS] * 4 + [WETGRASS] * 8) + [DRYGRASS] * 4 + [GRAVEL] * 8
    assert mining(seq)
    # a bare month or two next to the usual dry season is not enough (a late rainy season)
    assert state([DRYGRASS] * 4 + [WETGRASS] * 8 + [DRYGRASS] * 6 + [WETGRASS] * 6) == 0


def test_dark_and_wet_observations_neither_count_nor_break_a_run():
    out, days = run([VEG] * 12 + [GRAVEL, DARKWET, GRAVEL, DARKWET, GRAVEL])
    assert out["state"] in (1, 2) and out["first_detected"] == pytest.approx(days[12], abs=0.01)
    assert state([VEG] * 12 + [DARKWET] * 6) == 0


def test_late_start_short_run_is_pending_and_grows_footprints():
    out, _ = run([VEG] * 12 + [NAN] * 10 + [GRAVEL])
    assert out["state"] == 0 and out["pending"] == 1
    assert out["reason"] == REASON_CODES["pending"]
    assert run([VEG] * 14)[0]["pending"] == 0
    # two out-of-season observations at the end confirm it
    assert mining([VEG] * 12 + [NAN] * 9 + [GRAVEL] * 2)


def test_abandoned_pit_revegetating_slowly_stays_mining():
    reveg = [mix(GRAVEL, VEG, f) for f in np.linspace(0.15, 0.75, 10)]
    out, days = run([VEG] * 6 + [GRAVEL] * 8 + reveg)
    assert out["state"] in (STATE_CODES["inactive"], STATE_CODES["revegetating"])
    assert out["first_detected"] == pytest.approx(days[6], abs=0.01)


def test_recent_break_is_new():
    assert state([VEG] * 20 + [GRAVEL] * 4) == STATE_CODES["new"]


def test_nan_gaps_irregular_dates_and_landsat_bands():
    seq = [VEG] * 10 + [GRAVEL] * 14
    seq[3] = seq[11] = seq[12] = NAN
    days = T0 + np.cumsum(np.r_[0, np.random.default_rng(0).integers(5, 40, 23)]).astype(float)
    out, _ = run(seq, days=days)
    assert out["state"] in (1, 2) and out["first_detected"] == pytest.approx(days[10], abs=0.01)
    assert out["n_clear"] == 21
    assert run([VEG] * 10 + [GRAVEL] * 14, bands=["red", "nir", "swir16"])[0]["state"] == 2
    assert mining([VEG] * 12 + [PIT] * 12, bands=["red", "nir", "swir16"])


def test_too_few_observations_is_insufficient():
    out, _ = run([NAN] * 20 + [VEG] * 4)
    assert out["state"] == 255 and out["reason"] == REASON_CODES["insufficient data"]


# --------------------------------------------------------------------------- state, cost, params


def series_block(n_pix=300, n_t=40, seed=0):
    """Random mixtures of the end members with clouds: a varied block of pixels."""
    rng = np.random.default_rng(seed)
    ends = np.array([[s[b] for b in BANDS] for s in (VEG, GRAVEL, PIT, DRYGRASS, FLOOD)])
    w = rng.dirichlet(np.ones(5) * 0.3, size=(n_pix, n_t))
    w[: n_pix // 2, : n_t // 2] = [1, 0, 0, 0, 0]
    arr = np.einsum("ptk,kb->bpt", w, ends) * (1 + rng.normal(0, 0.02, (5, n_pix, n_t)))
    arr[:, rng.uniform(size=(n_pix, n_t)) < 0.3] = np.nan
    days = T0 + np.cumsum(rng.integers(5, 30, n_t)).astype(float)
    return dict(zip(BANDS, arr, strict=True)), days


def test_incremental_update_equals_a_full_run():
    bands, days = series_block()
    full = detect_pixels(**bands, tdays=days)
    for split in (1, 17, 39):
        st = DetectorState.new((bands["red"].shape[0],))
        st.update(**{b: v[:, :split] for b, v in bands.items()}, tdays=days[:split])
        st.update(**{b: v[:, split:] for b, v in bands.items()}, tdays=days[split:])
        np.testing.assert_array_equal(st.outputs(), full)
    assert np.isin(full[:, OUTPUT_FIELDS.index("state")], [1, 2, 3, 4]).any()


def test_state_refuses_dates_already_seen():
    bands, days = series_block(n_pix=3, n_t=6)
    st = DetectorState.new((3,)).update(**bands, tdays=days)
    with pytest.raises(ConfigError, match="not after the last date"):
        st.update(**{b: v[:, -1:] for b, v in bands.items()}, tdays=days[-1:])
    with pytest.raises(ConfigError, match="strictly increasing"):
        DetectorState.new((3,)).update(**bands, tdays=days[::-1])


def test_params_are_validated():
    with pytest.raises(ConfigError, match="persistence"):
        ChangeParams(persistence=0)
    with pytest.raises(ConfigError, match="strong_persistence"):
        ChangeParams(persistence=2, strong_persistence=3)
    with pytest.raises(ConfigError):
        ChangeParams(min_ndvi_drop=float("nan"))
    with pytest.raises(ConfigError, match="baseline_obs"):
        ChangeParams(baseline_obs=9)
    with pytest.raises(ConfigError, match="unknown"):
        ChangeParams().replace(baseline_quantile=0.5)
    assert ChangeParams().replace(persistence=4).persistence == 4


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
        a[8:, 12:16, 14:20] = PIT[b]
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
    assert st.dtype == np.uint8 and ch["reason"].dtype == np.uint8
    assert np.isin(st[4:10, 4:10], [1, 2]).mean() > 0.95
    assert np.isin(st[12:16, 14:20], [1, 2]).mean() > 0.95
    assert ch["water"].values[12:16, 14:20].mean() > 0.9
    bg = np.ones(st.shape, bool)
    bg[3:11, 3:11] = bg[11:17, 13:21] = False
    assert (st[bg] == 0).all()
    fd = ch["first_detected"].values[4:10, 4:10]
    assert (fd <= cube.time.values[12]).all() and (fd >= cube.time.values[10]).all()
    assert (ch["alert_date"].values[4:10, 4:10] >= fd).all()
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


def test_missing_band_and_bad_params():
    with pytest.raises(MissingBandError, match="swir16"):
        detect_changes(make_cube().drop_vars("swir16"))
    with pytest.raises(ConfigError, match="ChangeParams"):
        detect_changes(make_cube(), params={"persistence": 3})


def test_dates_are_the_utc_day_of_an_afternoon_acquisition():
    """A 17:30 UTC pass (e.g. Landsat over the Americas) is dated that day, not the next."""
    cube = make_cube()
    cube = cube.assign_coords(time=cube.time.values + np.timedelta64(17 * 60 + 30, "m"))
    ch = detect_changes(cube)
    fd = ch["first_detected"].values[4:10, 4:10]
    acquisition_days = cube.time.values.astype("datetime64[D]")
    assert np.isin(fd.astype("datetime64[D]"), acquisition_days).all()
    assert (fd == fd.astype("datetime64[D]")).all()  # a date, at midnight


def test_parameter_vector_carries_every_field_in_order():
    import dataclasses

    from kpgeo.change._state import PARAM_FIELDS

    names = [f.name for f in dataclasses.fields(ChangeParams)]
    assert sorted(PARAM_FIELDS) == sorted(names)
    p = ChangeParams(persistence=5, strong_persistence=4)
    vec = param_vector(p)
    assert vec[PARAM_FIELDS.index("persistence")] == 5
    assert vec[PARAM_FIELDS.index("strong_persistence")] == 4
