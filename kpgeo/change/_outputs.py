"""From a pixel's final state to its output values (dates, state, confidence, reason).

Reading the state never changes it, so outputs can be produced after any
number of dates, and again after more dates arrive.
"""

from __future__ import annotations

import numpy as np

from kpgeo.change._decision import (
    R_DARK,
    R_INSUFFICIENT,
    R_NONE,
    R_PENDING,
    R_SEASONAL,
    R_WATER_WAIT,
)
from kpgeo.change._jit import njit
from kpgeo.change._state import (
    ALERT,
    BASE_CLS,
    BASE_NDVI,
    BRK,
    CONF_ON,
    DARK_MAX,
    EP_ANOM,
    EP_ANOM_WATER,
    EP_N,
    EP_N_BSI,
    EP_OBS,
    EP_ON,
    EP_STRONG,
    EP_SUM_BSI,
    EP_SUM_DROP,
    EP_SUM_NDVI,
    EP_SUM_WI,
    EP_WATER,
    LAST_ACTIVE,
    M_RECENT,
    N_BASE,
    N_CLEAR,
    N_RECENT,
    P_BASE_OBS,
    P_MIN_CLEAR,
    P_NEW_DAYS,
    P_PERSIST,
    P_RECENT_OBS,
    P_REVEG,
    REASON,
    RECENT_NDVI,
    RECENT_POS,
)
from kpgeo.change.params import MAX_RECENT_OBS as MAX_RECENT

__all__ = ["OUTPUT_FIELDS", "finalize"]

#: columns of :func:`finalize`'s result
OUTPUT_FIELDS: tuple[str, ...] = (
    "first_detected", "alert_date", "last_active", "confidence", "state", "water", "n_clear",
    "mean_ndvi", "mean_mndwi", "mean_bsi", "ndvi_drop", "pending", "reason", "water_share",
    "baseline_class",
)
(O_FIRST, O_ALERT, O_LAST, O_CONF, O_STATE, O_WATER, O_NCLEAR, O_NDVI, O_WI, O_BSI, O_DROP,
 O_PENDING, O_REASON, O_WSHARE, O_BASE) = range(len(OUTPUT_FIELDS))

S_NONE, S_NEW, S_ACTIVE, S_INACTIVE, S_REVEG, S_INSUFFICIENT = 0, 1, 2, 3, 4, 255


@njit
def _recent(f, m, k: int):
    """(share of mining-like observations, median NDVI) over the last ``k`` observations."""
    n_an = 0
    vals = np.empty(k)
    pos = int(f[RECENT_POS])
    for j in range(k):
        if m[M_RECENT] & (1 << j):
            n_an += 1
        vals[j] = f[RECENT_NDVI + (pos - 1 - j) % MAX_RECENT]
    return n_an / k, np.median(vals)


@njit
def activity_state(f, m, t_end: float, p) -> int:
    """Return new / active / inactive / revegetating for a confirmed pixel."""
    k = int(min(p[P_RECENT_OBS], f[N_RECENT]))
    if k == 0:
        return S_NEW if t_end - f[BRK] <= p[P_NEW_DAYS] else S_ACTIVE
    share, med = _recent(f, m, k)
    if 2.0 * share >= 1.0:
        return S_NEW if t_end - f[BRK] <= p[P_NEW_DAYS] else S_ACTIVE
    mean_drop = f[EP_SUM_DROP] / max(f[EP_ANOM], 1.0)
    if med >= f[BASE_NDVI] - (1.0 - p[P_REVEG]) * mean_drop:
        return S_REVEG
    return S_INACTIVE


@njit
def confidence(f, p) -> float:
    """0-1: share of mining-like observations since the break, out-of-season evidence, length."""
    frac = f[EP_ANOM] / max(f[EP_OBS], 1.0)
    evidence = min(1.0, f[EP_STRONG] / 2.0)
    length = min(1.0, f[EP_N] / (2.0 * p[P_PERSIST]))
    return min(1.0, max(0.0, 0.4 * frac + 0.3 * evidence + 0.3 * length))


@njit
def finalize_pixel(f, m, t_end: float, p, out) -> None:
    """Fill one output row from one pixel's state."""
    out[:] = np.nan
    out[O_NCLEAR] = f[N_CLEAR]
    out[O_BASE] = f[BASE_CLS] if f[N_BASE] >= p[P_BASE_OBS] else 255.0
    out[O_PENDING] = 0.0
    out[O_WATER] = 0.0
    if f[N_CLEAR] < p[P_MIN_CLEAR] or f[N_BASE] < p[P_BASE_OBS]:
        out[O_STATE] = S_INSUFFICIENT
        out[O_REASON] = R_INSUFFICIENT
        return
    reason = f[REASON]
    if f[CONF_ON] == 0.0:
        out[O_STATE] = S_NONE
        if f[EP_ON] == 1.0 and f[EP_N] == 0:
            reason = R_SEASONAL  # the series ends on this pixel's usual seasonal surface
        if f[EP_ON] == 1.0 and f[EP_N] >= 1:
            out[O_PENDING] = 1.0
            water_run = 2.0 * f[EP_WATER] > f[EP_N]
            reason = R_WATER_WAIT if water_run and f[EP_N] >= p[P_PERSIST] else R_PENDING
        elif reason == R_NONE and f[DARK_MAX] >= 2:
            reason = R_DARK
        out[O_REASON] = reason
        return
    out[O_STATE] = activity_state(f, m, t_end, p)
    out[O_REASON] = reason
    out[O_FIRST] = f[BRK]
    out[O_ALERT] = f[ALERT]
    out[O_LAST] = f[LAST_ACTIVE]
    out[O_CONF] = confidence(f, p)
    out[O_WSHARE] = f[EP_ANOM_WATER] / max(f[EP_ANOM], 1.0)
    out[O_WATER] = 1.0 if 3.0 * out[O_WSHARE] >= 1.0 else 0.0
    n = max(f[EP_OBS], 1.0)
    out[O_NDVI] = f[EP_SUM_NDVI] / n
    out[O_WI] = f[EP_SUM_WI] / n
    out[O_BSI] = f[EP_SUM_BSI] / f[EP_N_BSI] if f[EP_N_BSI] > 0 else np.nan
    out[O_DROP] = f[EP_SUM_DROP] / max(f[EP_ANOM], 1.0)


@njit
def finalize(fstate, mstate, t_end: float, p):
    """Output rows (N, len(OUTPUT_FIELDS)) of every pixel's state at ``t_end``."""
    n = fstate.shape[0]
    out = np.empty((n, len(OUTPUT_FIELDS)))
    for i in range(n):
        finalize_pixel(fstate[i], mstate[i], t_end, p, out[i])
    return out
