"""Counter-based random fields evaluated from global pixel coordinates.

Every random quantity of a simulated scene that varies in space is a pure
function of ``(seed, key, row, col)``: a 64-bit integer hash (SplitMix64
finaliser) of the *global* pixel or lattice coordinates. A tile therefore
sees exactly the values the full scene would have at its pixels, whatever the
tile size, so tiles are seamless and the output does not depend on
``tile_size``.

- :func:`uniform` / :func:`normal`: white noise, one value per pixel.
- :func:`value_noise`: smooth noise on a lattice of spacing ``scale`` pixels.
- :func:`fbm`: fractal (multi-octave) noise, the basis of texture and clouds.

Internal to the simulator. Every function takes the key positionally and the
rest by keyword (``fbm(key, row0=r, col0=c, shape=s, scale=40.0)``), so the
many same-typed integers cannot be swapped silently.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "mix_key",
    "uniform",
    "normal",
    "value_noise",
    "value_noise_rc",
    "fbm",
    "fbm_rc",
    "fbm_quantile",
    "point_uniform",
]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_ROWMUL = np.uint64(0xD6E8FEB86659FD93)


def mix_key(*parts: int) -> int:
    """Combine integers into one 64-bit key (deterministic, order-sensitive)."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 32
    return h


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    x = x ^ (x >> np.uint64(31))
    return x


