"""Exceptions and warnings raised by kpgeo.

Every error kpgeo raises on purpose derives from :class:`KpgeoError` *and* from
the builtin that best describes it (``ValueError``, ``OSError``, ``KeyError``),
so callers can catch either. Messages name the file or object at fault and say
what to do about it; the CLI prints them without a traceback.
"""

from __future__ import annotations

__all__ = [
    "KpgeoError",
    "ConfigError",
    "ZoneError",
    "UnknownZoneError",
    "InvalidAOIError",
    "ImageryError",
    "AssetReadError",
    "MissingBandError",
    "CRSMismatchError",
    "NoDataError",
    "OutputExistsError",
    "OutputWriteError",
    "RunLockedError",
    "StacSearchError",
    "StoreError",
    "UnknownSiteError",
    "KpgeoWarning",
    "InsufficientDataWarning",
]


class KpgeoError(Exception):
    """Root of every error kpgeo raises on purpose."""


class ConfigError(KpgeoError, ValueError):
    """A parameter or configuration value is missing, of the wrong type or out of range."""


class ZoneError(KpgeoError, ValueError):
    """A zone file or zone definition cannot be used."""


class UnknownZoneError(ZoneError, KeyError):
    """No zone matches the requested id or name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidAOIError(ZoneError):
    """An area of interest is empty, invalid, unreadable or does not overlap the imagery."""


class ImageryError(KpgeoError, ValueError):
    """Imagery items or their metadata cannot be used."""


class AssetReadError(ImageryError, OSError):
    """An imagery asset is missing, truncated, corrupt or unreadable."""


class MissingBandError(ImageryError):
    """An item lacks a band the operation needs."""


class CRSMismatchError(ImageryError):
    """Inputs are in different or undefined coordinate reference systems."""


class NoDataError(ImageryError):
    """There is no usable observation (empty collection, all cloud, no overlap)."""


class OutputExistsError(KpgeoError, FileExistsError):
    """An output exists and overwriting was not requested."""


class OutputWriteError(KpgeoError, OSError):
    """An output cannot be written: read-only file system, disk full, no permission, not a folder.

    ``errno`` and ``filename`` are those of the underlying :class:`OSError`.
    """

    def __str__(self) -> str:  # OSError would format errno/filename instead of the message
        return str(self.args[0]) if self.args else ""


class RunLockedError(KpgeoError, BlockingIOError):
    """Another kpgeo run is writing into the same output folder (its lock file is held)."""


class StacSearchError(KpgeoError, ConnectionError):
    """A STAC API cannot be reached or answers a search with an error (the URL is named)."""


class StoreError(KpgeoError, OSError):
    """A results store (GeoPackage, PostGIS) cannot be opened, read or written."""

    def __str__(self) -> str:  # OSError would format errno/filename instead of the message
        return str(self.args[0]) if self.args else ""


class UnknownSiteError(KpgeoError, KeyError):
    """No site of the register has the requested id."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class KpgeoWarning(UserWarning):
    """Base class of kpgeo warnings."""


class InsufficientDataWarning(KpgeoWarning):
    """Part of the area has too few clear observations for a reliable result."""
