"""Array and cube faces of the decision: numpy pixels, per-pixel state, xarray cubes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from kpgeo.change._outputs import OUTPUT_FIELDS, finalize
from kpgeo.change._state import F_FIELDS, M_FIELDS, NF, NM, new_state, param_vector
from kpgeo.change.params import ChangeParams
from kpgeo.errors import ConfigError, InsufficientDataWarning, MissingBandError, NoDataError

__all__ = ["DetectorState", "detect_pixels", "detect_changes", "change_dataset",
           "days_since_epoch", "days_to_datetime", "warn_insufficient"]

REQUIRED_BANDS = ("red", "nir", "swir16")


@dataclass
class DetectorState:
    """Per-pixel detector state after some dates (see :mod:`kpgeo.change._state`).

    Attributes
    ----------
    fstate : numpy.ndarray
        float32, shape ``(..., len(F_FIELDS))``.
    mstate : numpy.ndarray
        int32 bit masks, shape ``(..., len(M_FIELDS))``.
    t_last : float
        Day (since 1970-01-01) of the last date fed, NaN when none.
    """

    fstate: np.ndarray
    mstate: np.ndarray
    t_last: float = float("nan")

    @classmethod
    def new(cls, shape: tuple[int, ...]) -> DetectorState:
        """State of pixels of ``shape`` that have seen no date yet."""
        n = int(np.prod(shape)) if shape else 1
        f, m = new_state(n)
        return cls(f.reshape(tuple(shape) + (NF,)), m.reshape(tuple(shape) + (NM,)))

    @property
    def shape(self) -> tuple[int, ...]:
        """Pixel shape (without the field axis)."""
        return self.fstate.shape[:-1]

    def copy(self) -> DetectorState:
        """Independent copy."""
        return DetectorState(self.fstate.copy(), self.mstate.copy(), self.t_last)

    def update(self, *, red: Any, nir: Any, swir16: Any, green: Any = None, blue: Any = None,
               tdays: Any, params: ChangeParams | None = None) -> DetectorState:
        """Feed new dates (time on the **last** axis of each band) in place; returns self.

        Raises
        ------
        kpgeo.errors.ConfigError
            Band shapes disagree with the state, or a date is not after the last one fed.
        """
        from kpgeo.change._decision import run_pixels

        params = _norm_params(params)
        tdays = np.asarray(tdays, dtype="float64")
        n_t = tdays.shape[0] if tdays.ndim == 1 else -1
        bands = _flat_bands(self.shape, n_t, red=red, nir=nir, swir16=swir16, green=green,
                            blue=blue)
        if n_t == 0:
            return self
        if np.any(np.diff(tdays) <= 0):
            raise ConfigError("Observation times must be strictly increasing.")
        if self.t_last == self.t_last and tdays[0] <= self.t_last:
            raise ConfigError(
                f"The first new date (day {tdays[0]:.3f}) is not after the last date already "
                f"in the state (day {self.t_last:.3f}); redo the zone from the start.")
        f = self.fstate.reshape(-1, NF)
        m = self.mstate.reshape(-1, NM)
        run_pixels(f, m, bands["blue"], bands["green"], bands["red"], bands["nir"],
                   bands["swir16"], tdays, param_vector(params))
        self.t_last = float(tdays[-1])
        return self

    def outputs(self, *, params: ChangeParams | None = None,
                t_end: float | None = None) -> np.ndarray:
        """Output values per pixel, shape ``(..., len(OUTPUT_FIELDS))`` float64."""
        params = _norm_params(params)
        t_end = self.t_last if t_end is None else float(t_end)
        out = finalize(self.fstate.reshape(-1, NF), self.mstate.reshape(-1, NM),
                       t_end if t_end == t_end else 0.0, param_vector(params))
        return out.reshape(self.shape + (len(OUTPUT_FIELDS),))


def _norm_params(params: Any) -> ChangeParams:
    if params is None:
        return ChangeParams()
    if not isinstance(params, ChangeParams):
        raise ConfigError(f"params must be a ChangeParams, got {type(params).__name__}.")
    return params


def _flat_bands(shape: tuple[int, ...], n_t: int, **bands: Any) -> dict[str, np.ndarray]:
    """Bands as contiguous float32 (N, T) arrays; missing optional bands are all NaN."""
    n = int(np.prod(shape)) if shape else 1
    out = {}
    for name, a in bands.items():
        if a is None:
            continue
        a = np.asarray(a, dtype="float32")
        if a.shape != tuple(shape) + (n_t,):
            raise ConfigError(f"band {name!r} has shape {a.shape}, expected "
                              f"{tuple(shape) + (n_t,)} (pixels..., time).")
        out[name] = np.ascontiguousarray(a.reshape(n, n_t))
    for name in ("green", "blue"):
        if name not in out:
            out[name] = np.full((n, max(n_t, 0)), np.nan, dtype="float32")
    return out


def detect_pixels(*, red: Any, nir: Any, swir16: Any, green: Any = None, blue: Any = None,
                  tdays: Any, params: ChangeParams | None = None) -> np.ndarray:
    """Run the decision on numpy bands with time as the **last** axis.

    Parameters
    ----------
    red, nir, swir16 : numpy.ndarray
        Surface reflectance (0-1), shape ``(..., T)``; NaN marks a missing
        (cloudy) observation.
    green, blue : numpy.ndarray, optional
        Same shape; omitted: red/SWIR1 water index and no haze test on blue.
    tdays : numpy.ndarray
        Shape ``(T,)``: observation times in days since 1970-01-01, increasing.
    params : ChangeParams, optional
        Defaults to ``ChangeParams()``.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., len(OUTPUT_FIELDS))`` float64, columns
        :data:`kpgeo.change.OUTPUT_FIELDS` (dates as days since 1970-01-01).
    """
    red = np.asarray(red)
    state = DetectorState.new(red.shape[:-1])
    state.update(red=red, nir=nir, swir16=swir16, green=green, blue=blue, tdays=tdays,
                 params=params)
    return state.outputs(params=params)


def days_since_epoch(times: Any) -> np.ndarray:
    """datetime64 values -> float days since 1970-01-01 (UTC)."""
    return np.asarray(times).astype("datetime64[s]").astype("int64") / 86400.0


def days_to_datetime(days: Any) -> np.ndarray:
    """Float days since 1970-01-01 (NaN for none) -> datetime64[ns] (NaT), floored to the day."""
    d = np.asarray(days, dtype="float64")
    out = np.full(d.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    ok = np.isfinite(d)
    # floor: the UTC calendar day of the acquisition (an afternoon pass must not become tomorrow)
    out[ok] = (np.floor(d[ok]).astype("int64") * 86_400_000_000_000).astype("datetime64[ns]")
    return out


def _cube_bands(cube: Any) -> list[Any]:
    """Return the five kernel inputs of a cube (missing green/blue as NaN), time whole."""
    import xarray as xr

    missing = [b for b in REQUIRED_BANDS if b not in cube.data_vars]
    if missing:
        raise MissingBandError(
            f"The cube lacks band(s) {missing}; change detection needs red, nir and swir16 "
            f"(has {sorted(cube.data_vars)}).")
    out = []
    for b in ("red", "nir", "swir16", "green", "blue"):
        a = cube[b] if b in cube.data_vars else xr.full_like(cube["red"], np.nan)
        out.append(a.astype("float32"))
    if any(getattr(a.data, "chunks", None) is not None for a in out):
        out = [a.chunk({"time": -1}) for a in out]
    return out


def detect_changes(cube: Any, *, params: ChangeParams | None = None,
                   warn_threshold: float = 0.0) -> Any:
    """Detect new mining per pixel in a masked reflectance cube.

    Parameters
    ----------
    cube : xarray.Dataset
        From :func:`kpgeo.cube.load_cube`: dims ``(time, y, x)``, at least
        ``red``, ``nir``, ``swir16`` (NaN where not clear); numpy- or
        dask-backed. ``aoi_mask`` is used when present (pixels outside get
        state 255 and do not count in the warning).
    params : ChangeParams, optional
        Detection parameters (default ``ChangeParams()``).
    warn_threshold : float
        Warn when more than this fraction of AOI pixels has insufficient data.

    Returns
    -------
    xarray.Dataset
        On the cube grid (``y``, ``x``, ``spatial_ref`` kept), computed:
        ``first_detected`` (break date), ``alert_date`` (date the pixel was
        first confirmed), ``last_active`` (datetime64[ns], NaT when none),
        ``confidence`` (float32), ``state`` (uint8, :data:`STATE_NAMES`),
        ``reason`` (uint8, :data:`REASON_NAMES`), ``water`` (bool),
        ``n_clear`` (int16), ``mean_ndvi``, ``mean_mndwi``, ``mean_bsi``,
        ``ndvi_drop`` (float32, since the break) and ``pending`` (bool: a
        mining-like run still too short to confirm at the last date).

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

    params = _norm_params(params)
    if not isinstance(cube, xr.Dataset) or "time" not in cube.dims:
        raise ConfigError("detect_changes needs an xarray.Dataset with a `time` dimension "
                          "(see kpgeo.cube.load_cube).")
    if cube.sizes["time"] == 0:
        raise NoDataError("The cube has no dates; nothing to detect.")
    cube = cube.sortby("time")
    tdays = days_since_epoch(cube["time"].values)

    def _block(red, nir, swir, green, blue):
        out = detect_pixels(red=red, nir=nir, swir16=swir, green=green, blue=blue,
                            tdays=tdays, params=params)
        return out.astype("float32")  # day numbers stay exact to ~3 minutes

    res = xr.apply_ufunc(
        _block, *_cube_bands(cube),
        input_core_dims=[["time"]] * 5, output_core_dims=[["_out"]],
        dask="parallelized", output_dtypes=["float32"],
        dask_gufunc_kwargs={"output_sizes": {"_out": len(OUTPUT_FIELDS)}},
    )
    arr = res.transpose(..., "_out").compute().values
    coords = {k: v for k, v in cube.coords.items() if "time" not in v.dims}
    inside = np.asarray(cube["aoi_mask"].values, dtype=bool) if "aoi_mask" in cube else None
    ds = change_dataset(arr, dims=res.dims[:-1], coords=coords, inside=inside)
    ds.attrs = {"params": repr(params), "time_start": str(cube["time"].values[0])[:10],
                "time_end": str(cube["time"].values[-1])[:10]}
    _warn_insufficient(ds, inside, params, warn_threshold)
    return ds


