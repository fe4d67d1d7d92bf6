"""Area and accuracy from a labelled stratified sample (Olofsson et al. 2014; Stehman 2014).

:func:`stratified_estimate` is the stratified estimator for a stratified
random sample whose strata need not be the map classes (Stehman 2014): every
quantity is a stratified total ``Y = sum_h N_h ybar_h`` of a per-unit
indicator ``y`` or a ratio of two such totals, with the usual variance
estimators (Stehman 2014, Eqs. 25 and 28; Cochran 1977)::

    V(Y) = sum_h N_h**2 (1 - f_h) s2_yh / n_h
    V(R) = sum_h N_h**2 (1 - f_h) (s2_yh + R**2 s2_xh - 2 R s_xyh) / n_h / X**2

with ``f_h = n_h / N_h`` (the finite population correction, off by default
as in Olofsson et al. 2014). The indicators are: reference class ``k`` (area
proportion of class ``k``), map ``i`` and reference ``j`` (a cell of the
error matrix in area proportions), map == reference (overall accuracy), and
the ratios for user's accuracy (correct / mapped ``i``) and producer's
accuracy (correct / reference ``j``). When the strata are the map classes
these reduce exactly to Olofsson et al. (2014) Eqs. (1)-(7) and (9)-(12):
``tests/test_area.py`` reproduces that paper's worked example to its printed
digits.

:func:`estimate_sheet` applies it to a labelling sheet (:mod:`kpgeo.sampling`)
per zone and period and returns the tables the bulletin and time series use:
the area of each class (mapped, estimated, SE, 95 % CI), the accuracies with
their SEs and the estimated error matrix. :func:`zone_area_summary` is the
one-line-per-zone table for the bulletin ("mapped X ha; estimated Y ha ± Z").
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpgeo.errors import ConfigError, KpgeoWarning

log = logging.getLogger(__name__)

__all__ = [
    "Z95",
    "StratifiedEstimate",
    "SheetEstimates",
    "SmallStratumWarning",
    "stratified_estimate",
    "read_labels",
    "estimate_sheet",
    "zone_area_summary",
    "run_area_estimates",
    "sheet_paths",
    "ALL_MINING",
]

#: half-width multiplier of the 95 % confidence interval, as in Olofsson et al. (2014)
Z95 = 1.96
#: name of the combined class new + stable mining in the tables
ALL_MINING = "all mining"


class SmallStratumWarning(KpgeoWarning):
    """A stratum has a single labelled unit: its variance (and the SEs) cannot be estimated."""


class _Design:
    """Per-stratum bookkeeping for stratified totals and ratios of unit indicators."""

    def __init__(self, strata: np.ndarray, sizes: dict[str, float], fpc: bool):
        names = list(sizes)
        self.code = pd.Index(names).get_indexer(pd.Index(strata))
        if (self.code < 0).any():
            bad = sorted(set(np.asarray(strata)[self.code < 0].tolist()))
            raise ConfigError(f"sample units in strata {bad} that have no stratum size; "
                              f"known strata: {names}")
        self.N = np.array([float(sizes[k]) for k in names])
        self.n = np.bincount(self.code, minlength=len(names)).astype(float)
        empty = [k for k, n_h, N_h in zip(names, self.n, self.N, strict=True)
                 if n_h == 0 and N_h > 0]
        if empty:
            raise ConfigError(f"strata {empty} have pixels but no labelled unit; "
                              "the estimator needs at least one per non-empty stratum")
        if (self.n > self.N).any():
            raise ConfigError("a stratum has more sample units than pixels: stratum sizes do "
                              "not match the sample")
        self.names = names
        self.f = np.where(fpc & (self.N > 0), self.n / np.where(self.N > 0, self.N, 1), 0.0)
        self.single = [k for k, n_h in zip(names, self.n, strict=True) if n_h == 1]

    def _moments(self, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
        k = len(self.names)
        n = np.where(self.n > 0, self.n, 1)
        my = np.bincount(self.code, y, k) / n
        mx = np.bincount(self.code, x, k) / n
        d = np.where(self.n > 1, self.n - 1, np.nan)
        syy = (np.bincount(self.code, y * y, k) - self.n * my * my) / d
        sxx = (np.bincount(self.code, x * x, k) - self.n * mx * mx) / d
        sxy = (np.bincount(self.code, x * y, k) - self.n * mx * my) / d
        # a stratum of one unit has no variance estimate: NaN; strata without units add 0
        return my, mx, syy, sxx, sxy

    def total(self, y: np.ndarray) -> tuple[float, float]:
        """Stratified total of ``y`` and its variance."""
        y = np.asarray(y, float)
        my, _, syy, _, _ = self._moments(y, y)
        has = self.n > 0
        var = np.where(has, self.N**2 * (1 - self.f) * syy / np.where(has, self.n, 1), 0.0)
        return float(np.sum(self.N * my)), max(float(np.sum(var)), 0.0)

    def ratio(self, y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
        """Ratio of the stratified totals of ``y`` and ``x`` and its variance (NaN if X = 0)."""
        y, x = np.asarray(y, float), np.asarray(x, float)
        my, mx, syy, sxx, sxy = self._moments(y, x)
        big_x = float(np.sum(self.N * mx))
        if big_x == 0:
            return float("nan"), float("nan")
        r = float(np.sum(self.N * my)) / big_x
        has = self.n > 0
        term = np.where(has, self.N**2 * (1 - self.f) * (syy + r * r * sxx - 2 * r * sxy)
                        / np.where(has, self.n, 1), 0.0)
        return r, max(float(np.sum(term)), 0.0) / big_x**2


@dataclass(frozen=True)
class StratifiedEstimate:
    """Estimates from one stratified sample; proportions are of the total population.

    Series are indexed by class; the error matrix has map classes as rows and
    reference classes as columns (area proportions).
    """

    classes: tuple[str, ...]
    population: float
    """Total population size (same unit as the stratum sizes, e.g. pixels)."""
    area: pd.Series
    area_se: pd.Series
    mapped: pd.Series
    error_matrix: pd.DataFrame
    users: pd.Series
    users_se: pd.Series
    producers: pd.Series
    producers_se: pd.Series
    overall: float
    overall_se: float
    n_units: int


def stratified_estimate(strata: Any, map_class: Any, ref_class: Any,
                        stratum_sizes: dict[str, float], *, classes: Any = None,
                        fpc: bool = False) -> StratifiedEstimate:
    """Estimate class areas and accuracies from a stratified random sample.

    Parameters
    ----------
    strata, map_class, ref_class
        One value per sample unit: its stratum, its map class and its
        reference (analyst) class.
    stratum_sizes
        Population size of every stratum (pixels or area), by name; strata
        without units must have size 0.
    classes
        Class order of the outputs; default: sorted map and reference classes.
    fpc
        Apply the finite population correction ``1 - n_h / N_h``.

    Returns
    -------
    StratifiedEstimate
        Area proportions of the reference classes with SEs, mapped
        proportions, the error matrix, user's/producer's/overall accuracy with
        SEs. Multiply proportions and SEs by the population area for areas.

    Raises
    ------
    ConfigError
        Inputs of different lengths, units in unknown strata, a non-empty
        stratum without units, more units than pixels in a stratum.

    Warns
    -----
    SmallStratumWarning
        A stratum has one unit: SEs are NaN.
    """
    s, m, r = (np.asarray(v, dtype=object) for v in (strata, map_class, ref_class))
    if not (s.shape == m.shape == r.shape) or s.ndim != 1:
        raise ConfigError("strata, map_class and ref_class need one value per unit")
    design = _Design(s, stratum_sizes, fpc)
    if design.single:
        warnings.warn(f"strata {design.single} have a single labelled unit: standard errors are "
                      "undefined (NaN); label at least two units per stratum",
                      SmallStratumWarning, stacklevel=2)
    cls = tuple(classes) if classes is not None else tuple(sorted(set(m) | set(r)))
    total = float(design.N.sum())

    def prop(y: np.ndarray) -> tuple[float, float]:
        t, v = design.total(y)
        return t / total, np.sqrt(v) / total

    area = {k: prop(r == k) for k in cls}
    mapped = {k: prop(m == k)[0] for k in cls}
    matrix = pd.DataFrame([[prop((m == i) & (r == j))[0] for j in cls] for i in cls],
                          index=pd.Index(cls, name="map"), columns=pd.Index(cls, name="reference"))
    ua = {k: design.ratio((m == k) & (r == k), m == k) for k in cls}
    pa = {k: design.ratio((m == k) & (r == k), r == k) for k in cls}
    overall, overall_se = prop(m == r)

    def series(d: dict, i: int) -> pd.Series:
        return pd.Series({k: v[i] for k, v in d.items()}, dtype=float)

    return StratifiedEstimate(
        classes=cls, population=total,
        area=series(area, 0), area_se=series(area, 1), mapped=pd.Series(mapped, dtype=float),
        error_matrix=matrix,
        users=series(ua, 0), users_se=np.sqrt(series(ua, 1)),
        producers=series(pa, 0), producers_se=np.sqrt(series(pa, 1)),
        overall=overall, overall_se=overall_se, n_units=int(s.size),
    )


# --------------------------------------------------------------------------- sheets

_ALIASES = {"new": "new mining", "stable": "stable mining", "none": "no mining",
            "no": "no mining", "not mining": "no mining", "no change": "no mining"}


def _norm_class(value: Any) -> str:
    text = " ".join(str(value).strip().lower().replace("_", " ").replace("-", " ").split())
    return _ALIASES.get(text, text)


def read_labels(path: str | os.PathLike, *, complete: bool = True) -> pd.DataFrame:
    """Read a labelled sheet (``labels.csv`` or ``labels.gpkg``) and check it.

    ``complete=False`` accepts a sheet still being labelled: unlabelled units
    keep an empty ``ref_class`` (for showing progress, never for estimating).

    Raises
    ------
    ConfigError
        Unreadable file, missing columns, unlabelled units (listed; only when
        ``complete``) or reference classes outside :data:`kpgeo.sampling.CLASSES`.
    """
    from kpgeo.sampling import CLASSES

    path = Path(path)
    try:
        if path.suffix.lower() == ".gpkg":
            import geopandas as gpd

            df = pd.DataFrame(gpd.read_file(path).drop(columns="geometry"))
        else:
            df = pd.read_csv(path, dtype={"period_start": str, "period_end": str,
                                          "ref_class": str, "zone": str},
                             keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f"{path}: cannot read the labelling sheet ({exc})") from exc
    need = ["unit_id", "zone", "period_start", "period_end", "stratum", "map_class",
            "ref_class", "stratum_pixels", "pixel_area_ha"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {missing}; pass a sheet written by "
                          "`kpgeo sample`")
    df = df.copy()
    for col in ("zone", "period_start", "period_end"):
        df[col] = df[col].fillna("").astype(str)
    ref = df["ref_class"].fillna("").astype(str)
    unlabelled = ref.str.strip() == ""
    blank = df.loc[unlabelled, "unit_id"].tolist()
    if blank and complete:
        raise ConfigError(f"{path}: {len(blank)} unit(s) have no ref_class (e.g. "
                          f"{', '.join(map(str, blank[:5]))}); label every unit — an unlabelled "
                          "unit biases the estimate")
    df["ref_class"] = ref.map(_norm_class).where(~unlabelled, "")
    df["map_class"] = df["map_class"].map(_norm_class)
    bad = sorted(set(df.loc[~unlabelled, "ref_class"]) - set(CLASSES))
    if bad:
        raise ConfigError(f"{path}: unknown ref_class value(s) {bad}; use one of {list(CLASSES)}")
    return df


@dataclass(frozen=True)
class SheetEstimates:
    """Tables of :func:`estimate_sheet`, one block of rows per zone and period."""

    area: pd.DataFrame
    """zone, period_start, period_end, class, mapped_ha, estimated_ha, se_ha, ci_half_ha,
    ci_low_ha, ci_high_ha, proportion, proportion_se, n_units."""
    accuracy: pd.DataFrame
    """zone, period_start, period_end, class (``overall`` for overall accuracy), users,
    users_se, producers, producers_se, overall, overall_se."""
    error_matrix: pd.DataFrame
    """zone, period_start, period_end, map_class, ref_class, proportion, area_ha."""


def _collapse(values: pd.Series) -> np.ndarray:
    from kpgeo.sampling import MINING_CLASSES

    return np.where(values.isin(MINING_CLASSES), ALL_MINING, "no mining")


def _stratum_sizes(group: pd.DataFrame, where: str) -> dict[str, float]:
    sizes = group.groupby("stratum")["stratum_pixels"].agg(["min", "max"])
    if (sizes["min"] != sizes["max"]).any():
        raise ConfigError(f"{where}: stratum_pixels differs between units of one stratum")
    return sizes["max"].astype(float).to_dict()


def _group_tables(key: tuple, g: pd.DataFrame, *, z: float, fpc: bool) -> tuple[list, list, list]:
    from kpgeo.sampling import CLASSES

    where = "zone {!r}, period {}/{}".format(*key)
    sizes = _stratum_sizes(g, where)
    px_ha = g["pixel_area_ha"].astype(float).unique()
    if px_ha.size != 1:
        raise ConfigError(f"{where}: pixel_area_ha differs between units")
    detail = stratified_estimate(g["stratum"], g["map_class"], g["ref_class"], sizes,
                                 classes=CLASSES, fpc=fpc)
    binary = stratified_estimate(g["stratum"], _collapse(g["map_class"]),
                                 _collapse(g["ref_class"]), sizes,
                                 classes=(ALL_MINING, "no mining"), fpc=fpc)
    unit_ha = detail.population * float(px_ha[0])
    head = dict(zip(("zone", "period_start", "period_end"), key, strict=True))
    area, acc = [], []
    for est, names in ((detail, CLASSES), (binary, (ALL_MINING,))):
        for k in names:
            e, se = est.area[k] * unit_ha, est.area_se[k] * unit_ha
            area.append(head | {
                "class": k, "mapped_ha": est.mapped[k] * unit_ha, "estimated_ha": e,
                "se_ha": se, "ci_half_ha": z * se, "ci_low_ha": max(e - z * se, 0.0),
                "ci_high_ha": e + z * se, "proportion": est.area[k],
                "proportion_se": est.area_se[k], "n_units": est.n_units})
            acc.append(head | {"class": k, "users": est.users[k], "users_se": est.users_se[k],
                               "producers": est.producers[k],
                               "producers_se": est.producers_se[k]})
    acc.append(head | {"class": "overall", "overall": detail.overall,
                       "overall_se": detail.overall_se})
    em = detail.error_matrix.stack().rename("proportion").reset_index()
    em = em.rename(columns={"map": "map_class", "reference": "ref_class"})
    cells = [head | row | {"area_ha": row["proportion"] * unit_ha}
             for row in em.to_dict("records")]
    return area, acc, cells


def estimate_sheet(labels: pd.DataFrame, *, z: float = Z95, fpc: bool = False) -> SheetEstimates:
    """Estimate area and accuracy per zone and period from a labelled sheet.

    Parameters
    ----------
    labels
        From :func:`read_labels` (or a sheet labelled in memory, e.g. by
        :func:`kpgeo.sampling.label_from_truth`).
    z
        Half-width multiplier of the confidence interval (1.96: 95 %).
    fpc
        Apply the finite population correction.

    Returns
    -------
    SheetEstimates
        Areas of ``new mining``, ``stable mining``, ``no mining`` and
        ``all mining`` (new + stable) with SE and CI (the lower bound is
        clipped at 0); accuracies; the error matrix.
    """
    if not (isinstance(z, (int, float)) and z > 0):
        raise ConfigError(f"z must be a positive number, got {z!r}")
    df = labels.copy()
    df["ref_class"] = df["ref_class"].map(_norm_class)
    df["map_class"] = df["map_class"].map(_norm_class)
    area, acc, cells = [], [], []
    for key, g in df.groupby(["zone", "period_start", "period_end"], sort=True, dropna=False):
        a, b, c = _group_tables(key, g, z=float(z), fpc=fpc)
        area += a
        acc += b
        cells += c
    return SheetEstimates(area=pd.DataFrame(area), accuracy=pd.DataFrame(acc),
                          error_matrix=pd.DataFrame(cells))


def zone_area_summary(area: pd.DataFrame, *, cls: str = ALL_MINING) -> pd.DataFrame:
    """One row per zone and period for the bulletin: mapped vs estimated area of ``cls``.

    Returns
    -------
    pandas.DataFrame
        zone, period_start, period_end, mapped_ha, estimated_ha, ci_half_ha,
        ci_low_ha, ci_high_ha and ``text`` =
        ``"mapped X ha; estimated Y ha ± Z (95 % CI)"``.
    """
    rows = area[area["class"] == cls].copy()
    rows["text"] = [f"mapped {m:,.1f} ha; estimated {e:,.1f} ha ± {h:,.1f} (95 % CI)"
                    for m, e, h in zip(rows["mapped_ha"], rows["estimated_ha"],
                                       rows["ci_half_ha"], strict=True)]
    return rows[["zone", "period_start", "period_end", "mapped_ha", "estimated_ha",
                 "ci_half_ha", "ci_low_ha", "ci_high_ha", "text"]].reset_index(drop=True)


def run_area_estimates(run_dir: str | os.PathLike) -> SheetEstimates:
    """Estimates from every labelled sheet of a run (``OUT/zones/*/sample_*/labels.csv``).

    A sheet that cannot be used (not fully labelled yet, inconsistent) is
    skipped with a logged warning, so one zone's sheet never stops the others.
    Also looks at ``OUT/sample_*/labels.csv`` (the layout of ``kpgeo detect``).

    Returns
    -------
    SheetEstimates
        Concatenated tables (empty when there is no usable sheet).
    """
    parts = []
    for path in sheet_paths(run_dir):
        try:
            parts.append(estimate_sheet(read_labels(path)))
        except ConfigError as exc:
            log.warning("%s: skipped (%s)", path, exc)
    if not parts:
        return SheetEstimates(area=pd.DataFrame(), accuracy=pd.DataFrame(),
                              error_matrix=pd.DataFrame())
    return SheetEstimates(**{name: pd.concat([getattr(p, name) for p in parts],
                                             ignore_index=True)
                             for name in ("area", "accuracy", "error_matrix")})


def sheet_paths(run_dir: str | os.PathLike) -> list[Path]:
    """Labelling sheets of a run, where ``kpgeo sample`` writes them.

    ``OUT/zones/<zone>/sample_<window>/labels.csv`` (``kpgeo run``), then
    ``OUT/sample_<window>/labels.csv`` (``kpgeo detect``), each sorted.
    """
    run_dir = Path(run_dir)
    return sorted(run_dir.glob("zones/*/sample_*/labels.csv")) + sorted(
        run_dir.glob("sample_*/labels.csv"))
