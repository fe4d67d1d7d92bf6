"""The ``kpgeo`` command line: a thin shell over the library.

Each subcommand lives in its own module of this package and is imported only
when invoked, so ``kpgeo --help`` stays fast. Domain errors
(:class:`kpgeo.errors.KpgeoError`) are printed as one clear line, without a
traceback, and give exit status 1 (2 for usage errors, as click does).
"""

from __future__ import annotations

import importlib

import click

from kpgeo._version import __version__

__all__ = ["main"]

#: subcommand name -> "module:function" (lazy import)
SUBCOMMANDS: dict[str, str] = {
    "zones": "kpgeo.cli.zones:zones",
    "simulate": "kpgeo.cli.simulate:simulate",
    "summary": "kpgeo.cli.summary:summary",
    "detect": "kpgeo.cli.detect:detect",
    "evaluate": "kpgeo.cli.evaluate:evaluate",
    "report": "kpgeo.cli.report:report",
    "run": "kpgeo.cli.run:run",
    "sample": "kpgeo.cli.sample:sample",
    "area": "kpgeo.cli.area:area",
    "production": "kpgeo.cli.production:production",
    "search": "kpgeo.cli.search:search",
    "triage": "kpgeo.cli.triage:triage",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # subcommand not built yet
                return None
            raise
        return getattr(module, attr)


class KpgeoGroup(LazyGroup):
    """Turn domain errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context):  # noqa: D102
        from kpgeo.errors import KpgeoError

        try:
            return super().invoke(ctx)
        except KpgeoError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # a file-system fault outside kpgeo's own checks
            if exc.errno is None or ctx.obj and ctx.obj.get("verbosity", 0) >= 2:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{type(exc).__name__}: {where}{exc.strerror}") from exc


@click.group(cls=KpgeoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kpgeo")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output on stderr: -v what kpgeo does (zones, steps, times, memory), "
    "-vv kpgeo debug and library messages.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors: no summaries, no progress bars.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Monitor artisanal diamond mining in Kimberley Process zones from satellite imagery."""
    from kpgeo.console import configure

    configure(-1 if quiet else verbose)
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = -1 if quiet else verbose