def change_dataset(arr: np.ndarray, *, dims: tuple, coords: dict,
                   inside: np.ndarray | None = None) -> Any:
    """Typed output Dataset from an output array ``(y, x, len(OUTPUT_FIELDS))``."""
    import xarray as xr

    from kpgeo.change._decision import R_INSUFFICIENT

    col = {name: arr[..., i] for i, name in enumerate(OUTPUT_FIELDS)}
    state = col["state"].astype("uint8")
    reason = col["reason"].astype("uint8")
    if inside is not None:
        inside = np.broadcast_to(inside, state.shape)
        state = np.where(inside, state, np.uint8(255))
        reason = np.where(inside, reason, np.uint8(R_INSUFFICIENT))
    data = {
        "first_detected": days_to_datetime(col["first_detected"]),
        "alert_date": days_to_datetime(col["alert_date"]),
        "last_active": days_to_datetime(col["last_active"]),
        "confidence": np.nan_to_num(col["confidence"], nan=0.0).astype("float32"),
        "state": state,
        "reason": reason,
        "water": col["water"] == 1.0,
        "water_share": np.nan_to_num(col["water_share"], nan=0.0).astype("float32"),
        "baseline_class": col["baseline_class"].astype("uint8"),
        "n_clear": col["n_clear"].astype("int16"),
        "mean_ndvi": col["mean_ndvi"].astype("float32"),
        "mean_mndwi": col["mean_mndwi"].astype("float32"),
        "mean_bsi": col["mean_bsi"].astype("float32"),
        "ndvi_drop": col["ndvi_drop"].astype("float32"),
        "pending": (col["pending"] == 1.0) & (state == 0),
    }
    return xr.Dataset({k: (dims, v) for k, v in data.items()}, coords=coords)


def _warn_insufficient(ds: Any, inside: Any, params: ChangeParams, threshold: float) -> None:
    state = ds["state"].values
    inside = np.ones(state.shape, bool) if inside is None else np.broadcast_to(inside,
                                                                              state.shape)
    warn_insufficient(int(((state == 255) & inside).sum()), int(inside.sum()), params=params,
                      threshold=threshold, stacklevel=4)


def warn_insufficient(n_insufficient: int, n_inside: int, *, params: ChangeParams,
                      threshold: float = 0.0, stacklevel: int = 2) -> None:
    """Warn when more than ``threshold`` of the AOI pixels have insufficient data (state 255)."""
    if not n_inside:
        return
    frac = n_insufficient / n_inside
    if frac > threshold:
        warnings.warn(
            f"{frac:.1%} of the AOI pixels have fewer than {params.min_clear_obs} clear "
            f"observations (state 255, 'insufficient data'); add dates or lower "
            f"ChangeParams.min_clear_obs.", InsufficientDataWarning, stacklevel=stacklevel)


#: names of the state fields, for stores that persist a :class:`DetectorState`
STATE_FIELDS = {"fstate": F_FIELDS, "mstate": M_FIELDS}
