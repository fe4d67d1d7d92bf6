"""Diamond production capacity of a zone from its mined area, as a Monte Carlo distribution.

The Kimberley Process asks what a zone *can* produce, to set beside what it
exports. Following the USGS assessments (Chirico et al. 2010, 2012, 2013;
DeWitt et al. 2018 — full citations in ``docs/area_estimation.md``), two
estimates are made per zone and period, in carats per year:

``volume_grade``
    area newly worked per year (ha/yr) x 10,000 m2/ha x worked gravel
    thickness (m) x grade (ct/m3) x recovery (fraction of the carats in the
    gravel that are recovered);
``miners_days``
    active mining area (ha) x miners per hectare x working days per year x
    gravel washed per miner-day (m3) x grade (ct/m3) x recovery.

Every parameter is a range (:class:`ParamRange`: uniform, or triangular
with a mode) with its unit and source. The ranges are drawn once per run
(:meth:`ProductionParams.draws`), so every zone of a run shares the same
parameter uncertainty, and the capacity is reported as the median and the
90 % interval (5th-95th percentile) of the draws.

The **defaults are placeholders**: the per-parameter values of the USGS
reports could not be read for this version (see the documentation), so
every default carries ``placeholder=True`` and :func:`production_capacity`
warns (:class:`PlaceholderParameterWarning`) and flags its rows while any
placeholder is in use. Override them in the pipeline file's
``[production]`` table (:meth:`ProductionParams.from_mapping`).

The mined areas come through one adapter, :func:`mining_area_by_period`,
which reads a run's footprints today and can read the site register later.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import ConfigError, KpgeoWarning

__all__ = [
    "ParamRange",
    "ParamSpec",
    "PARAM_SPECS",
    "ProductionParams",
    "PlaceholderParameterWarning",
    "METHODS",
    "mining_area_by_period",
    "read_footprints",
    "production_capacity",
    "capacity_draws",
    "read_exports",
    "compare_exports",
    "production_summary",
]

#: estimation methods, in report order
METHODS = ("volume_grade", "miners_days")


class PlaceholderParameterWarning(KpgeoWarning):
    """Production capacity was computed with placeholder (unsourced) parameter ranges."""


@dataclass(frozen=True)
class ParamRange:
    """A parameter's uncertainty: uniform on ``[low, high]``, triangular if ``mode`` is set."""

    low: float
    high: float
    mode: float | None = None
    source: str = ""
    placeholder: bool = False

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random values (constant when ``low == high``)."""
        if self.low == self.high:
            return np.full(n, float(self.low))
        if self.mode is not None:
            return rng.triangular(self.low, self.mode, self.high, n)
        return rng.uniform(self.low, self.high, n)


@dataclass(frozen=True)
class ParamSpec:
    """What a parameter means, its unit, the range it must lie in and its default."""

    description: str
    unit: str
    bounds: tuple[float, float]
    """Admissible range; overrides outside it are refused (see docs/area_estimation.md)."""
    default: ParamRange


_PLACEHOLDER = ("PLACEHOLDER - not taken from a source; replace with a value from the USGS "
                "report for the zone (see docs/area_estimation.md)")

#: parameter key -> spec; defaults are placeholders (see the module docstring)
PARAM_SPECS: dict[str, ParamSpec] = {
    "gravel_thickness_m": ParamSpec(
        "thickness of the diamondiferous gravel worked under each mined hectare", "m",
        (0.05, 10.0), ParamRange(0.3, 1.5, source=_PLACEHOLDER, placeholder=True)),
    "grade_ct_per_m3": ParamSpec(
        "diamond grade of the worked gravel", "ct/m3", (0.001, 5.0),
        ParamRange(0.05, 0.3, source=_PLACEHOLDER, placeholder=True)),
    "recovery": ParamSpec(
        "fraction of the carats in the gravel that artisanal processing recovers", "fraction",
        (0.05, 1.0), ParamRange(0.5, 0.8, source=_PLACEHOLDER, placeholder=True)),
    "miners_per_ha": ParamSpec(
        "artisanal miners working per hectare of active mining", "miners/ha", (0.1, 2000.0),
        ParamRange(20.0, 100.0, source=_PLACEHOLDER, placeholder=True)),
    "working_days_per_year": ParamSpec(
        "days per year a miner works (seasonal: the wet season floods pits)", "days/yr",
        (1.0, 366.0), ParamRange(150.0, 250.0, source=_PLACEHOLDER, placeholder=True)),
    "gravel_m3_per_miner_day": ParamSpec(
        "gravel a miner digs and washes per working day", "m3/miner-day", (0.01, 10.0),
        ParamRange(0.1, 0.5, source=_PLACEHOLDER, placeholder=True)),
}


def _check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _parse_range(key: str, value: Any, where: str) -> ParamRange:
    """Parse a number, ``[low, high]`` or a table ``{low, high, mode, source}``."""
    spec = PARAM_SPECS[key]
    name = f"{where}.{key}"
    source = "user override (pipeline [production] table)"
    if isinstance(value, Mapping):
        extra = sorted(set(value) - {"low", "high", "mode", "source"})
        if extra or not {"low", "high"} <= set(value):
            raise ConfigError(f"{name}: a table needs low and high (and optionally mode, "
                              f"source); unknown keys {extra}")
        low, high = (_check_number(value[k], f"{name}.{k}") for k in ("low", "high"))
        mode = _check_number(value["mode"], f"{name}.mode") if "mode" in value else None
        source = str(value.get("source") or source)
    elif isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ConfigError(f"{name}: a range is [low, high], got {value!r}")
        low, high = (_check_number(v, name) for v in value)
        mode = None
    else:
        low = high = _check_number(value, name)
        mode = None
    lo, hi = spec.bounds
    for label, v in (("low", low), ("high", high), ("mode", mode)):
        if v is not None and not lo <= v <= hi:
            raise ConfigError(
                f"{name} {label} = {v!r} {spec.unit} is outside the documented range "
                f"[{lo}, {hi}] {spec.unit} ({spec.description}); see docs/area_estimation.md")
    if low > high:
        raise ConfigError(f"{name}: low {low} is greater than high {high}")
    if mode is not None and not low <= mode <= high:
        raise ConfigError(f"{name}: mode {mode} is not between low {low} and high {high}")
    return ParamRange(low, high, mode, source=source, placeholder=False)


@dataclass(frozen=True)
class ProductionParams:
    """Parameter ranges of the production-capacity estimate, and the Monte Carlo settings."""

    ranges: Mapping[str, ParamRange] = field(
        default_factory=lambda: {k: s.default for k, s in PARAM_SPECS.items()})
    n_draws: int = 20_000
    seed: int = 0

    def __post_init__(self) -> None:
        missing = sorted(set(PARAM_SPECS) - set(self.ranges))
        unknown = sorted(set(self.ranges) - set(PARAM_SPECS))
        if missing or unknown:
            raise ConfigError(f"production parameters: missing {missing}, unknown {unknown}")
        if isinstance(self.n_draws, bool) or not isinstance(self.n_draws, int) or not (
                100 <= self.n_draws <= 10_000_000):
            raise ConfigError(f"production n_draws must be an integer in [100, 10000000], "
                              f"got {self.n_draws!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"production seed must be an integer, got {self.seed!r}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, *,
                     where: str = "[production]") -> ProductionParams:
        """Build from a ``[production]`` TOML table, validated.

        Each parameter key of :data:`PARAM_SPECS` may be a number (fixed), a
        ``[low, high]`` list (uniform) or a table ``{low, high, mode, source}``
        (triangular when ``mode`` is given); ``n_draws`` and ``seed`` set the
        Monte Carlo. Keys not given keep their defaults.

        Raises
        ------
        ConfigError
            Unknown key, wrong type, ``low > high``, or a value outside the
            parameter's documented range; the message names the key.
        """
        mapping = dict(mapping or {})
        if not isinstance(mapping, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(mapping) - set(PARAM_SPECS) - {"n_draws", "seed"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; valid: "
                              f"{sorted(PARAM_SPECS) + ['n_draws', 'seed']}")
        ranges = {k: s.default for k, s in PARAM_SPECS.items()}
        for key in PARAM_SPECS:
            if key in mapping:
                ranges[key] = _parse_range(key, mapping[key], where)
        kw = {k: mapping[k] for k in ("n_draws", "seed") if k in mapping}
        try:
            return cls(ranges=ranges, **kw)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc

    @property
    def placeholders(self) -> list[str]:
        """Keys still at their placeholder defaults."""
        return [k for k, r in self.ranges.items() if r.placeholder]

    def draws(self) -> dict[str, np.ndarray]:
        """``n_draws`` values of every parameter (reproducible from ``seed``)."""
        rng = np.random.default_rng(self.seed)
        return {k: self.ranges[k].draw(rng, self.n_draws) for k in PARAM_SPECS}

    def fixed(self, **values: float) -> ProductionParams:
        """Copy with the given parameters fixed to single values (validated)."""
        ranges = dict(self.ranges)
        for key, value in values.items():
            if key not in PARAM_SPECS:
                raise ConfigError(f"unknown production parameter {key!r}")
            ranges[key] = _parse_range(key, value, "fixed")
        return replace(self, ranges=ranges)


# --------------------------------------------------------------------------- mined area


def read_footprints(run_dir: str | os.PathLike) -> Any:
    """Footprints of a run: ``OUT/footprints.parquet``, else every ``OUT/zones/*/``.

    Raises
    ------
    ConfigError
        No footprints file under ``run_dir``.
    """
    import geopandas as gpd

    run_dir = Path(run_dir)
    top = run_dir / "footprints.parquet"
    paths = [top] if top.is_file() else sorted(run_dir.glob("zones/*/footprints.parquet"))
    if not paths:
        raise ConfigError(f"{run_dir}: no footprints.parquet (nor zones/*/footprints.parquet); "
                          "pass the output folder of `kpgeo run` or `kpgeo detect`")
    frames = []
    for p in paths:
        fp = gpd.read_parquet(p)
        if "zone" not in fp or fp["zone"].isna().all():
            fp["zone"] = p.parent.name if p != top else run_dir.name
        frames.append(pd.DataFrame(fp.drop(columns="geometry")))
    return pd.concat(frames, ignore_index=True)


