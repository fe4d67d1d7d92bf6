"""Finding scenes: STAC API searches for a zone, a date range and a cloud limit.

A monitoring run needs the scenes that cover a zone (and the band watched just
outside it) between two dates, with at most so much cloud. :func:`search_items`
asks a STAC API for them with pystac-client, the same way against Earth Search
v1 (Element 84's ``sentinel-2-l2a``), Microsoft's Planetary Computer
(``sentinel-2-l2a``, ``landsat-c2-l2``; asset URLs signed with the
``planetary-computer`` package) or any other STAC API, and :func:`save_items`
writes the ItemCollection it got next to the outputs, with the search that
produced it, so a run can be repeated exactly (``kpgeo run`` / ``kpgeo detect
--items`` on the saved file).

The cloud limit is sent the way the API declares it understands
(``query`` extension, else a CQL2 ``filter``) and checked again on the items
returned. HTTP errors (429, 5xx) and dropped connections are retried with
exponential backoff (as many times as ``GDAL_HTTP_MAX_RETRY`` says, the same
setting as the imagery reads of :mod:`kpgeo.gdal_env`); an API that still does not answer raises
:class:`~kpgeo.errors.StacSearchError` naming the URL.

Saved items are **unsigned** (Planetary Computer tokens expire within hours and
would change the run's input fingerprint on every search); sign them in memory
just before reading with :func:`sign_items`.

A pipeline file's ``[search]`` table becomes a :class:`SearchConfig` with
:meth:`SearchConfig.from_mapping`::

    [search]
    provider = "earth-search"      # or planetary-computer, planetary-computer-landsat;
                                   # or url = "https://..." with collection = "..."
    start = "2024-01-01"           # first date (UTC), inclusive
    end = "2024-12-31"             # last date, inclusive (default: today)
    max_cloud_cover = 60           # percent, eo:cloud_cover of the scene
    max_items = 2000               # refuse to go on past this many scenes
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kpgeo.errors import ConfigError, KpgeoWarning, NoDataError, StacSearchError

__all__ = [
    "EARTH_SEARCH",
    "PLANETARY_COMPUTER",
    "PROVIDERS",
    "SearchConfig",
    "search_items",
    "search_zone",
    "save_items",
    "sign_items",
    "search_geometry",
]

log = logging.getLogger(__name__)

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"

#: Named STAC APIs: URL, collection and URL signing.
PROVIDERS: dict[str, dict[str, str | None]] = {
    "earth-search": {"url": EARTH_SEARCH, "collection": "sentinel-2-l2a", "sign": None},
    "planetary-computer": {
        "url": PLANETARY_COMPUTER, "collection": "sentinel-2-l2a", "sign": "planetary-computer"},
    "planetary-computer-landsat": {
        "url": PLANETARY_COMPUTER, "collection": "landsat-c2-l2", "sign": "planetary-computer"},
}
_SIGNERS = ("planetary-computer",)
_KEYS = {
    "provider": str, "url": str, "collection": str, "start": str, "end": str,
    "max_cloud_cover": (int, float), "max_items": int, "sign": str,
}
#: HTTP statuses the client retries with backoff.
RETRY_STATUSES = (429, 500, 502, 503, 504)


def _parse_date(value: Any, key: str, where: str) -> str:
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return value.isoformat()
    try:
        return _dt.date.fromisoformat(str(value)).isoformat()
    except ValueError as exc:
        raise ConfigError(f"{where}: {key} must be a date YYYY-MM-DD, got {value!r}") from exc


def _retry_setting(key: str, kind: type) -> Any:
    """One retry setting for HTTP requests of any kind (see :mod:`kpgeo.gdal_env`)."""
    from kpgeo.gdal_env import read_options

    value = read_options()[key]
    try:
        return kind(float(value)) if kind is int else kind(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {key}={value!r} is not a number") from exc


@dataclass(frozen=True)
class SearchConfig:
    """One STAC API search: where, which collection, when, how cloudy at most.

    Build it directly, from a named provider (:meth:`for_provider`) or from a
    pipeline file's ``[search]`` table (:meth:`from_mapping`).
    """

    start: str
    """First date, ``YYYY-MM-DD`` (UTC, inclusive)."""
    end: str | None = None
    """Last date, ``YYYY-MM-DD`` (inclusive); None: today (UTC)."""
    url: str = EARTH_SEARCH
    """Root URL of the STAC API."""
    collection: str = "sentinel-2-l2a"
    max_cloud_cover: float | None = 60.0
    """Largest scene ``eo:cloud_cover`` (percent) kept; None keeps every scene."""
    max_items: int = 2000
    """Stop (with a warning) after this many scenes."""
    sign: str | None = None
    """URL signing of the assets: ``"planetary-computer"`` or None (automatic for its URL)."""
    timeout_s: float = 60.0
    """Timeout of each HTTP request, seconds."""
    max_retries: int = field(default_factory=lambda: _retry_setting("GDAL_HTTP_MAX_RETRY", int))
    """Retries of a failed request (connection error, HTTP 429/5xx); default: the same
    ``GDAL_HTTP_MAX_RETRY`` as the imagery reads (:mod:`kpgeo.gdal_env`)."""
    backoff_s: float = field(
        default_factory=lambda: _retry_setting("GDAL_HTTP_RETRY_DELAY", float))
    """Backoff factor: waits of 0, 2, 4, 8... times this many seconds between retries;
    default ``GDAL_HTTP_RETRY_DELAY``."""

    def __post_init__(self) -> None:
        where = "search"
        object.__setattr__(self, "start", _parse_date(self.start, "start", where))
        if self.end is not None:
            object.__setattr__(self, "end", _parse_date(self.end, "end", where))
            if self.end < self.start:
                raise ConfigError(f"search: end {self.end} is before start {self.start}")
        parsed = urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"search: url must be an http(s) STAC API root, got {self.url!r}")
        if not self.collection.strip():
            raise ConfigError("search: collection is empty")
        if self.max_cloud_cover is not None and not 0 <= self.max_cloud_cover <= 100:
            raise ConfigError(
                f"search: max_cloud_cover must be in [0, 100] percent, got {self.max_cloud_cover!r}"
            )
        if not isinstance(self.max_items, int) or self.max_items < 1:
            raise ConfigError(f"search: max_items must be a positive integer, got "
                              f"{self.max_items!r}")
        if self.sign is None and parsed.netloc.endswith("planetarycomputer.microsoft.com"):
            object.__setattr__(self, "sign", "planetary-computer")
        if self.sign is not None and self.sign not in _SIGNERS:
            raise ConfigError(f"search: sign must be one of {list(_SIGNERS)}, got {self.sign!r}")
        if self.timeout_s <= 0 or self.max_retries < 0 or self.backoff_s < 0:
            raise ConfigError("search: timeout_s must be > 0, max_retries and backoff_s >= 0")

    @classmethod
    def for_provider(cls, provider: str, **fields: Any) -> SearchConfig:
        """Search of a named provider (:data:`PROVIDERS`); ``fields`` override its defaults."""
        if provider not in PROVIDERS:
            raise ConfigError(
                f"search: unknown provider {provider!r}; use one of {sorted(PROVIDERS)} "
                "or give url="
            )
        return cls(**{**PROVIDERS[provider], **fields})

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, where: str = "[search]") -> SearchConfig:
        """Build a validated search from a TOML ``[search]`` table (keys: see the module docstring).

        Raises
        ------
        ConfigError
            Unknown key, wrong type, bad date, ``end`` before ``start``, cloud limit
            outside 0-100, unknown provider, non-http URL; the message starts with
            ``where``.
        """
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table of key = value pairs, got {table!r}")
        unknown = sorted(set(table) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; valid: {sorted(_KEYS)}")
        for key, value in table.items():
            expected = _KEYS[key]
            if isinstance(value, (_dt.date, _dt.datetime)) and key in ("start", "end"):
                continue  # TOML dates are fine
            if isinstance(value, bool) or not isinstance(value, expected):
                raise ConfigError(f"{where}: {key} has the wrong type: {value!r}")
        if "start" not in table:
            raise ConfigError(f"{where}: start = \"YYYY-MM-DD\" is required")
        fields = {k: v for k, v in table.items() if k != "provider"}
        for key in ("start", "end"):
            if key in fields:
                fields[key] = _parse_date(fields[key], key, where)
        if "max_cloud_cover" in fields:
            fields["max_cloud_cover"] = float(fields["max_cloud_cover"])
        try:
            if "provider" in table:
                return cls.for_provider(table["provider"], **fields)
            if "url" not in table:
                raise ConfigError("give provider = (one of "
                                  f"{sorted(PROVIDERS)}) or url = and collection =")
            return cls(**fields)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {str(exc).removeprefix('search: ')}") from exc

    @property
    def datetime(self) -> str:
        """The STAC ``datetime`` interval, whole UTC days."""
        end = self.end or _dt.datetime.now(_dt.UTC).date().isoformat()
        return f"{self.start}T00:00:00Z/{end}T23:59:59Z"

    def record(self) -> dict[str, Any]:
        """Describe the search as saved with its items (``kpgeo:search``)."""
        return {"url": self.url, "collection": self.collection, "datetime": self.datetime,
                "max_cloud_cover": self.max_cloud_cover, "max_items": self.max_items,
                "sign": self.sign}


def search_geometry(zone: Any, *, ring_width_m: float = 5000.0) -> Any:
    """Return the area a zone's run reads: the zone and its outside band (EPSG:4326)."""
    return zone.geometry.union(zone.ring(ring_width_m))


