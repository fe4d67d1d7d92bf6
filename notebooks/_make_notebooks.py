"""Build the tutorial notebooks of ``notebooks/`` from the Python source below.

The ``.ipynb`` files are generated, without outputs, so that reviews read
plain Python and the repository stays small. Edit this file, then run::

    python notebooks/_make_notebooks.py            # rewrite the three notebooks
    python notebooks/_make_notebooks.py --check    # exit 1 if a notebook is stale
    python notebooks/_make_notebooks.py --execute  # also rewrite notebooks/executed/

``--execute`` runs each notebook (in a kernel of this interpreter, from
``notebooks/``) and writes a copy with its outputs to ``notebooks/executed/``,
for reading without running it. The copies are kept small: the inline folium
map (embedded Leaflet and imagery) is replaced by a note, large figures are
stored as JPEG at most 900 px wide, large HTML/SVG reprs (xarray, odc-geo)
keep only their text form, execution timestamps are dropped and local paths
are shortened.

``tests/test_notebooks.py`` executes the notebooks and checks that they and
their executed copies match this script.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
EXECUTED = HERE / "executed"
#: the largest executed copy allowed (bytes)
MAX_EXECUTED_BYTES = 400_000
#: larger rich outputs are slimmed (characters of base64 or markup)
MAX_RICH_CHARS = 20_000
#: width (pixels) of the figures of the executed copies, stored as JPEG
FIGURE_WIDTH = 900
#: what replaces the inline web map in the executed copies
MAP_NOTE = (
    "*The interactive folium map is left out of this executed copy (it embeds Leaflet and "
    "the imagery: about 1 MB). Run the notebook to see it, or open the `map.html` that "
    "`write_report` writes below.*"
)

# --------------------------------------------------------------------------- shared cells

SETUP = '''\
import os
import tempfile
from pathlib import Path


def find_sample_tiles(start=None):
    """Return the repository's ``sample_tiles/`` folder.

    ``$KPGEO_SAMPLE_TILES`` when set, else the first ``sample_tiles/`` found in
    the current folder or one of its parents (so the notebook runs from
    ``notebooks/`` as well as from the repository root).
    """
    if os.environ.get("KPGEO_SAMPLE_TILES"):
        return Path(os.environ["KPGEO_SAMPLE_TILES"]).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "sample_tiles").is_dir():
            return folder / "sample_tiles"
    raise FileNotFoundError(
        f"no sample_tiles/ folder in {here} or its parents: run the notebook from inside "
        "the kpgeo repository, or set KPGEO_SAMPLE_TILES to the folder"
    )


SAMPLE_TILES = find_sample_tiles()
REPO = SAMPLE_TILES.parent
# Outputs go to a fresh temporary folder unless $KPGEO_NOTEBOOK_OUT names one.
OUT = Path(os.environ.get("KPGEO_NOTEBOOK_OUT") or tempfile.mkdtemp(prefix="kpgeo-notebook-"))
OUT.mkdir(parents=True, exist_ok=True)
print("sample tiles:", SAMPLE_TILES)
print("outputs:     ", OUT)'''

PLOT_HELPERS = '''\
def show_rgb(ax, rgb, title=None):
    """Draw a :func:`kpgeo.staticmap.true_colour` composite in its own CRS units."""
    left, bottom, right, top = rgb.odc.geobox.boundingbox
    ax.imshow(rgb.values, extent=(left, right, bottom, top), interpolation="nearest")
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def draw_outline(ax, geometry, crs, *, geometry_crs="EPSG:4326", **style):
    """Outline geometries (lon/lat by default) on axes drawn in ``crs``, keeping the view."""
    view = ax.get_xlim(), ax.get_ylim(), ax.get_xlabel(), ax.get_ylabel()
    series = geometry
    if not isinstance(series, gpd.GeoSeries):
        series = gpd.GeoSeries([geometry], crs=geometry_crs)
    style = {"color": "white", "linewidth": 1.5, "linestyle": "--"} | style
    series.to_crs(crs).boundary.plot(ax=ax, **style)
    ax.set_xlim(view[0])
    ax.set_ylim(view[1])
    ax.set_xlabel(view[2])
    ax.set_ylabel(view[3])'''


# --------------------------------------------------------------------------- notebook 1

NB1 = [
    ("md", '''\
# 1 · Explore the zones and their imagery

kpgeo watches the **Kimberley Process (KP) zones** of the Central African Republic
and Côte d'Ivoire for artisanal diamond mining, from multi-date Sentinel-2 L2A
imagery. This notebook walks the first two boxes of the data flow:

```
zones + STAC items ─► lazy cube ─► change ─► footprints ─► time series ─► maps/bulletin
```

1. the zones: a table with their KP status and area, and a map of the zones with the
   5 km **ring** just outside each one (where mining that leaks out of a compliant zone
   shows up);
2. the bundled **sample scene** of Berbérati, loaded as a lazy, cloud-masked cube;
3. its dates and clear-sky coverage, true-colour composites, and NDVI time series.

The sample tiles are **simulated** Sentinel-2 scenes with exact ground truth
(`sample_tiles/README.md`); everything here runs offline in a few seconds.'''),
    ("code", SETUP),
    ("code", '''\
%matplotlib inline
import warnings

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rioxarray
import shapely
from odc.geo.geom import Geometry

from kpgeo.cube import check_clear, load_cube
from kpgeo.indices import compute_indices
from kpgeo.staticmap import true_colour
from kpgeo.summary import cube_summary, format_summary
from kpgeo.timeseries import clear_coverage, zone_regions
from kpgeo.zones import get_zone, list_zones, zones_frame

RING_WIDTH_M = 5000  # the band watched just outside each zone (as in pipelines/sample_tiles.toml)
# A pixel with no clear observation in a composite's date window is left transparent;
# numpy's "All-NaN slice" warning about it is expected.
warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)'''),
    ("code", PLOT_HELPERS),
    ("md", '''\
## The zones

`kpgeo.zones` ships one GeoJSON per zone (`aoi/`), with its provenance and KP status.
Areas are geodesic (WGS 84 ellipsoid), in hectares.'''),
    ("code", '''\
zones = list_zones()
table = zones_frame(zones)
table["area_km2"] = table["area_ha"] / 100
columns = ["id", "name", "country", "admin_level", "kp_status", "kp_status_date",
           "area_ha", "area_km2"]
table[columns].round({"area_ha": 0, "area_km2": 1})'''),
    ("code", '''\
# Each zone measures itself in its local UTM zone; a zone is looked up by id or name.
berberati = get_zone("Berberati")  # accents and case do not matter
berberati.id, berberati.name, berberati.utm_crs.to_string(), round(berberati.area_ha)'''),
    ("md", '''\
The map shows each zone (coloured) and its 5 km outside ring (hatched), one panel per
country, drawn in that country's UTM zone (so distances are true). Red squares mark the
bundled sample scenes: each is 2.56 km wide and sits on a zone boundary, so part of it
lies in the ring.'''),
    ("code", '''\
rings = gpd.GeoDataFrame(
    {"id": [z.id for z in zones], "country": [z.country for z in zones]},
    geometry=[z.ring(RING_WIDTH_M) for z in zones],
    crs="EPSG:4326",
)

# Footprint of each sample scene: the grid of its (lazy) cube, back in lon/lat.
scene_items = {p.name: p / "items.json" for p in sorted(SAMPLE_TILES.iterdir())
               if (p / "items.json").is_file()}
scene_extents = {name: load_cube(path).odc.geobox.extent.to_crs("EPSG:4326").geom
                 for name, path in scene_items.items()}
scenes = gpd.GeoDataFrame(
    {"scene": list(scene_extents), "country": [get_zone(n).country for n in scene_extents]},
    geometry=list(scene_extents.values()),
    crs="EPSG:4326",
)

countries = sorted(table["country"].unique())
fig, axes = plt.subplots(1, len(countries), figsize=(6 * len(countries), 6))
for ax, country in zip(np.atleast_1d(axes), countries, strict=True):
    utm = next(z.utm_crs for z in zones if z.country == country)
    zs = table[table["country"] == country].to_crs(utm)
    rings[rings["country"] == country].to_crs(utm).plot(
        ax=ax, facecolor="none", edgecolor="0.5", hatch="///", linewidth=0.5
    )
    zs.plot(ax=ax, column="id", cmap="tab10", alpha=0.6, edgecolor="black", linewidth=0.8)
    for _, row in zs.iterrows():
        p = row.geometry.representative_point()
        ax.annotate(row["name"], (p.x, p.y), ha="center", fontsize=9, weight="bold")
    sc = scenes[scenes["country"] == country].to_crs(utm)
    sc.boundary.plot(ax=ax, color="red", linewidth=2)
    for _, row in sc.iterrows():
        c = row.geometry.centroid
        ax.plot(c.x, c.y, "s", mfc="none", mec="red", ms=14, mew=2)
    ax.set_title(f"{country}: zones, {RING_WIDTH_M / 1000:g} km rings, sample scenes (red)")
    ax.set_xlabel(f"easting (m, {utm.to_string()})")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain")
    ax.tick_params(labelsize=7)
fig.tight_layout()'''),
    ("md", '''\
## The Berbérati sample cube

`load_cube` turns a STAC ItemCollection into one **lazy** (dask) dataset on one grid:
reflectance bands in common names (scale/offset applied, `NaN` where not clear), a
`clear` mask from the scene classification (SCL), an `aoi_mask`, and a `spatial_ref`
coordinate so that `cube.odc.geobox` works. We load it over the zone **and** its outside
ring, as a monitoring run does; nothing is read yet (the asset headers are checked up
front, so a missing or corrupt file fails here, naming the file).'''),
    ("code", '''\
zone = berberati
scene = SAMPLE_TILES / zone.id
watched = zone.geometry.union(zone.ring(RING_WIDTH_M))  # zone + outside ring, EPSG:4326
cube = load_cube(scene / "items.json", aoi=watched)
cube'''),
    ("code", '''\
# Still lazy: one dask chunk holds the whole time series of a 512 x 512 px block.
cube.red.data'''),
    ("code", '''\
cube.odc.geobox'''),
    ("md", '''\
### Dates and clear-sky coverage

`clear_coverage` reduces the `clear` mask per date and per region — the zone and its ring
(`zone_regions`) — without reading any reflectance. In the wet season (about April–October)
many dates see little of the ground; the time series in notebook 3 flags such periods as
missing data rather than "no mining".'''),
    ("code", '''\
regions = zone_regions([zone], ring_width_m=RING_WIDTH_M)
coverage = clear_coverage(cube, regions)
print(format_summary(cube_summary(cube, coverage, zone=zone)))
print("clear observations in the cube:", check_clear(cube))'''),
    ("code", '''\
per_date = coverage.pivot(index="date", columns="region", values="clear_fraction")
fig, ax = plt.subplots(figsize=(10, 3.5))
width = pd.Timedelta(days=4)
for i, (region, label) in enumerate([(zone.id, "zone"), (f"{zone.id}:ring", "outside ring")]):
    ax.bar(per_date.index + (i - 0.5) * width, per_date[region], width=width, label=label)
ax.axhline(0.3, color="0.3", linestyle=":", linewidth=1, label="low-coverage threshold (0.3)")
ax.set_ylim(0, 1.05)
ax.set_ylabel("clear fraction")
ax.set_title(f"{zone.name}: clear fraction per date ({cube.sizes['time']} dates)")
ax.legend(loc="lower left", fontsize=8)
fig.autofmt_xdate()'''),
    ("md", '''\
### True-colour views

`true_colour` makes a median composite of the clear observations in a date window
(transparent where no date was clear). Two half-year composites show the scene before
and after the mining season; a single partly cloudy date shows what the cloud mask
removes. The dashed line is the zone boundary: the zone lies on one side, its ring on the
other.'''),
    ("code", '''\
dates = pd.DatetimeIndex(cube.time.values)
zone_cov = per_date[zone.id]
# a partly cloudy date: the one whose zone coverage is closest to one half
cloudy_date = (zone_cov - 0.5).abs().idxmin()

panels = [
    (true_colour(cube, start="2019-01-01", end="2019-06-30"), "median, 2019 H1"),
    (true_colour(cube, start="2020-07-01", end="2020-12-31"), "median, 2020 H2"),
    (true_colour(cube, start=cloudy_date, end=cloudy_date),
     f"{cloudy_date:%Y-%m-%d}, clear {zone_cov[cloudy_date]:.0%} (masked = white)"),
]
fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
for ax, (rgb, title) in zip(axes, panels, strict=False):  # the 4th panel is the mask
    show_rgb(ax, rgb, title)
    draw_outline(ax, zone.geometry, cube.odc.crs)
clear = cube.clear.sel(time=cloudy_date).compute()
left, bottom, right, top = cube.odc.geobox.boundingbox
axes[3].imshow(clear.values, extent=(left, right, bottom, top), cmap="Greys_r", vmin=0, vmax=1)
axes[3].set_title(f"clear mask, {cloudy_date:%Y-%m-%d} (white = clear)", fontsize=10)
axes[3].set_xticks([])
axes[3].set_yticks([])
fig.tight_layout()'''),
    ("md", '''\
### NDVI time series

`compute_indices` adds NDVI, MNDWI, BSI, NBR and brightness to the (still lazy) cube.
We follow NDVI at a pixel that becomes a mine (from `truth_mining_start.tif`), inside the
largest farm clearing and burn scar of the scene truth (`truth.geojson`), and at a
background pixel far from all events, and average it over the largest mining site. Cloudy
observations are `NaN` and are simply absent from the curves; the dotted line marks each
event's true start date.
Mining strips the vegetation for good; a farm or a burn greens up again.'''),
    ("code", '''\
indices = compute_indices(cube)
# The sample cube is small (256 x 256 px x 24 dates): compute NDVI once, pick pixels from memory.
ndvi_all = indices.ndvi.compute()

truth = gpd.read_file(scene / "truth.geojson").to_crs(cube.odc.crs)
truth["start_date"] = pd.to_datetime(truth["start_date"])
points = {}

# a pixel that turns into a mine: truth_mining_start.tif holds, per pixel, the first date it is
# mining (days since 1970-01-01, 0 = never) on the cube grid; take the pixel with the median start
mining_start = rioxarray.open_rasterio(scene / "truth_mining_start.tif").squeeze("band", drop=True)
rows, cols = np.nonzero(mining_start.values > 0)
days = mining_start.values[rows, cols]
i = np.argsort(days)[len(days) // 2]
start = pd.Timestamp("1970-01-01") + pd.Timedelta(days=int(days[i]))
pixel = shapely.Point(mining_start.x.values[cols[i]], mining_start.y.values[rows[i]])
points["mining pixel"] = (pixel, start)

# the largest farm clearing and burn scar of the truth
largest = truth[truth["class"] != "mining"].sort_values("area_ha").groupby("class").tail(1)
for _, r in largest.iterrows():
    points[f"{r['class']} {r['site_id']}"] = (r.geometry.representative_point(), r["start_date"])

# a background pixel in the AOI, far from every event
grid = (slice(8, -8, 16), slice(8, -8, 16))  # every 16th pixel
ys, xs = np.meshgrid(cube.y.values[grid[0]], cube.x.values[grid[1]], indexing="ij")
candidates = gpd.GeoSeries(gpd.points_from_xy(xs.ravel(), ys.ravel()), crs=cube.odc.crs)
ok = cube.aoi_mask.values[grid].ravel()
far = candidates[ok].distance(truth.union_all()).idxmax()
points["background"] = (candidates[far], None)

fig, ax = plt.subplots(figsize=(10, 4))
for (label, (pt, start)), colour in zip(points.items(), plt.cm.tab10.colors, strict=False):
    series = ndvi_all.sel(x=pt.x, y=pt.y, method="nearest").compute().dropna("time")
    ax.plot(series.time, series, "o-", ms=3, color=colour, label=label)
    if start is not None:
        ax.axvline(start, color=colour, linestyle=":", linewidth=1.2)

# area average over the largest mining site (pixels whose centre falls inside it)
site = truth[truth["class"] == "mining"].sort_values("area_ha").iloc[-1]
site_ndvi = ndvi_all.odc.mask(Geometry(site.geometry, crs=cube.odc.crs)).mean(["y", "x"]).compute()
site_ndvi = site_ndvi.dropna("time")
ax.plot(site_ndvi.time, site_ndvi, "k-", linewidth=2.5, alpha=0.6,
        label=f"mean over {site['site_id']}")
ax.set_ylabel("NDVI")
ax.set_title(f"{zone.name}: NDVI of clear observations")
ax.legend(fontsize=8, ncol=3, loc="lower left")
fig.autofmt_xdate()'''),
    ("md", '''\
## Appendix: how the sample tiles were made

The sample scenes are written by `kpgeo.simulate.simulate_scene` (see
`sample_tiles/make_tiles.py`): a landscape, mining/farm/burn events with known dates,
and an imperfect atmosphere and SCL mask. A tiny scene takes a couple of seconds:'''),
    ("code", '''\
from kpgeo.simulate import simulate_scene

tiny = simulate_scene(OUT / "tiny_scene", zone="caf-berberati", shape=(64, 64), n_dates=6, seed=1)
print("dates:", [d.isoformat() for d in tiny.dates])
print("events:", tiny.n_events)
sorted(p.name for p in tiny.out_dir.iterdir())'''),
    ("md", '''\
Next: **notebook 2** runs the change detection on this cube and inspects the mining
footprints it finds.'''),
]

# --------------------------------------------------------------------------- notebook 2

NB2 = [
    ("md", '''\
# 2 · Detect mining footprints and inspect them

From the lazy cube of notebook 1 to **mining footprints**:

1. `detect_footprints` runs the per-pixel change science (`kpgeo.change.detect_changes`:
   each clear observation is classed — water, vegetation, bare ground, dark, wet, haze —
   and compared with the pixel's baseline and its own seasons; runs of mining-like
   observations are confirmed, and retracted when the ground recovers like a crop, a
   burn or a flood) and turns the mining pixels into polygons
   (`kpgeo.footprints.extract_footprints`);
2. we look at the footprint table, the per-pixel rasters (`first_detected`, `state`,
   `confidence`) and **why** each pixel was or was not flagged (`reason`);
3. before/after true-colour views around the largest footprint;
4. accuracy against the scene's ground truth (`kpgeo.evaluate`).

The numbers depend on the detector's parameters (`ChangeParams`) and version: this
notebook prints them, it does not assume them.'''),
    ("code", SETUP),
    ("code", '''\
%matplotlib inline
import time
import warnings

import geopandas as gpd
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from odc.geo.geom import Geometry

from kpgeo.change import STATE_NAMES, ChangeParams
from kpgeo.cube import load_cube
from kpgeo.evaluate import evaluate_files
from kpgeo.footprints import detect_footprints, write_detection
from kpgeo.indices import ndvi
from kpgeo.pipeline import load_config
from kpgeo.staticmap import plot_zone_map, true_colour
from kpgeo.zones import get_zone

# The run settings of the sample pipeline: ring width, minimum mapping unit, change parameters.
config = load_config(REPO / "pipelines" / "sample_tiles.toml")
RING_WIDTH_M, MIN_AREA_HA = config.ring_width_m, config.min_area_ha
print(f"ring {RING_WIDTH_M:g} m, minimum mapping unit {MIN_AREA_HA:g} ha, "
      f"ChangeParams overrides: {config.change or 'none'}")
# A pixel with no clear observation in a composite's date window is left transparent;
# numpy's "All-NaN slice" warning about it is expected.
warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)'''),
    ("code", PLOT_HELPERS),
    ("md", '''\
## Detect

The cube covers the zone **and** its outside ring, so that footprints outside the zone are
found too (`inside_zone`, `distance_to_boundary_m` tell them apart). Detection computes
the cube (the whole time series per chunk).'''),
    ("code", '''\
zone = get_zone("caf-berberati")
scene = SAMPLE_TILES / zone.id
cube = load_cube(scene / "items.json", aoi=zone.geometry.union(zone.ring(RING_WIDTH_M)))
params = ChangeParams(**config.change)
params'''),
    ("code", '''\
t0 = time.perf_counter()
change, footprints = detect_footprints(cube, zone, params=params, min_area_ha=MIN_AREA_HA)
print(f"{len(footprints)} footprints, {footprints['area_ha'].sum():.2f} ha, "
      f"in {time.perf_counter() - t0:.1f} s")
change'''),
    ("md", '''\
## The footprints

One row per connected mining object, in the cube's UTM CRS. `state` is the majority
state of its pixels, `first_detected` / `last_active` the earliest / latest dates, and
`distance_to_boundary_m` the signed distance of its centroid to the zone boundary
(negative inside).'''),
    ("code", '''\
columns = ["id", "area_ha", "first_detected", "last_active", "state", "confidence",
           "water_fraction", "inside_zone", "distance_to_boundary_m"]
footprints.sort_values("area_ha", ascending=False)[columns].head(15).round(
    {"area_ha": 2, "confidence": 2, "water_fraction": 2, "distance_to_boundary_m": 0}
)'''),
    ("code", '''\
where = footprints["inside_zone"].map({True: "inside zone", False: "outside (ring)"})
summary = footprints.groupby([where, "state"]).agg(
    footprints=("id", "size"), area_ha=("area_ha", "sum"), first=("first_detected", "min")
)
summary.round({"area_ha": 2})'''),
    ("md", '''\
## Per-pixel rasters

`first_detected` (the first observation of the confirmed mining-like run), `state`
(`STATE_NAMES`) and `confidence` on the cube grid, with the footprint outlines (black)
and the zone boundary (dashed).'''),
    ("code", '''\
left, bottom, right, top = cube.odc.geobox.boundingbox
extent = (left, right, bottom, top)

# first_detected as matplotlib date numbers (days since 1970-01-01; NaT -> NaN)
first_days = (change.first_detected.values - np.datetime64("1970-01-01")) / np.timedelta64(1, "D")

state_codes = sorted(STATE_NAMES)
state_colours = {0: "#f0f0f0", 1: "#d7301f", 2: "#fc8d59", 3: "#7b3294", 4: "#1a9641",
                 255: "#969696"}
state_index = np.searchsorted(state_codes, change.state.values)
state_cmap = ListedColormap([state_colours[c] for c in state_codes])

fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
im = axes[0].imshow(first_days, extent=extent, cmap="viridis", interpolation="nearest")
cbar = fig.colorbar(im, ax=axes[0], shrink=0.8)
cbar.ax.yaxis.set_major_locator(mdates.MonthLocator(bymonth=(1, 4, 7, 10)))
cbar.ax.yaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
axes[0].set_title("first_detected")

axes[1].imshow(state_index, extent=extent, cmap=state_cmap, vmin=-0.5, vmax=len(state_codes) - 0.5,
               interpolation="nearest")
present = set(np.unique(change.state.values).tolist())
patches = [Patch(color=state_colours[c], label=STATE_NAMES[c]) for c in state_codes if c in present]
axes[1].legend(handles=patches, loc="lower left", fontsize=7, framealpha=0.9)
axes[1].set_title("state")

im = axes[2].imshow(change.confidence.values, extent=extent, cmap="magma", vmin=0, vmax=1,
                    interpolation="nearest")
fig.colorbar(im, ax=axes[2], shrink=0.8)
axes[2].set_title("confidence")

for ax in axes:
    draw_outline(ax, footprints.geometry, cube.odc.crs, color="black", linewidth=0.6, linestyle="-")
    draw_outline(ax, zone.geometry, cube.odc.crs, color="tab:blue")
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()'''),
    ("md", '''\
## Why a pixel was (not) flagged

Every pixel carries a `reason` (`kpgeo.change.REASON_NAMES`): `mining`; `too short` (a run
of mining-like observations that ended before it was confirmed: a cloud, a shadow, a brief
clearing); `seasonal` (this pixel shows that surface at that time every year: a recurring
flood, a field ploughed every dry season); `transient` (confirmed, then the ground recovered
like a crop, a burn or a flood); `pending` (a run still too short at the last date); `water
awaiting dry season` (new water that could still be a first flood); `dark only`;
`insufficient data`. The same codes are written to `reason.tif`.'''),
    ("code", '''\
from kpgeo.change import REASON_NAMES

codes, counts = np.unique(change.reason.values, return_counts=True)
print(pd.Series(counts, index=[REASON_NAMES[int(c)] for c in codes], name="pixels")
      .sort_values(ascending=False).to_string())
fig, ax = plt.subplots(figsize=(6, 5.5))
reason_codes = sorted(REASON_NAMES)
cmap = plt.get_cmap("tab10", len(reason_codes))
ax.imshow(np.searchsorted(reason_codes, change.reason.values), extent=extent, cmap=cmap,
          vmin=-0.5, vmax=len(reason_codes) - 0.5, interpolation="nearest")
ax.legend(handles=[Patch(color=cmap(i), label=REASON_NAMES[c]) for i, c in enumerate(reason_codes)
                   if c in set(codes.tolist())], loc="lower left", fontsize=7, framealpha=0.9)
draw_outline(ax, footprints.geometry, cube.odc.crs, color="black", linewidth=0.6, linestyle="-")
ax.set_xticks([])
ax.set_yticks([])
ax.set_title("reason")
plt.show()'''),
    ("md", '''\
The report-ready static map of the zone (`kpgeo.staticmap.plot_zone_map`): footprints
coloured by the quarter they were first detected, over a true-colour composite.'''),
    ("code", '''\
background = true_colour(cube)
plot_zone_map(footprints, zone, background=background, ring_width_m=RING_WIDTH_M,
              freq=config.period)'''),
    ("md", '''\
## Before / after the largest footprint

Composites of the clear observations before its first detection and from then on,
cropped to the footprint plus a 150 m margin, and a strip of the individual dates around
the detection (white = masked as cloud/shadow). The last panel is the mean NDVI inside the
footprint.'''),
    ("code", '''\
big = footprints.loc[footprints["area_ha"].idxmax()]
detected = pd.Timestamp(big["first_detected"])
x0, y0, x1, y1 = big.geometry.buffer(150).bounds
crop = {"x": slice(x0, x1), "y": slice(y1, y0)}  # y decreases down the rows
window = cube.sel(**crop).load()  # a few dozen pixels: read them once, into memory
print(f"{big['id']}: {big['area_ha']:.2f} ha, first detected {detected:%Y-%m-%d}, "
      f"state {big['state']}, inside zone: {bool(big['inside_zone'])}")

before = true_colour(window, end=detected - pd.Timedelta(days=1), max_size=None)
after = true_colour(window, start=detected, max_size=None)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
for ax, rgb, title in [(axes[0], before, f"before {detected:%Y-%m-%d}"),
                       (axes[1], after, f"from {detected:%Y-%m-%d} on")]:
    show_rgb(ax, rgb, title)
    draw_outline(ax, big.geometry, cube.odc.crs, geometry_crs=footprints.crs, color="yellow",
                 linestyle="-")

inside = ndvi(window.red, window.nir).odc.mask(Geometry(big.geometry, crs=cube.odc.crs))
series = inside.mean(["y", "x"]).compute().dropna("time")
axes[2].plot(series.time, series, "o-", ms=4)
axes[2].axvline(detected, color="red", linestyle="--", label="first_detected")
axes[2].set_ylabel("mean NDVI inside the footprint")
axes[2].legend()
axes[2].tick_params(axis="x", labelrotation=30)
fig.tight_layout()'''),
    ("code", '''\
times = pd.DatetimeIndex(window.time.values)
k = int(times.searchsorted(detected))
strip = times[max(0, k - 4): k + 4]
fig, axes = plt.subplots(1, len(strip), figsize=(2.2 * len(strip), 2.6))
for ax, t in zip(np.atleast_1d(axes), strip, strict=True):
    title = f"{t:%Y-%m-%d}" + (" *" if t.normalize() == detected.normalize() else "")
    show_rgb(ax, true_colour(window, start=t, end=t, max_size=None), title)
    draw_outline(ax, big.geometry, cube.odc.crs, geometry_crs=footprints.crs, color="yellow",
                 linewidth=0.8, linestyle="-")
fig.suptitle("dates around the first detection (*)", y=1.02)
fig.tight_layout()'''),
    ("md", '''\
## Accuracy against the scene's truth

The sample scenes are simulated, so their truth is exact: `truth.geojson` (event
polygons), `truth_labels.tif` (per-pixel classes) and `truth_cloud.tif` (the true
atmosphere). We write the detection as a monitoring run does (`write_detection`: GeoJSON,
GeoParquet and COG rasters) and score the written footprints with `evaluate_files`, the
function behind `kpgeo evaluate`: object precision / recall (a footprint is a true
positive when ≥ 50 % of it lies in truth mining; a site is detected at IoU ≥ 0.25 or
≥ 50 % cover), pixel metrics, area error, detection latency and the false-alarm area by
confounder.'''),
    ("code", '''\
detection_dir = OUT / "detect" / zone.id
written = write_detection(change, footprints, detection_dir, overwrite=True)
for name, path in written.items():
    print(f"{name:22s} {path.stat().st_size / 1024:8.1f} KiB")

scores = evaluate_files(scene / "truth.geojson", written["footprints.geojson"],
                        labels=scene / "truth_labels.tif")
print(scores["matching_rule"])'''),
    ("code", '''\
headline = pd.DataFrame({
    "object": {k: scores["object"][k] for k in ("precision", "recall", "f1")},
    "pixel": {k: scores["pixel"][k] for k in ("precision", "recall", "f1")},
})
headline.loc["iou"] = [np.nan, scores["pixel"]["iou"]]
headline.round(3)'''),
    ("code", '''\
sites = pd.DataFrame(scores["sites"])
latency = pd.DataFrame(scores["latency"]["sites"], columns=["site_id", "days", "clear_obs"])
sites.merge(latency, on="site_id", how="left").rename(
    columns={"days": "latency_days", "clear_obs": "latency_clear_obs"}
).round(3)'''),
    ("code", '''\
area = pd.Series(scores["area"]).round(2)
false_alarm = pd.DataFrame(scores["false_alarm"]).T.round(3)
display(area.to_frame("area"))
false_alarm'''),
    ("md", '''\
Truth mining sites (green) and detected footprints (red) over the latest composite; the
other truth events (farms, burns) are dotted.'''),
    ("code", '''\
truth = gpd.read_file(scene / "truth.geojson").to_crs(cube.odc.crs)
fig, ax = plt.subplots(figsize=(7, 7))
show_rgb(ax, true_colour(cube, start=cube.time.values[-6]), "truth (green) vs detection (red)")
footprints.plot(ax=ax, facecolor="red", edgecolor="red", alpha=0.45, linewidth=0.5)
mining = truth["class"] == "mining"
draw_outline(ax, truth.geometry[mining], cube.odc.crs, color="lime", linestyle="-")
draw_outline(ax, truth.geometry[~mining], cube.odc.crs, linewidth=1, linestyle=":")
for _, row in truth.iterrows():
    p = row.geometry.representative_point()
    ax.annotate(row["site_id"], (p.x, p.y), color="white", fontsize=8, ha="center")
draw_outline(ax, zone.geometry, cube.odc.crs, color="tab:blue")'''),
    ("md", '''\
`kpgeo detect` / `kpgeo.pipeline.process_zone` do the same load → detect → write in one
call (over the zone and the ring just outside it); notebook 3 aggregates footprints into
per-zone time series and the web map.'''),
]

# --------------------------------------------------------------------------- notebook 3

NB3 = [
    ("md", '''\
# 3 · Time series and the web map

The monitoring team reports **how much mining, where and when** — per zone, and in the
ring just outside it — and must not mistake a cloudy quarter for a quiet one. This
notebook runs the two sample zones of `pipelines/sample_tiles.toml` step by step:

1. load each cube, measure clear coverage, detect footprints;
2. per-zone activity time series (`kpgeo.timeseries.zone_activity`) for the zone and its
   ring, quarterly and monthly, with coverage-aware plots;
3. the interactive **web map** (folium), displayed inline;
4. `write_report`: the files a run delivers (time series, maps, bulletin).

`kpgeo run pipelines/sample_tiles.toml --out OUT` (`kpgeo.pipeline.run_pipeline`) does
all of this in one resumable call.'''),
    ("code", SETUP),
    ("code", '''\
%matplotlib inline
import time
import warnings

import geopandas as gpd
import pandas as pd
from IPython.display import Image, display

from kpgeo.change import ChangeParams
from kpgeo.cube import load_cube
from kpgeo.footprints import detect_footprints
from kpgeo.pipeline import load_config
from kpgeo.report import write_report
from kpgeo.timeseries import clear_coverage, zone_activity, zone_regions
from kpgeo.timeseries_output import plot_activity
from kpgeo.webmap import composite_overlays, make_map

config = load_config(REPO / "pipelines" / "sample_tiles.toml")
zones = [job.zone for job in config.jobs]
print(config.name, "|", ", ".join(f"{z.id} ({z.name})" for z in zones))
print(f"ring {config.ring_width_m:g} m, minimum mapping unit {config.min_area_ha:g} ha, "
      f"period {config.period}")
# A pixel with no clear observation in a composite's date window is left transparent;
# numpy's "All-NaN slice" warning about it is expected.
warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)'''),
    ("md", '''\
## Per zone: cube, coverage, footprints

The same three calls as a pipeline's `run_zone`. Footprints are kept in their zone's
UTM CRS per zone and reprojected to lon/lat to be merged (areas are always computed in
each zone's UTM).'''),
    ("code", '''\
cubes, coverages, found = {}, [], []
params = ChangeParams(**config.change)
for job in config.jobs:
    t0 = time.perf_counter()
    zone = job.zone
    cube = load_cube(job.items, aoi=zone.geometry.union(zone.ring(config.ring_width_m)))
    coverage = clear_coverage(cube, zone_regions([zone], ring_width_m=config.ring_width_m))
    _, fp = detect_footprints(cube, zone, params=params, min_area_ha=config.min_area_ha)
    cubes[zone.id] = cube
    coverages.append(coverage)
    found.append(fp.to_crs("EPSG:4326"))
    print(f"{zone.id:15s} {cube.sizes['time']} dates, {len(fp):3d} footprints, "
          f"{fp['area_ha'].sum():6.2f} ha ({time.perf_counter() - t0:.1f} s)")

coverage = pd.concat(coverages, ignore_index=True)
footprints = gpd.GeoDataFrame(pd.concat(found, ignore_index=True), crs="EPSG:4326")
coverage.pivot(index="date", columns="region", values="clear_fraction").round(2).head(8)'''),
    ("md", '''\
## Activity per zone and ring

One row per zone, region (`zone` / `ring`) and period: new area (first disturbed in the
period), cumulative footprint, active area, site counts, water-pit area, and the period's
mean clear fraction. A period whose clear fraction is below `min_coverage` (0.3) is
flagged `low_coverage` and its activity columns are `NaN`: *missing data*, not "no
mining". The cumulative footprint is a state and is always kept.'''),
    ("code", '''\
activity = zone_activity(footprints, coverage, zones=zones, freq=config.period,
                         ring_width_m=config.ring_width_m)
show = ["zone", "region", "period_start", "new_area_ha", "cumulative_area_ha", "active_area_ha",
        "new_sites", "active_sites", "clear_fraction", "n_dates", "low_coverage"]
areas = ["new_area_ha", "cumulative_area_ha", "active_area_ha", "clear_fraction"]
activity[show].round(dict.fromkeys(areas, 2))'''),
    ("code", '''\
totals = activity.groupby(["zone", "region"]).agg(
    new_area_ha=("new_area_ha", "sum"),
    final_cumulative_ha=("cumulative_area_ha", "last"),
    low_coverage_periods=("low_coverage", "sum"),
)
totals.round(2)'''),
    ("md", '''\
`plot_activity`: new area inside the zone (solid) and in the ring (light) as bars, the
cumulative footprint as a line, clear coverage on the lower axis; low-coverage periods are
hatched grey on both, so a cloud gap reads as missing data.'''),
    ("code", '''\
for zone in zones:
    display(plot_activity(activity, zone=zone.id, title=f"{zone.name}: quarterly activity"))'''),
    ("md", '''\
Monthly periods resolve the timing better but show why kpgeo reports quarters by
default: in the wet season many months have almost no clear view.'''),
    ("code", '''\
monthly = zone_activity(footprints, coverage, zones=zones, freq="MS",
                        ring_width_m=config.ring_width_m)
print("low-coverage months:",
      monthly[monthly["region"] == "zone"].groupby("zone")["low_coverage"].sum().to_dict())
plot_activity(monthly, zone=zones[0].id, title=f"{zones[0].name}: monthly activity")'''),
    ("md", '''\
## The web map

`make_map` draws, per zone, its outline and ring (click the zone for its activity chart),
its footprints coloured by the quarter of their first detection (one colour per quarter for
the whole run, and a time slider over every quarter of the series, cloudy ones hatched) and
its before/after true-colour overlays from `composite_overlays`, with "Zoom to" buttons per
zone and a swipe control. The overlays compare a few clear images on each side of a date:
here the three clear images just before and just after 1 October 2019 in the first zone.
(`write_report` picks the images just before each zone's first detection and the most
recent ones, and adds before/after views of every footprint to its popup.)

The map is HTML displayed by the notebook, with Leaflet embedded: it works without
internet, and your browser (not Python) adds basemap tiles when online. `offline=True`
leaves the tiles out.'''),
    ("code", '''\
first = zones[0]
overlays = composite_overlays(cubes[first.id], split_date="2019-10-01", zone=first)
for overlay in overlays:
    print(overlay["label"])
web_map = make_map(footprints, zones=zones, activity=activity, overlays=overlays,
                   freq=config.period, ring_width_m=config.ring_width_m)
web_map'''),
    ("md", '''\
## The report

`write_report` writes what a run delivers: `timeseries.csv/.parquet/.png`, `map.html`,
one static `map_<zone>.png` per zone and a self-contained `bulletin.html`. With the cubes
it adds true-colour backgrounds and before/after overlays.'''),
    ("code", '''\
report_dir = OUT / "report"
t0 = time.perf_counter()
written = write_report(report_dir, footprints=footprints, coverage=coverage, zones=zones,
                       cube=cubes, period=config.period, ring_width_m=config.ring_width_m,
                       title=config.name)
print(f"written in {time.perf_counter() - t0:.1f} s to {report_dir}")
pd.DataFrame(
    [(name, round(path.stat().st_size / 1024, 1)) for name, path in written.items()],
    columns=["file", "KiB"],
)'''),
    ("code", '''\
display(Image(filename=str(written[f"map_{first.id}.png"]), width=600))'''),
    ("md", '''\
Open `map.html` and `bulletin.html` from the output folder in a browser. Set
`KPGEO_NOTEBOOK_OUT` to keep the outputs in a folder of your choice (for example
`notebooks/_out/`, which git ignores).'''),
]

NOTEBOOKS = {
    "01_explore_zones_and_imagery.ipynb": NB1,
    "02_detect_and_inspect_footprints.ipynb": NB2,
    "03_time_series_and_web_map.ipynb": NB3,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """Build a notebook (no outputs) from ``(kind, source)`` pairs."""
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives identical files
        nb.cells.append(cell)
    return nb


def render(cells: list[tuple[str, str]]) -> str:
    """Return the ``.ipynb`` text of a notebook."""
    return nbformat.writes(build(cells)) + "\n"


def _kernel_for_this_python(folder: Path) -> str:
    """Register (under ``folder``, via JUPYTER_PATH) a kernel that runs this interpreter."""
    spec = folder / "jupyter" / "kernels" / "kpgeo-this-python"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kpgeo", "language": "python",
    }))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(folder / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    return spec.name


def _as_jpeg(png_b64: str) -> str:
    """Convert a base64 PNG figure to a base64 JPEG at most ``FIGURE_WIDTH`` pixels wide."""
    import base64
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(base64.b64decode(png_b64)))
    flat = Image.new("RGB", img.size, "white")
    flat.paste(img, mask=img.convert("RGBA").getchannel("A"))
    if flat.width > FIGURE_WIDTH:
        flat = flat.resize((FIGURE_WIDTH, round(flat.height * FIGURE_WIDTH / flat.width)),
                           Image.LANCZOS)
    buf = io.BytesIO()
    flat.save(buf, format="JPEG", quality=72, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def slim(nb: nbformat.NotebookNode, tmp: str) -> nbformat.NotebookNode:
    """Drop the inline web map, timestamps and local paths from an executed notebook."""
    paths = {tmp: "$TMP", str(HERE.parent): "<repository>"}

    def local(text: str) -> str:
        for path, short in paths.items():
            text = text.replace(path, short)
        return text

    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "leaflet" in data.get("text/html", "").lower():
                out["data"] = {"text/markdown": MAP_NOTE}
                out["metadata"] = {}
                continue
            # rich reprs of xarray/odc objects (embedded CSS and SVG): their text is enough
            for key in ("text/html", "image/svg+xml"):
                if len(data.get(key, "")) > MAX_RICH_CHARS and "text/plain" in data:
                    del data[key]
            if len(data.get("image/png", "")) > MAX_RICH_CHARS:
                data["image/jpeg"] = _as_jpeg(data.pop("image/png"))
                out.get("metadata", {}).pop("image/png", None)
            for key in ("text/plain", "text/html"):
                if isinstance(data.get(key), str):
                    data[key] = local(data[key])
            if isinstance(out.get("text"), str):
                out["text"] = local(out["text"])
    return nb


def execute(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """Run a notebook from ``notebooks/`` in a fresh kernel; return it slimmed, with outputs."""
    from nbclient import NotebookClient

    nb = build(cells)
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "KPGEO_NOTEBOOK_OUT")}
    with tempfile.TemporaryDirectory(prefix="kpgeo-nb-") as tmp:
        try:
            kernel = _kernel_for_this_python(Path(tmp))
            os.environ["KPGEO_NOTEBOOK_OUT"] = str(Path(tmp) / "out")
            NotebookClient(nb, timeout=600, kernel_name=kernel,
                           resources={"metadata": {"path": str(HERE)}}).execute()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        nb.metadata = build([]).metadata  # the kernelspec readers have, not the temporary one
        return slim(nb, tmp)


def main(argv: list[str]) -> int:
    """Write the notebooks, or with ``--check`` report those that differ from this script."""
    check = "--check" in argv
    if "--execute" in argv:
        EXECUTED.mkdir(exist_ok=True)
        for name, cells in NOTEBOOKS.items():
            text = nbformat.writes(execute(cells)) + "\n"
            if len(text.encode("utf-8")) > MAX_EXECUTED_BYTES:
                print(f"{name}: executed copy is {len(text) // 1000} kB, over "
                      f"{MAX_EXECUTED_BYTES // 1000} kB: make its figures smaller")
                return 1
            (EXECUTED / name).write_text(text, encoding="utf-8")
            print("wrote", EXECUTED / name, f"({len(text) // 1000} kB)")
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / name
        text = render(cells)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print("wrote", path)
    if stale:
        print("stale notebooks (run python notebooks/_make_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
