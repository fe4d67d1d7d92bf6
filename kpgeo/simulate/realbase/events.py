"""Crop cycles of the field plots and savanna burns of the real source.

**Fields.** Every plot of a field parcel (real parcel x smallholder cell) is,
in each agricultural year, cleared with probability ``cultivated_probability``
between December and April; its cycle is: ash (half of the plots are burnt,
5-20 days) -> bare soil (15-90 days; ``long_bare_probability`` of the plots
150-300 days) -> crop green-up (25-60 days) -> crop (40-100 days) ->
harvest / senescence to stubble (20-50 days) -> fallow regrowth back to the
savanna season (60-150 days). Spectra: real bare soil (Olinda), real green
crop and dry stubble (Togo), modelled ash; the plot's real texture is kept.
Plots not cultivated in a year follow the savanna template.

**Burns.** Fires start in the dry season (December-March) and spread over grass,
woodland, wetland and fields (never forest, water, villages) within a ragged
disk; the char (modelled spectrum, severity 0.6-1) stays 3-15 days, then fades
with a time constant of 8-25 days while a short green flush of regrowth
appears.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from kpgeo.simulate.noise import fbm, mix_key
from kpgeo.simulate.realbase.basemap import FIELD, GRASS, WETLAND, WOODLAND, base_window
from kpgeo.simulate.realbase.landcover import SceneLook, final_classes, parcel_uniform
from kpgeo.simulate.realbase.library import MODELLED, Library
from kpgeo.simulate.realbase.params import RealParams

__all__ = ["FieldCycles", "field_cycles", "paint_fields", "Burn", "plan_burns", "burn_tile",
           "paint_burns", "BURNABLE"]

BURNABLE = (GRASS, WOODLAND, WETLAND, FIELD)
_STAGES = ("ash", "bare", "green", "peak", "senescence", "fallow")


def _day(d: dt.date) -> int:
    return d.toordinal() - 719163


@dataclass
class FieldCycles:
    """Crop calendars of plots ``ids``: arrays (years, plots) of days."""

    ids: np.ndarray
    years: tuple[int, ...]
    cultivated: np.ndarray
    clear: np.ndarray
    stages: np.ndarray
    """(len(_STAGES), years, plots) stage durations in days."""
    bare_idx: np.ndarray
    crop_idx: np.ndarray
    stubble_idx: np.ndarray

    def event_end(self) -> np.ndarray:
        """(years, plots) day the crop has grown back (end of the farm event)."""
        return self.clear + self.stages[:3].sum(axis=0)

    def disturbed(self, first: int, last: int) -> np.ndarray:
        """Return (plots,) True where a cultivated cycle overlaps ``first..last``."""
        end = self.clear + self.stages.sum(axis=0)
        return (self.cultivated & (self.clear <= last) & (end >= first)).any(axis=0)


def field_cycles(look: SceneLook, params: RealParams, ids: np.ndarray, years, lib: Library,
                 ) -> FieldCycles:
    """Crop calendars of the plots ``ids`` (pure function of the seed and the plot id)."""
    ids = np.asarray(ids, np.int64)
    ny = len(years)
    cult = np.zeros((ny, len(ids)), bool)
    clear = np.zeros((ny, len(ids)), np.int64)
    st = np.zeros((len(_STAGES), ny, len(ids)), np.int64)
    for k, y in enumerate(years):
        u = [parcel_uniform(mix_key(look.key, 31, y), ids, j) for j in range(9)]
        cult[k] = u[0] < params.cultivated_probability
        clear[k] = _day(dt.date(y, 1, 1)) - 30 + (u[1] * 140).astype(np.int64)
        long_bare = u[2] < params.long_bare_probability
        st[0, k] = np.where(u[3] < 0.5, 5 + (u[4] * 15).astype(np.int64), 0)
        st[1, k] = np.where(long_bare, 150 + (u[5] * 150), 15 + (u[5] * 75)).astype(np.int64)
        st[2, k] = 25 + (u[6] * 35).astype(np.int64)
        st[3, k] = 40 + (u[7] * 60).astype(np.int64)
        st[4, k] = 20 + (u[8] * 30).astype(np.int64)
        st[5, k] = 60 + (u[4] * 90).astype(np.int64)
    pick = [parcel_uniform(mix_key(look.key, 32), ids, j) for j in range(3)]
    return FieldCycles(ids=ids, years=tuple(years), cultivated=cult, clear=clear, stages=st,
                       bare_idx=(pick[0] * len(lib.bare)).astype(np.int64),
                       crop_idx=(pick[1] * len(lib.crop)).astype(np.int64),
                       stubble_idx=(pick[2] * len(lib.stubble)).astype(np.int64))


def _smooth(f):
    f = np.clip(f, 0, 1)
    return f * f * (3 - 2 * f)


def _weights(cyc: FieldCycles, day: int) -> np.ndarray:
    """(5, plots) weights of ash, bare, crop, stubble, savanna template on ``day``."""
    n = len(cyc.ids)
    clear = np.full(n, -1, np.int64)
    st = np.zeros((len(_STAGES), n), np.int64)
    for k in range(len(cyc.years)):  # the latest cultivated cycle already started wins
        on = cyc.cultivated[k] & (cyc.clear[k] <= day)
        clear = np.where(on, cyc.clear[k], clear)
        st = np.where(on[None], cyc.stages[:, k], st)
    a = np.where(clear >= 0, day - clear, 10**6).astype(np.float64)
    e = np.cumsum(st, axis=0).astype(np.float64)
    w = np.zeros((5, n))
    w[4] = 1.0
    ash = a < e[0]
    bare = (a >= e[0]) & (a < e[1])
    green = (a >= e[1]) & (a < e[2])
    peak = (a >= e[2]) & (a < e[3])
    sen = (a >= e[3]) & (a < e[4])
    fallow = (a >= e[4]) & (a < e[5])
    for m in (ash, bare, green, peak, sen, fallow):
        w[:, m] = 0.0
    w[0, ash], w[1, ash] = 0.7, 0.3
    w[1, bare] = 1.0
    f = _smooth((a - e[1]) / np.maximum(st[2], 1))
    w[1, green], w[2, green] = 1 - f[green], f[green]
    w[2, peak] = 1.0
    f = _smooth((a - e[3]) / np.maximum(st[4], 1))
    w[2, sen], w[3, sen] = 1 - f[sen], f[sen]
    f = _smooth((a - e[4]) / np.maximum(st[5], 1))
    w[3, fallow], w[4, fallow] = 1 - f[fallow], f[fallow]
    return w.astype(np.float32)


def paint_fields(surf: np.ndarray, field_mask: np.ndarray, inv: np.ndarray, cyc: FieldCycles,
                 lib: Library, texture: np.ndarray, day: int) -> None:
    """Paint the crop cycles of the field pixels (``inv`` = plot number per pixel) in place."""
    if not field_mask.any():
        return
    w = _weights(cyc, day)[:, inv]
    tex = texture[:, field_mask]
    cur = surf[:, field_mask]
    out = w[4] * cur + w[0] * MODELLED["char"][:, None] * tex
    out += w[1] * lib.bare[cyc.bare_idx[inv]].T * tex
    out += w[2] * lib.crop[cyc.crop_idx[inv]].T * tex
    out += w[3] * lib.stubble[cyc.stubble_idx[inv]].T * tex
    surf[:, field_mask] = out


# --------------------------------------------------------------------------- burns


@dataclass(frozen=True)
class Burn:
    """One savanna fire: ragged disk (scene pixels) and timeline (days)."""

    site_id: str
    row: float
    col: float
    radius_px: float
    day: int
    lag: int
    tau: float
    severity: float
    key: int

    @property
    def end(self) -> int:
        """Day the scar has faded (about 95 %)."""
        return int(self.day + self.lag + 3 * self.tau)

    def window(self) -> tuple[int, int, int, int]:
        """Bounding window (row0, col0, rows, cols) of the ragged disk."""
        r = int(np.ceil(self.radius_px * 1.6)) + 1
        return int(self.row) - r, int(self.col) - r, 2 * r + 1, 2 * r + 1

    def mask(self, row0: int, col0: int, shape, cls: np.ndarray) -> np.ndarray:
        """Burnt pixels on the window ``(row0, col0, shape)`` given its classes."""
        rows = np.arange(row0, row0 + shape[0])[:, None] + 0.5
        cols = np.arange(col0, col0 + shape[1])[None, :] + 0.5
        d = np.hypot(rows - self.row, cols - self.col) / self.radius_px
        n = fbm(self.key, row0=row0, col0=col0, shape=shape,
                scale=max(self.radius_px / 2.5, 2.0), octaves=3)
        return (d * (1 + 0.6 * n) < 1.0) & np.isin(cls, BURNABLE)


def _classes(look, row0, col0, shape):
    b = base_window(look.layout, row0, col0, shape)
    return final_classes(b.cls, b.parcel, look)


def plan_burns(look: SceneLook, params: RealParams, *, shape, res: float, first: int,
               last: int, years, seed: int) -> list[Burn]:
    """Draw the fires of the scene (deterministic in ``seed``)."""
    rng = np.random.default_rng(mix_key(seed, 801))
    km2 = shape[0] * shape[1] * res**2 / 1e6
    n = max(params.min_burns, int(rng.poisson(params.burns_per_km2 * km2)))
    out: list[Burn] = []
    for _ in range(n * 15):
        if len(out) >= n:
            break
        area = np.exp(rng.uniform(*np.log(params.burn_area_ha))) * 1e4
        area = min(area, 0.15 * shape[0] * shape[1] * res**2)
        year = int(rng.choice(years)) + int(rng.integers(0, 2))
        day = _day(dt.date(year - 1, 12, 1)) + int(rng.integers(0, 120))
        if not first - 30 <= day <= last - 5:
            continue
        b = Burn(site_id=f"burn-{len(out) + 1:03d}", row=float(rng.uniform(0, shape[0])),
                 col=float(rng.uniform(0, shape[1])),
                 radius_px=float(np.sqrt(area / np.pi) / res), day=day,
                 lag=int(rng.integers(3, 16)), tau=float(rng.uniform(8, 25)),
                 severity=float(rng.uniform(0.6, 1.0)), key=mix_key(seed, 802, len(out)))
        r0, c0, h, w = b.window()
        m = b.mask(r0, c0, (h, w), _classes(look, r0, c0, (h, w)))
        rr, cc = np.nonzero(m)
        inside = ((rr + r0 >= 0) & (rr + r0 < shape[0]) & (cc + c0 >= 0)
                  & (cc + c0 < shape[1])).sum()
        if inside >= max(5, 0.2 * area / res**2):
            out.append(b)
    return out


def burn_tile(burns, *, row0: int, col0: int, shape, cls: np.ndarray) -> np.ndarray:
    """Index (1-based, 0 = none) of the latest burn at each pixel of the tile."""
    idx = np.zeros(shape, np.int32)
    order = sorted(range(len(burns)), key=lambda i: burns[i].day)
    for i in order:
        r0, c0, h, w = burns[i].window()
        if r0 >= row0 + shape[0] or c0 >= col0 + shape[1] or r0 + h <= row0 or c0 + w <= col0:
            continue
        m = burns[i].mask(row0, col0, shape, cls)
        idx[m] = i + 1
    return idx


def paint_burns(surf: np.ndarray, idx: np.ndarray, burns, lib: Library, texture: np.ndarray,
                day: int) -> None:
    """Paint the char and the green flush of the fires on ``day`` into ``surf``, in place."""
    m = idx > 0
    if not m.any():
        return
    age = np.array([day - b.day for b in burns], np.float64)
    lag = np.array([b.lag for b in burns], np.float64)
    tau = np.array([b.tau for b in burns])
    sev = np.array([b.severity for b in burns])
    fade = np.where(age < 0, 0.0, np.where(age < lag, 1.0,
                                            np.exp(-np.maximum(age - lag, 0) / tau)))
    flush = np.where(age > lag, 0.3 * (1 - fade) * np.exp(-np.maximum(age - lag, 0)
                                                            / (4 * tau)), 0.0)
    bi = idx[m] - 1
    f_char = (fade * sev)[bi].astype(np.float32)
    f_green = (flush * sev)[bi].astype(np.float32)
    if not (f_char > 0).any() and not (f_green > 0).any():
        return
    tex = texture[:, m]
    green = np.median(lib.crop, axis=0)[:, None] * tex
    cur = surf[:, m]
    cur = cur * (1 - f_char - f_green) + MODELLED["char"][:, None] * f_char + green * f_green
    surf[:, m] = cur
