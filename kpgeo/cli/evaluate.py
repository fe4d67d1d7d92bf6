"""``kpgeo evaluate``: accuracy of footprints against ground truth."""

from __future__ import annotations

import click

from kpgeo.cli.options import echo_json, json_opt

__all__ = ["evaluate"]


@click.command("evaluate")
@click.option("--truth", "truth_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="Truth polygons (truth.geojson: class, start_date, ...).")
@click.option("--footprints", "fp_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="Detected footprints (.geojson or .parquet).")
@click.option("--labels", "labels_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="truth_labels.tif, for pixel metrics and false alarms by confounder "
                   "(truth_cloud.tif next to it is used too).")
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False, path_type=str),
              help="Write the metrics as JSON here.")
@click.option("--iou", "iou_threshold", type=float, default=0.25, show_default=True,
              help="IoU for a truth site to count as detected.")
@click.option("--baseline-obs", type=click.IntRange(1, 1000), default=None,
              help="Don't-care protocol: sites with fewer clear observations before their "
                   "start are pre-existing (use the detector's baseline_obs, 4 by default). "
                   "Needs --labels and truth_cloud.tif.")
@click.option("--confirm-obs", type=click.IntRange(1, 1000), default=None,
              help="Don't-care protocol: sites with fewer clear observations from their "
                   "start to the last date are pending (use the detector's persistence, 3).")
@click.option("--overwrite", is_flag=True, default=False, help="Replace an existing --out file.")
@json_opt
def evaluate(truth_path: str, fp_path: str, labels_path: str | None, out_path: str | None,
             iou_threshold: float, baseline_obs: int | None, confirm_obs: int | None,
             overwrite: bool, as_json: bool) -> None:
    """Object, pixel, area and latency accuracy of FOOTPRINTS against TRUTH."""
    from kpgeo import io
    from kpgeo.errors import OutputExistsError
    from kpgeo.evaluate import evaluate_files

    if out_path and not overwrite and __import__("os").path.exists(out_path):
        raise OutputExistsError(f"{out_path} exists; pass --overwrite to replace it.")
    m = evaluate_files(truth_path, fp_path, labels=labels_path, iou_threshold=iou_threshold,
                       baseline_obs=baseline_obs, confirm_obs=confirm_obs)
    if out_path:
        io.write_json(m, out_path)
    if as_json:
        echo_json(m)
        return
    o = m["object"]
    click.echo(f"object  P={o['precision']:.3f} R={o['recall']:.3f} F1={o['f1']:.3f} "
               f"({o['detected_sites']}/{o['n_truth']} sites, {o['n_detected']} footprints)")
    if baseline_obs is not None or confirm_obs is not None:
        click.echo(f"don't-care: {o['n_pre_existing']} pre-existing sites "
                   f"({o['pre_existing_detected']} detected), {o['n_pending']} pending, "
                   f"{o['dont_care_footprints']} footprints on them")
    if "pixel" in m:
        p = m["pixel"]
        click.echo(f"pixel   P={p['precision']:.3f} R={p['recall']:.3f} IoU={p['iou']:.3f} "
                   f"specificity={p['specificity']:.4f}")
        fa = ", ".join(f"{k} {v['fraction_of_detected']:.1%}" for k, v in m["false_alarm"].items())
        click.echo(f"false alarms (share of detected area): {fa}")
    a = m["area"]
    click.echo(f"area    truth={a['truth_ha']:.2f} ha detected={a['detected_ha']:.2f} ha "
               f"error={a['relative_error']:+.1%}")
    lat = m["latency"]
    click.echo(f"latency median {lat['median_days']:.0f} days, "
               f"{lat['median_clear_obs']} clear obs")
