"""Parameters of the real scene source and its presets (same names as the procedural ones).

Densities are per km² with a floor so that a small test scene still has at
least one event of each kind. Ranges are drawn per event (uniform unless
noted). Presets only move the balance between signal and confounders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kpgeo.errors import ConfigError

__all__ = ["RealParams", "REAL_PRESETS", "get_real_preset", "GROUNDS"]

#: ground a mining site is dug into (``ground`` in truth.geojson)
GROUNDS = ("vegetated", "river", "bare", "reworked")


@dataclass(frozen=True)
class RealParams:
    """Parameters of one scene of the real source (see :data:`REAL_PRESETS`)."""

    name: str = "default"
    # --- mining -----------------------------------------------------------
    sites_per_km2: float = 2.15
    """Mining sites per km² (about 14 on a 256 x 256 px scene at 10 m)."""
    min_sites: int = 2
    site_area_ha: tuple[float, float] = (0.1, 15.0)
    """Final area of a site (log-uniform), before clipping to the scene."""
    ground_weights: tuple[float, float, float, float] = (0.4, 0.25, 0.2, 0.15)
    """Probabilities of :data:`GROUNDS`: vegetated, river bank/channel, bare/cleared, reworked."""
    growth_days: tuple[float, float] = (60.0, 720.0)
    """Time from the first pit to the last for a 2 ha site (log-uniform); it scales with
    (area / 2 ha) ** 0.35, clipped to 20..1100 days (big sites take longer)."""
    growth_power: tuple[float, float] = (0.7, 1.5)
    """Shape of the opening schedule: share opened ~ (time / growth) ** (1 / power)."""
    start_early: float = 0.12
    """Share of sites started before (or at) the first date: -40..3 % of the period."""
    start_late: float = 0.12
    """Share of sites started in the last 12 % of the period."""
    abandon_probability: float = 0.35
    revegetation_days: tuple[float, float] = (200.0, 600.0)
    """Time constant of the revegetation of an abandoned site."""
    pit_spacing_m: tuple[float, float] = (12.0, 35.0)
    """Size of the pits / heaps making up a site's surface mosaic."""
    drain_probability: float = 0.2
    """Probability that a water pit is drained (water -> gravel) after opening."""
    flood_pit_probability: float = 0.15
    """Probability that a dry pit fills with water (gravel -> water) after opening."""
    # --- land use -----------------------------------------------------------
    cultivated_probability: float = 0.55
    """Probability that a field plot is cleared and cropped in a given year."""
    long_bare_probability: float = 0.2
    """Share of cleared plots left bare for 5-10 months (or never sown that year)."""
    woodland_probability: float = 0.3
    """Share of grass parcels rendered as wooded savanna."""
    burns_per_km2: float = 1.0
    min_burns: int = 1
    burn_area_ha: tuple[float, float] = (0.5, 20.0)
    flood_amplitude: tuple[float, float] = (0.7, 1.25)
    """Peak flood level from year to year (1 = ring edge)."""
    flood_ring_m: tuple[float, float] = (40.0, 220.0)
    """Width of the seasonal flood ring around water and wetland (varies along the shore)."""
    pheno_shift_days: tuple[float, float] = (-20.0, 20.0)
    """Scene-wide shift of the seasons (per seed)."""
    pheno_amplitude: tuple[float, float] = (0.8, 1.15)
    """Scene-wide scaling of the seasonal amplitude (per seed)."""
    # --- acquisitions / atmosphere --------------------------------------------
    revisit_loss: float = 0.1
    """Probability that one 5-day acquisition is missing (plus outages of 2-8 revisits)."""
    cloud_dry: float = 0.08
    cloud_wet: float = 0.5
    clear_date_probability: float = 0.2
    cirrus_probability: float = 0.25
    haze_probability: tuple[float, float] = (0.1, 0.5)
    """Probability of a hazy date (wet season, harmattan dry season)."""
    scl_thin_contrast: tuple[float, float] = (0.03, 0.1)
    """Per-date cloud brightness (blue) below which SCL misses thin cloud."""
    scl_false_cloud: float = 0.3
    """Probability that SCL flags bright bare ground as cloud (in patches) on a date."""
    scl_false_shadow: float = 0.3
    """Probability that SCL flags dark ground (water, char) as shadow on a date."""
    scl_height_error: float = 0.3
    """Relative error of the cloud height SCL uses to project shadows."""
    swath_edge_probability: float = 0.06
    noise_sigma: float = 0.0015
    """Additive sensor noise (reflectance; S2 MSI at low radiance)."""
    noise_relative: float = 0.012

    def replace(self, **changes) -> RealParams:
        """Return a copy with some fields changed (unknown names raise ConfigError)."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ConfigError(f"unknown real-source parameter(s) {bad}; valid: {sorted(names)}")
        return dataclasses.replace(self, **changes)


_DEFAULT = RealParams()

REAL_PRESETS: dict[str, RealParams] = {
    "default": _DEFAULT,
    "clean": _DEFAULT.replace(name="clean", cloud_dry=0.03, cloud_wet=0.18,
                              clear_date_probability=0.45, cirrus_probability=0.1,
                              haze_probability=(0.05, 0.2), swath_edge_probability=0.0,
                              scl_false_cloud=0.15, scl_false_shadow=0.15),
    "cloudy": _DEFAULT.replace(name="cloudy", cloud_dry=0.3, cloud_wet=0.75,
                               clear_date_probability=0.05, cirrus_probability=0.5,
                               haze_probability=(0.2, 0.6), revisit_loss=0.2),
    "farm-heavy": _DEFAULT.replace(name="farm-heavy", cultivated_probability=0.85,
                                   long_bare_probability=0.35),
    "burn-heavy": _DEFAULT.replace(name="burn-heavy", burns_per_km2=10.0, min_burns=4),
    "small-pits": _DEFAULT.replace(name="small-pits", sites_per_km2=4.0, min_sites=4,
                                   site_area_ha=(0.05, 1.5), pit_spacing_m=(10.0, 20.0)),
}


def get_real_preset(preset: str | RealParams) -> RealParams:
    """Return the :class:`RealParams` of a preset name (or pass one through).

    Raises
    ------
    ConfigError
        Unknown preset name (the message lists the valid names).
    """
    if isinstance(preset, RealParams):
        return preset
    key = str(preset).strip().lower().replace("_", "-")
    if key not in REAL_PRESETS:
        raise ConfigError(f"unknown real-source preset {preset!r}; valid presets: "
                          f"{', '.join(sorted(REAL_PRESETS))}")
    return REAL_PRESETS[key]
