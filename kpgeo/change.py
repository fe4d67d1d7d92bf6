"""Per-pixel detection of new mining disturbance in a masked reflectance cube.

Method
------
Artisanal diamond mining strips the vegetation and leaves bare gravel and
water-filled pits that stay for months to years, often along rivers. The
confounders have different *temporal* behaviour: a cloud, a shadow or a thin
cloud lasts one date; a burn is dark and greens up within a season; a farm
clearing is replanted and regains a crop canopy; a seasonal flood recedes.
With only ~12-30 usable dates a year, harmonic models (CCDC/COLD) are poorly
constrained, and a classifier trained on simulator labels would learn the
simulator. We therefore use a **robust baseline + per-observation anomaly +
persistence/recovery test**, each step explainable:

1. *Indices* (:mod:`kpgeo.indices`): NDVI, MNDWI (or its red/SWIR1 stand-in),
   BSI and mean red/NIR/SWIR1 brightness per clear observation.
2. *Robust baseline*: per pixel, the ``baseline_quantile`` (default upper
   quartile) of NDVI/water index over the first ``baseline_obs`` clear
   observations, and their MAD (floored). The upper quantile keeps the
   baseline vegetated when a cloud shadow or the onset of the disturbance
   falls inside the baseline window.
3. *Per-observation anomaly* (robust z-score gated by physical thresholds):
   an observation is "mining-like" when NDVI dropped below the baseline by at
   least ``max(min_ndvi_drop, min(z_threshold * 1.4826 * MAD, max_threshold))``
   **and** the surface
   is either bright bare ground (NDVI <= ``bare_max_ndvi``, red >=
   ``bare_min_red`` — excludes dark char, ash and shadow —, SWIR1 above NIR
   and, with a blue band, blue well below red — excludes flat-spectrum haze
   and thin cloud that the mask missed) or new open water (water index >
   ``water_threshold`` where the baseline was not water).
4. *Temporal decision*: a pixel is detected when ``persistence`` consecutive
   clear observations are mining-like (cloudy dates are skipped, not counted,
   so irregular/missing dates are handled natively; so is a dark, wet-looking
   observation between two mining-like ones — NDVI dropped, water index just
   below the water threshold: turbid water over spoil, a pit's wet margin —
   which neither counts nor breaks the run). The break date
   (``first_detected``) is the first observation of that run, as in CCDC.
   Each candidate run is then tested against the three confounders that
   also persist for a while; a rejected run is skipped and the search goes
   on with the next one:

   * *transient* (burn, farm, short flood): NDVI recovers within
     ``recovery_days`` of the break, "recovered" meaning back above
     ``max(base - drop/2, min(base - max(recovery_tolerance,
     recovery_share * drop), b_low))`` where ``drop`` is the run's mean NDVI
     loss and ``b_low`` the lowest normal baseline observation — the pixel's
     own low season, so that a dry-season recovery under a wet-season
     baseline counts without any calendar; or NDVI is fully back (within
     ``recovery_tolerance`` of the baseline) within ``regrowth_days`` (a crop
     canopy, dry-season grass greening up). A farm is bare for 1-3 months and
     carries a crop 2-4 months later; a burn greens within weeks. An abandoned
     pit cluster is different: it stays bare/wet for the months of digging
     and revegetates over a year or more, so it is kept (state
     ``inactive``/``revegetating``), never rejected as transient;
   * *seasonal* (recurring flood, dry-season grass): the same kind of
     anomaly (water-like for a water run — including the weak, partly flooded
     margins; bare for a bare run) is seen one year earlier or, after a
     recovery, one year later, within ``season_days`` of the run. One such
     observation suffices for a water run (wet-season dates are cloudy), two
     for a bare run. This uses only the pixel's own history: no hard-coded
     months, so it works in either hemisphere and any wet-season timing;
   * ... unless the run is *markedly stronger* than that other-year anomaly
     (mean NDVI lower by more than ``seasonal_margin``): a pit dug into a
     floodplain holds deeper, more open water or barer gravel than the
     seasonal inundation of the grass around it. A fuller or clearer flood
     than last year's is just as strong, so a *water* run kept this way must
     also show **low-water-season evidence**: at least one anomalous
     observation of the episode at a time of year (within
     ``dry_season_days``) when the pixel was seen *plainly dry* one year
     before or after, and never wet or water-like then ("plainly dry": water
     index below both ``water_threshold`` and the pixel's own baseline water
     index + 0.15, and not a flood margin; dry-season grass counts). Floods recede and the
     floodplain re-greens every low-water season; pits hold water or bare
     spoil through it;
   * *unverifiable new water*: a water run with no seasonal match must show
     out-of-season evidence — at least as many of its anomalous observations
     fall at a time of year when the pixel was seen plainly dry one year
     earlier (within ``season_days``, with nothing wet within
     ``dry_season_days`` of that date; or before the series covers a year) as
     fall where that time of year was not seen dry (a wet season entirely
     clouded, or flood margins). Otherwise it may be an inundation seen for
     the first time, and the detector waits: pits hold water in the dry
     season too, floods recede.

   *Pending*: a pixel with no confirmed run whose series ends on a shorter
   run of **bare** mining-like observations (fewer than ``persistence``) is
   flagged ``pending``; :func:`kpgeo.footprints.extract_footprints` grows
   confirmed objects over adjacent pending pixels (the newest pits of a site
   that is already confirmed), never makes an object of them alone. Water is
   not pending: a flood at the end of the series looks the same.

   The z-score part of the drop threshold adapts to noisy/seasonal pixels;
   its cap (``max_threshold``) keeps a baseline that already contains a new
   pit from hiding it.
5. *State* at the last observation: ``active`` when at least half of the last
   ``recent_obs`` clear observations are mining-like (``new`` if the break is
   within ``new_days`` of the end of the series), ``revegetating`` when NDVI
   regained more than ``reveg_fraction`` of the drop, else ``inactive``.
   ``confidence`` combines the share of mining-like observations after the
   break, the size of the NDVI drop and the run length (0-1).

Pixels with fewer than ``min_clear_obs`` clear observations in total, or fewer
than ``baseline_obs`` in the series, get state 255 ("insufficient data") and an
:class:`~kpgeo.errors.InsufficientDataWarning` reports the affected fraction
of the AOI; they are never silently "no change".

Missing bands: only ``red``, ``nir`` and ``swir16`` are required. Without
``green`` the water test uses ``(red - swir16)/(red + swir16)``; without
``blue`` the BSI uses red for blue (reported only, not used in the decision);
without ``swir22`` nothing changes (NBR is not used in the decision). So a
Landsat red/NIR/SWIR1 stack runs the same decision as Sentinel-2.

Chunking and memory
-------------------
The temporal loop is a numba kernel applied per chunk through
``xr.apply_ufunc(..., dask="parallelized")`` with ``time`` as a core
dimension: the cube is rechunked to one chunk along ``time`` (spatial chunks
are kept, default 512 x 512 from :func:`kpgeo.cube.load_cube`), so each task
holds ``n_dates x chunk`` pixels of five float32 index layers, and the result
holds only the output rasters (``y x x`` each). Peak memory is therefore
``(#workers x chunk x n_dates x 5 x 4 bytes) + outputs``, independent of the
AOI size beyond the outputs.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from kpgeo.errors import ConfigError, InsufficientDataWarning, NoDataError

__all__ = [
    "ChangeParams",
    "STATE_CODES",
    "STATE_NAMES",
    "detect_changes",
    "detect_pixels",
]

#: state code -> name
STATE_NAMES: dict[int, str] = {
    0: "no change",
    1: "new",
    2: "active",
    3: "inactive",
    4: "revegetating",
    255: "insufficient data",
}
#: name -> state code
STATE_CODES: dict[str, int] = {v: k for k, v in STATE_NAMES.items()}

_N_OUT = 11  # first, last, confidence, state, water, n_clear, mean ndvi/mndwi/bsi, drop, pending


@dataclass(frozen=True)
class ChangeParams:
    """Parameters of :func:`detect_changes` (validated on construction).

    Attributes
    ----------
    min_clear_obs : int
        Minimum clear observations of a pixel for any decision (else state 255).
    baseline_obs : int
        Number of first clear observations forming the baseline.
    baseline_quantile : float
        Quantile of baseline NDVI used as the reference (0.5-1).
    min_ndvi_drop : float
        Minimum NDVI loss below the baseline for a mining-like observation.
    z_threshold : float
        Robust z-score (drop / (1.4826 MAD)) required besides ``min_ndvi_drop``.
    max_threshold : float
        Upper bound of the z-score part of the drop threshold (a baseline that
        already contains the disturbance has a huge MAD).
    mad_floor : float
        Lower bound of the baseline NDVI MAD.
    bare_max_ndvi, bare_min_red, bare_min_ndbi : float
        Bright bare-ground test: NDVI at most ``bare_max_ndvi``, red reflectance
        at least ``bare_min_red`` and ``(swir16 - nir)/(swir16 + nir)`` at least
        ``bare_min_ndbi`` (soil and gravel are brighter in SWIR1 than NIR;
        thin cloud and haze are not).
    max_blue_red : float
        When ``blue`` is present, bare ground needs ``blue <= max_blue_red * red``
        (soil/laterite are red; haze and cloud are spectrally flat).
    water_threshold : float
        Water index above which an observation is open water.
    persistence : int
        Consecutive mining-like clear observations needed for a detection.
    recovery_tolerance : float
        NDVI within this of the baseline counts as recovered.
    recovery_share : float
        ... or within this share of the run's mean NDVI drop, whichever is larger
        (dry-season vegetation is browner than a wet-season baseline); the
        pixel's lowest normal baseline observation also counts as recovered,
        never less than half the drop regained (see the module docstring).
    recovery_days : float
        A candidate that recovers (as above) within this many days of the
        break is transient (farm crop regrowth, burn, short flood) and rejected.
    regrowth_days : float
        A candidate whose NDVI is back within ``recovery_tolerance`` of the
        baseline within this many days of the break is rejected too (crop
        canopy, dry-season grass greening up, flood gone); an abandoned pit
        revegetates over a year or more and is kept.
    seasonal_margin : float
        A recurring (seasonal) candidate is kept anyway when its mean NDVI is
        lower than the other year's same-season anomaly by more than this
        (new deep pit water or bare gravel in a floodplain that was only
        partly inundated).
    dry_season_days : float
        Window (days, around the same date one year apart) of the
        low-water-season evidence a recurring or unverifiable water run needs
        (see the module docstring).
    season_days : float
        A candidate is seasonal (flood, dry-season grass) and rejected when the
        same kind of anomaly (one water-like observation for a water run, two
        bare ones for a bare run) occurs one year (+/- this many days) before
        it, or one year after it following a recovery.
    recent_obs : int
        Last clear observations used to decide active vs inactive.
    new_days : float
        Breaks within this many days of the last date are ``new``.
    reveg_fraction : float
        Share of the NDVI drop regained for ``revegetating``.
    """

    min_clear_obs: int = 6
    baseline_obs: int = 4
    baseline_quantile: float = 0.75
    min_ndvi_drop: float = 0.1
    z_threshold: float = 2.5
    mad_floor: float = 0.03
    bare_max_ndvi: float = 0.3
    bare_min_red: float = 0.10
    bare_min_ndbi: float = 0.0
    max_blue_red: float = 0.8
    water_threshold: float = 0.0
    persistence: int = 3
    recovery_tolerance: float = 0.1
    recovery_days: float = 200.0
    recovery_share: float = 0.35
    regrowth_days: float = 330.0
    seasonal_margin: float = 0.15
    max_threshold: float = 0.3
    season_days: float = 60.0
    dry_season_days: float = 30.0
    recent_obs: int = 3
    new_days: float = 180.0
    reveg_fraction: float = 0.5

    def __post_init__(self) -> None:
        ints = {
            "min_clear_obs": (2, 10_000),
            "baseline_obs": (1, 1_000),
            "persistence": (1, 1_000),
            "recent_obs": (1, 1_000),
        }
        floats = {
            "baseline_quantile": (0.5, 1.0),
            "min_ndvi_drop": (0.0, 2.0),
            "z_threshold": (0.0, 100.0),
            "mad_floor": (0.0, 1.0),
            "bare_max_ndvi": (-1.0, 1.0),
            "bare_min_red": (0.0, 1.0),
            "bare_min_ndbi": (-1.0, 1.0),
            "max_blue_red": (0.0, 10.0),
            "season_days": (0.0, 182.0),
            "dry_season_days": (0.0, 182.0),
            "water_threshold": (-1.0, 1.0),
            "recovery_tolerance": (0.0, 2.0),
            "recovery_days": (0.0, 36_500.0),
            "recovery_share": (0.0, 1.0),
            "regrowth_days": (0.0, 36_500.0),
            "seasonal_margin": (0.0, 2.0),
            "max_threshold": (0.0, 2.0),
            "new_days": (0.0, 36_500.0),
            "reveg_fraction": (0.0, 1.0),
        }
        for name, (lo, hi) in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ConfigError(
                    f"ChangeParams.{name} must be an integer in [{lo}, {hi}], got {v!r}.")
        for name, (lo, hi) in floats.items():
            v = getattr(self, name)
            ok = isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)
            if not ok or not math.isfinite(float(v)) or not lo <= float(v) <= hi:
                raise ConfigError(
                    f"ChangeParams.{name} must be a number in [{lo}, {hi}], got {v!r}.")
        if self.baseline_obs > self.min_clear_obs:
            raise ConfigError(
                f"ChangeParams.baseline_obs ({self.baseline_obs}) must not exceed "
                f"min_clear_obs ({self.min_clear_obs})."
            )

    def replace(self, **changes: Any) -> ChangeParams:
        """Return a copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- kernel
