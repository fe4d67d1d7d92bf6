"""Local servers for the search tests: an HTTP range server for COGs and a STAC API.

Both listen on 127.0.0.1 only and are started once per test session
(``tests/test_search.py`` fixtures):

- :class:`RangeServer`: a threaded static file server that answers ``Range:
  bytes=a-b`` requests with ``206 Partial Content`` (what GDAL's /vsicurl/ sends
  for a COG), with fault injection: a path in ``fail`` answers HTTP 500, a
  missing file 404;
- :func:`start_pgstac_api`: stac-fastapi-pgstac (the server of Microsoft's
  Planetary Computer) under uvicorn, over a pgstac database in the PostgreSQL
  cluster of ``tests/postgis_setup.sh``, loaded with the sample items whose
  asset hrefs point at the range server.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class _RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single byte ranges; paths in ``server.fail`` answer 500."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet test server
        self.server.requests.append(self.path)

    def send_head(self):
        path = self.path.split("?", 1)[0]
        if path in self.server.fail:
            self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "injected failure")
            return None
        fs_path = self.translate_path(path)
        if not os.path.isfile(fs_path):
            self.send_error(HTTPStatus.NOT_FOUND, "no such file")
            return None
        size = os.path.getsize(fs_path)
        match = _RANGE.match(self.headers.get("Range", "").strip())
        fh = open(fs_path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        if not match or (not match.group(1) and not match.group(2)):
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Length", str(size))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "image/tiff")
            self.end_headers()
            self._remaining = size
            return fh
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:  # suffix range: the last N bytes
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            fh.close()
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        fh.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "image/tiff")
        self.end_headers()
        self._remaining = end - start + 1
        return fh

    def copyfile(self, source, outputfile):
        remaining = self._remaining
        while remaining > 0:
            chunk = source.read(min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)


class RangeServer:
    """Serve ``root`` on 127.0.0.1 with byte ranges, in a background thread."""

    def __init__(self, root: str | os.PathLike) -> None:
        root = str(root)

        class Handler(_RangeHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=root, **kwargs)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.fail = set()
        self.httpd.requests = []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def fail(self) -> set[str]:
        """URL paths (``/zone/S2_x/red.tif``) that answer HTTP 500."""
        return self.httpd.fail

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_url() -> str:
    """URL of the test cluster of ``tests/postgis_setup.sh`` (or ``KPGEO_TEST_POSTGRES``)."""
    port = os.environ.get("KPGEO_PG_PORT", "55432")
    return os.environ.get("KPGEO_TEST_POSTGRES", f"postgresql://kpgeo@127.0.0.1:{port}/kpgeo_test")


def postgres_unavailable() -> str | None:
    """Why the test PostgreSQL cannot be used, or None when it answers."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'kpgeo[postgis]')"
    url = postgres_url()
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT postgis_version()")
    except Exception as exc:  # noqa: BLE001 - any failure is a reason to skip
        return (f"no PostgreSQL + PostGIS at {url} ({type(exc).__name__}: {exc}); "
                "start it with: bash tests/postgis_setup.sh")
    return None


def _admin_url(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


def start_pgstac_api(collection: dict, items: list[dict], *, database: str | None = None):
    """Load ``items`` into a fresh pgstac database and serve it with stac-fastapi-pgstac.

    Returns
    -------
    (str, subprocess.Popen)
        The API's root URL and the server process (terminate it when done).
    """
    import psycopg
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods
    from pypgstac.migrate import Migrate

    # one database per test process: pytest-xdist workers each start their own server
    database = database or f"kpgeo_test_stac_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    base = postgres_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    dsn = _admin_url(base, database)
    # pgstac's migration creates cluster-wide roles: one process at a time (xdist workers)
    with psycopg.connect(base, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(1010100)")
        with contextlib.closing(PgstacDB(dsn=dsn)) as db:
            Migrate(db).run_migration()
            loader = Loader(db)
            loader.load_collections(iter([collection]), insert_mode=Methods.upsert)
            loader.load_items(iter(items), insert_mode=Methods.upsert)
        lock.execute("SELECT pg_advisory_unlock(1010100)")
    user, rest = dsn.split("://", 1)[1].split("@", 1)
    host_port, dbname = rest.split("/", 1)
    host, port = host_port.split(":")
    port_api = free_port()
    env = {**os.environ, "PGUSER": user, "PGPASSWORD": "unused", "PGHOST": host, "PGPORT": port,
           "PGDATABASE": dbname, "STAC_FASTAPI_TITLE": "kpgeo test STAC API",
           "STAC_FASTAPI_DESCRIPTION": "sample items", "STAC_FASTAPI_LANDING_ID": "kpgeo-test",
           "STAC_FASTAPI_VERSION": "1.0.0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port_api), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port_api}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stac-fastapi-pgstac exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/conformance", timeout=2) as resp:
                if resp.status == 200:
                    return url, proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("stac-fastapi-pgstac did not answer within 60 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
