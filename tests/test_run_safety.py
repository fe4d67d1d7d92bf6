"""Data safety of runs and what they show (issue 8, items 2, 3, 4, 7, 10, 11).

One run at a time per output folder, leftovers of killed runs cleaned, resume by
content, file-system faults reported in one line with earlier outputs intact,
progress and logs on stderr at the requested verbosity.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner

from kpgeo import io
from kpgeo.cli import main
from kpgeo.errors import KpgeoWarning, RunLockedError


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from conftest import build_s2_scene

    return build_s2_scene(tmp_path_factory.mktemp("scene"), same_day_pair=False)


@pytest.fixture
def config(scene, tmp_path) -> Path:
    """A one-zone run over the synthetic scene (AOI ``site``)."""
    items = json.loads(scene.items_path.read_text())
    aoi = tmp_path / "site.geojson"
    geom = shapely.box(*items["features"][0]["bbox"]).buffer(-0.0001)
    gpd.GeoDataFrame({"id": ["site"]}, geometry=[geom], crs=4326).to_file(aoi)
    path = tmp_path / "run.toml"
    path.write_text(
        f'[run]\nring_width_m = 100\n[[zones]]\naoi = "{aoi}"\nitems = "{scene.items_path}"\n'
    )
    return path


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI configures logging and warnings for the process; undo it after each test."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("kpgeo").level)
    showwarning = warnings.showwarning
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    logging.getLogger("kpgeo").setLevel(saved[2])
    warnings.showwarning = showwarning


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def _snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Inode, mtime and bytes of every file directly in ``folder``."""
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in folder.iterdir()
        if p.is_file()
    }


# --------------------------------------------------------------------------- 2. run lock


