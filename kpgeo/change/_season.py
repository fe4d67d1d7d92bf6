"""The pixel's seasonal memory: which surfaces it shows at which time of year.

The year is cut into :data:`N_BINS` bins of ~15 days (day of year, any
hemisphere, any wet-season timing). For each pixel, bit masks record the bins
in which it was seen *green*, *plainly dry*, *bare* or *under water* in normal
conditions (not during a mining-like episode that was later confirmed).

Only **mature** memory is consulted: bins observed in an earlier season,
never the observation of a few weeks ago — "dry a month ago" says nothing
about the season, "dry at this time last year" does. Each kind keeps three
masks (current epoch, previous epoch, older) that :func:`roll_epoch` shifts
when a new four-month epoch (:data:`EPOCH_DAYS`) starts, so a bin matures
between 4 and 8 months after it was observed: never within the same season,
always in time for the same season one year later (+/- 4 months). Testing
or setting a bin is O(1), so the decision stays linear in the number of dates,
and the whole memory is fifteen integers per pixel.

- An anomaly is **in season** when the pixel showed the same surface within
  ``season_days`` of that day of year in an earlier season: a recurring flood
  (whose onset and end move by weeks from year to year), a field ploughed
  every dry season, dry-season grass.
- It is **out of season** (strong evidence) when it is not in season and the
  pixel was seen green (for bare ground) or plainly dry (for water) within
  ``contrary_days`` of that day of year: pits hold water through the
  low-water season and gravel stays bare through the rains.
"""

from __future__ import annotations

from kpgeo.change._jit import njit

__all__ = ["N_BINS", "BIN_DAYS", "EPOCH_DAYS", "NEVER", "season_bin", "window_bins",
           "bin_mask", "bin_range", "seen", "nearest", "roll_epoch"]

N_BINS = 24
BIN_DAYS = 365.25 / N_BINS
EPOCH_DAYS = 365.25 / 3
NEVER = 99  # distance of an empty mask


@njit
def season_bin(day: float) -> int:
    """Bin (0..N_BINS-1) of the day of year of ``day`` (days since 1970-01-01).

    1 January of any year falls 0-0.75 day after a multiple of 365.25 once shifted by
    half a day, so bin 0 starts on 1 January whatever the leap-year cycle.
    """
    doy = (day + 0.5) % 365.25
    b = int(doy / BIN_DAYS)
    return b if b < N_BINS else N_BINS - 1


@njit
def window_bins(days: float) -> int:
    """Half-width in bins of a +/- ``days`` window (0 = the bin itself)."""
    return int(days / BIN_DAYS + 0.5)


@njit
def bin_mask(b: int) -> int:
    """Bit mask with bin ``b`` set."""
    return 1 << b


@njit
def seen(mask: int, b: int, half_width: int) -> bool:
    """Whether any bin within ``half_width`` bins of ``b`` (circular) is set in ``mask``."""
    if mask == 0:
        return False
    for k in range(-half_width, half_width + 1):
        if mask & (1 << ((b + k) % N_BINS)):
            return True
    return False


@njit
def nearest(mask: int, b: int) -> int:
    """Circular distance in bins from ``b`` to the nearest set bin (:data:`NEVER` if none)."""
    if mask == 0:
        return NEVER
    for k in range(N_BINS // 2 + 1):
        if mask & (1 << ((b + k) % N_BINS)) or mask & (1 << ((b - k) % N_BINS)):
            return k
    return NEVER


@njit
def roll_epoch(m, first: int, n_kinds: int, steps: float) -> None:
    """Age the three masks (cur, prev, old) of ``n_kinds`` kinds starting at ``first``."""
    for k in range(n_kinds):
        i = first + 3 * k
        if steps == 1:
            m[i + 2] |= m[i + 1]
            m[i + 1] = m[i]
        else:
            m[i + 2] |= m[i + 1] | m[i]
            m[i + 1] = 0
        m[i] = 0


@njit
def bin_range(b0: int, b1: int) -> int:
    """Mask of the bins from ``b0`` forward to ``b1`` (circular, inclusive)."""
    mask = 0
    k = b0
    for _ in range(N_BINS):
        mask |= 1 << k
        if k == b1:
            break
        k = (k + 1) % N_BINS
    return mask
