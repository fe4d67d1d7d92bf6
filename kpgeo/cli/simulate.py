"""``kpgeo simulate``: write a simulated Sentinel-2 L2A scene with ground truth."""

from __future__ import annotations

import click

from kpgeo.cli.options import echo_json, json_opt, out_dir_opt, overwrite_opt


@click.command("simulate")
@out_dir_opt
@click.option("--zone", "zone_key", default=None,
              help="Zone id or name; the scene straddles its boundary.")
@click.option("--bbox", nargs=4, type=float, default=None, metavar="W S E N",
              help="Bounding box in degrees (EPSG:4326).")
@click.option("--center", nargs=2, type=float, default=None, metavar="LON LAT",
              help="Scene centre in degrees (overrides the zone/bbox centre).")
@click.option("--size", type=int, default=None,
              help="Scene side in pixels (square; default 256, or the bbox extent).")
@click.option("--dates", "n_dates", type=int, default=None,
              help="Number of acquisition dates (default 24 procedural, 36 real).")
@click.option("--start", default="2019-01-01", show_default=True, help="First day (ISO).")
@click.option("--end", default="2020-12-31", show_default=True, help="Last day (ISO).")
@click.option("--preset", default="clean", show_default=True,
              help="default, clean, cloudy, farm-heavy, burn-heavy or small-pits.")
@click.option("--source", type=click.Choice(["procedural", "real"]), default="procedural",
              show_default=True,
              help="procedural (fractal landscapes) or real (real S2 texture, OSM land use, "
                   "real tropical seasons, real mine outlines and cloud shapes).")
@click.option("--randomize", is_flag=True,
              help="Procedural source: draw greenness, phenology, pit water, gravel, clouds, "
                   "revisit gaps and non-green mining ground per seed.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resolution", type=float, default=10.0, show_default=True,
              help="Pixel size of the 10 m bands, metres.")
@click.option("--tile-size", type=int, default=512, show_default=True,
              help="Generation tile side (bounds memory; does not change the output).")
@overwrite_opt
@json_opt
def simulate(out_dir, zone_key, bbox, center, size, n_dates, start, end, preset, source,
             randomize, seed, resolution, tile_size, overwrite, as_json):
    """Simulate a multi-date Sentinel-2 L2A scene with artisanal mining and its confounders.

    Writes per-date COGs, items.json (STAC) and the truth files into --out.
    """
    from pathlib import Path

    from kpgeo.errors import OutputExistsError
    from kpgeo.simulate import simulate_scene

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} is not empty; pass --overwrite to write into it")
    if zone_key and bbox:
        raise click.UsageError("give either --zone or --bbox, not both")
    scene = simulate_scene(
        out,
        zone=zone_key,
        bbox=tuple(bbox) if bbox else None,
        center=tuple(center) if center else None,
        shape=(size, size) if size else None,
        resolution=resolution,
        start=start,
        end=end,
        n_dates=n_dates,
        preset=preset,
        seed=seed,
        tile_size=tile_size,
        overwrite=True,
        source=source,
        randomize=randomize,
    )
    h, w = scene.shape
    paths = (scene.items_path, scene.truth_path, scene.labels_path, scene.cloud_path,
             scene.mining_start_path)
    if as_json:
        echo_json({"dates": [str(d) for d in scene.dates], "shape_yx": [h, w],
                   "crs": str(scene.crs), "source": scene.source, "preset": scene.preset,
                   "seed": scene.seed,
                   "events": dict(scene.n_events), "files": [str(p) for p in paths]})
        return
    click.echo(f"wrote {len(scene.dates)} dates ({scene.dates[0]} .. {scene.dates[-1]}) of "
               f"{h}x{w} px, {scene.crs}, {scene.source} source, preset {scene.preset}, "
               f"seed {scene.seed} to {out}")
    ev = ", ".join(f"{k}: {v}" for k, v in scene.n_events.items())
    click.echo(f"  events: {ev}")
    for p in paths:
        click.echo(f"  {p}")