def _open_client(config: SearchConfig) -> Any:
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3 import Retry

    retry = Retry(
        total=config.max_retries, connect=config.max_retries, read=config.max_retries,
        status=config.max_retries, backoff_factor=config.backoff_s,
        status_forcelist=RETRY_STATUSES, allowed_methods=None, raise_on_status=False,
    )
    stac_io = StacApiIO(max_retries=retry, timeout=config.timeout_s)
    try:
        with _quiet_retries():
            return Client.open(config.url, stac_io=stac_io)
    except Exception as exc:  # requests, urllib3, pystac and APIError all differ
        raise StacSearchError(_why(config.url, exc)) from exc


def _why(url: str, exc: BaseException) -> str:
    """One line naming the STAC API URL and the cause of a failed request."""
    import requests

    text = str(exc)
    chain = [exc]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    status = getattr(exc, "status_code", None)
    if any(isinstance(e, requests.exceptions.Timeout) for e in chain) or "timed out" in text:
        cause = "no answer in time (after retries)"
    elif any(isinstance(e, requests.exceptions.ConnectionError) for e in chain) or any(
            s in text for s in ("Failed to establish a new connection", "Connection refused",
                                "Name or service not known", "Temporary failure in name")):
        cause = "cannot connect (is the URL right, is the network up?)"
    elif status is not None:
        cause = f"HTTP {status} (after retries): {text[:200]}"
    elif "too many" in text and "error responses" in text:
        cause = f"HTTP error responses, still after retries ({text[:200]})"
    else:
        cause = f"{type(exc).__name__}: {text[:300]}"
    return f"STAC API {url}: {cause}"