def mining_area_by_period(footprints: Any, *, freq: str = "YS",
                          inside_only: bool = True) -> pd.DataFrame:
    """Sum new and active mined area per zone and period (the adapter to the site register).

    A footprint is *new* in the period of its ``first_detected`` date and
    *active* in every period that overlaps ``[first_detected, last_active]``.

    Parameters
    ----------
    footprints
        Table with ``zone``, ``area_ha``, ``first_detected``, ``last_active``
        (and ``inside_zone``), e.g. :func:`read_footprints`.
    freq
        Period: a pandas offset alias (``YS`` year, ``QS`` quarter, ``MS`` month).
    inside_only
        Count only footprints inside their zone.

    Returns
    -------
    pandas.DataFrame
        zone, period_start, period_end (inclusive dates), years (period
        length), new_ha, active_ha.
    """
    from kpgeo.io import to_utc_naive

    need = {"zone", "area_ha", "first_detected", "last_active"}
    missing = sorted(need - set(footprints.columns))
    if missing:
        raise ConfigError(f"footprints lack column(s) {missing}")
    fp = pd.DataFrame(footprints)
    if inside_only and "inside_zone" in fp:
        fp = fp[fp["inside_zone"].astype(bool)]
    first_s = to_utc_naive(fp["first_detected"], what="first_detected").reset_index(drop=True)
    last_s = to_utc_naive(fp["last_active"], what="last_active").reset_index(drop=True)
    last_s = last_s.fillna(first_s)
    cols = ["zone", "period_start", "period_end", "years", "new_ha", "active_ha"]
    if freq not in ("YS", "QS", "MS"):
        raise ConfigError(f"period {freq!r} must be YS (year), QS (quarter) or MS (month)")
    if not len(fp) or first_s.isna().all():
        return pd.DataFrame(columns=cols)
    first, last = first_s.to_numpy(), last_s.to_numpy()
    starts = pd.date_range(first_s.min().to_period(freq[0]).start_time, last_s.max(), freq=freq)
    rows = []
    area = fp["area_ha"].to_numpy(float)
    for zone in sorted(fp["zone"].astype(str).unique()):
        z = (fp["zone"].astype(str) == zone).to_numpy()
        for s in starts:
            e = s + pd.tseries.frequencies.to_offset(freq) - pd.Timedelta(days=1)
            new = z & (first >= s) & (first < e + pd.Timedelta(days=1))
            active = z & (first < e + pd.Timedelta(days=1)) & (last >= s)
            rows.append({"zone": zone, "period_start": s.date().isoformat(),
                         "period_end": e.date().isoformat(),
                         "years": ((e - s).days + 1) / 365.25,
                         "new_ha": float(area[new].sum()), "active_ha": float(area[active].sum())})
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- capacity


