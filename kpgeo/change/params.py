"""Parameters of the per-pixel decision (:class:`ChangeParams`), validated on construction."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kpgeo.errors import ConfigError

__all__ = ["ChangeParams", "MAX_BASELINE_OBS", "MAX_RECENT_OBS"]

#: upper bounds fixed by the size of the per-pixel state (see :mod:`kpgeo.change._state`)
MAX_BASELINE_OBS = 8
MAX_RECENT_OBS = 8


@dataclass(frozen=True)
class ChangeParams:
    """Parameters of :func:`kpgeo.change.detect_changes`.

    Every value has a physical meaning (reflectance 0-1, index values, days or
    counts of clear observations); the defaults are set from published spectra
    and the temporal behaviour of mining and its confounders, not fitted to a
    simulator (see :mod:`kpgeo.change` and ``docs/accuracy.md``).

    Attributes
    ----------
    min_clear_obs : int
        Fewest clear observations of a pixel for any decision (else state 255).
    baseline_obs : int
        Clear, usable observations forming the pixel's static baseline (1-8).
    bare_max_ndvi : float
        NDVI at most this: not vegetated (bare mineral ground, water, char, cloud).
    bare_min_red : float
        Non-vegetated ground needs red reflectance at least this to be *bright*
        bare ground (gravel, sand, laterite, spoil); darker is ``dark``
        (char, ash, shadow, dark wet soil) and never counts as mining.
    max_blue_red : float
        With a blue band, a spectrum with ``blue >= max_blue_red * red`` that is
        also brighter than ``haze_min_brightness`` is haze or cloud (flat).
    haze_min_brightness : float
        Mean of red, NIR and SWIR1 above which a flat spectrum is haze/cloud;
        without blue, a non-vegetated spectrum this bright with SWIR1 below NIR.
    water_threshold : float
        Water index (MNDWI, or its red/SWIR1 stand-in) above which an
        observation is water, when NIR is also below ``water_max_nir``.
    water_max_nir : float
        Water absorbs NIR: open and turbid water, and pits with a vegetated edge,
        stay below this (thin cloud and snow do not).
    dry_margin : float
        "Seen dry": water index below ``water_threshold - dry_margin`` (not a
        flood margin or wet soil).
    green_min_ndvi : float
        "Seen green": NDVI at least this.
    canopy_water_rise : float
        Water index rise over the pixel's baseline median that makes a partly
        green observation water: NDVI below ``green_min_ndvi``, NIR below
        ``water_max_nir``, water index not plainly dry. Pits and ponds that
        fill part of a pixel of vegetation (a small site, the edge of a large
        one). A cloud shadow darkens every band alike, so its water index
        hardly moves.
    min_ndvi_drop : float
        A vegetated baseline must lose at least this NDVI for bare ground to
        count as a change.
    persistence : int
        Counted mining-like observations that confirm a pixel.
    strong_persistence : int
        Fewer observations suffice when that many of them are out of season
        (bare where the pixel is seen green at that time of year, water where it
        is seen dry); equal to ``persistence`` disables the shortcut.
    season_days : float
        An anomaly is *in season* (seasonal, not counted) when the pixel showed
        the same surface (bare, water) within this many days of the same day of
        year in normal conditions.
    contrary_days : float
        Window (days around the same day of year) of the out-of-season test.
    strong_gap_days : float
        Out-of-season evidence also needs the same surface (bare ground, or
        water and wet ground) to be unseen within this many days of that day of
        year: well clear of the pixel's own season, whose timing (a flood's onset,
        a harvest) moves by weeks to months from year to year.
    strong_drop : float
        An NDVI loss at least this large from the baseline to bare ground (a
        canopy stripped to gravel) is strong evidence by itself.
    water_confirm_days : float
        A water run with no out-of-season evidence (could be an inundation seen
        for the first time) is confirmed only once it has lasted this long.
    regrowth_days : float
        A confirmed pixel that is a plainly green canopy again within this many
        days of its last bare or water observation was a crop (or the rains came):
        it is retracted whenever that happens. Mine pits and spoil revegetate over
        many months.
    retract_days : float
        A confirmed pixel whose surface recovers (``recovery_obs`` recovered
        observations in a row) within this many days of its alert was a
        transient (farm crop, burn, flood) and is retracted.
    recovery_tolerance : float
        Vegetation within this NDVI of the baseline (or at the pixel's own
        lowest normal level) counts as recovered; for a run of mostly water
        (a flood receding to wet grass), any vegetation does.
    recovery_obs : int
        Consecutive recovered observations that end a confirmed episode.
    recent_obs : int
        Last clear observations used for active vs inactive (1-8).
    new_days : float
        Confirmed pixels whose break is within this many days of the last date
        and that are still active are ``new``.
    reveg_fraction : float
        Share of the NDVI drop regained for ``revegetating``.
    """

    min_clear_obs: int = 6
    baseline_obs: int = 4
    bare_max_ndvi: float = 0.3
    bare_min_red: float = 0.08
    max_blue_red: float = 0.8
    haze_min_brightness: float = 0.15
    water_threshold: float = 0.0
    water_max_nir: float = 0.2
    dry_margin: float = 0.15
    green_min_ndvi: float = 0.5
    canopy_water_rise: float = 0.6
    min_ndvi_drop: float = 0.1
    persistence: int = 3
    strong_persistence: int = 2
    season_days: float = 60.0
    contrary_days: float = 30.0
    strong_gap_days: float = 120.0
    strong_drop: float = 0.45
    water_confirm_days: float = 180.0
    regrowth_days: float = 120.0
    retract_days: float = 300.0
    recovery_tolerance: float = 0.1
    recovery_obs: int = 2
    recent_obs: int = 3
    new_days: float = 180.0
    reveg_fraction: float = 0.5

    def __post_init__(self) -> None:
        ints = {
            "min_clear_obs": (2, 10_000),
            "baseline_obs": (1, MAX_BASELINE_OBS),
            "persistence": (1, 100),
            "strong_persistence": (1, 100),
            "recovery_obs": (1, 100),
            "recent_obs": (1, MAX_RECENT_OBS),
        }
        floats = {
            "bare_max_ndvi": (-1.0, 1.0),
            "bare_min_red": (0.0, 1.0),
            "max_blue_red": (0.0, 10.0),
            "haze_min_brightness": (0.0, 1.0),
            "water_threshold": (-1.0, 1.0),
            "water_max_nir": (0.0, 1.0),
            "dry_margin": (0.0, 2.0),
            "green_min_ndvi": (-1.0, 1.0),
            "canopy_water_rise": (0.0, 2.0),
            "min_ndvi_drop": (0.0, 2.0),
            "season_days": (0.0, 182.0),
            "contrary_days": (0.0, 182.0),
            "strong_gap_days": (0.0, 182.0),
            "strong_drop": (0.0, 2.0),
            "water_confirm_days": (0.0, 36_500.0),
            "regrowth_days": (0.0, 36_500.0),
            "retract_days": (0.0, 36_500.0),
            "recovery_tolerance": (0.0, 2.0),
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
                f"min_clear_obs ({self.min_clear_obs}).")
        if self.strong_persistence > self.persistence:
            raise ConfigError(
                f"ChangeParams.strong_persistence ({self.strong_persistence}) must not exceed "
                f"persistence ({self.persistence}).")

    def replace(self, **changes: Any) -> ChangeParams:
        """Return a copy with some fields changed (validated)."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ConfigError(f"unknown ChangeParams field(s) {bad}; valid: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (for run records and state stamps)."""
        return dataclasses.asdict(self)
