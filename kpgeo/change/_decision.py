"""The per-pixel decision: a state machine over clear observations, O(1) per observation.

Each function below is one step of the decision, compiled with numba; ``f`` and
``m`` are one pixel's rows of the float and bit-mask state
(:mod:`kpgeo.change._state`), ``p`` the parameter vector. The steps every clear
observation takes are inlined into :func:`run_pixels` (``inline="always"``), and
masked observations are skipped before :func:`observe` is entered: a numba call
that passes arrays has a fixed cost (~16 ns here, even when it returns at once).
Together 27–30 % off the kernel's time, same state (``benchmarks/kernel_throughput.py``). See
:mod:`kpgeo.change` for the method and its justification.
"""

from __future__ import annotations

import numpy as np

from kpgeo.change._jit import njit
from kpgeo.change._season import (
    EPOCH_DAYS,
    bin_mask,
    bin_range,
    nearest,
    roll_epoch,
    season_bin,
    window_bins,
)
from kpgeo.change._state import (
    ALERT,
    B_LOW,
    BASE_CLS,
    BASE_NDVI,
    BASE_WATER_N,
    BASE_WI,
    BRK,
    BUF_CLS,
    BUF_NDVI,
    BUF_WI,
    CONF_ON,
    DARK_MAX,
    DARK_RUN,
    EP_ANOM,
    EP_ANOM_WATER,
    EP_FIRST,
    EP_LAST,
    EP_N,
    EP_N_BSI,
    EP_OBS,
    EP_ON,
    EP_START,
    EP_STRONG,
    EP_SUM_BSI,
    EP_SUM_DROP,
    EP_SUM_NDVI,
    EP_SUM_WI,
    EP_WATER,
    EPOCH,
    LAST_ACTIVE,
    LAST_T,
    M_BARE,
    M_DRY,
    M_EP_BARE,
    M_EP_WATER,
    M_GREEN,
    M_RECENT,
    M_WATER,
    M_WET,
    N_BASE,
    N_CLEAR,
    N_RECENT,
    N_RETRACTED,
    P_BARE_NDVI,
    P_BASE_OBS,
    P_CANOPY_WATER,
    P_CONTRARY_DAYS,
    P_DRY_MARGIN,
    P_GREEN_NDVI,
    P_MIN_DROP,
    P_PERSIST,
    P_REC_OBS,
    P_REC_TOL,
    P_REGROWTH_DAYS,
    P_RETRACT_DAYS,
    P_SEASON_DAYS,
    P_STRONG_DROP,
    P_STRONG_GAP,
    P_STRONG_PERSIST,
    P_W_NIR,
    P_W_THR,
    P_WATER_DAYS,
    REASON,
    REC_LEVEL,
    REC_RUN,
    RECENT_NDVI,
    RECENT_POS,
)
from kpgeo.change._surface import (
    BARE,
    DARK,
    VEG,
    WATER,
    WET,
    is_mining_like,
    is_neutral,
    normalized_difference,
    surface_class,
)
from kpgeo.change.params import MAX_RECENT_OBS as MAX_RECENT

__all__ = ["REASON_NAMES", "observe", "run_pixels"]

# why a pixel is (not) flagged: the last decisive event of its series
R_NONE, R_MINING, R_SHORT, R_SEASONAL, R_TRANSIENT, R_PENDING, R_WATER_WAIT, R_DARK = range(8)
R_INSUFFICIENT = 255
REASON_NAMES = {
    R_NONE: "no change",
    R_MINING: "mining",
    R_SHORT: "too short",
    R_SEASONAL: "seasonal",
    R_TRANSIENT: "transient",
    R_PENDING: "pending",
    R_WATER_WAIT: "water awaiting dry season",
    R_DARK: "dark only",
    R_INSUFFICIENT: "insufficient data",
}


# --------------------------------------------------------------------------- baseline


