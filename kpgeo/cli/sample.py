"""``kpgeo sample``: a stratified random sample of a zone's change map, as a labelling sheet."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kpgeo.cli.options import overwrite_opt

__all__ = ["sample"]


def zone_folder(run: Path, zone: str | None) -> Path:
    """Find the folder holding ``state.tif``: ``run`` itself, or ``run/zones/<zone>``."""
    if zone is not None:
        folder = run / "zones" / zone
        if not (folder / "state.tif").is_file():
            have = sorted(p.parent.name for p in run.glob("zones/*/state.tif"))
            raise click.BadParameter(f"{folder} has no state.tif; zones in this run: {have}",
                                     param_hint="--zone")
        return folder
    if (run / "state.tif").is_file():
        return run
    have = sorted(p.parent.name for p in run.glob("zones/*/state.tif"))
    if len(have) == 1:
        return run / "zones" / have[0]
    raise click.BadParameter(f"{run} holds no state.tif; pick a zone with --zone (one of {have})"
                             if have else f"{run} holds no state.tif nor zones/*/state.tif",
                             param_hint="--run")


def _items_from_stamp(folder: Path, zone: str) -> str | None:
    """Find the items file a pipeline run used for the zone (its ``done.json``), if any."""
    try:
        jobs = json.loads((folder / "done.json").read_text())["config"]["jobs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return next((j.get("items") for j in jobs if j.get("zone") == zone), None)


def _users(text: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if part.strip():
            name, _, value = part.partition("=")
            try:
                out[name.strip()] = float(value)
            except ValueError as exc:
                raise click.BadParameter(f"{part!r} is not STRATUM=ACCURACY",
                                         param_hint="--users") from exc
    return out


@click.command("sample")
@click.option("--run", "run_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Output folder of `kpgeo run` (with --zone) or of `kpgeo detect`.")
@click.option("--zone", "zone", default=None, help="Zone id (folder under RUN/zones/).")
@click.option("--window", "window", default=None, metavar="START/END",
              help="Date window whose new mining is estimated, ISO dates (inclusive); "
                   "default: the whole series.")
@click.option("--region", type=click.Choice(["zone", "all"]), default="zone", show_default=True,
              help="Population: pixels inside the zone polygon, or the whole mapped area "
                   "(zone and outside ring).")
@click.option("--aoi", "aoi_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="Polygon file to use as the population region instead of the zone.")
@click.option("--n", "n_total", type=click.IntRange(1, 1_000_000), default=None,
              help="Total sample size; default: Olofsson et al. (2014) Eq. (13).")
@click.option("--target-se", type=float, default=0.01, show_default=True,
              help="Target standard error of overall accuracy for Eq. (13).")
@click.option("--users", "users_text", default=None, metavar="STRATUM=U,...",
              help="Anticipated user's accuracies, e.g. 'new mining=0.7,no change=0.98'.")
@click.option("--min-per-stratum", type=click.IntRange(0, 100_000), default=50,
              show_default=True, help="Minimum units per stratum.")
@click.option("--buffer-px", type=click.IntRange(0, 100), default=3, show_default=True,
              help="Width of the buffer stratum around mapped mining (pixels).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draw.")
@click.option("--items", "items_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="STAC items of the zone, for before/after chips; default: the run's.")
@click.option("--no-chips", is_flag=True, help="Do not write image chips.")
@click.option("--truth", "truth_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="Simulator truth_mining_start.tif: label the sheet from the truth "
                   "(simulated analyst).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the sheet; default ZONE_DIR/sample_<window>.")
@overwrite_opt
def sample(run_dir: Path, zone: str | None, window: str | None, region: str,
           aoi_path: str | None, n_total: int | None, target_se: float, users_text: str | None,
           min_per_stratum: int, buffer_px: int, seed: int, items_path: str | None,
           no_chips: bool, truth_path: str | None, out_dir: Path | None,
           overwrite: bool) -> None:
    """Draw a stratified random sample of pixels and write the labelling sheet.

    Strata: new mining (first detected in the window), stable mining (before
    it), a buffer around mapped mining and no change. Writes labels.csv
    (open in a spreadsheet), labels.gpkg (open in QGIS), design.json and,
    with imagery, chips/<unit>_before.png and _after.png. Fill ref_class with
    'new mining', 'stable mining' or 'no mining' for every unit, then run
    `kpgeo area --labels labels.csv`.
    """
    from kpgeo.errors import UnknownZoneError
    from kpgeo.sampling import Period, sample_zone, zone_of_folder
    from kpgeo.zones import load_aoi

    folder = zone_folder(run_dir, zone)
    zone_id = zone_of_folder(folder)
    geometry, region_name = None, None
    if aoi_path is not None:
        geometry, region_name = load_aoi(aoi_path).geometry, str(aoi_path)
    elif region == "zone":
        try:
            geometry, region_name = load_aoi(zone_id).geometry, zone_id
        except UnknownZoneError as exc:
            raise click.BadParameter(f"zone {zone_id!r} is not in the zone catalogue; pass "
                                     "--aoi FILE or --region all", param_hint="--region") from exc
    items = None if no_chips else (items_path or _items_from_stamp(folder, zone_id))
    if items is not None and not Path(items).is_file():
        items = None
    if items is None and not no_chips:
        click.echo("note: no imagery found for chips (pass --items ITEMS.json)", err=True)
    sheet, paths = sample_zone(
        folder, out_dir, period=Period.parse(window), buffer_px=buffer_px,
        users=_users(users_text), target_se=target_se, n=n_total,
        min_per_stratum=min_per_stratum, seed=seed, region=geometry, region_name=region_name,
        items=items, truth=truth_path, overwrite=overwrite)
    counts = sheet["stratum"].value_counts()
    click.echo(f"{zone_id}: {len(sheet)} units (" + ", ".join(
        f"{k} {counts.get(k, 0)}" for k in ("new mining", "stable mining", "buffer", "no change"))
        + f") -> {paths['labels.csv']}")
