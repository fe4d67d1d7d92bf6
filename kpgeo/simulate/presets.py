"""Named parameter sets of the scene simulator.

A preset is a frozen :class:`SimParams`. Counts of events are densities per
100 km² with a floor (``min_*``) so that even a 64 × 64 px test scene has at
least one event of each kind; event sizes are capped to a fraction of the
scene so small scenes are not swallowed by one mine.

Presets only move the balance between signal and confounders; none of them
removes a difficulty (noise, imperfect SCL, phenology and floods are always
there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kpgeo.errors import ConfigError

__all__ = ["SimParams", "PRESETS", "get_preset", "randomize_params", "RANDOM_RANGES"]


@dataclass(frozen=True)
class SimParams:
    """Parameters of one simulated scene (see :data:`PRESETS`)."""

    name: str = "default"
    # --- mining -----------------------------------------------------------
    mining_sites_per_100km2: float = 6.0
    """Artisanal mining sites (clusters of pits) per 100 km²."""
    min_mining_sites: int = 2
    site_area_ha: tuple[float, float] = (0.5, 30.0)
    """Range of the final area of a site (log-uniform), before capping."""
    max_site_fraction: float = 0.05
    """A site never exceeds this fraction of the scene area."""
    pit_area_ha: tuple[float, float] = (0.05, 0.6)
    """Range of one pit / heap / worked patch (log-uniform)."""
    single_pit_fraction: float = 0.2
    """Fraction of sites that are one isolated pit (about 0.05–0.15 ha)."""
    growth_months: tuple[float, float] = (2.0, 14.0)
    abandon_probability: float = 0.4
    """Probability that a site is abandoned (then revegetates) within the period."""
    site_start: tuple[float, float] = (0.2, 0.85)
    """Range (uniform, fraction of the period) of the start of a new site: after a baseline."""
    early_site_fraction: float = 0.15
    """Share of the other sites that are pre-existing or early (start -30..15 % into the period)."""
    # --- confounders --------------------------------------------------------
    farms_per_100km2: float = 25.0
    min_farms: int = 1
    farm_area_ha: tuple[float, float] = (0.3, 3.0)
    burns_per_100km2: float = 15.0
    min_burns: int = 1
    burn_area_ha: tuple[float, float] = (2.0, 60.0)
    max_burn_fraction: float = 0.12
    flood_strength: float = 1.0
    """Scales the seasonal flood extent of floodplains (0 disables floods)."""
    flood_cover: tuple[float, float] = (0.4, 1.0)
    """Range of the open-water cover of deep flooded pixels, drawn per date (varies in space)."""
    flood_turbidity: tuple[float, float] = (0.2, 0.9)
    """Range of the flood-water turbidity, drawn per date (varies in space by about ±0.15)."""
    flood_margin: tuple[float, float] = (0.04, 0.25)
    """Range of the level rise over which cover ramps up from the shore (shallow margins)."""
    # --- atmosphere ---------------------------------------------------------
    cloud_dry: float = 0.10
    """Mean cloud fraction of dry-season dates."""
    cloud_wet: float = 0.45
    """Mean cloud fraction of wet-season dates."""
    clear_date_probability: float = 0.2
    """Probability that a date is entirely cloud free (thin haze aside)."""
    cirrus_probability: float = 0.3
    """Probability that a date carries a thin-cirrus layer."""
    scl_miss_thin: float = 0.45
    """Share of thin-cloud pixels SCL leaves unflagged (spatially coherent)."""
    scl_miss_shadow: float = 0.35
    """Share of cloud-shadow pixels SCL leaves unflagged."""
    scl_false_cloud: float = 0.25
    """Probability that a bright bare pixel (mine, village, road) is flagged cloud on a date."""
    scl_false_shadow: float = 0.3
    """Probability that a dark pixel (water, burn scar) is flagged cloud shadow on a date."""
    swath_edge_probability: float = 0.08
    """Probability that a date is cut by a swath edge (nodata in a corner)."""
    # --- radiometry ---------------------------------------------------------
    noise_sigma: float = 0.004
    """Additive sensor noise (reflectance units)."""
    noise_relative: float = 0.01
    """Multiplicative sensor noise (fraction)."""
    gain_sd: float = 0.025
    """Per-date illumination gain standard deviation (clipped to ±5 %)."""
    # --- domain randomisation (opt-in; the defaults leave the output unchanged) ----
    randomize: bool = False
    """Draw the fields below (and jitter the cloud statistics) per seed: see
    :func:`randomize_params` and :data:`RANDOM_RANGES`."""
    greenness_offset: float = 0.0
    """Added to the background greenness of every date (wetter / drier landscape)."""
    pheno_amplitude: float = 1.0
    """Scales the seasonal swing of the greenness about 0.5."""
    pheno_shift_days: float = 0.0
    """Shifts the seasons (days; positive = later)."""
    pit_turbidity: tuple[float, float] = (0.2, 1.0)
    """Range of the turbidity of mining-pit water (0 clear .. 1 laterite-laden)."""
    gravel_brightness: float = 1.0
    """Scales the reflectance of the bare gravel / laterite of mining sites."""
    revisit_gap_fraction: float = 0.0
    """Share of the 5-day revisits lost in outages of 2-12 acquisitions, before sampling."""
    nongreen_site_fraction: float = 0.0
    """Share of mining sites dug into non-green ground: river channel / sand bar, or ground
    cleared 2-13 months before the first pit (no vegetation loss at the start)."""

    def replace(self, **changes) -> SimParams:
        """Return a copy with some fields changed (unknown names raise ConfigError)."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ConfigError(f"unknown simulator parameter(s) {bad}; valid: {sorted(names)}")
        return dataclasses.replace(self, **changes)