@njit
def form_baseline(f, p) -> None:
    """Form the static baseline from the buffered observations: medians, majority class."""
    k = int(p[P_BASE_OBS])
    nd = np.empty(k)
    wi = np.empty(k)
    counts = np.zeros(3)
    b_low = np.inf
    for j in range(k):
        nd[j] = f[BUF_NDVI + j]
        wi[j] = f[BUF_WI + j]
        c = int(f[BUF_CLS + j])
        counts[c] += 1
        if c == VEG and nd[j] < b_low:
            b_low = nd[j]
    f[BASE_NDVI] = np.median(nd)
    f[BASE_WI] = np.median(wi)
    # majority; ties favour vegetation, then water (bare ground is the change we look for)
    cls = VEG
    if counts[WATER] > counts[VEG] and counts[WATER] >= counts[BARE]:
        cls = WATER
    elif counts[BARE] > counts[VEG] and counts[BARE] > counts[WATER]:
        cls = BARE
    f[BASE_CLS] = cls
    f[BASE_WATER_N] = counts[WATER]
    f[B_LOW] = b_low if b_low < np.inf else f[BASE_NDVI]


@njit(inline="always")
def learn_normal(f, m, cls: int, ndvi: float, wi: float, b: int, p) -> None:
    """Record a normal observation in the seasonal memory."""
    if cls == VEG and ndvi >= p[P_GREEN_NDVI]:
        m[M_GREEN] |= bin_mask(b)
    if wi < p[P_W_THR] - p[P_DRY_MARGIN]:
        m[M_DRY] |= bin_mask(b)
    elif cls == WATER:
        m[M_WATER] |= bin_mask(b)
    else:  # flood margins, flooded vegetation, mud: this pixel gets wet at this time
        m[M_WET] |= bin_mask(b)
    if cls == BARE:
        m[M_BARE] |= bin_mask(b)
    if cls == VEG and ndvi < f[B_LOW]:
        f[B_LOW] = ndvi


@njit
def add_to_baseline(f, m, cls: int, ndvi: float, wi: float, b: int, p) -> None:
    """Buffer one usable observation; form the baseline once enough are in."""
    j = int(f[N_BASE])
    f[BUF_NDVI + j] = ndvi
    f[BUF_WI + j] = wi
    f[BUF_CLS + j] = cls
    f[N_BASE] = j + 1
    learn_normal(f, m, cls, ndvi, wi, b, p)
    if j + 1 == int(p[P_BASE_OBS]):
        form_baseline(f, p)


# --------------------------------------------------------------------------- per observation


@njit(inline="always")
def age_memory(f, m, t: float) -> None:
    """Shift the seasonal memory when ``t`` starts a new half-year epoch."""
    e = np.floor(t / EPOCH_DAYS)
    if f[EPOCH] != f[EPOCH]:
        f[EPOCH] = e
    elif e > f[EPOCH]:
        roll_epoch(m, M_GREEN, 7, e - f[EPOCH])
        f[EPOCH] = e


@njit(inline="always")
def water_in_canopy(cls: int, ndvi: float, nir: float, wi: float, f, p) -> bool:
    """Tell whether a partly green observation is water filling part of the pixel.

    Pits and ponds a few metres across leave a pixel of vegetation partly green
    (NDVI below ``green_min_ndvi``) but dark in NIR (below ``water_max_nir``),
    its water index not plainly dry and ``canopy_water_rise`` above the
    baseline's: water took the place of leaves. A shadow or a dry season moves
    the index far less.
    """
    return (cls == VEG and f[N_BASE] >= p[P_BASE_OBS] and ndvi < p[P_GREEN_NDVI]
            and nir < p[P_W_NIR] and wi > p[P_W_THR] - p[P_DRY_MARGIN]
            and wi - f[BASE_WI] >= p[P_CANOPY_WATER])


@njit(inline="always")
def departs_from_baseline(cls: int, ndvi: float, f, p) -> bool:
    """Tell whether a mining-like surface differs from the pixel's baseline class.

    Bare ground departs from water, and from vegetation when NDVI dropped by
    ``min_ndvi_drop``; water departs from vegetation, and from bare ground that
    was never open water in the baseline observations.
    """
    base = int(f[BASE_CLS])
    if cls == BARE:
        return base == WATER or (base == VEG and f[BASE_NDVI] - ndvi >= p[P_MIN_DROP])
    if cls == WATER:
        # bare ground seen under water in its first observations is a shore, a sand bar or
        # a mud flat: water there again is the water level, not a pit (only the season can
        # tell: see season_evidence)
        return base == VEG or (base == BARE and f[BASE_WATER_N] == 0)
    return False