def _kernel_py(ndvi, wat, bsi, red, nir, swir, blue, tdays, p):  # pragma: no cover - numba
    """Per-pixel temporal decision on (N, T) float32 arrays; returns (N, _N_OUT) float64."""
    (min_clear, n_base, q, min_drop, z_thr, mad_floor, bare_ndvi, bare_red, bare_ndbi,
     blue_red, w_thr, persist, rec_tol, rec_days, recent, new_days, reveg_frac,
     season_tol, rec_share, regrow_days, stronger_by, max_thr, dry_tol) = p
    n_pix, n_t = ndvi.shape
    out = np.full((n_pix, _N_OUT), np.nan)
    idx = np.empty(n_t, np.int64)
    anom = np.zeros(n_t, np.bool_)
    isw = np.zeros(n_t, np.bool_)
    weak = np.zeros(n_t, np.bool_)
    dry = np.zeros(n_t, np.bool_)
    t_end = tdays[n_t - 1]
    for i in range(n_pix):
        m = 0
        for t in range(n_t):
            if (ndvi[i, t] == ndvi[i, t]) and (red[i, t] == red[i, t]) and \
                    (swir[i, t] == swir[i, t]):
                idx[m] = t
                m += 1
        out[i, 5] = m
        if m < min_clear or m < n_base:
            out[i, 3] = 255.0
            out[i, 10] = 0.0
            continue
        # baseline: quantile + MAD of the first n_base clear obs
        b = np.empty(n_base)
        bw = np.empty(n_base)
        for k in range(n_base):
            b[k] = ndvi[i, idx[k]]
            bw[k] = wat[i, idx[k]]
        base = np.quantile(b, q)
        base_w = np.median(bw)
        mad = np.median(np.abs(b - np.median(b)))
        if mad < mad_floor:
            mad = mad_floor
        # the z-score term adapts the threshold to a noisy or strongly seasonal pixel; it is
        # capped so that a baseline contaminated by the disturbance itself cannot hide it
        thr = max(min_drop, min(z_thr * 1.4826 * mad, max_thr))
        base_water = base_w > w_thr
        for k in range(m):
            t = idx[k]
            v = ndvi[i, t]
            drop = base - v
            water = (wat[i, t] > w_thr) and not base_water
            isw[k] = water
            sw = swir[i, t]
            nr = nir[i, t]
            bare = (v <= bare_ndvi) and (red[i, t] >= bare_red) and \
                ((sw - nr) >= bare_ndbi * (sw + nr))
            bl = blue[i, t]
            if bare and bl == bl:
                bare = bl <= blue_red * red[i, t]
            anom[k] = (drop >= thr) and (bare or water)
            # weak water-like evidence (flood margins: partly flooded, wet soil), used only
            # to recognise a recurring seasonal anomaly, never to detect
            weak[k] = (anom[k] and water) or ((drop >= thr) and (wat[i, t] > w_thr - 0.15))
            # plainly dry land (no water, no flood margin, no wet soil; dry-season grass or
            # bare ground count): the low-water season
            dry[k] = (wat[i, t] < w_thr) and (wat[i, t] < base_w + 0.15) and not weak[k]
        # lowest normal baseline observation: the pixel's own low season (dry-season
        # grass below a wet-season baseline counts as recovered)
        b_low = base
        for k in range(n_base):
            if not anom[k] and ndvi[i, idx[k]] < b_low:
                b_low = ndvi[i, idx[k]]
        # persistence + recovery
        start = -1
        k = 0
        while k < m:
            if not anom[k]:
                k += 1
                continue
            # the run goes on over dark, wet-looking observations (turbid water over spoil,
            # a pit's wet margin: NDVI dropped, neither bright bare ground nor open water);
            # they neither count towards persistence nor break it
            r = k
            n_run = 0
            while r < m and (anom[r] or (weak[r] and r + 1 < m and
                                         (anom[r + 1] or weak[r + 1]))):
                if anom[r]:
                    n_run += 1
                r += 1
            while r > k and not anom[r - 1]:
                r -= 1
            if n_run < persist:
                k = r
                continue
            # candidate break at k: first recovery after the run, i.e. NDVI back within
            # max(rec_tol, rec_share * drop) of the baseline (relative, so that a dry-season
            # recovery below a wet-season baseline still counts)
            t0 = tdays[idx[k]]
            t1 = tdays[idx[r - 1]]
            run_drop = 0.0
            n_wrun = 0
            for j in range(k, r):
                run_drop += base - ndvi[i, idx[j]]
                if isw[j]:
                    n_wrun += 1
            run_drop /= (r - k)
            rec_lvl = max(base - 0.5 * run_drop,
                          min(base - max(rec_tol, rec_share * run_drop), b_low))
            rec_at = -1
            for j in range(r, m):
                if ndvi[i, idx[j]] >= rec_lvl and not anom[j]:
                    rec_at = j
                    break
            if rec_at >= 0 and tdays[idx[rec_at]] - t0 <= rec_days:
                k = rec_at + 1  # transient: burn, crop regrowth, short flood
                continue
            # full regrowth (back within rec_tol of the baseline) within regrow_days: a
            # farm's crop, a dry-season grass layer greening up, a flood gone for good
            full_at = -1
            for j in range(r, m):
                if ndvi[i, idx[j]] >= base - rec_tol and not anom[j]:
                    full_at = j
                    break
            if full_at >= 0 and tdays[idx[full_at]] - t0 <= regrow_days:
                k = full_at + 1
                continue
            # seasonal: the same anomaly one year earlier, or one year later after a recovery
            # (a flood recurs at the same time of year; a water run needs one such
            # observation, a bare run two)
            water_run = 2 * n_wrun >= (r - k)
            need = 1 if water_run else 2
            # ... unless the run is markedly stronger than the other year's anomaly (a
            # pit dug into a floodplain that was only partly inundated the year before)
            run_ndvi = base - run_drop
            n_season = 0
            s_season = 0.0
            for j in range(k):
                tj = tdays[idx[j]]
                same = weak[j] if water_run else (anom[j] and not isw[j])
                if same and tj >= t0 - 365.25 - season_tol and \
                        tj <= t1 - 365.25 + season_tol:
                    n_season += 1
                    s_season += ndvi[i, idx[j]]
            if rec_at >= 0:
                n_after = 0
                s_after = 0.0
                for j in range(rec_at + 1, m):
                    tj = tdays[idx[j]]
                    same = weak[j] if water_run else (anom[j] and not isw[j])
                    if same and tj >= t0 + 365.25 - season_tol and \
                            tj <= t1 + 365.25 + season_tol:
                        n_after += 1
                        s_after += ndvi[i, idx[j]]
                if n_after > n_season:
                    n_season = n_after
                    s_season = s_after
            stronger = n_season > 0 and run_ndvi < s_season / n_season - stronger_by
            if n_season >= need and not stronger:
                k = r
                continue
            if n_season >= need and water_run:
                # a recurring water run kept only for being stronger than the other year's
                # (a fuller or clearer flood looks just as strong) must also show water or
                # bare ground out of season: some anomalous observation of the episode at a
                # time of year when the pixel was seen normal (not even weakly water-like)
                # one year before or after. Floods recede and the floodplain re-greens;
                # pits hold water or bare spoil through the low-water season.
                end = rec_at if rec_at >= 0 else m
                n_dry = 0
                for j in range(k, end):
                    if not anom[j]:
                        continue
                    tj = tdays[idx[j]]
                    n_norm = 0
                    n_wet = 0
                    for jj in range(m):
                        if jj >= k and jj < end:
                            continue
                        tl = tdays[idx[jj]]
                        if abs(abs(tl - tj) - 365.25) <= dry_tol:
                            if dry[jj]:
                                n_norm += 1
                            else:
                                n_wet += 1
                    if n_norm > 0 and n_wet == 0:
                        n_dry += 1
                if n_dry < 1:
                    k = r
                    continue
            if water_run and n_season == 0:
                # out-of-season evidence for new water: some anomalous observation of the
                # episode must fall at a time of year when the pixel was seen normal one year
                # earlier. When the history covers that time of year but never saw it (a wet
                # season entirely clouded), an inundation cannot be ruled out: wait for
                # evidence (pits hold water in the dry season too; floods recede).
                end = rec_at if rec_at >= 0 else m
                n_ok = 0
                n_blind = 0
                for j in range(k, end):
                    if not anom[j]:
                        continue
                    tj = tdays[idx[j]]
                    if tj - 365.25 + season_tol < tdays[0]:
                        n_ok += 1  # before the series covers a year: nothing to check
                        continue
                    # seen normal: plainly dry land near that time of year, and nothing
                    # water-like or wet closer than dry_tol to it
                    seen = False
                    wet_near = False
                    for jj in range(k):
                        dl = abs(tdays[idx[jj]] - (tj - 365.25))
                        if dl <= season_tol and dry[jj]:
                            seen = True
                        if dl <= dry_tol and not dry[jj]:
                            wet_near = True
                    seen = seen and not wet_near
                    if seen:
                        n_ok += 1
                    else:
                        n_blind += 1
                if n_ok == 0 or n_ok < n_blind:
                    k = r
                    continue
            start = k
            if n_season >= need:
                # kept only because stronger than the seasonal anomaly: the break is the
                # first observation that is itself stronger (the pit, not the flood onset)
                lim = s_season / n_season - stronger_by
                for j in range(k, r):
                    if ndvi[i, idx[j]] < lim:
                        start = j
                        break
            break
        if start < 0:
            out[i, 3] = 0.0
            # pending: the series ends on a bare (gravel, spoil) run too short to confirm, a
            # pit dug in the last weeks; footprints grow over such pixels next to a confirmed
            # object. Water is left out: a flood at the end of the series looks the same.
            n_tail = 0
            pend = True
            while n_tail < m and anom[m - 1 - n_tail]:
                if isw[m - 1 - n_tail]:
                    pend = False
                n_tail += 1
            pend = pend and 0 < n_tail < persist
            out[i, 10] = 1.0 if pend else 0.0
            continue
        out[i, 10] = 0.0
        last = start
        n_an = 0
        n_w = 0
        s_ndvi = 0.0
        s_w = 0.0
        s_b = 0.0
        s_drop = 0.0
        n_b = 0
        for k in range(start, m):
            t = idx[k]
            if anom[k]:
                last = k
                n_an += 1
                s_drop += base - ndvi[i, t]
                if isw[k]:
                    n_w += 1
            s_ndvi += ndvi[i, t]
            s_w += wat[i, t]
            if bsi[i, t] == bsi[i, t]:
                s_b += bsi[i, t]
                n_b += 1
        n_after = m - start
        frac = n_an / (last - start + 1)
        mean_drop = s_drop / n_an
        run = 0
        while start + run < m and anom[start + run]:
            run += 1
        conf = 0.4 * frac + 0.3 * min(1.0, mean_drop / (2.0 * min_drop + 1e-9)) \
            + 0.3 * min(1.0, run / (2.0 * persist))
        # state from the last `recent` clear obs
        k0 = max(start, m - recent)
        n_rec_an = 0
        rv = np.empty(m - k0)
        for k in range(k0, m):
            if anom[k]:
                n_rec_an += 1
            rv[k - k0] = ndvi[i, idx[k]]
        if 2 * n_rec_an >= (m - k0):
            state = 2.0
            if t_end - tdays[idx[start]] <= new_days:
                state = 1.0
        elif np.median(rv) >= base - (1.0 - reveg_frac) * mean_drop:
            state = 4.0
        else:
            state = 3.0
        out[i, 0] = tdays[idx[start]]
        out[i, 1] = tdays[idx[last]]
        out[i, 2] = min(1.0, max(0.0, conf))
        out[i, 3] = state
        out[i, 4] = 1.0 if 3 * n_w >= n_an else 0.0
        out[i, 6] = s_ndvi / n_after
        out[i, 7] = s_w / n_after
        out[i, 8] = s_b / n_b if n_b > 0 else np.nan
        out[i, 9] = mean_drop
    return out


