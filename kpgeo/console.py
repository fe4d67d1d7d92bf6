"""What kpgeo shows a person at a terminal: log levels, warnings and progress bars.

Everything goes to **stderr**, so stdout keeps only a command's result (the
zone summaries), whatever is redirected.

- :func:`configure` sets the levels for a verbosity (``-q`` = -1, default 0,
  ``-v`` = 1, ``-vv`` = 2, ``-vvv`` = 3): kpgeo's own messages at WARNING /
  INFO / DEBUG; library loggers (dask.distributed, rasterio, numba, ...) stay
  at WARNING unless ``-vv`` (INFO) or ``-vvv`` (DEBUG). kpgeo warnings
  (:class:`~kpgeo.errors.KpgeoWarning`) are shown as one line each; other
  libraries' warnings (rasterio's NotGeoreferencedWarning about odc's in-memory
  buffers, numpy's all-NaN slices...) only at ``-vv``.
- :func:`step` times one step of a zone (load, coverage, detection, writing),
  logs it with the peak memory, and, when asked, draws a tqdm bar of the dask
  tasks done in that step.
- :func:`want_progress` says whether bars make sense: stderr is a terminal and
  the user did not pass ``-q``.

The library itself never calls :func:`configure`: a notebook keeps its own
logging set-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = [
    "configure",
    "step",
    "want_progress",
    "quiet_workers",
    "peak_memory",
    "LIBRARY_LOGGERS",
]

log = logging.getLogger("kpgeo")

#: Loggers of libraries kpgeo uses that are chatty at INFO.
LIBRARY_LOGGERS = (
    "distributed",
    "dask",
    "rasterio",
    "fiona",
    "pyogrio",
    "numba",
    "matplotlib",
    "PIL",
    "urllib3",
    "botocore",
    "fsspec",
    "asyncio",
    "tornado",
    "bokeh",
    "odc",
    "py.warnings",
)


class _StderrHandler(logging.StreamHandler):
    """Stream handler that writes to whatever ``sys.stderr`` is at emit time."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
        bars = sys.modules.get("tqdm")
        if bars is None or not getattr(bars.tqdm, "_instances", None):
            return super().emit(record)
        try:  # a progress bar is on screen: print above it instead of through it
            bars.tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class _Formatter(logging.Formatter):
    """``warning: message`` for kpgeo, ``LEVEL logger: message`` for libraries."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102
        message = record.getMessage()
        if record.exc_info and log.isEnabledFor(logging.DEBUG):
            message += "\n" + self.formatException(record.exc_info)
        if record.name == "kpgeo" or record.name.startswith("kpgeo."):
            if record.levelno >= logging.WARNING:
                return f"{record.levelname.lower()}: {message}"
            return f"{time.strftime('%H:%M:%S')} {message}"
        return f"{record.levelname} {record.name}: {message}"


_HANDLER: logging.Handler | None = None


def _levels(verbosity: int) -> tuple[int, int]:
    """(kpgeo level, library level) for a verbosity."""
    if verbosity < 0:
        return logging.ERROR, logging.ERROR
    own = (logging.WARNING, logging.INFO)[verbosity] if verbosity < 2 else logging.DEBUG
    libs = logging.WARNING if verbosity < 2 else (logging.INFO, logging.DEBUG)[verbosity >= 3]
    return own, libs


def configure(verbosity: int = 0) -> None:
    """Send kpgeo's log messages and warnings to stderr at the level of ``verbosity``.

    Parameters
    ----------
    verbosity
        -1 (``-q``: errors only), 0 (warnings), 1 (``-v``: what kpgeo does: zones,
        steps, items read, times, memory), 2 (``-vv``: kpgeo debug and library
        INFO), 3 (``-vvv``: everything).

    Calling it again replaces the previous set-up (no duplicate handlers).
    """
    global _HANDLER
    own, libs = _levels(verbosity)
    root = logging.getLogger()
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
    _HANDLER = _StderrHandler()
    _HANDLER.setFormatter(_Formatter())
    root.addHandler(_HANDLER)
    root.setLevel(libs)
    log.setLevel(own)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(libs)
    # dask.distributed sets its loggers from the dask config when it is imported (here
    # and in worker processes, which inherit the environment)
    level = logging.getLevelName(libs).lower()
    os.environ["DASK_LOGGING__DISTRIBUTED"] = level
    if "dask" in sys.modules:
        import dask

        dask.config.set({"logging": {"distributed": level, "distributed.client": level}})
    warnings.showwarning = _show_warning


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: Any
) -> None:
    """Warnings as log records: kpgeo's as one line, other libraries' at ``-vv`` only."""
    from kpgeo.errors import KpgeoWarning

    if issubclass(category, KpgeoWarning):
        log.warning("%s", message)
    else:
        logging.getLogger("py.warnings").info(
            "%s:%s: %s: %s", filename, lineno, category.__name__, message
        )


def quiet_workers(client: Any) -> None:
    """Drop library warnings in a local cluster's worker processes, as :func:`configure` does here.

    Worker processes print warnings (numpy's all-NaN slices...) straight to the
    terminal; below ``-vv`` only kpgeo's own warnings are kept. Does nothing when
    :func:`configure` was not called (a notebook keeps its own set-up).
    """
    if _HANDLER is None or logging.getLogger("py.warnings").isEnabledFor(logging.INFO):
        return
    client.run(_hide_library_warnings)


def _hide_library_warnings() -> None:
    from kpgeo.errors import KpgeoWarning

    warnings.simplefilter("ignore")
    warnings.simplefilter("default", KpgeoWarning)


def want_progress(verbosity: int = 0, stream: Any = None) -> bool:
    """Tell whether progress bars should be drawn: stderr is a terminal and not ``-q``."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return verbosity >= 0 and bool(isatty and isatty())


def peak_memory() -> str:
    """Peak resident memory of this process so far, e.g. ``"1.2 GB"`` (``"?"`` if unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return "?"
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    nbytes = kib if sys.platform == "darwin" else kib * 1024  # macOS reports bytes
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1024 or unit == "TB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024
    return "?"


def _task_bar(label: str) -> Any:
    """Make a dask local-scheduler callback that draws a tqdm bar of tasks done (stderr)."""
    from dask.callbacks import Callback
    from tqdm.auto import tqdm

    class TaskBar(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.bar = tqdm(
                total=0, desc=label, unit="task", file=sys.stderr, leave=False, dynamic_ncols=True
            )

        def _start_state(self, dsk: Any, state: Any) -> None:
            self.bar.total += sum(len(state[k]) for k in ("ready", "waiting", "running"))
            self.bar.refresh()

        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            self.bar.update(1)

        def __exit__(self, *args: Any) -> None:
            super().__exit__(*args)
            self.bar.close()

    return TaskBar()


@contextlib.contextmanager
def step(label: str, *, progress: bool = False) -> Iterator[None]:
    """Time one step, log its start and end (INFO) with peak memory; optionally draw a bar.

    Parameters
    ----------
    label
        What is being done, e.g. ``"caf-boda: detection"``.
    progress
        Draw a tqdm bar of dask tasks on stderr (threaded and process schedulers;
        on a distributed cluster the bar shows the step and its time only).
    """
    log.info("%s ...", label)
    start = time.perf_counter()
    bar = _task_bar(label) if progress else contextlib.nullcontext()
    with bar:
        yield
    log.info("%s: done in %.1f s (peak memory %s)", label, time.perf_counter() - start,
             peak_memory())