def capacity_draws(areas: pd.DataFrame, draws: Mapping[str, np.ndarray]) -> dict[tuple, np.ndarray]:
    """Carats per year for every (zone, period_start, method): one value per parameter draw."""
    recovered_ct_per_m3 = draws["grade_ct_per_m3"] * draws["recovery"]
    vg = 1e4 * draws["gravel_thickness_m"] * recovered_ct_per_m3
    md = (draws["miners_per_ha"] * draws["working_days_per_year"]
          * draws["gravel_m3_per_miner_day"] * recovered_ct_per_m3)
    out = {}
    for row in areas.itertuples(index=False):
        out[(row.zone, row.period_start, "volume_grade")] = row.new_ha / row.years * vg
        out[(row.zone, row.period_start, "miners_days")] = row.active_ha * md
    return out


def _summary(values: np.ndarray) -> dict[str, float]:
    p05, p50, p95 = np.percentile(values, [5, 50, 95])
    return {"median_ct_per_year": p50, "p05_ct_per_year": p05, "p95_ct_per_year": p95}


def production_capacity(areas: pd.DataFrame,
                        params: ProductionParams | None = None) -> pd.DataFrame:
    """Estimate capacity per zone, period and method (median and 90 % interval, ct/yr).

    Parameters
    ----------
    areas
        From :func:`mining_area_by_period`.
    params
        Parameter ranges; default :class:`ProductionParams()` (placeholders).

    Returns
    -------
    pandas.DataFrame
        zone, period_start, period_end, method, area_ha (new area per year for
        ``volume_grade``, active area for ``miners_days``), median_ct_per_year,
        p05_ct_per_year, p95_ct_per_year, placeholder_params (the keys still
        at placeholder values, ``""`` when none).

    Warns
    -----
    PlaceholderParameterWarning
        Placeholder parameters were used.
    """
    params = params or ProductionParams()
    if params.placeholders:
        warnings.warn(f"production capacity uses placeholder ranges for "
                      f"{', '.join(params.placeholders)}: figures are illustrative, not "
                      "estimates; set sourced values in the [production] table",
                      PlaceholderParameterWarning, stacklevel=2)
    sims = capacity_draws(areas, params.draws())
    used = {"volume_grade": ("gravel_thickness_m", "grade_ct_per_m3", "recovery"),
            "miners_days": ("miners_per_ha", "working_days_per_year", "gravel_m3_per_miner_day",
                            "grade_ct_per_m3", "recovery")}
    rows = []
    for row in areas.itertuples(index=False):
        for method in METHODS:
            area = row.new_ha / row.years if method == "volume_grade" else row.active_ha
            rows.append({"zone": row.zone, "period_start": row.period_start,
                         "period_end": row.period_end, "method": method, "area_ha": area}
                        | _summary(sims[(row.zone, row.period_start, method)])
                        | {"placeholder_params": ",".join(k for k in used[method]
                                                          if k in params.placeholders)})
    return pd.DataFrame(rows, columns=["zone", "period_start", "period_end", "method", "area_ha",
                                       "median_ct_per_year", "p05_ct_per_year",
                                       "p95_ct_per_year", "placeholder_params"])