_KERNEL = None


def _kernel():
    """Compile the kernel with numba once (falls back to Python if numba is missing)."""
    global _KERNEL
    if _KERNEL is None:
        try:
            import numba

            _KERNEL = numba.njit(cache=True, nogil=True)(_kernel_py)
        except ImportError:  # pragma: no cover
            _KERNEL = _kernel_py
    return _KERNEL


def _param_tuple(params: ChangeParams) -> tuple:
    p = params
    return (int(p.min_clear_obs), int(p.baseline_obs), float(p.baseline_quantile),
            float(p.min_ndvi_drop), float(p.z_threshold), float(p.mad_floor),
            float(p.bare_max_ndvi), float(p.bare_min_red), float(p.bare_min_ndbi),
            float(p.max_blue_red), float(p.water_threshold), int(p.persistence),
            float(p.recovery_tolerance), float(p.recovery_days),
            int(p.recent_obs), float(p.new_days), float(p.reveg_fraction),
            float(p.season_days), float(p.recovery_share), float(p.regrowth_days),
            float(p.seasonal_margin), float(p.max_threshold), float(p.dry_season_days))


def detect_pixels(
    ndvi: np.ndarray,
    water: np.ndarray,
    bsi: np.ndarray,
    red: np.ndarray,
    swir16: np.ndarray,
    *,
    nir: np.ndarray,
    blue: np.ndarray | None = None,
    tdays: np.ndarray,
    params: ChangeParams | None = None,
) -> np.ndarray:
    """Run the temporal decision on numpy arrays with time as the **last** axis.

    Parameters
    ----------
    ndvi, water, bsi, red, swir16, nir : numpy.ndarray
        Shape ``(..., T)``; ``NaN`` marks a missing (cloudy) observation.
    blue : numpy.ndarray, optional
        Same shape; omitted (or all NaN) disables the blue/red haze test.
    tdays : numpy.ndarray
        Shape ``(T,)``, observation times in days (any origin), increasing.
    params : ChangeParams, optional
        Defaults to ``ChangeParams()``.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., 11)`` float64: first-detected day, last-active day,
        confidence, state code, water flag, clear-observation count, mean NDVI,
        mean water index, mean BSI (after the break), mean NDVI drop, pending flag
        (1 when no run is confirmed but the series ends on a shorter mining-like run).
    """
    params = params or ChangeParams()
    ndvi = np.asarray(ndvi)
    lead = ndvi.shape[:-1]
    n_t = ndvi.shape[-1]
    tdays = np.asarray(tdays, dtype="float64")
    if tdays.shape != (n_t,):
        raise ConfigError(f"tdays has shape {tdays.shape}, expected ({n_t},).")
    if n_t > 1 and np.any(np.diff(tdays) < 0):
        raise ConfigError("Observation times must be sorted in increasing order.")

    def flat(a):
        return np.ascontiguousarray(np.asarray(a, dtype="float32").reshape(-1, n_t))

    if n_t == 0 or ndvi.size == 0:
        out = np.full(lead + (_N_OUT,), np.nan)
        out[..., 3] = 255
        out[..., 5] = 0
        return out
    nir = flat(nir)
    blue = np.full_like(nir, np.nan) if blue is None else flat(blue)
    out = _kernel()(flat(ndvi), flat(water), flat(bsi), flat(red), nir, flat(swir16), blue,
                    tdays, _param_tuple(params))
    return out.reshape(lead + (_N_OUT,))


