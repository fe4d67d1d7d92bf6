"""The tutorial notebooks: committed clean, in sync with their generator, and executable.

Each notebook is executed with nbclient in a fresh kernel of *this* interpreter,
with ``notebooks/`` as the working directory (as Jupyter and nbmake do), and
its outputs directed to a temporary folder through ``KPGEO_NOTEBOOK_OUT``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NB_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("*.ipynb"))

#: files each notebook must leave in its output folder (relative paths)
EXPECTED_OUTPUTS = {
    "01_explore_zones_and_imagery.ipynb": ["tiny_scene/items.json"],
    "02_detect_and_inspect_footprints.ipynb": [
        "detect/caf-berberati/footprints.geojson", "detect/caf-berberati/state.tif",
    ],
    "03_time_series_and_web_map.ipynb": [
        "report/timeseries.csv", "report/map.html", "report/bulletin.html",
        "report/map_caf-berberati.png", "report/map_civ-seguela.png",
    ],
}


def _generator():
    spec = importlib.util.spec_from_file_location("_make_notebooks", NB_DIR / "_make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_three_notebooks_exist():
    assert NOTEBOOKS == sorted(EXPECTED_OUTPUTS)


def test_notebooks_match_their_generator(capsys):
    # Edit notebooks/_make_notebooks.py, then run it: the .ipynb files are generated.
    assert _generator().main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


@pytest.fixture
def this_python_kernel(tmp_path, monkeypatch):
    """A kernelspec that runs the interpreter running the tests (where kpgeo is installed)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "kpgeo-tests"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kpgeo tests", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(
        [str(tmp_path / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])]))
    return "kpgeo-tests"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path, monkeypatch, this_python_kernel):
    from nbclient import NotebookClient

    out = tmp_path / "out"
    monkeypatch.setenv("KPGEO_NOTEBOOK_OUT", str(out))
    monkeypatch.delenv("KPGEO_SAMPLE_TILES", raising=False)  # the notebook must find them itself
    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name=this_python_kernel,
                            resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 3, f"{name}: expected figures, got {len(pngs)} PNG outputs"
    for rel in EXPECTED_OUTPUTS[name]:
        assert (out / rel).is_file(), f"{name} did not write {rel}"
    if name.startswith("03_"):
        html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
        assert any("leaflet" in h.lower() for h in html), "the folium map is not displayed"


# ------------------------------------------------------------ issue 8, item 17
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executed_copy_is_in_sync_small_and_complete(name):
    gen = _generator()
    path = NB_DIR / "executed" / name
    assert path.is_file(), f"run python notebooks/_make_notebooks.py --execute ({name})"
    assert path.stat().st_size < gen.MAX_EXECUTED_BYTES
    executed = nbformat.read(path, as_version=4)
    nbformat.validate(executed)
    source = gen.build(gen.NOTEBOOKS[name])
    assert [(c.cell_type, c.source) for c in executed.cells] == [
        (c.cell_type, c.source) for c in source.cells
    ], "stale executed copy: run python notebooks/_make_notebooks.py --execute"
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "every code cell ran"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert len(figures) >= 3
    text = path.read_text(encoding="utf-8")
    assert "/tmp/" not in text and str(NB_DIR.parent) not in text  # no local paths


def test_readme_install_command_provides_jupyter():
    import re
    import tomllib

    readme = (NB_DIR / "README.md").read_text(encoding="utf-8")
    pyproject = tomllib.loads((NB_DIR.parent / "pyproject.toml").read_text(encoding="utf-8"))
    extras = pyproject["project"]["optional-dependencies"]

    def packages(extra, seen=()):
        out = set()
        for req in extras[extra]:
            name = re.split(r"[<>=\[; ]", req, maxsplit=1)[0].lower()
            nested = re.fullmatch(r"kpgeo\[(.+)\]", req.split(";")[0].strip())
            if nested:
                for sub in nested.group(1).split(","):
                    if sub not in seen:
                        out |= packages(sub.strip(), (*seen, extra))
            else:
                out.add(name)
        return out

    assert "jupyter lab" in readme
    install = re.search(r'pip install -e "\.\[([\w,]+)\]"', readme)
    assert install, "notebooks/README.md must say how to install"
    have = set().union(*(packages(e) for e in install.group(1).split(",")))
    assert "jupyterlab" in have, (install.group(0), sorted(have))
