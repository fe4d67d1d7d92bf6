"""Real land use and texture of the real scene source, evaluated window by window.

The source is one real Sentinel-2 L1C scene (tile 33UUU, 2017-02-16, 1536 x 768
px at 10 m) with the real OSM land-use / water polygons beside it. Once per
process :func:`source_maps` derives, on the source grid:

- **land-use class** (:data:`CLASS_NAMES`): the OSM polygons rasterised
  (forest, scrub -> woodland, meadow/grass -> grass, farm -> field, wetland,
  water, residential -> village); pixels no polygon covers (large forests and
  fields are not in the OSM subset) are classified from the image: water by
  NDVI < -0.02 and NIR < 0.09, the rest by nearest class centroid among
  field, forest, grass and water (log reflectance, 5 x 5 mean, centroids from
  the OSM-labelled pixels), then by the majority class of their image segment
  (Felzenszwalb, half resolution);
- **parcels**: each OSM polygon, each image segment elsewhere, and fields cut
  into smallholder plots (jittered-lattice Voronoi cells about 110 m apart;
  fragments under 0.2 ha join the largest plot of their parcel);
- **texture**: the pixel's reflectance relative to the median of its class
  (log ratio; the band-to-band part halved), clipped to 0.6..1.6. The scene's
  smooth haze is removed first (dark-object blue field, lambda^-2) and cloudy
  pixels (dehazed blue > 0.16, dilated 120 m) take the nearest clear pixel's
  values; only windows almost free of them are used.

A simulated scene is a mosaic of :data:`BLOCK`-pixel blocks; each block is a
window of the source picked by the seed, rotated by a multiple of 90 degrees
and maybe mirrored (:class:`BlockLayout`). Everything is a pure function of
global pixel coordinates, so tiles (and halos) join exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from kpgeo.simulate.noise import mix_key
from kpgeo.simulate.realbase import sources

__all__ = ["CLASS_NAMES", "FOREST", "WOODLAND", "GRASS", "FIELD", "WETLAND", "WATER",
           "VILLAGE", "BLOCK", "SourceMaps", "source_maps", "BlockLayout", "BaseWindow",
           "base_window"]

CLASS_NAMES = ("none", "forest", "woodland", "grass", "field", "wetland", "water", "village")
FOREST, WOODLAND, GRASS, FIELD, WETLAND, WATER, VILLAGE = range(1, 8)
_OSM_CLASS = {"forest": FOREST, "scrub": WOODLAND, "meadow": GRASS, "grass": GRASS,
              "farm": FIELD, "wetland": WETLAND, "water": WATER, "residential": VILLAGE}
#: side (px) of the source windows tiled into a scene
BLOCK = 256
_PLOT_PX = 11
_CLOUD_BLUE = 0.16
_WL = np.array([0.49, 0.56, 0.665, 0.842, 1.61, 2.19], np.float32)


@dataclass(frozen=True)
class SourceMaps:
    """Per-pixel maps on the source grid (see the module docstring)."""

    cls: np.ndarray
    """(rows, cols) uint8 land-use class."""
    parcel: np.ndarray
    """(rows, cols) int32 parcel id, 0..n_parcels-1."""
    texture: np.ndarray
    """(6, rows, cols) float32 relative reflectance (1 = class median)."""
    windows: np.ndarray
    """(n, 2) int row/col origins of the usable BLOCK x BLOCK windows."""


def _dehaze(refl: np.ndarray) -> np.ndarray:
    """Remove the smooth haze field (dark-object blue, ~400 m scale; lambda^-2 across bands)."""
    from scipy import ndimage as ndi

    h, w = refl.shape[1:]
    hb, wb = h // 8, w // 8
    low = refl[0, : hb * 8, : wb * 8].reshape(hb, 8, wb, 8).min(axis=(1, 3))
    low = ndi.gaussian_filter(ndi.minimum_filter(low, size=5), 3)
    haze = ndi.zoom(low - low.min(), 8, order=1)[:h, :w]
    haze = np.pad(haze, ((0, h - haze.shape[0]), (0, w - haze.shape[1])), mode="edge")
    return refl - haze[None] * (_WL[:, None, None] / _WL[0]) ** -2


def _cloudy(refl: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    m = ndi.binary_opening(refl[0] > _CLOUD_BLUE, iterations=2)
    return ndi.binary_dilation(m, iterations=12)


def _osm_raster(shape, transform) -> tuple[np.ndarray, np.ndarray]:
    """OSM class and polygon number (1-based, 0 = none); small polygons on top."""
    from rasterio.features import rasterize

    polys = sorted((p for p in sources.osm_landuse() if p[0] in _OSM_CLASS),
                   key=lambda p: -p[1].area)
    num = rasterize([(g, i + 1) for i, (_, g) in enumerate(polys)],
                    out_shape=shape, transform=transform, fill=0, dtype="int32")
    lut = np.array([0] + [_OSM_CLASS[c] for c, _ in polys], np.uint8)
    return lut[num], num


def _segments(refl: np.ndarray) -> np.ndarray:
    from skimage.segmentation import felzenszwalb

    img = np.dstack([refl[2, ::2, ::2], refl[1, ::2, ::2], refl[3, ::2, ::2]])
    seg = felzenszwalb(img, scale=60, sigma=0.5, min_size=15)
    seg = np.kron(seg, np.ones((2, 2), seg.dtype))
    return seg[: refl.shape[1], : refl.shape[2]]


def _classify(refl, osm_cls, seg, clear) -> np.ndarray:
    """Land-use class of every pixel: OSM where mapped, else from the image (see module)."""
    from scipy import ndimage as ndi

    feat = np.log(np.maximum(ndi.uniform_filter(refl, size=(1, 5, 5)), 1e-3))
    feat = feat.reshape(6, -1).T
    cands = np.array([FIELD, FOREST, GRASS, WATER])  # villages only where OSM maps them
    lab = osm_cls.ravel()
    ok = clear.ravel()
    cen = np.array([np.median(feat[(lab == c) & ok], axis=0) for c in cands])
    sd = feat[ok].std(axis=0)
    d = (((feat[:, None, :] - cen[None]) / sd) ** 2).sum(-1)
    guess = cands[np.argmin(d, axis=1)]
    # majority of the guesses over each image segment
    s = seg.ravel()
    votes = np.zeros((s.max() + 1, len(CLASS_NAMES)), np.int64)
    np.add.at(votes, (s, guess), 1)
    major = np.argmax(votes, axis=1)[s]
    cls = np.where(lab > 0, lab, major).reshape(osm_cls.shape).astype(np.uint8)
    nd = (refl[3] - refl[2]) / np.maximum(refl[3] + refl[2], 1e-4)
    cls[(osm_cls == 0) & (nd < -0.02) & (refl[3] < 0.09)] = WATER
    return cls


def _plots(shape) -> np.ndarray:
    """Voronoi cells of a jittered lattice (spacing :data:`_PLOT_PX`) on the source grid."""
    h, w = shape
    s = _PLOT_PX
    ni, nj = h // s + 3, w // s + 3
    rng = np.random.default_rng(0)
    jit = rng.uniform(0.1, 0.9, (ni, nj, 2)) * s
    rows, cols = np.mgrid[0:h, 0:w]
    ci, cj = rows // s, cols // s
    best = np.full(shape, np.inf)
    cell = np.zeros(shape, np.int64)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            i, j = np.clip(ci + di, 0, ni - 1), np.clip(cj + dj, 0, nj - 1)
            py, px = i * s + jit[i, j, 0], j * s + jit[i, j, 1]
            d = (rows + 0.5 - py) ** 2 + (cols + 0.5 - px) ** 2
            closer = d < best
            best = np.where(closer, d, best)
            cell = np.where(closer, i * nj + j, cell)
    return cell


def _merge_slivers(parent: np.ndarray, cell: np.ndarray, field: np.ndarray,
                   min_px: int = 20) -> np.ndarray:
    """Give plot fragments under ``min_px`` pixels to the largest plot of their parcel."""
    pairs, inv, counts = np.unique(np.stack([parent[field], cell[field]]), axis=1,
                                   return_inverse=True, return_counts=True)
    best: dict = {}
    for (p, c), n in zip(pairs.T, counts, strict=True):
        if n > best.get(p, (0, -1))[0]:
            best[p] = (n, c)
    new = np.array([c if n >= min_px else best[p][1]
                    for (p, c), n in zip(pairs.T, counts, strict=True)], np.int64)
    out = cell.copy()
    out[field] = new[inv.ravel()]
    return out


def _texture(refl, cls, clear) -> np.ndarray:
    r = np.log(np.maximum(refl, 1e-3))
    tex = np.zeros_like(refl)
    for c in range(1, len(CLASS_NAMES)):
        m = cls == c
        if not m.any():
            continue
        ref = m & clear if (m & clear).any() else m
        med = np.median(r[:, ref], axis=1)
        tex[:, m] = r[:, m] - med[:, None]
    mean = tex.mean(axis=0, keepdims=True)
    return np.clip(np.exp(mean + 0.5 * (tex - mean)), 0.6, 1.6).astype(np.float32)


def _fill_cloudy(arr: np.ndarray, clear: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    idx = ndi.distance_transform_edt(~clear, return_distances=False, return_indices=True)
    return arr[..., idx[0], idx[1]]


@lru_cache(maxsize=1)
def source_maps() -> SourceMaps:
    """Land use, parcels and texture of the real source (computed once per process)."""
    src = sources.texture_source()
    refl = _dehaze(np.asarray(src.refl, np.float32))
    shape = refl.shape[1:]
    clear = ~_cloudy(refl)
    osm_cls, osm_num = _osm_raster(shape, src.transform)
    seg = _segments(refl)
    cls = _classify(refl, osm_cls, seg, clear)
    key = np.where(osm_num > 0, osm_num.astype(np.int64), 100_000 + seg.astype(np.int64))
    key = np.where(cls == FIELD, key * 100_000 + _merge_slivers(key, _plots(shape),
                                                                 cls == FIELD), key)
    key = key * 8 + cls  # a parcel never spans two classes
    parcel = np.unique(key, return_inverse=True)[1].reshape(shape).astype(np.int32)
    tex = _texture(refl, cls, clear)
    cls, parcel, tex = _fill_cloudy(cls, clear), _fill_cloudy(parcel, clear), \
        _fill_cloudy(tex, clear)
    windows = []
    for r0 in range(0, shape[0] - BLOCK + 1, 32):
        for c0 in range(0, shape[1] - BLOCK + 1, 32):
            if (~clear[r0:r0 + BLOCK, c0:c0 + BLOCK]).mean() < 0.01:
                windows.append((r0, c0))
    for a in (cls, parcel, tex):
        a.setflags(write=False)
    return SourceMaps(cls=cls, parcel=parcel, texture=tex, windows=np.array(windows, np.int64))


@dataclass(frozen=True)
class BlockLayout:
    """Which source window (and orientation) fills each block of a scene."""

    key: int

    def block(self, bi: int, bj: int) -> tuple[int, int, int]:
        """``(row0, col0, orientation 0..7)`` of block ``(bi, bj)`` (rows, cols of blocks)."""
        wins = source_maps().windows
        h = mix_key(self.key, bi, bj)
        r0, c0 = wins[h % len(wins)]
        return int(r0), int(c0), int((h >> 20) % 8)

    def serial(self, bi: int, bj: int) -> int:
        """Return a number unique to block ``(bi, bj)`` (for globally unique parcel ids)."""
        return ((bi + 2**15) << 16) | (bj + 2**15)


def _orient(a: np.ndarray, o: int) -> np.ndarray:
    """View of the last two axes rotated by ``o % 4`` quarter turns, mirrored if ``o >= 4``."""
    a = np.rot90(a, k=o % 4, axes=(-2, -1))
    return a[..., ::-1] if o >= 4 else a


@dataclass
class BaseWindow:
    """Land use and texture on one window of the scene grid."""

    cls: np.ndarray
    """(h, w) uint8 land-use class."""
    parcel: np.ndarray
    """(h, w) int64 parcel id, unique in the scene."""
    texture: np.ndarray
    """(6, h, w) float32 relative reflectance."""


def base_window(layout: BlockLayout, row0: int, col0: int, shape) -> BaseWindow:
    """Assemble land use, parcels and texture on the window ``(row0, col0, shape)``.

    The window may reach outside the scene (halos): blocks exist everywhere.
    """
    maps = source_maps()
    h, w = shape
    cls = np.zeros(shape, np.uint8)
    parcel = np.zeros(shape, np.int64)
    tex = np.zeros((6, h, w), np.float32)
    for bi in range(row0 // BLOCK, (row0 + h - 1) // BLOCK + 1):
        for bj in range(col0 // BLOCK, (col0 + w - 1) // BLOCK + 1):
            r0, c0, o = layout.block(bi, bj)
            win = (slice(r0, r0 + BLOCK), slice(c0, c0 + BLOCK))
            # overlap of the block with the window, in block and window coordinates
            br0, bc0 = max(row0 - bi * BLOCK, 0), max(col0 - bj * BLOCK, 0)
            br1 = min(row0 + h - bi * BLOCK, BLOCK)
            bc1 = min(col0 + w - bj * BLOCK, BLOCK)
            wr0, wc0 = bi * BLOCK + br0 - row0, bj * BLOCK + bc0 - col0
            sl = (slice(br0, br1), slice(bc0, bc1))
            out = (slice(wr0, wr0 + br1 - br0), slice(wc0, wc0 + bc1 - bc0))
            cls[out] = _orient(maps.cls[win], o)[sl]
            pid = _orient(maps.parcel[win], o)[sl].astype(np.int64)
            parcel[out] = (layout.serial(bi, bj) << 24) | pid
            tex[(slice(None), *out)] = _orient(maps.texture[(slice(None), *win)], o)[
                (slice(None), *sl)]
    return BaseWindow(cls=cls, parcel=parcel, texture=tex)