@contextlib.contextmanager
def _quiet_retries() -> Any:
    """Keep urllib3's per-retry warnings off the console: the outcome is reported once."""
    logger = logging.getLogger("urllib3.connectionpool")
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


def _cloud_params(client: Any, config: SearchConfig) -> dict[str, Any]:
    """Search parameters for the cloud limit, in the form the API declares it understands."""
    from pystac_client.conformance import ConformanceClasses

    limit = config.max_cloud_cover
    if limit is None:
        return {}
    if client.conforms_to(ConformanceClasses.QUERY):
        return {"query": {"eo:cloud_cover": {"lte": limit}}}
    if client.conforms_to(ConformanceClasses.FILTER):
        return {"filter": {"op": "<=", "args": [{"property": "eo:cloud_cover"}, limit]},
                "filter_lang": "cql2-json"}
    log.info("%s declares neither the query nor the filter extension: cloud limit applied to "
             "the items returned", config.url)
    return {}


def search_items(config: SearchConfig, geometry: Any) -> Any:
    """Search a STAC API for the scenes over ``geometry`` (EPSG:4326) that ``config`` asks for.

    Returns
    -------
    pystac.ItemCollection
        Unsigned items, validated (:func:`kpgeo.items.validate_item`), sorted by
        date then id, at most ``config.max_cloud_cover`` percent cloud.

    Raises
    ------
    StacSearchError
        The API cannot be reached, answers with an error after the retries, or is
        not a STAC API with item search; the message names the URL.
    NoDataError
        No scene matches; the message gives the query.
    """
    import pystac
    import shapely

    from kpgeo.items import item_datetime, validate_item

    if not isinstance(geometry, shapely.Geometry) or geometry.is_empty:
        raise ConfigError("search geometry must be a non-empty shapely geometry (EPSG:4326)")
    client = _open_client(config)
    from pystac_client.conformance import ConformanceClasses

    if not client.conforms_to(ConformanceClasses.ITEM_SEARCH):
        raise StacSearchError(f"STAC API {config.url}: does not offer item search (/search)")
    params = {
        "collections": [config.collection],
        "intersects": shapely.geometry.mapping(geometry),
        "datetime": config.datetime,
        "max_items": config.max_items + 1,
        "limit": min(config.max_items + 1, 250),
        **_cloud_params(client, config),
    }
    try:
        with _quiet_retries():
            found = list(client.search(**params).items())
    except Exception as exc:
        raise StacSearchError(_why(config.url + "/search", exc)) from exc
    if len(found) > config.max_items:
        warnings.warn(f"{config.url}: more than {config.max_items} scenes match; keeping the "
                      "first max_items (raise max_items or shorten the dates)",
                      KpgeoWarning, stacklevel=2)
        found = found[: config.max_items]
    kept = _below_cloud_limit(found, config.max_cloud_cover)
    for item in kept:
        validate_item(item, where=f"{config.url} collection {config.collection}")
    unique = {item.id: item for item in kept}
    items = sorted(unique.values(), key=lambda it: (item_datetime(it), it.id))
    if not items:
        cloud = f", eo:cloud_cover <= {config.max_cloud_cover}" if config.max_cloud_cover \
            is not None else ""
        raise NoDataError(
            f"STAC API {config.url}: no scene of {config.collection} over the area "
            f"(bbox {', '.join(f'{v:.4f}' for v in geometry.bounds)}) in {config.datetime}{cloud}"
        )
    log.info("%s: %d scene(s) of %s in %s", config.url, len(items), config.collection,
             config.datetime)
    return pystac.ItemCollection(items, clone_items=False)


