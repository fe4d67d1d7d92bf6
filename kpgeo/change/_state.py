"""Layout of the per-pixel detector state and of the parameter vector.

The decision (:mod:`kpgeo.change._decision`) is a state machine that reads
each clear observation once, in time order. Everything it remembers lives in
two small per-pixel arrays: ``fstate`` (float32) and ``mstate`` (int32 bit
masks). Persisting them (e.g. in a Zarr store next to a run's outputs) and
feeding later dates continues the same computation exactly, so an incremental
update equals a full run over all dates.

Field positions are module constants so the numba kernels can index rows by
name; :data:`F_FIELDS` / :data:`M_FIELDS` give the names in order. Times are
days since 1970-01-01 in float32: exact to about 3 minutes, far below the
one-day resolution of the outputs.
"""

from __future__ import annotations

import re

import numpy as np

from kpgeo.change.params import MAX_BASELINE_OBS, MAX_RECENT_OBS, ChangeParams

__all__ = ["F_FIELDS", "M_FIELDS", "NF", "NM", "new_state", "param_vector", "persisted_fields",
           "spent_buffer_fields"]

_SCALARS = (
    # counts and baseline (base_water_n: baseline observations that were open water)
    "n_clear", "n_base", "base_ndvi", "base_wi", "base_cls", "base_water_n", "b_low", "last_t",
    # the current episode (an uninterrupted run of mining-like observations)
    "ep_on", "ep_first", "ep_start", "ep_last", "ep_n", "ep_strong", "ep_water",
    "ep_obs", "ep_anom", "ep_anom_water", "ep_sum_ndvi", "ep_sum_wi", "ep_sum_bsi", "ep_n_bsi",
    "ep_sum_drop",
    # a confirmed episode
    "conf_on", "brk", "alert", "last_active", "rec_run", "rec_level",
    "n_recent", "recent_pos",
    # explanation
    "reason", "n_retracted", "dark_run", "dark_max", "epoch",
)
F_FIELDS: tuple[str, ...] = (
    _SCALARS
    + tuple(f"buf_ndvi{k}" for k in range(MAX_BASELINE_OBS))
    + tuple(f"buf_wi{k}" for k in range(MAX_BASELINE_OBS))
    + tuple(f"buf_cls{k}" for k in range(MAX_BASELINE_OBS))
    + tuple(f"recent_ndvi{k}" for k in range(MAX_RECENT_OBS))
)
#: seasonal memory kinds (``ep_*``: bins of the current episode, learnt when it ends); each
#: has three masks: bins observed in the current half-year epoch, in the previous one, and
#: earlier (mature: at least ~6 months old)
MEMORY_KINDS: tuple[str, ...] = ("green", "dry", "bare", "water", "wet", "ep_bare",
                                 "ep_water")
M_FIELDS: tuple[str, ...] = tuple(
    f"m_{kind}_{age}" for kind in MEMORY_KINDS for age in ("cur", "prev", "old")
) + ("recent_bits",)
NF = len(F_FIELDS)
NM = len(M_FIELDS)

_F = {name: i for i, name in enumerate(F_FIELDS)}
N_CLEAR, N_BASE, BASE_NDVI, BASE_WI, BASE_CLS, BASE_WATER_N, B_LOW, LAST_T = (
    _F[k] for k in ("n_clear", "n_base", "base_ndvi", "base_wi", "base_cls", "base_water_n",
                    "b_low", "last_t"))
EP_ON, EP_FIRST, EP_START, EP_LAST, EP_N, EP_STRONG, EP_WATER = (
    _F[k] for k in ("ep_on", "ep_first", "ep_start", "ep_last", "ep_n", "ep_strong",
                    "ep_water"))
EP_OBS, EP_ANOM, EP_ANOM_WATER, EP_SUM_NDVI, EP_SUM_WI, EP_SUM_BSI, EP_N_BSI, EP_SUM_DROP = (
    _F[k] for k in ("ep_obs", "ep_anom", "ep_anom_water", "ep_sum_ndvi", "ep_sum_wi",
                    "ep_sum_bsi", "ep_n_bsi", "ep_sum_drop"))
CONF_ON, BRK, ALERT, LAST_ACTIVE, REC_RUN, REC_LEVEL, N_RECENT, RECENT_POS = (
    _F[k] for k in ("conf_on", "brk", "alert", "last_active", "rec_run", "rec_level",
                    "n_recent", "recent_pos"))