@njit(inline="always")
def season_evidence(cls: int, wi: float, b: int, m, p):
    """(seasonal, contrary, strong) for a bare or water observation in bin ``b``.

    *seasonal*: the pixel showed this surface near this time of year before (for
    water: open water, or wet ground when this water is shallow too); *contrary*:
    it was seen green (for bare ground) or plainly dry (for water) at this time of
    year and not seasonal; *strong*: contrary and the surface (for water: water or
    wet ground) is also unseen within ``strong_gap_days``. Mature memory only.
    """
    season = window_bins(p[P_SEASON_DAYS])
    if cls == BARE:
        d_same = nearest(m[M_BARE + 2], b)
        d_con = nearest(m[M_GREEN + 2], b)
        seasonal = d_same <= season
    else:
        d_water = nearest(m[M_WATER + 2], b)
        d_wet = nearest(m[M_WET + 2], b)
        d_same = min(d_water, d_wet)
        d_con = nearest(m[M_DRY + 2], b)
        # deep water where the pixel was only ever wet is not the usual margin flooding
        shallow = wi <= p[P_W_THR] + p[P_DRY_MARGIN]
        seasonal = d_water <= season or (shallow and d_wet <= season)
    contrary = d_con <= window_bins(p[P_CONTRARY_DAYS]) and not seasonal
    strong = contrary and d_same > max(window_bins(p[P_STRONG_GAP]), season)
    return seasonal, contrary, strong


@njit
def start_episode(f, m, t: float) -> None:
    """Open an episode at the first mining-like observation after a normal one."""
    f[EP_ON] = 1.0
    f[EP_FIRST] = t
    f[EP_START] = np.nan
    f[EP_LAST] = np.nan
    for k in (EP_N, EP_STRONG, EP_WATER, EP_OBS, EP_ANOM, EP_ANOM_WATER, EP_SUM_NDVI,
              EP_SUM_WI, EP_SUM_BSI, EP_N_BSI, EP_SUM_DROP):
        f[k] = 0.0
    for a in range(3):
        m[M_EP_BARE + a] = 0
        m[M_EP_WATER + a] = 0


@njit
def end_episode(f, m, reason: int) -> None:
    """Close the episode (no confirmation kept); learn its bins when it lasted."""
    # learnt as this pixel's season, aged by when it was seen: any water (floods are seen
    # on few dates under the wet-season clouds), bare ground seen at least twice
    for a in range(3):
        m[M_WATER + a] |= m[M_EP_WATER + a]
        if f[EP_ANOM] - f[EP_ANOM_WATER] >= 2:
            m[M_BARE + a] |= m[M_EP_BARE + a]
    f[EP_ON] = 0.0
    f[CONF_ON] = 0.0
    f[BRK] = np.nan
    f[ALERT] = np.nan
    f[LAST_ACTIVE] = np.nan
    f[REASON] = reason


@njit
def can_confirm(f, t: float, p) -> bool:
    """Enough counted observations — and, for water, evidence it is not a flood."""
    n = f[EP_N]
    s = f[EP_STRONG]
    if n < p[P_PERSIST] and not (s >= p[P_STRONG_PERSIST] and n >= p[P_STRONG_PERSIST]):
        return False
    water_run = 2.0 * f[EP_WATER] > n
    if water_run and s == 0 and t - f[EP_START] < p[P_WATER_DAYS]:
        return False
    return True


@njit
def confirm(f, t: float, p) -> None:
    """Confirm the episode: break at its first observation, alert now."""
    f[CONF_ON] = 1.0
    f[BRK] = f[EP_FIRST]
    f[ALERT] = t
    f[REC_RUN] = 0.0
    f[REASON] = R_MINING
    if int(f[BASE_CLS]) == VEG:
        lvl = min(f[BASE_NDVI] - p[P_REC_TOL], f[B_LOW])
        f[REC_LEVEL] = max(lvl, p[P_BARE_NDVI] + 0.05)
    else:
        f[REC_LEVEL] = np.nan  # recovered = back to the baseline class