def _below_cloud_limit(items: list[Any], limit: float | None) -> list[Any]:
    if limit is None:
        return items
    out = []
    for item in items:
        cloud = item.properties.get("eo:cloud_cover")
        if isinstance(cloud, (int, float)) and cloud > limit:
            continue  # the server ignored or mis-applied the limit
        out.append(item)
    return out


def save_items(items: Any, path: str | os.PathLike, *, config: SearchConfig | None = None,
               geometry: Any = None) -> Path:
    """Write an ItemCollection atomically, with the search that found it (``kpgeo:search``).

    The file is what ``--items`` and ``items =`` take: running on it again reads
    exactly the same scenes.
    """
    import pystac
    import shapely

    from kpgeo import io

    collection = items if isinstance(items, pystac.ItemCollection) else pystac.ItemCollection(
        list(items))
    data = collection.to_dict(transform_hrefs=False)
    if config is not None:
        data["kpgeo:search"] = {
            **config.record(),
            "intersects": shapely.geometry.mapping(geometry) if geometry is not None else None,
            "searched_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "matched": len(collection),
        }
    return io.write_json(data, path)


def sign_items(items: Any, config: SearchConfig | None = None, *, sign: str | None = None) -> Any:
    """Return copies of ``items`` with signed asset URLs when the search needs it.

    Parameters
    ----------
    items
        pystac ItemCollection or list of items (as saved by :func:`save_items`).
    config
        The search; its ``sign`` field chooses the signer.
    sign
        Signer name when there is no ``config`` (``"planetary-computer"``).

    Raises
    ------
    ConfigError
        Signing is needed but the ``planetary-computer`` package is not installed.
    """
    signer = sign if sign is not None else (config.sign if config is not None else None)
    if signer is None:
        return items
    try:
        import planetary_computer
    except ImportError as exc:
        raise ConfigError(
            "Planetary Computer assets must be signed: pip install planetary-computer "
            "(or: pip install 'kpgeo[stac]')"
        ) from exc
    return [planetary_computer.sign(item.clone()) for item in items]


def search_zone(config: SearchConfig, zone: Any, path: str | os.PathLike, *,
                ring_width_m: float = 5000.0) -> Path:
    """Search the scenes over a zone and its outside ring and save them to ``path``.

    This is the ``[search]`` step of a run, per zone, before its cube is read.

    Returns
    -------
    pathlib.Path
        ``path`` (an ItemCollection JSON, see :func:`save_items`).
    """
    geometry = search_geometry(zone, ring_width_m=ring_width_m)
    items = search_items(config, geometry)
    return save_items(items, path, config=config, geometry=geometry)