def _days_to_datetime(days: Any) -> Any:
    """Float days since 1970-01-01 (NaN for none) -> datetime64[ns] (NaT)."""
    d = np.asarray(days)
    out = np.full(d.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = np.isfinite(d)
    # floor: the UTC calendar day of the acquisition (an afternoon pass must not become tomorrow)
    out[ok] = (np.floor(d[ok]).astype("int64") * 86_400_000_000_000).astype("datetime64[ns]")
    return out


def detect_changes(cube: Any, *, params: ChangeParams | None = None,
                   warn_threshold: float = 0.0) -> Any:
    """Detect persistent mining-like disturbance per pixel.

    Parameters
    ----------
    cube : xarray.Dataset
        Masked reflectance cube from :func:`kpgeo.cube.load_cube`, dims
        ``(time, y, x)``, with at least ``red``, ``nir``, ``swir16`` (``NaN``
        where not clear); numpy- or dask-backed. ``aoi_mask`` is used when
        present (pixels outside get state 255 but do not count in the warning).
    params : ChangeParams, optional
        Detection parameters (defaults: ``ChangeParams()``).
    warn_threshold : float
        Warn when more than this fraction of AOI pixels has insufficient data.

    Returns
    -------
    xarray.Dataset
        On the cube grid (``y, x`` and ``spatial_ref`` kept), computed (numpy):
        ``first_detected``, ``last_active`` (datetime64[ns], NaT when none),
        ``confidence`` (float32 0-1), ``state`` (uint8, see
        :data:`STATE_NAMES`), ``water`` (bool), ``n_clear`` (int16),
        ``mean_ndvi``, ``mean_mndwi``, ``mean_bsi`` (float32, after the break),
        ``ndvi_drop`` (float32), ``pending`` (bool: no confirmed change, but the
        series ends on a bare run too short to confirm). ``attrs["params"]`` records the parameters.

    Raises
    ------
    kpgeo.errors.ConfigError
        ``params`` is not a :class:`ChangeParams`, or the cube lacks ``time``.
    kpgeo.errors.MissingBandError
        ``red``, ``nir`` or ``swir16`` missing.
    kpgeo.errors.NoDataError
        The cube has no dates.

    Warns
    -----
    kpgeo.errors.InsufficientDataWarning
        Some AOI pixels have too few clear observations (state 255).
    """
    import xarray as xr

    from kpgeo.indices import compute_indices

    params = ChangeParams() if params is None else params
    if not isinstance(params, ChangeParams):
        raise ConfigError(f"params must be a ChangeParams, got {type(params).__name__}.")
    if not isinstance(cube, xr.Dataset) or "time" not in cube.dims:
        raise ConfigError("detect_changes needs an xarray.Dataset with a `time` dimension "
                          "(see kpgeo.cube.load_cube).")
    if cube.sizes["time"] == 0:
        raise NoDataError("The cube has no dates; nothing to detect.")
    cube = cube.sortby("time")
    idx = compute_indices(cube)
    tdays = (cube["time"].values.astype("datetime64[s]").astype("int64") / 86400.0)
    blue = cube["blue"] if "blue" in cube.data_vars else xr.full_like(cube["red"], np.nan)
    layers = [idx["ndvi"], idx["mndwi"], idx["bsi"]] + [
        cube[b].astype("float32") for b in ("red", "swir16", "nir")] + [blue.astype("float32")]
    if any(getattr(a.data, "chunks", None) is not None for a in layers):
        layers = [a.chunk({"time": -1}) for a in layers]

    def _block(ndvi, wat, bs, red, swir, nir, blu):
        # float32 halves the in-memory outputs; day numbers stay exact to ~3 minutes
        return detect_pixels(ndvi, wat, bs, red, swir, nir=nir, blue=blu, tdays=tdays,
                             params=params).astype("float32")

    res = xr.apply_ufunc(
        _block,
        *layers,
        input_core_dims=[["time"]] * 7,
        output_core_dims=[["_out"]],
        dask="parallelized",
        output_dtypes=["float32"],
        dask_gufunc_kwargs={"output_sizes": {"_out": _N_OUT}},
    )
    res = res.transpose(..., "_out").compute()
    arr = res.values
    dims = res.dims[:-1]
    coords = {k: v for k, v in cube.coords.items() if "time" not in v.dims}
    state = arr[..., 3].astype("uint8")
    if "aoi_mask" in cube:
        inside = np.asarray(cube["aoi_mask"].values, dtype=bool)
        inside = np.broadcast_to(inside, state.shape)
        state = np.where(inside, state, np.uint8(255))
    else:
        inside = np.ones(state.shape, bool)
    ds = xr.Dataset(
        {
            "first_detected": (dims, _days_to_datetime(arr[..., 0])),
            "last_active": (dims, _days_to_datetime(arr[..., 1])),
            "confidence": (dims, np.nan_to_num(arr[..., 2], nan=0.0).astype("float32")),
            "state": (dims, state),
            "water": (dims, arr[..., 4] == 1.0),
            "n_clear": (dims, arr[..., 5].astype("int16")),
            "mean_ndvi": (dims, arr[..., 6].astype("float32")),
            "mean_mndwi": (dims, arr[..., 7].astype("float32")),
            "mean_bsi": (dims, arr[..., 8].astype("float32")),
            "ndvi_drop": (dims, arr[..., 9].astype("float32")),
            "pending": (dims, (arr[..., 10] == 1.0) & (state == 0)),
        },
        coords=coords,
        attrs={"params": repr(params), "state_codes": repr(STATE_NAMES),
               "time_start": str(cube["time"].values[0])[:10],
               "time_end": str(cube["time"].values[-1])[:10]},
    )
    n_in = int(inside.sum())
    if n_in:
        frac = float(((state == 255) & inside).sum()) / n_in
        if frac > warn_threshold:
            warnings.warn(
                f"{frac:.1%} of the AOI pixels have fewer than {params.min_clear_obs} clear "
                f"observations (state 255, 'insufficient data'); add dates or lower "
                f"ChangeParams.min_clear_obs.",
                InsufficientDataWarning,
                stacklevel=2,
            )
    return ds
