"""``kpgeo area``: area with confidence intervals and accuracies from a labelled sample."""

from __future__ import annotations

from pathlib import Path

import click

from kpgeo.cli.options import overwrite_opt

__all__ = ["area"]

OUTPUTS = ("area.csv", "accuracy.csv", "error_matrix.csv")


@click.command("area")
@click.option("--labels", "labels_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Labelled sheet from `kpgeo sample` (labels.csv or labels.gpkg).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for area.csv, accuracy.csv, error_matrix.csv; default: the sheet's.")
@click.option("--fpc", is_flag=True, help="Apply the finite population correction.")
@overwrite_opt
def area(labels_path: Path, out_dir: Path | None, fpc: bool, overwrite: bool) -> None:
    """Estimate mining area (95 % CI) and map accuracy per zone and period.

    Stratified estimator of Olofsson et al. (2014) / Stehman (2014): the area
    of new, stable and all mining with standard error and confidence interval,
    user's, producer's and overall accuracy with their standard errors, and
    the error matrix in area proportions.
    """
    from kpgeo import io
    from kpgeo.area import ALL_MINING, estimate_sheet, read_labels, zone_area_summary

    out = out_dir or labels_path.parent
    io.ensure_out_dir(out, overwrite=overwrite, expect=OUTPUTS)
    est = estimate_sheet(read_labels(labels_path), fpc=fpc)
    acc = est.accuracy.set_index(["zone", "period_start", "period_end", "class"])
    for row in zone_area_summary(est.area).itertuples():
        key = (row.zone, row.period_start, row.period_end)
        period = (f"{row.period_start or 'start'}/{row.period_end or 'end'}"
                  if row.period_start or row.period_end else "whole series")
        ua, pa = acc.loc[key + (ALL_MINING,), ["users", "producers"]]
        oa, oa_se = acc.loc[key + ("overall",), ["overall", "overall_se"]]
        click.echo(f"{row.zone} {period}: {row.text}; mining user's {ua:.2f} producer's "
                   f"{pa:.2f}; overall {oa:.3f} ± {1.96 * oa_se:.3f}")
    io.write_table(est.area, out / "area.csv")
    io.write_table(est.accuracy, out / "accuracy.csv")
    io.write_table(est.error_matrix, out / "error_matrix.csv")
