"""Run definitions: the pipeline TOML file parsed and validated into a :class:`RunConfig`.

A run file has a ``[run]`` table (name, ring width, mapping unit, period, exports,
store…), one ``[[zones]]`` entry per zone (``zone =`` an id or name, or ``aoi =`` a
polygon file; ``items =`` a local ItemCollection unless a ``[search]`` table finds the
scenes), and optional ``[change]`` (:class:`kpgeo.change.ChangeParams` overrides),
``[production]`` and ``[search]`` tables. Every key is checked: an unknown key, a wrong
type or a missing file is a :class:`kpgeo.errors.ConfigError` naming the file and key.
:mod:`kpgeo.pipeline` runs what this module describes.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpgeo.errors import ConfigError, KpgeoError
from kpgeo.zones import Zone, load_aoi

__all__ = ["ZoneJob", "RunConfig", "change_params", "load_config"]


@dataclass(frozen=True)
class ZoneJob:
    """One zone of a run and the imagery that covers it."""

    zone: Zone
    items: Path | None
    """Local STAC ItemCollection JSON; None: found by the run's ``[search]``."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a monitoring run needs; build with :func:`load_config` or directly."""

    jobs: tuple[ZoneJob, ...]
    name: str = "kpgeo-run"
    ring_width_m: float = 5000.0
    """Width of the watched band just outside each zone, metres."""
    min_area_ha: float = 0.05
    """Minimum mapping unit of footprints, hectares (0.05 ha = 5 px at 10 m: one pit)."""
    period: str = "QS"
    """Time-series period as a pandas offset alias (``MS``, ``QS``, ``YS``)."""
    offline_map: bool = False
    """Write a self-contained web map that needs no internet."""
    change: dict[str, Any] = field(default_factory=dict)
    """Overrides of :class:`kpgeo.change.ChangeParams` fields."""
    production: Any = None
    """:class:`kpgeo.production.ProductionParams` of the ``[production]`` table, or None."""
    exports: Path | None = None
    """KP export statistics CSV (``[run] exports``) set beside the production capacity."""
    search: Any = None
    """:class:`kpgeo.search.SearchConfig` of the ``[search]`` table (zones without items)."""
    store: str | None = None
    """PostGIS store (``postgresql://...``) written besides ``OUT/kpgeo.gpkg``, or None."""

    def __post_init__(self) -> None:
        if not self.jobs:
            raise ConfigError("a run needs at least one zone ([[zones]] table)")
        ids = [job.zone.id for job in self.jobs]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ConfigError(f"zone(s) listed more than once in the run: {', '.join(repeated)}")
        if not 0 < self.ring_width_m <= 100_000:
            raise ConfigError(
                f"ring_width_m must be in (0, 100000] metres, got {self.ring_width_m!r}"
            )
        if not 0 <= self.min_area_ha <= 100:
            raise ConfigError(f"min_area_ha must be in [0, 100] hectares, got {self.min_area_ha!r}")
        if self.period not in {"MS", "QS", "YS", "M", "Q", "Y"}:
            raise ConfigError(
                f"period must be one of MS, QS, YS (month, quarter, year), got {self.period!r}"
            )
        change_params(self.change)  # raises ConfigError for unknown or out-of-range fields
        from kpgeo.inventory import check_store_url

        check_store_url(self.store)


def change_params(overrides: dict[str, Any]) -> Any:
    """Build :class:`kpgeo.change.ChangeParams` from a dict of overrides, validated."""
    from kpgeo.change import ChangeParams

    try:
        return ChangeParams(**overrides)
    except TypeError as exc:
        raise ConfigError(f"bad [change] parameters: {exc}") from exc


_RUN_KEYS = {
    "name": str,
    "ring_width_m": (int, float),
    "min_area_ha": (int, float),
    "period": str,
    "offline_map": bool,
    "exports": str,
    "store": str,
}
_ZONE_KEYS = {"zone": str, "aoi": str, "items": str}
_SECTIONS = {"run", "zones", "change", "production", "search"}


def _check_table(table: Any, types: dict[str, Any], where: str) -> dict[str, Any]:
    """Check a TOML table has only known keys, each of the expected type."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of key = value pairs, got {table!r}")
    unknown = sorted(set(table) - set(types))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid: {sorted(types)}")
    for key, value in table.items():
        expected = types[key]
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            names = " or ".join(
                t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,))
            )
            raise ConfigError(f"{where}: {key} must be a {names}, got {value!r}")
        if isinstance(value, str) and not value.strip():
            raise ConfigError(f"{where}: {key} is empty")
    return table


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read and validate a run configuration TOML file.

    Relative paths inside the file are relative to the file itself.

    Raises
    ------
    ConfigError
        Unreadable TOML, unknown keys, wrong types or ranges, missing items files,
        unknown zones, repeated zones, bad ``[change]`` parameters; the message
        names the file and the key.
    """
    path = Path(path)
    raw = _read_toml(path)
    _check_sections(raw, path)
    run = _check_table(raw.get("run", {}), _RUN_KEYS, f"{path}: [run]")
    search = _search_config(raw, path)
    jobs = _zone_jobs(raw, path, search)
    change = _change_table(raw, path)
    production = _production_params(raw, path)
    exports = _exports_path(run, path)
    return _build_config(
        path, run, jobs, change=change, production=production, exports=exports, search=search
    )