def test_second_run_into_a_locked_folder_is_refused(config, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with io.run_lock(out) as lock:
        holder = json.loads(lock.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] and holder["started"]
        res = _run("run", str(config), "--out", str(out), "--no-report")
    assert res.exit_code == 1
    assert "RunLockedError" in res.output and f"pid {os.getpid()}" in res.output
    assert str(out / io.LOCK_NAME) in res.output  # says how to clear it
    assert not (out / "zones").exists()
    assert not (out / io.LOCK_NAME).exists()  # released


def test_lock_held_by_another_process_then_stale_after_kill(config, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from kpgeo.io import run_lock
            with run_lock({str(out)!r}):
                print("locked", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        refused = _run("run", str(config), "--out", str(out), "--no-report")
        assert refused.exit_code == 1 and f"pid {holder.pid}" in refused.output
    finally:
        holder.kill()  # like kill -9: the lock file stays behind
        holder.wait()
    assert (out / io.LOCK_NAME).exists()
    res = _run("run", str(config), "--out", str(out), "--no-report")
    assert res.exit_code == 0, res.output
    assert "stale lock" in res.stderr and f"process {holder.pid}" in res.stderr
    assert (out / "zones" / "site" / "done.json").is_file()
    assert not (out / io.LOCK_NAME).exists()


def test_unreadable_old_lock_is_stale_but_a_fresh_one_is_not(tmp_path):
    lock = tmp_path / io.LOCK_NAME
    lock.write_text("")  # a run that died between creating and writing its lock
    with pytest.raises(RunLockedError, match="starting now"):
        with io.run_lock(tmp_path):
            pass
    os.utime(lock, (1e9, 1e9))
    with io.run_lock(tmp_path):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_lock_from_another_host_is_respected(tmp_path):
    lock = tmp_path / io.LOCK_NAME
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2024-01-01T00:00:00Z"}))
    with pytest.raises(RunLockedError, match="elsewhere"):
        with io.run_lock(tmp_path):
            pass
    assert lock.exists()


# --------------------------------------------------------------------------- 3. leftovers


def test_temporary_names_are_recognisable_and_fsynced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with io.atomic_path(tmp_path / "a.csv") as tmp:
        assert io.is_temp_name(tmp.name) and tmp.suffix == ".csv"
        tmp.write_text("x\n")
    assert (tmp_path / "a.csv").read_text() == "x\n" and synced
    assert not io.is_temp_name("a.csv") and not io.is_temp_name("notes.tmp")


def test_leftovers_of_a_killed_run_are_removed_by_the_next(config, tmp_path):
    out = tmp_path / "out"
    zone_dir = out / "zones" / "site"
    zone_dir.mkdir(parents=True)
    # a writer killed with SIGKILL in the middle of an atomic write
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, signal
            from kpgeo.io import atomic_path
            with atomic_path({str(out / "bulletin.html")!r}) as tmp:
                tmp.write_text("half a bulletin")
                os.kill(os.getpid(), signal.SIGKILL)
        """)],
        check=False,
    )
    killed = [p for p in out.iterdir() if io.is_temp_name(p.name)]
    assert len(killed) == 1 and not (out / "bulletin.html").exists()
    legacy = zone_dir / ".state.tif.k2j4h5g6.tmp.tif"  # name of kpgeo before this change
    legacy.write_bytes(b"partial")
    stage = out / ".run.abc123.kpgeo.tmp"
    stage.mkdir()
    (stage / "map.html").write_text("partial")
    keep = [out / "notes.tmp", out / ".hidden", zone_dir / "my.kpgeo.tmp.txt"]
    for path in keep:
        path.write_text("user file")
    outside = tmp_path / ".x.html.abcdefgh.kpgeo.tmp.html"
    outside.write_text("not ours to clean")

    res = _run("run", str(config), "--out", str(out), "--no-report")
    assert res.exit_code == 0, res.output
    assert not [p for p in out.rglob("*") if io.is_temp_name(p.name)]
    assert all(p.read_text() == "user file" for p in keep)
    assert outside.exists()


# --------------------------------------------------------------------------- 4. fingerprint


def test_fingerprint_follows_content_not_times(scene, tmp_path):
    import shutil

    from kpgeo.pipeline import RunConfig, ZoneJob, _fingerprint
    from kpgeo.zones import load_aoi

    copy = tmp_path / "scene"
    shutil.copytree(scene.root, copy)
    zone = load_aoi(shapely.box(21.0, 5.42, 21.01, 5.43), name="site")
    job = ZoneJob(zone=zone, items=copy / "items.json")
    cfg = RunConfig(jobs=(job,), ring_width_m=100)
    cache: dict = {}
    first = _fingerprint(job, cfg, cache)
    asset = copy / scene.files[1]["red"].relative_to(scene.root)
    assert str(asset) in cache

    os.utime(asset)  # touch: new mtime, same bytes
    assert _fingerprint(job, cfg, cache) == first

    st = asset.stat()
    data = bytearray(asset.read_bytes())
    data[-1] ^= 0xFF  # same size, different content, mtime put back
    asset.write_bytes(bytes(data))
    os.utime(asset, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert asset.stat().st_size == st.st_size and asset.stat().st_mtime_ns == st.st_mtime_ns
    assert _fingerprint(job, cfg, cache) != first
    assert _fingerprint(job, cfg, {}) != first  # also without the cache
    changed = _fingerprint(job, cfg, cache)
    for entry in cache.values():  # a cache written by an older kpgeo (SHA-256 digests)
        entry[4] = "sha256:" + "0" * 64
    assert _fingerprint(job, cfg, cache) == changed  # re-hashed, not reused


def test_file_hash_covers_every_byte_across_read_chunks(tmp_path):
    import numpy as np
    import xxhash

    from kpgeo.pipeline import _file_hash

    data = np.random.default_rng(0).bytes(700_000)  # several of file_digest's 256 KiB reads
    path = tmp_path / "a.tif"
    path.write_bytes(data)
    assert _file_hash(str(path)) == xxhash.xxh3_128(data).hexdigest()
    changed = bytearray(data)
    changed[400_000] ^= 1  # one bit in the middle of the second read
    path.write_bytes(bytes(changed))
    assert _file_hash(str(path)) != xxhash.xxh3_128(data).hexdigest()


def test_touched_imagery_is_not_recomputed(config, scene, tmp_path):
    out = tmp_path / "out"
    assert _run("run", str(config), "--out", str(out), "--no-report").exit_code == 0
    assert (out / ".kpgeo-hashes.json").is_file()
    stamp = (out / "zones" / "site" / "done.json").stat().st_mtime_ns
    for files in scene.files:
        for path in files.values():
            os.utime(path)
    res = _run("run", str(config), "--out", str(out), "--no-report")
    assert res.exit_code == 0 and "up to date: skipped" in res.output
    assert (out / "zones" / "site" / "done.json").stat().st_mtime_ns == stamp


# --------------------------------------------------------------------------- 7. file-system faults


def test_out_under_a_file_is_one_line(config, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    res = _run("run", str(config), "--out", str(blocker / "out"), "--no-report")
    assert res.exit_code == 1
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert f"{blocker} is a file, not a folder" in res.output


@pytest.mark.parametrize(
    ("code", "cause"), [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")]
)
def test_read_only_output_is_one_line_and_keeps_earlier_outputs(
    config, tmp_path, monkeypatch, code, cause
):
    out = tmp_path / "out"
    assert _run("run", str(config), "--out", str(out), "--no-report").exit_code == 0
    before = _snapshot(out)
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(real):
        def wrapper(path, *args, **kwargs):
            if Path(os.fsdecode(path)).resolve().is_relative_to(out.resolve()):
                flags = args[0] if args and real is real_open else 0
                if real is real_mkdir or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                    raise OSError(code, os.strerror(code), os.fsdecode(path))
            return real(path, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(os, "open", refuse(real_open))
    monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    res = _run("run", str(config), "--out", str(out), "--no-report", "--force")
    monkeypatch.undo()
    assert res.exit_code == 1
    assert "Traceback" not in res.output and "OutputWriteError" in res.output
    assert cause in res.output and str(out) in res.output
    assert _snapshot(out) == before


def test_disk_full_during_run_outputs_leaves_the_previous_set(config, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert _run("run", str(config), "--out", str(out), "--no-report").exit_code == 0
    before = _snapshot(out)
    real_commit = io._commit

    def full_disk(tmp, final):
        # run-level outputs are written in a staging folder first; the disk fills up there
        if io.TEMP_MARK in final.parent.name and final.name == "footprints.parquet":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_commit(tmp, final)

    monkeypatch.setattr(io, "_commit", full_disk)
    res = _run("run", str(config), "--out", str(out), "--no-report", "--force")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "footprints.parquet: no space left on device" in res.output
    assert _snapshot(out) == before  # not one run-level file replaced
    assert not [p for p in out.rglob("*") if io.is_temp_name(p.name)]
    assert not (out / io.LOCK_NAME).exists()


def test_library_error_on_a_full_disk_is_reported_as_disk_full(tmp_path, monkeypatch):
    """GDAL and matplotlib word a full disk their own way; the free space tells."""
    from collections import namedtuple

    from kpgeo.errors import OutputWriteError

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(io.shutil, "disk_usage", lambda _p: usage(100, 100, 0))
    with pytest.raises(OutputWriteError, match="x.tif: no space left on device"):
        with io.atomic_path(tmp_path / "x.tif"):
            raise RuntimeError("TIFFAppendToStrip:Write error at scanline 0")
    with pytest.raises(ValueError, match="a bug"):  # other errors pass through
        monkeypatch.setattr(io.shutil, "disk_usage", lambda _p: usage(100, 10, 90))
        with io.atomic_path(tmp_path / "x.tif"):
            raise ValueError("a bug")
    assert list(tmp_path.iterdir()) == []


def test_unmapped_os_error_in_the_cli_is_one_line(monkeypatch, tmp_path):
    import kpgeo.cli.zones

    def broken(*_a, **_k):
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere/zones")

    monkeypatch.setattr("kpgeo.zones.list_zones", broken)
    assert kpgeo.cli.zones  # imported, so the patched name is used
    res = _run("zones")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "/somewhere/zones: Permission denied" in res.output


# --------------------------------------------------------------------------- 10. progress


def test_progress_goes_to_stderr_only(scene, tmp_path, capsys):
    from kpgeo.pipeline import process_zone
    from kpgeo.zones import load_aoi

    zone = load_aoi(shapely.box(21.0, 5.4255, 21.0036, 5.4282), name="site")
    process_zone(scene.items_path, zone, out_dir=tmp_path / "o", ring_width_m=100,
                 progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "site: change detection" in captured.err and "task" in captured.err


def test_run_shows_progress_on_a_terminal_and_not_otherwise(config, tmp_path, monkeypatch):
    from kpgeo import console

    assert console.want_progress(0) is False  # CliRunner / pytest stderr is not a terminal

    class Tty:
        def isatty(self):
            return True

    assert console.want_progress(0, Tty()) is True and console.want_progress(-1, Tty()) is False
    res = _run("run", str(config), "--out", str(tmp_path / "plain"), "--no-report")
    assert "task" not in res.stderr
    monkeypatch.setattr(console, "want_progress", lambda verbosity, stream=None: verbosity >= 0)
    res = _run("run", str(config), "--out", str(tmp_path / "tty"), "--no-report")
    assert res.exit_code == 0, res.output
    assert "site: change detection" in res.stderr and "task" in res.stderr
    assert "task" not in res.stdout
    res = _run("-q", "run", str(config), "--out", str(tmp_path / "quiet"), "--no-report")
    assert res.exit_code == 0 and res.stderr == "" and res.stdout == ""


# --------------------------------------------------------------------------- 11. logging


def test_verbose_run_logs_zone_steps_items_time_memory(config, scene, tmp_path):
    res = _run("-v", "run", str(config), "--out", str(tmp_path / "out"), "--no-report")
    assert res.exit_code == 0, res.output
    err = res.stderr
    assert "zone 1/1: site" in err
    assert f"{len(scene.ids)} item(s) read, {7 * len(scene.ids)} asset header(s) checked" in err
    assert "site: change detection: done in" in err and "peak memory" in err
    assert "INFO " not in err  # library loggers stay at WARNING with -v
    again = _run("-v", "run", str(config), "--out", str(tmp_path / "out"), "--no-report")
    assert "site: up to date" in again.stderr


def test_quiet_run_prints_nothing_but_errors(config, tmp_path):
    res = _run("-q", "run", str(config), "--out", str(tmp_path / "out"), "--no-report")
    assert res.exit_code == 0 and res.output == ""
    bad = _run("-q", "run", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o2"))
    assert bad.exit_code == 1 and "missing.toml" in bad.output


def test_library_warnings_hidden_unless_very_verbose(capsys):
    from rasterio.errors import NotGeoreferencedWarning

    from kpgeo.console import configure

    configure(0)
    warnings.warn("Dataset has no geotransform, gcps, or rpcs.", NotGeoreferencedWarning,
                  stacklevel=1)
    warnings.warn("a kpgeo warning for the user", KpgeoWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert "NotGeoreferencedWarning" not in err and "geotransform" not in err
    assert "warning: a kpgeo warning for the user" in err
    configure(2)
    warnings.warn("a library warning, shown at -vv", NotGeoreferencedWarning, stacklevel=1)
    assert "NotGeoreferencedWarning: a library warning" in capsys.readouterr().err
    logging.getLogger("distributed.scheduler").info("State start")
    assert "State start" in capsys.readouterr().err
    configure(0)
    logging.getLogger("distributed.scheduler").info("State start")
    assert "State start" not in capsys.readouterr().err


@pytest.mark.slow
def test_local_cluster_is_quiet_by_default(config, tmp_path):
    """A real process (not CliRunner): the CLI's own logging set-up is what is tested."""
    pytest.importorskip("distributed")
    res = subprocess.run(
        [sys.executable, "-c", "from kpgeo.cli import main; main()", "run", str(config),
         "--out", str(tmp_path / "out"), "--no-report", "--scheduler", "local"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "INFO" not in res.stderr and "distributed" not in res.stderr
    assert "RuntimeWarning" not in res.stderr
    assert "dates      :" in res.stdout