def read_exports(path: str | os.PathLike) -> pd.DataFrame:
    """Read KP export statistics: a CSV with ``year``, ``carats`` (and optionally ``country``).

    Raises
    ------
    ConfigError
        Unreadable file, missing columns, non-numeric or negative values.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{path}: cannot read the export statistics ({exc})") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("year", "carats") if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; expected year, carats "
                          "[, country (ISO3, e.g. CAF, CIV)]")
    for col in ("year", "carats"):
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any() or (values < 0).any():
            bad = df.loc[values.isna() | (values < 0), col].head(3).tolist()
            raise ConfigError(f"{path}: column {col} needs numbers >= 0, got {bad}")
        df[col] = values
    df["year"] = df["year"].astype(int)
    if "country" in df:
        df["country"] = df["country"].astype(str).str.strip().str.upper()
    return df


def _zone_country(zone: str) -> str:
    from kpgeo.errors import UnknownZoneError
    from kpgeo.zones import get_zone

    try:
        return get_zone(zone).country
    except UnknownZoneError:
        return zone.split("-")[0].upper()


def compare_exports(areas: pd.DataFrame, exports: pd.DataFrame,
                    params: ProductionParams | None = None) -> pd.DataFrame:
    """Set export figures beside the summed capacity of the country's zones, per year.

    Capacity draws are summed over the zones of a country (the same
    parameter draw for every zone) for yearly periods; a year is flagged when
    exports exceed the 95th percentile of that sum, i.e. lie above the 90 %
    interval of the estimated capacity.

    Parameters
    ----------
    areas
        From :func:`mining_area_by_period` with ``freq="YS"``.
    exports
        From :func:`read_exports`; without a ``country`` column every zone counts.
    params
        Parameter ranges (default placeholders).

    Returns
    -------
    pandas.DataFrame
        country, year, method, exports_ct, median_ct_per_year, p05_ct_per_year,
        p95_ct_per_year, exceeds_capacity; years without mapped area are left out.
    """
    params = params or ProductionParams()
    sims = capacity_draws(areas, params.draws())
    a = areas.assign(year=pd.to_datetime(areas["period_start"]).dt.year,
                     country=[_zone_country(z) for z in areas["zone"]])
    rows = []
    by_country = "country" in exports
    for exp in exports.itertuples(index=False):
        sel = a[(a["year"] == exp.year) & ((a["country"] == exp.country) if by_country else True)]
        if sel.empty:
            continue
        for method in METHODS:
            total = sum(sims[(r.zone, r.period_start, method)] for r in sel.itertuples())
            s = _summary(total)
            rows.append({"country": exp.country if by_country else "all zones", "year": exp.year,
                         "method": method, "exports_ct": float(exp.carats)} | s
                        | {"exceeds_capacity": bool(exp.carats > s["p95_ct_per_year"])})
    return pd.DataFrame(rows, columns=["country", "year", "method", "exports_ct",
                                       "median_ct_per_year", "p05_ct_per_year",
                                       "p95_ct_per_year", "exceeds_capacity"])


def production_summary(capacity: pd.DataFrame) -> pd.DataFrame:
    """One row per zone and period for the bulletin, both methods side by side.

    Returns
    -------
    pandas.DataFrame
        zone, period_start, period_end and, per method, ``<method>_median``,
        ``<method>_p05``, ``<method>_p95`` (ct/yr) and ``<method>_text``
        (``"12,300 ct/yr (90 % interval 4,100-31,000)"``), plus
        ``placeholder`` (True when any placeholder parameter was used).
    """
    keys = ["zone", "period_start", "period_end"]
    out = capacity[keys].drop_duplicates().reset_index(drop=True)
    for method in METHODS:
        c = capacity[capacity["method"] == method].set_index(keys)
        m = c.reindex(pd.MultiIndex.from_frame(out[keys]))
        out[f"{method}_median"] = m["median_ct_per_year"].to_numpy()
        out[f"{method}_p05"] = m["p05_ct_per_year"].to_numpy()
        out[f"{method}_p95"] = m["p95_ct_per_year"].to_numpy()
        out[f"{method}_text"] = [f"{a:,.0f} ct/yr (90 % interval {b:,.0f}-{c_:,.0f})"
                                 for a, b, c_ in zip(out[f"{method}_median"],
                                                     out[f"{method}_p05"],
                                                     out[f"{method}_p95"], strict=True)]
    flags = capacity.groupby(keys)["placeholder_params"].agg(lambda s: any(s.astype(bool)))
    out["placeholder"] = flags.reindex(pd.MultiIndex.from_frame(out[keys])).to_numpy()
    return out