def _read_toml(path: Path) -> dict[str, Any]:
    """Parse the run file as TOML; a missing file or bad TOML is a ConfigError."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such run configuration file") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def _check_sections(raw: dict[str, Any], path: Path) -> None:
    """Refuse top-level sections other than the known ones."""
    unknown = set(raw) - _SECTIONS
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {sorted(unknown)}; expected [run], [[zones]], [change], "
            "[production], [search]"
        )


def _search_config(raw: dict[str, Any], path: Path) -> Any:
    """Build the SearchConfig of the ``[search]`` table, or None without one."""
    if "search" not in raw:
        return None
    from kpgeo.search import SearchConfig

    return SearchConfig.from_mapping(raw["search"], where=f"{path}: [search]")


def _zone_jobs(raw: dict[str, Any], path: Path, search: Any) -> list[ZoneJob]:
    """Build one validated ZoneJob per ``[[zones]]`` entry, in file order."""
    zones = raw.get("zones", [])
    if not isinstance(zones, list) or not zones:
        raise ConfigError(
            f"{path}: no [[zones]] entries; add at least one with zone= (or aoi=) and items="
        )
    return [
        _zone_job(entry, path, search, where=f"{path}: [[zones]] entry {i}")
        for i, entry in enumerate(zones, 1)
    ]


def _zone_job(entry: Any, path: Path, search: Any, *, where: str) -> ZoneJob:
    """Validate one ``[[zones]]`` entry and load its zone and items path."""
    _check_table(entry, _ZONE_KEYS, where)
    if ("items" not in entry and search is None) or ("zone" in entry) == ("aoi" in entry):
        raise ConfigError(f"{where}: needs items= (or a [search] section) and exactly one "
                          "of zone= or aoi=")
    items = _items_path(entry, path, where)
    aoi = entry["zone"] if "zone" in entry else path.parent / entry["aoi"]
    try:
        zone = load_aoi(aoi)
    except KpgeoError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return ZoneJob(zone=zone, items=items)


def _items_path(entry: dict[str, Any], path: Path, where: str) -> Path | None:
    """Resolve a zone entry's ``items =`` file (it must exist), or None without one."""
    items = (path.parent / entry["items"]).resolve() if "items" in entry else None
    if items is not None and items.is_dir():
        raise ConfigError(
            f"{where}: items {items} is a folder; give the STAC ItemCollection JSON file "
            "in it (e.g. items.json)"
        )
    if items is not None and not items.is_file():
        raise ConfigError(f"{where}: items file {items} does not exist")
    return items


def _change_table(raw: dict[str, Any], path: Path) -> Any:
    """Return the ``[change]`` table, checked to be a table (RunConfig checks its fields)."""
    change = raw.get("change", {})
    if not isinstance(change, dict):
        raise ConfigError(f"{path}: [change] must be a table of ChangeParams fields")
    return change


def _production_params(raw: dict[str, Any], path: Path) -> Any:
    """Build the ProductionParams of the ``[production]`` table, or None without one."""
    if "production" not in raw:
        return None
    from kpgeo.production import ProductionParams

    if not isinstance(raw["production"], dict):
        raise ConfigError(f"{path}: [production] must be a table of production parameters")
    return ProductionParams.from_mapping(raw["production"], where=f"{path}: [production]")


def _exports_path(run: dict[str, Any], path: Path) -> Path | None:
    """Resolve and read the ``[run] exports`` CSV (a bad table is refused); None without one."""
    if "exports" not in run:
        return None
    from kpgeo.production import read_exports

    exports = (path.parent / run["exports"]).resolve()
    if not exports.is_file():
        raise ConfigError(f"{path}: [run] exports file {exports} does not exist")
    read_exports(exports)  # a bad table is refused now, not after hours of processing
    return exports


def _build_config(
    path: Path,
    run: dict[str, Any],
    jobs: list[ZoneJob],
    *,
    change: dict[str, Any],
    production: Any,
    exports: Path | None,
    search: Any,
) -> RunConfig:
    """Build the RunConfig with ``[run]`` defaults; its errors are prefixed with the file."""
    try:
        return RunConfig(
            jobs=tuple(jobs),
            name=run.get("name", path.stem),
            ring_width_m=float(run.get("ring_width_m", 5000.0)),
            min_area_ha=float(run.get("min_area_ha", 0.05)),
            period=run.get("period", "QS"),
            offline_map=run.get("offline_map", False),
            change=dict(change),
            production=production,
            exports=exports,
            search=search,
            store=run.get("store"),
        )
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