_DEFAULT = SimParams()

PRESETS: dict[str, SimParams] = {
    "default": _DEFAULT,
    "clean": _DEFAULT.replace(
        name="clean",
        cloud_dry=0.03,
        cloud_wet=0.15,
        clear_date_probability=0.45,
        cirrus_probability=0.15,
        scl_miss_thin=0.3,
        scl_miss_shadow=0.25,
        scl_false_cloud=0.1,
        scl_false_shadow=0.15,
        swath_edge_probability=0.0,
    ),
    "cloudy": _DEFAULT.replace(
        name="cloudy",
        cloud_dry=0.30,
        cloud_wet=0.75,
        clear_date_probability=0.05,
        cirrus_probability=0.6,
        scl_miss_thin=0.55,
        scl_miss_shadow=0.45,
        swath_edge_probability=0.1,
    ),
    "farm-heavy": _DEFAULT.replace(
        name="farm-heavy", farms_per_100km2=120.0, min_farms=6, farm_area_ha=(0.3, 5.0)
    ),
    "burn-heavy": _DEFAULT.replace(
        name="burn-heavy", burns_per_100km2=80.0, min_burns=4, max_burn_fraction=0.3
    ),
    "small-pits": _DEFAULT.replace(
        name="small-pits",
        mining_sites_per_100km2=20.0,
        min_mining_sites=4,
        site_area_ha=(0.05, 1.5),
        pit_area_ha=(0.05, 0.2),
        single_pit_fraction=0.5,
    ),
}


def get_preset(preset: str | SimParams) -> SimParams:
    """Return the :class:`SimParams` for a preset name (or pass one through).

    Raises
    ------
    ConfigError
        Unknown preset name (the message lists the valid names).
    """
    if isinstance(preset, SimParams):
        return preset
    key = str(preset).strip().lower().replace("_", "-")
    if key not in PRESETS:
        raise ConfigError(
            f"unknown simulator preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}"
        )
    return PRESETS[key]


#: ranges of the domain randomisation (uniform). ``absolute``: the field is drawn from
#: the range; ``relative``: the preset's value is multiplied by a factor from the range
#: (clipped to 0..0.95), so ``cloudy`` stays cloudier than ``clean``.
RANDOM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "absolute": {
        "greenness_offset": (-0.12, 0.12),
        "pheno_amplitude": (0.6, 1.3),
        "pheno_shift_days": (-35.0, 35.0),
        "pit_turbidity_low": (0.0, 0.4),
        "pit_turbidity_high": (0.6, 1.0),
        "gravel_brightness": (0.75, 1.25),
        "revisit_gap_fraction": (0.0, 0.35),
        "nongreen_site_fraction": (0.2, 0.5),
    },
    "relative": {
        "cloud_dry": (0.4, 2.0),
        "cloud_wet": (0.6, 1.5),
        "clear_date_probability": (0.5, 1.6),
        "cirrus_probability": (0.5, 1.8),
        "scl_miss_thin": (0.6, 1.4),
        "scl_miss_shadow": (0.6, 1.4),
    },
}


def randomize_params(params: SimParams, seed: int) -> SimParams:
    """Draw the randomised fields of ``params`` for ``seed`` (see :data:`RANDOM_RANGES`).

    Deterministic in ``seed``; uses its own random stream, so everything else the seed
    draws is unchanged. The returned parameters have ``randomize=True`` and the name
    ``"<preset>+random"``.
    """
    import numpy as np

    from kpgeo.simulate.noise import mix_key

    rng = np.random.default_rng(mix_key(int(seed), 9001))
    a = {k: float(rng.uniform(*r)) for k, r in RANDOM_RANGES["absolute"].items()}
    rel = {k: float(np.clip(getattr(params, k) * rng.uniform(*r), 0.0, 0.95))
           for k, r in RANDOM_RANGES["relative"].items()}
    rel["cloud_wet"] = max(rel["cloud_wet"], rel["cloud_dry"])
    name = params.name if params.name.endswith("+random") else f"{params.name}+random"
    return params.replace(
        name=name, randomize=True, greenness_offset=a["greenness_offset"],
        pheno_amplitude=a["pheno_amplitude"], pheno_shift_days=a["pheno_shift_days"],
        pit_turbidity=(a["pit_turbidity_low"], a["pit_turbidity_high"]),
        gravel_brightness=a["gravel_brightness"],
        revisit_gap_fraction=a["revisit_gap_fraction"],
        nongreen_site_fraction=a["nongreen_site_fraction"], **rel)
