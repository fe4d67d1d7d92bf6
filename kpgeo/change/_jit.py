"""numba's ``njit`` with the options every kernel uses (cached, no GIL).

numba invalidates a cached function only when *its own* source file changes,
not when a constant it imports from a sibling module does (the state layout,
the class codes). The kernels of :mod:`kpgeo.change` are spread over a few
small modules, so on import we fingerprint all of them and drop the cached
machine code when any changed; users of an installed package never see this,
developers never run a kernel compiled against an old layout.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba

__all__ = ["njit"]

_HERE = Path(__file__).resolve().parent


def _drop_stale_cache() -> None:
    digest = hashlib.sha256()
    for src in sorted(_HERE.glob("*.py")):
        digest.update(src.name.encode() + src.read_bytes())
    cache = _HERE / "__pycache__"
    stamp = cache / "kpgeo_numba.stamp"
    try:
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return
        cache.mkdir(exist_ok=True)
        for stale in (*cache.glob("*.nbi"), *cache.glob("*.nbc")):
            stale.unlink(missing_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:  # read-only install: numba falls back to its user cache
        pass


_drop_stale_cache()


def njit(fn=None, **kwargs):
    """``numba.njit(cache=True, nogil=True)`` usable with or without arguments."""
    opts = {"cache": True, "nogil": True} | kwargs
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)