@njit
def push_recent(f, m, anomalous: bool, ndvi: float) -> None:
    """Keep the last observations of a confirmed pixel (activity and regrowth)."""
    m[M_RECENT] = ((m[M_RECENT] << 1) | (1 if anomalous else 0)) & ((1 << MAX_RECENT) - 1)
    pos = int(f[RECENT_POS])
    f[RECENT_NDVI + pos] = ndvi
    f[RECENT_POS] = (pos + 1) % MAX_RECENT
    f[N_RECENT] = min(f[N_RECENT] + 1.0, float(MAX_RECENT))


@njit
def on_anomaly(f, m, t: float, cls: int, ndvi: float, strong: bool, seasonal: bool,
               b: int, p) -> None:
    """Handle a mining-like observation that departs from the baseline or the season."""
    if f[EP_ON] == 0.0:
        start_episode(f, m, t)
    # the episode's bins, filled since its previous anomaly: the surface lasted in between
    b0 = b if f[EP_LAST] != f[EP_LAST] or t - f[EP_LAST] > 120.0 else season_bin(f[EP_LAST])
    if cls == WATER:
        m[M_EP_WATER] |= bin_range(b0, b)
        f[EP_ANOM_WATER] += 1.0
    else:
        m[M_EP_BARE] |= bin_range(b0, b)
    f[EP_ANOM] += 1.0
    f[EP_LAST] = t
    f[EP_SUM_DROP] += max(0.0, f[BASE_NDVI] - ndvi)
    if f[CONF_ON] == 1.0:
        f[LAST_ACTIVE] = t
        if not seasonal:  # dry-season grass on a recovering floodplain is not a relapse
            f[REC_RUN] = 0.0
        push_recent(f, m, True, ndvi)
        return
    if seasonal and f[EP_STRONG] == 0:
        return  # the pixel does this every year: not counted (unless the run is out of season)
    if f[EP_START] != f[EP_START]:
        f[EP_START] = t
    f[EP_N] += 1.0
    if strong:
        f[EP_STRONG] += 1.0
    if cls == WATER:
        f[EP_WATER] += 1.0
    if can_confirm(f, t, p):
        confirm(f, t, p)
        f[LAST_ACTIVE] = t
        push_recent(f, m, True, ndvi)


@njit
def recovery(cls: int, ndvi: float, f, p) -> float:
    """How much this observation says the pre-disturbance surface is back (0, 1 or 2).

    On a pixel that was water at the start: 1 when it is under water again, 2 for
    a plainly green canopy (a flood plain's crop), else 0. Elsewhere, 1: after
    mostly water (a flood, pits on a sand bar), vegetation or — on a pixel that
    was bare — bare ground; after bare ground, vegetation at the pixel's normal
    level (its recovery level), or any vegetation on a pixel whose baseline was
    bare (a field, dry-season grass).
    2: vegetation plainly green (NDVI at least ``green_min_ndvi`` and the recovery
    level): a crop canopy or the rains. Mine pits and spoil revegetate gradually,
    never from bare to green canopy between two observations.
    """
    base = int(f[BASE_CLS])
    if base == WATER:
        if cls == WATER:
            return 1.0
        if cls == VEG and ndvi >= p[P_GREEN_NDVI]:
            return 2.0
        return 0.0
    if cls != VEG:
        return 1.0 if (2.0 * f[EP_ANOM_WATER] > f[EP_ANOM] and base == BARE and cls == BARE) \
            else 0.0
    level = f[REC_LEVEL] if f[REC_LEVEL] == f[REC_LEVEL] else p[P_BARE_NDVI]
    if ndvi >= p[P_GREEN_NDVI] and ndvi >= level:
        return 2.0
    if 2.0 * f[EP_ANOM_WATER] > f[EP_ANOM] or base == BARE or ndvi >= level:
        return 1.0
    return 0.0