REASON, N_RETRACTED, DARK_RUN, DARK_MAX, EPOCH = (
    _F[k] for k in ("reason", "n_retracted", "dark_run", "dark_max", "epoch"))
BUF_NDVI = _F["buf_ndvi0"]
BUF_WI = _F["buf_wi0"]
BUF_CLS = _F["buf_cls0"]
RECENT_NDVI = _F["recent_ndvi0"]

#: first mask of each kind (cur; prev = +1, old = +2)
M_GREEN, M_DRY, M_BARE, M_WATER, M_WET, M_EP_BARE, M_EP_WATER = 0, 3, 6, 9, 12, 15, 18
M_RECENT = 21

#: order of :func:`param_vector`
PARAM_FIELDS: tuple[str, ...] = (
    "min_clear_obs", "baseline_obs", "bare_max_ndvi", "bare_min_red", "max_blue_red",
    "haze_min_brightness", "water_threshold", "water_max_nir", "dry_margin", "green_min_ndvi",
    "min_ndvi_drop", "persistence", "strong_persistence", "season_days", "contrary_days",
    "strong_gap_days", "strong_drop", "water_confirm_days", "regrowth_days", "retract_days",
    "recovery_tolerance", "recovery_obs", "recent_obs", "new_days", "reveg_fraction",
    "canopy_water_rise",
)
(P_MIN_CLEAR, P_BASE_OBS, P_BARE_NDVI, P_BARE_RED, P_BLUE_RED, P_HAZE_BRIGHT, P_W_THR,
 P_W_NIR, P_DRY_MARGIN, P_GREEN_NDVI, P_MIN_DROP, P_PERSIST, P_STRONG_PERSIST, P_SEASON_DAYS,
 P_CONTRARY_DAYS, P_STRONG_GAP, P_STRONG_DROP, P_WATER_DAYS, P_REGROWTH_DAYS, P_RETRACT_DAYS,
 P_REC_TOL, P_REC_OBS, P_RECENT_OBS, P_NEW_DAYS, P_REVEG, P_CANOPY_WATER) = range(
    len(PARAM_FIELDS))


def param_vector(params: ChangeParams) -> np.ndarray:
    """Return the parameters as a float64 vector in :data:`PARAM_FIELDS` order."""
    return np.array([float(getattr(params, name)) for name in PARAM_FIELDS], dtype="float64")


def new_state(n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh state of ``n_pixels`` pixels that have seen no observation yet."""
    fstate = np.zeros((n_pixels, NF), dtype="float32")
    for name in ("ep_first", "ep_start", "ep_last", "brk", "alert", "last_active", "last_t",
                 "epoch"):
        fstate[:, _F[name]] = np.nan
    mstate = np.zeros((n_pixels, NM), dtype="int32")
    return fstate, mstate


#: baseline buffer slots: ``buf_<name><k>``, slot ``k`` of the observations the baseline forms from
_BUFFER_SLOT = re.compile(r"^buf_[a-z]+(\d+)$")


def persisted_fields(params: ChangeParams) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``fstate`` and ``mstate`` field indices a stored state keeps for ``params``.

    The baseline buffer fills slots ``0 .. baseline_obs - 1`` and then forms the
    baseline, so a slot ``k >= baseline_obs`` is never written: it keeps its
    :func:`new_state` value, and a state read back without it is the same state.
    Every other field is kept (the recent-observation ring uses all its slots).
    """
    def kept(name: str) -> bool:
        slot = _BUFFER_SLOT.match(name)
        return slot is None or int(slot.group(1)) < params.baseline_obs

    return (np.array([i for i, name in enumerate(F_FIELDS) if kept(name)], dtype="int64"),
            np.arange(NM, dtype="int64"))


def spent_buffer_fields(params: ChangeParams) -> np.ndarray:
    """Return the ``fstate`` indices of the baseline buffer slots ``0 .. baseline_obs - 1``.

    They are read once, when the buffer fills and the baseline forms from it;
    a pixel whose ``n_base`` has reached ``baseline_obs`` never reads them again
    (a pixel whose baseline is reset refills them before reading), so a stored
    state may hold their :func:`new_state` value (0) instead of the spent values.
    """
    f_idx, _ = persisted_fields(params)
    return np.array([i for i in f_idx if _BUFFER_SLOT.match(F_FIELDS[i])], dtype="int64")