def _hash2d(key: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Hash broadcastable integer coordinate arrays into uint64."""
    with np.errstate(over="ignore"):
        r = rows.astype(np.int64).astype(np.uint64) * _ROWMUL
        c = cols.astype(np.int64).astype(np.uint64) * _GOLD
        return _splitmix(r ^ c ^ np.uint64(key))


def uniform(key: int, *, row0: int, col0: int, shape: tuple[int, int]) -> np.ndarray:
    """White noise in [0, 1) (float32) at global pixels ``row0.., col0..``."""
    rows = np.arange(row0, row0 + shape[0], dtype=np.int64)[:, None]
    cols = np.arange(col0, col0 + shape[1], dtype=np.int64)[None, :]
    h = _hash2d(key, rows, cols)
    return ((h >> np.uint64(40)).astype(np.float32)) * np.float32(1.0 / (1 << 24))


def normal(
    key: int, *, row0: int, col0: int, shape: tuple[int, int], n: int = 1
) -> list[np.ndarray]:
    """``n`` independent approximately standard-normal fields (float32).

    Each 64-bit hash gives four 16-bit uniforms; three are summed
    (Irwin-Hall, rescaled to unit variance), so one hash yields one normal
    value and ``n`` fields cost ``n`` hashes per pixel.
    """
    rows = np.arange(row0, row0 + shape[0], dtype=np.int64)[:, None]
    cols = np.arange(col0, col0 + shape[1], dtype=np.int64)[None, :]
    out = []
    for i in range(n):
        h = _hash2d(mix_key(key, i), rows, cols)
        s = np.zeros(shape, np.float32)
        for k in range(3):
            s += ((h >> np.uint64(16 * k)) & np.uint64(0xFFFF)).astype(np.float32)
        # sum of 3 U(0, 65536): mean 98304, sd 65536 / 2
        out.append((s - np.float32(98304.0)) * np.float32(2.0 / 65536.0))
    return out


def point_uniform(key: int, *, i: int, j: int) -> float:
    """One uniform value in [0, 1) for lattice point ``(i, j)`` (scalar helper)."""
    h = _hash2d(key, np.array([i]), np.array([j]))
    return float((h[0] >> np.uint64(40)) / float(1 << 24))


def value_noise(
    key: int, *, row0: int, col0: int, shape: tuple[int, int], scale: float
) -> np.ndarray:
    """Smooth noise in [-1, 1] with feature size ``scale`` pixels (float32).

    Lattice values (hashed from global lattice indices) are interpolated with
    a smoothstep, separably: cost is O(tile) plus O(lattice) hashing.
    """
    rows = np.arange(row0, row0 + shape[0], dtype=np.float64)
    cols = np.arange(col0, col0 + shape[1], dtype=np.float64)
    return value_noise_rc(key, rows=rows, cols=cols, scale=scale)


def value_noise_rc(
    key: int, *, rows: np.ndarray, cols: np.ndarray, scale: float
) -> np.ndarray:
    """:func:`value_noise` on the grid ``rows x cols`` (any 1-D global pixel indices)."""
    scale = float(max(scale, 1.0))
    y = (np.asarray(rows, np.float64) + 0.5) / scale
    x = (np.asarray(cols, np.float64) + 0.5) / scale
    iy = np.floor(y).astype(np.int64)
    ix = np.floor(x).astype(np.int64)
    fy = (y - iy).astype(np.float32)
    fx = (x - ix).astype(np.float32)
    fy = fy * fy * (3 - 2 * fy)
    fx = fx * fx * (3 - 2 * fx)
    uy, ry = np.unique(np.concatenate([iy, iy + 1]), return_inverse=True)
    ux, rx = np.unique(np.concatenate([ix, ix + 1]), return_inverse=True)
    ry0, ry1 = ry[: iy.size], ry[iy.size :]
    rx0, rx1 = rx[: ix.size], rx[ix.size :]
    lat = _hash2d(key, uy[:, None], ux[None, :])
    lat = ((lat >> np.uint64(40)).astype(np.float32) * np.float32(2.0 / (1 << 24))) - 1.0
    a = lat[:, rx0] * (1 - fx)[None, :] + lat[:, rx1] * fx[None, :]
    out = a[ry0, :] * (1 - fy)[:, None] + a[ry1, :] * fy[:, None]
    return out.astype(np.float32)


def fbm(
    key: int,
    *,
    row0: int,
    col0: int,
    shape: tuple[int, int],
    scale: float,
    octaves: int = 4,
    persistence: float = 0.5,
    min_scale: float = 1.5,
) -> np.ndarray:
    """Fractal Brownian motion: ``octaves`` of value noise, normalised to about [-1, 1]."""
    rows = np.arange(row0, row0 + shape[0], dtype=np.float64)
    cols = np.arange(col0, col0 + shape[1], dtype=np.float64)
    return fbm_rc(
        key,
        rows=rows,
        cols=cols,
        scale=scale,
        octaves=octaves,
        persistence=persistence,
        min_scale=min_scale,
    )


def fbm_rc(
    key: int,
    *,
    rows: np.ndarray,
    cols: np.ndarray,
    scale: float,
    octaves: int = 4,
    persistence: float = 0.5,
    min_scale: float = 1.5,
) -> np.ndarray:
    """:func:`fbm` on the grid ``rows x cols`` of global pixel indices."""
    total = np.zeros((len(rows), len(cols)), np.float32)
    amp, norm, s = 1.0, 0.0, float(scale)
    for o in range(octaves):
        if s < min_scale:
            break
        total += np.float32(amp) * value_noise_rc(mix_key(key, o), rows=rows, cols=cols, scale=s)
        norm += amp
        amp *= persistence
        s /= 2.0
    return total / np.float32(norm if norm else 1.0)


def fbm_quantile(
    key: int,
    *,
    shape: tuple[int, int],
    scale: float,
    q: float,
    octaves: int = 4,
    persistence: float = 0.5,
    min_scale: float = 1.5,
    n: int = 96,
) -> float:
    """Estimate the ``q`` quantile of :func:`fbm` over a scene of ``shape`` from n x n samples.

    Samples cover at least 8 feature sizes so that the estimate describes the
    field rather than one blob; the fraction actually covered in a given scene
    still varies, as real cloud cover does.
    """
    extent = max(max(shape), 8.0 * scale)
    rows = np.linspace(0, extent, n)
    cols = np.linspace(0, extent, n) + 0.37 * extent
    vals = fbm_rc(
        key,
        rows=rows,
        cols=cols,
        scale=scale,
        octaves=octaves,
        persistence=persistence,
        min_scale=min_scale,
    )
    return float(np.quantile(vals, min(max(q, 0.0), 1.0)))
