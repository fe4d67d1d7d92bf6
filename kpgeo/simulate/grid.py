"""Scene grid (UTM, 10 m) and acquisition calendar of a simulated scene."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from kpgeo.errors import ConfigError

__all__ = ["SceneGrid", "make_grid", "make_calendar", "Calendar", "parse_date"]

_MAX_SIDE = 100_000


@dataclass(frozen=True)
class SceneGrid:
    """Pixel grid of a scene: UTM CRS, top-left corner, resolution and shape (rows, cols)."""

    epsg: int
    x0: float
    """Easting of the top-left corner (m)."""
    y0: float
    """Northing of the top-left corner (m)."""
    resolution: float
    shape: tuple[int, int]

    @property
    def crs(self) -> str:
        """CRS as ``EPSG:<code>``."""
        return f"EPSG:{self.epsg}"

    @property
    def transform(self):
        """Affine transform (top-left anchored)."""
        from affine import Affine

        return Affine(self.resolution, 0.0, self.x0, 0.0, -self.resolution, self.y0)

    def transform_at(self, factor: int = 1):
        """Affine transform of the grid coarsened by ``factor`` (e.g. 2 for 20 m SCL)."""
        from affine import Affine

        r = self.resolution * factor
        return Affine(r, 0.0, self.x0, 0.0, -r, self.y0)

    def shape_at(self, factor: int = 1) -> tuple[int, int]:
        """Shape of the grid coarsened by ``factor`` (ceil)."""
        return (-(-self.shape[0] // factor), -(-self.shape[1] // factor))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in metres."""
        h, w = self.shape
        return (self.x0, self.y0 - h * self.resolution, self.x0 + w * self.resolution, self.y0)

    @property
    def area_ha(self) -> float:
        """Scene area in hectares."""
        return self.shape[0] * self.shape[1] * self.resolution**2 / 1e4

    def window_transform(self, row0: int, col0: int):
        """Transform of a window whose top-left pixel is ``(row0, col0)``."""
        from affine import Affine

        r = self.resolution
        return Affine(r, 0.0, self.x0 + col0 * r, 0.0, -r, self.y0 - row0 * r)

    def to_lonlat(self, geom: Any) -> Any:
        """Reproject a shapely geometry from the grid CRS to EPSG:4326."""
        from kpgeo.zones import to_crs

        return to_crs(geom, self.epsg, 4326)

    def footprint_lonlat(self):
        """Scene footprint polygon in EPSG:4326."""
        from shapely.geometry import box

        return self.to_lonlat(box(*self.bounds).segmentize(self.resolution * 64))


def make_grid(
    center_lonlat: tuple[float, float], shape: tuple[int, int], resolution: float
) -> SceneGrid:
    """Grid of ``shape`` centred on ``center_lonlat``, snapped to 20 m multiples (S2-like)."""
    from pyproj import Transformer
    from shapely.geometry import Point

    from kpgeo.zones import utm_crs_for

    lon, lat = center_lonlat
    epsg = utm_crs_for(Point(lon, lat)).to_epsg()
    tr = Transformer.from_crs(4326, epsg, always_xy=True)
    cx, cy = tr.transform(lon, lat)
    h, w = shape
    snap = 2.0 * resolution
    x0 = float(np.round((cx - w * resolution / 2.0) / snap) * snap)
    y0 = float(np.round((cy + h * resolution / 2.0) / snap) * snap)
    return SceneGrid(epsg=epsg, x0=x0, y0=y0, resolution=float(resolution), shape=(h, w))


def check_shape(shape: Any) -> tuple[int, int]:
    """Validate a (rows, cols) shape."""
    try:
        if isinstance(shape, int | np.integer):
            shape = (int(shape), int(shape))
        h, w = (int(v) for v in shape)
        if any(float(v) != int(v) for v in shape):
            raise ValueError
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"shape must be (rows, cols) integers, got {shape!r}") from exc
    if not (16 <= h <= _MAX_SIDE and 16 <= w <= _MAX_SIDE):
        raise ConfigError(
            f"shape {shape!r} out of range: each side must be 16..{_MAX_SIDE} pixels"
        )
    return h, w


def parse_date(value: Any, name: str) -> dt.date:
    """Parse an ISO date (or date/datetime/numpy datetime64) into :class:`datetime.date`."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return dt.date.fromisoformat(str(value.astype("datetime64[D]")))
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} is not an ISO date (YYYY-MM-DD)") from exc


@dataclass(frozen=True)
class Calendar:
    """Acquisition calendar: dates, instants (UTC) and platforms, in date order."""

    dates: tuple[dt.date, ...]
    times: tuple[dt.datetime, ...]
    platforms: tuple[str, ...]

    @property
    def days(self) -> np.ndarray:
        """Days since 1970-01-01 of each date (int64)."""
        return np.array([d.toordinal() - 719163 for d in self.dates], np.int64)

    @property
    def doy(self) -> np.ndarray:
        """Day of year of each date."""
        return np.array([d.timetuple().tm_yday for d in self.dates], np.int64)


def make_calendar(
    start: Any, end: Any, n_dates: int, *, lon: float, rng: np.random.Generator,
    gap_fraction: float = 0.0,
) -> Calendar:
    """Irregular acquisition dates: the 5-day Sentinel-2 revisit, randomly subsampled.

    Candidates alternate Sentinel-2A / 2B; ``n_dates`` of them are kept at
    random, which leaves realistic gaps. With ``gap_fraction`` > 0, about that
    share of the candidates is first lost in outages of 2-12 consecutive
    revisits (never so many that fewer than ``n_dates`` remain). The overpass
    time is 10:30 local solar time (UTC = 10:30 - lon / 15 h) plus a few seconds.
    """
    d0, d1 = parse_date(start, "start"), parse_date(end, "end")
    if d1 <= d0:
        raise ConfigError(f"end ({d1}) must be after start ({d0})")
    try:
        n = int(n_dates)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"n_dates must be an integer, got {n_dates!r}") from exc
    span = (d1 - d0).days
    candidates = [d0 + dt.timedelta(days=k) for k in range(0, span + 1, 5)]
    if not 1 <= n <= len(candidates):
        raise ConfigError(
            f"n_dates={n_dates!r} out of range: between {d0} and {d1} the 5-day revisit gives "
            f"1..{len(candidates)} dates"
        )
    if gap_fraction > 0:
        keep = np.ones(len(candidates), bool)
        target = min(int(gap_fraction * len(candidates)), len(candidates) - n)
        while (~keep).sum() < target:
            k0 = int(rng.integers(len(candidates)))
            run = keep[k0:k0 + int(rng.integers(2, 13))]
            run[: max(0, min(len(run), int(keep.sum()) - n))] = False
        pool = np.flatnonzero(keep)
        idx = np.sort(pool[rng.choice(len(pool), size=n, replace=False)])
    else:
        idx = np.sort(rng.choice(len(candidates), size=n, replace=False))
    hours = 10.5 - lon / 15.0
    dates, times, platforms = [], [], []
    for i in idx:
        d = candidates[int(i)]
        secs = int(hours * 3600) + int(rng.integers(0, 60))
        t = dt.datetime(d.year, d.month, d.day) + dt.timedelta(seconds=secs)
        dates.append(d)
        times.append(t)
        platforms.append("sentinel-2a" if i % 2 == 0 else "sentinel-2b")
    return Calendar(tuple(dates), tuple(times), tuple(platforms))
