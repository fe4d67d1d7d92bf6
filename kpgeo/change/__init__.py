"""Per-pixel detection of new artisanal mining in a masked reflectance cube.

Method and why
--------------
Artisanal diamond mining strips a patch of ground to **bare gravel, sand,
laterite and spoil** and digs **pits that fill with turbid or open water**,
often on river banks, in channels and on floodplains; the patch stays bare or
wet for months to years, through the rains and through the low-water season,
and revegetates slowly once abandoned. Its confounders share its spectra but
not its *time course*: dry-season grass and ploughed fields look bare in the
dry season and green up with the rains; floods recede; burns are dark and
green within weeks; clouds and shadows last one date.

So the decision is built on three questions asked of every clear observation,
each answered from the pixel's own history in O(1):

1. **What does the surface look like now?** (:mod:`kpgeo.change._surface`)
   A physical class from the reflectance — water, vegetation, bright bare
   ground, dark (char, shadow), haze. Only bare ground and water can be
   mining; dark and hazy observations are neutral (they neither count nor
   break a run). Pits a few metres across fill only part of a pixel: one
   still partly green but dark in NIR, whose water index rose
   ``canopy_water_rise`` above its baseline's, is water
   (:func:`~kpgeo.change._decision.water_in_canopy`).
2. **Is that a change for this pixel?** Against two references:
   - a static **baseline** (majority class and median NDVI/water index of its
     first ``baseline_obs`` usable observations): bare where it was vegetated
     (with an NDVI loss), bare where it was water (a channel dug out, a pit
     drained), water where it was land — except bare ground that was already
     under water in one of those observations (a shore, a sand bar, a mud
     flat: water there again is the lake or river standing higher, which only
     the season can tell from a pit). No NDVI drop is needed for mining on
     ground that was not green before;
   - its **seasonal memory** (:mod:`kpgeo.change._season`): per ~15-day bin of
     the year, whether it has been seen green, plainly dry, bare or under water
     in normal conditions. A surface the pixel shows every year at this time is
     *in season* and not counted (recurring floods, fields ploughed every dry
     season, dry grass); bare ground where the pixel is normally green at this
     time, or water where it is normally dry, is *out of season*: strong
     evidence, and what confirms a new water pit rather than a flood.
3. **How does it behave afterwards?** (:mod:`kpgeo.change._decision`) A run of
   counted mining-like observations is **confirmed** after ``persistence``
   observations (``strong_persistence`` when they are out of season); a water
   run with no out-of-season evidence must also last ``water_confirm_days``
   (an inundation seen for the first time recedes). A confirmed pixel whose
   surface **recovers** within ``retract_days`` of its alert (vegetation back
   at its normal level, or the baseline class back) was a transient — a crop,
   a burn, a flood — and is retracted; so is one that is a plainly green canopy
   again within ``regrowth_days`` of its last bare or water observation, at any
   time (a field sown after a long fallow: pits and spoil revegetate over many
   months; on a pixel that was water at the start, the flood plain's crop or
   grass after the water and mud have gone). The bins a retracted run occupied
   are learnt as the pixel's normal season. Slower regrowth after that window
   makes a site ``revegetating``, not a false alarm.

Each observation is read once and updates a small fixed-size state
(:mod:`kpgeo.change._state`), so the cost is **linear in the number of dates**
and an update with new dates continues exactly where the last run stopped
(:class:`DetectorState`): the incremental result equals the full one.

Why not the alternatives: a harmonic (CCDC/COLD-type) model needs a year or
more of well-spread clear dates per pixel and extrapolates badly through a
clouded wet season, and its fit is the costly part; a temporal classifier
trained on simulated scenes learns its simulator. Rules on physical classes
and the pixel's own seasons transfer between sensors (Landsat red/NIR/SWIR1
stacks run the same decision), hemispheres and wet-season timings, and every
rejection has a name: the ``reason`` output (:data:`REASON_NAMES`) says why a
pixel was, or was not, flagged.

The first year of a series
--------------------------
Until the seasonal memory has seen a time of year, a change at that time is
judged against the static baseline only: a run is confirmed after
``persistence`` observations and retracted if it recovers, so a dry season
seen for the first time can raise alerts that the rains withdraw. Water runs
then wait ``water_confirm_days`` (or a dry-season observation) before they are
confirmed. Mining that starts within the first ``baseline_obs`` usable
observations is part of the baseline and is not reported as new.

Outputs
-------
``first_detected`` (the break: first observation of the confirmed run, NaT
when none), ``alert_date`` (when the pixel was first confirmed — what an
operational alert would have seen), ``last_active``, ``state``
(:data:`STATE_NAMES`), ``reason``, ``confidence``, ``water`` and means since
the break; ``pending`` marks runs still too short to confirm at the last date,
which :mod:`kpgeo.footprints` uses to grow confirmed sites over their newest
pits. Pixels with too few clear observations get state 255 and an
:class:`~kpgeo.errors.InsufficientDataWarning`; they are never silently "no
change".
"""

from __future__ import annotations

from kpgeo.change._decision import REASON_NAMES
from kpgeo.change._outputs import OUTPUT_FIELDS
from kpgeo.change.detect import (
    DetectorState,
    change_dataset,
    days_since_epoch,
    days_to_datetime,
    detect_changes,
    detect_pixels,
)
from kpgeo.change.params import ChangeParams

__all__ = [
    "ChangeParams",
    "DetectorState",
    "OUTPUT_FIELDS",
    "REASON_NAMES",
    "REASON_CODES",
    "STATE_CODES",
    "STATE_NAMES",
    "change_dataset",
    "days_since_epoch",
    "days_to_datetime",
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
#: reason name -> code
REASON_CODES: dict[str, int] = {v: k for k, v in REASON_NAMES.items()}
