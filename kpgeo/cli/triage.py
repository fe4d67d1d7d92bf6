"""``kpgeo triage``: an analyst's verdict on a site (verified, rejected, unclear), kept."""

from __future__ import annotations

import click

from kpgeo.cli.options import echo_json, json_opt

_STATUSES = ("verified", "rejected", "unclear", "unreviewed")


@click.command()
@click.argument("site_id", required=False)
@click.option("--run", "run_dir", default=None, type=click.Path(file_okay=False),
              help="Run folder whose register (RUN/kpgeo.gpkg) to mark.")
@click.option("--store", "store_url", default=None, metavar="URL",
              help="A PostGIS store (postgresql://user@host/db[?schema=name]) or a .gpkg file.")
@click.option("--status", type=click.Choice(_STATUSES), default=None,
              help="verified (mining confirmed), rejected (false alarm; needs --reason), "
              "unclear, or unreviewed (clear a mark).")
@click.option("--reason", default=None, help="Why a site is rejected (e.g. 'farm clearing').")
@click.option("--note", default=None, help="Free text: field visit, imagery checked...")
@click.option("--date", "mark_date", default=None, metavar="YYYY-MM-DD",
              help="Date of the verdict (default today, UTC).")
@click.option("--analyst", default=None, help="Who made the verdict.")
@json_opt
@click.pass_context
def triage(ctx: click.Context, site_id: str | None, run_dir: str | None, store_url: str | None,
           status: str | None, reason: str | None, note: str | None, mark_date: str | None,
           analyst: str | None, as_json: bool) -> None:
    """Mark SITE_ID verified, rejected or unclear; without SITE_ID, list the sites and marks.

    Marks carry into later runs: a rejected site stays out of the totals and the
    map's default layers, unless it grows well beyond its rejected extent.
    """
    import contextlib
    from pathlib import Path

    from kpgeo import io
    from kpgeo.store import STORE_NAME, mark_site, open_store, read_register

    if (run_dir is None) == (store_url is None):
        raise click.UsageError("give exactly one of --run DIR or --store URL")
    store = open_store(store_url) if store_url else open_store(Path(run_dir) / STORE_NAME)
    if site_id is None:
        register = read_register(store)
        sites = [] if register is None else [
            r for _, r in register.sites.iterrows() if r["status"] != "merged"]
        rows = [{"site_id": r["site_id"], "zone": r["zone"], "area_ha": round(r["area_ha"], 2),
                 "first_detected": io.to_iso_date(r["first_detected"]),
                 "status": r["triage_status"], "reason": r["triage_reason"],
                 "note": r["triage_note"]} for r in sites]
        if as_json:
            echo_json(rows)
            return
        for r in rows:
            reason = f" ({r['reason']})" if r["reason"] else ""
            click.echo(f"{r['site_id']:28s} {r['area_ha']:9.2f} ha  first {r['first_detected']}"
                       f"  {r['status']}{reason}")
        return
    if status is None:
        raise click.UsageError("give --status verified|rejected|unclear|unreviewed")
    # a run writing into the folder would replace the register: hold its lock meanwhile
    lock = io.run_lock(run_dir) if run_dir else contextlib.nullcontext()
    with lock:
        row = mark_site(store, site_id, status, reason=reason, note=note, date=mark_date,
                        analyst=analyst)
    if as_json:
        echo_json(row)
    elif (ctx.obj or {}).get("verbosity", 0) >= 0:
        reason = f" ({row['reason']})" if row.get("reason") else ""
        click.echo(f"{site_id}: {row['status']}{reason} on {io.to_iso_date(row['date'])}, "
                   f"in {store}")