@njit(inline="always")
def on_normal(f, m, t: float, cls: int, ndvi: float, wi: float, b: int, p) -> None:
    """Handle an observation consistent with the pixel's normal surface."""
    if f[CONF_ON] == 1.0:
        push_recent(f, m, False, ndvi)
        gain = recovery(cls, ndvi, f, p)
        f[REC_RUN] = f[REC_RUN] + gain if gain > 0 else 0.0
        # a green canopy within weeks of bare ground or water is a crop or the rains, at any
        # time; a slower recovery only within retract_days of the alert (then: revegetating)
        canopy_jump = gain == 2.0 and t - f[EP_LAST] <= p[P_REGROWTH_DAYS]
        if canopy_jump or (f[REC_RUN] >= p[P_REC_OBS] and t - f[ALERT] <= p[P_RETRACT_DAYS]):
            f[N_RETRACTED] += 1.0
            end_episode(f, m, R_TRANSIENT)  # farm crop, burn regrowth, flood gone
        return
    learn_normal(f, m, cls, ndvi, wi, b, p)
    if f[EP_ON] == 1.0:
        if f[EP_N] == 0:
            reason = R_SEASONAL
        elif f[EP_N] >= p[P_PERSIST]:
            reason = R_TRANSIENT  # e.g. a water run that receded before any dry-season sign
        else:
            reason = R_SHORT
        end_episode(f, m, reason)


@njit(inline="always")
def episode_stats(f, ndvi: float, wi: float, bsi: float) -> None:
    """Add to the sums over the episode's observations (means of the outputs)."""
    f[EP_OBS] += 1.0
    f[EP_SUM_NDVI] += ndvi
    f[EP_SUM_WI] += wi
    if bsi == bsi:
        f[EP_SUM_BSI] += bsi
        f[EP_N_BSI] += 1.0


@njit(inline="always")
def observe(f, m, t: float, blue: float, green: float, red: float, nir: float, swir: float,
            p) -> None:
    """Feed one observation (NaN bands = not clear: skipped) to one pixel's state."""
    if red != red or nir != nir or swir != swir:
        return
    f[N_CLEAR] += 1.0
    f[LAST_T] = t
    ndvi = normalized_difference(nir, red)
    wi = normalized_difference(green, swir) if green == green else \
        normalized_difference(red, swir)
    cls = surface_class(blue, red, nir, swir, ndvi, wi, p)
    if water_in_canopy(cls, ndvi, nir, wi, f, p):
        cls = WATER
    b = season_bin(t)
    age_memory(f, m, t)
    if cls == WET and f[CONF_ON] == 0.0:
        m[M_WET] |= bin_mask(b)  # a flood margin or mud: this pixel gets wet at this time
    if f[N_BASE] < p[P_BASE_OBS]:
        if not is_neutral(cls):
            add_to_baseline(f, m, cls, ndvi, wi, b, p)
        return
    if cls == DARK:  # char, shadow: neither mining nor normal; remembered for the reason
        f[DARK_RUN] += 1.0
        f[DARK_MAX] = max(f[DARK_MAX], f[DARK_RUN])
        return
    if is_neutral(cls):
        return
    f[DARK_RUN] = 0.0
    departs = is_mining_like(cls) and departs_from_baseline(cls, ndvi, f, p)
    seasonal, contrary, strong = season_evidence(cls, wi, b, m, p) if is_mining_like(cls) else \
        (False, False, False)
    if departs or contrary:
        # a canopy stripped to bare ground is strong evidence by itself (water is not:
        # a flooded meadow loses as much NDVI)
        big = cls == BARE and departs and not seasonal and f[BASE_NDVI] - ndvi >= p[P_STRONG_DROP]
        on_anomaly(f, m, t, cls, ndvi, strong or big, seasonal, b, p)
    else:
        on_normal(f, m, t, cls, ndvi, wi, b, p)
    if f[EP_ON] == 1.0:
        bl = blue if blue == blue else red
        episode_stats(f, ndvi, wi, normalized_difference(swir + red, nir + bl))


@njit
def run_pixels(fstate, mstate, blue, green, red, nir, swir, tdays, p) -> None:
    """Feed every date (axis 1 of the band arrays) to every pixel's state, in place."""
    n_pix, n_t = red.shape
    for i in range(n_pix):
        f = fstate[i]
        m = mstate[i]
        for t in range(n_t):
            if red[i, t] != red[i, t]:  # masked: skipped here, before observe's frame is set up
                continue
            observe(f, m, tdays[t], blue[i, t], green[i, t], red[i, t], nir[i, t],
                    swir[i, t], p)
