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
"""

from __future__ import annotations

import numpy as np

__all__ = ["mix_key", "uniform", "normal", "value_noise", "fbm", "point_uniform"]

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


def uniform(key: int, row0: int, col0: int, shape: tuple[int, int]) -> np.ndarray:
    """White noise in [0, 1) (float32) at global pixels ``row0.., col0..``."""
    rows = np.arange(row0, row0 + shape[0], dtype=np.int64)[:, None]
    cols = np.arange(col0, col0 + shape[1], dtype=np.int64)[None, :]
    h = _hash2d(key, rows, cols)
    return ((h >> np.uint64(40)).astype(np.float32)) * np.float32(1.0 / (1 << 24))


def normal(key: int, row0: int, col0: int, shape: tuple[int, int], n: int = 1) -> list[np.ndarray]:
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


def point_uniform(key: int, i: int, j: int) -> float:
    """One uniform value in [0, 1) for lattice point ``(i, j)`` (scalar helper)."""
    h = _hash2d(key, np.array([i]), np.array([j]))
    return float((h[0] >> np.uint64(40)) / float(1 << 24))


def value_noise(
    key: int, row0: int, col0: int, shape: tuple[int, int], scale: float
) -> np.ndarray:
    """Smooth noise in [-1, 1] with feature size ``scale`` pixels (float32).

    Lattice values (hashed from global lattice indices) are interpolated with
    a smoothstep, separably: cost is O(tile) plus O(lattice) hashing.
    """
    scale = float(max(scale, 1.0))
    y = (np.arange(row0, row0 + shape[0], dtype=np.float64) + 0.5) / scale
    x = (np.arange(col0, col0 + shape[1], dtype=np.float64) + 0.5) / scale
    iy = np.floor(y).astype(np.int64)
    ix = np.floor(x).astype(np.int64)
    fy = (y - iy).astype(np.float32)
    fx = (x - ix).astype(np.float32)
    fy = fy * fy * (3 - 2 * fy)
    fx = fx * fx * (3 - 2 * fx)
    ly = np.arange(iy.min(), iy.max() + 2, dtype=np.int64)
    lx = np.arange(ix.min(), ix.max() + 2, dtype=np.int64)
    lat = _hash2d(key, ly[:, None], lx[None, :])
    lat = ((lat >> np.uint64(40)).astype(np.float32) * np.float32(2.0 / (1 << 24))) - 1.0
    ry = iy - ly[0]
    rx = ix - lx[0]
    # interpolate along x for the two lattice rows around each pixel row
    a = lat[:, rx] * (1 - fx)[None, :] + lat[:, rx + 1] * fx[None, :]
    out = a[ry, :] * (1 - fy)[:, None] + a[ry + 1, :] * fy[:, None]
    return out.astype(np.float32)


def fbm(
    key: int,
    row0: int,
    col0: int,
    shape: tuple[int, int],
    scale: float,
    *,
    octaves: int = 4,
    persistence: float = 0.5,
    min_scale: float = 1.5,
) -> np.ndarray:
    """Fractal Brownian motion: ``octaves`` of value noise, normalised to about [-1, 1]."""
    total = np.zeros(shape, np.float32)
    amp, norm, s = 1.0, 0.0, float(scale)
    for o in range(octaves):
        if s < min_scale:
            break
        total += np.float32(amp) * value_noise(mix_key(key, o), row0, col0, shape, s)
        norm += amp
        amp *= persistence
        s /= 2.0
    return total / np.float32(norm if norm else 1.0)
