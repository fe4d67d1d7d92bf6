"""``kpgeo run``: the monitoring run described by a pipeline TOML file."""

from __future__ import annotations

import click

from kpgeo.cli.options import echo_json, json_opt, offline_opt


@click.command()
@click.argument("config_path", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (per-zone results in OUT/zones/<zone-id>/).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Recompute zones even when their results are up to date (run-level outputs "
    "are always rewritten).",
)
@click.option("--no-report", is_flag=True, help="Skip time series, maps and bulletin.")
@offline_opt
@click.option(
    "--scheduler",
    default=None,
    metavar="SPEC",
    help="Dask scheduler: 'threads' (default), 'local' (one worker process per core) "
    "or a scheduler address such as tcp://host:8786.",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    metavar="URL",
    help="Also write the run's tables (site register, footprints, time series...) to this "
    "PostGIS database, postgresql://user@host/db[?schema=name]; overrides [run] store.",
)
@json_opt
@click.pass_context
def run(
    ctx: click.Context,
    config_path: str,
    out_dir: str,
    force: bool,
    no_report: bool,
    offline: bool,
    scheduler: str | None,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Run every zone of CONFIG_PATH (see pipelines/*.toml); finished zones are not redone."""
    import dataclasses
    from pathlib import Path

    from kpgeo.console import want_progress
    from kpgeo.pipeline import dask_scheduler, load_config, run_pipeline
    from kpgeo.summary import format_summary

    verbosity = (ctx.obj or {}).get("verbosity", 0)

    config = load_config(config_path)
    if offline:
        config = dataclasses.replace(config, offline_map=True)
    if store_url:
        config = dataclasses.replace(config, store=store_url)
    with dask_scheduler(scheduler):
        result = run_pipeline(
            config, out_dir, force=force, report=not no_report, progress=want_progress(verbosity)
        )
    failed = [s for s in result["zones"] if s.get("status") == "failed"]
    if as_json:
        echo_json(
            {"zones": result["zones"], "outputs": {k: str(v) for k, v in result["outputs"].items()}}
        )
        verbosity = -1  # the JSON is the summary; failures still go to stderr below
    for summary in result["zones"]:
        if summary.get("status") == "failed":
            click.echo(
                f"{summary['name']} ({summary['zone']}): FAILED, {summary['error']}", err=True
            )
            continue
        if verbosity >= 0:
            skipped = "\n  (up to date: skipped)" if summary.get("skipped") else ""
            click.echo(format_summary(summary) + skipped)
    outputs = result["outputs"]
    if verbosity >= 0:
        click.echo(f"\nWrote {len(outputs)} run outputs to {Path(out_dir)}/")
        for name in ("bulletin.html", "map.html", "timeseries.csv", "kpgeo.gpkg"):
            if name in outputs:
                click.echo(f"  open {outputs[name]}")
    if failed:
        raise click.ClickException(
            f"{len(failed)} zone(s) failed and will be retried by the next run: "
            + ", ".join(s["zone"] for s in failed)
        )
