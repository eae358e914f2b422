"""The Colab notebooks in notebooks/ run top to bottom on a CPU, and are up to date.

Every notebook is executed with its tiny settings (`ELMO_KERAS_NOTEBOOK_SMALL=1`) in a fresh IPython
kernel of this interpreter, through a kernel spec written to a temporary folder (no registered kernel
needed), via `notebooks/build.py`. A failing cell fails the test with its traceback. The quickstart's
similarity numbers must show what the notebook says: the char-CNN vector of "bank" is the same in every
sentence, and every LSTM layer's vectors are closer within a sense than across senses.

The saved notebooks must match their sources in notebooks/src and carry outputs
(`python notebooks/build.py` rebuilds them).
"""

import importlib.util
import json
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook runners are not installed (the notebooks extra)")

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
_spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS_DIR / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

CELL_TIMEOUT_S = 300
_executed = {}


def _read(name):
    return nbformat.read(NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)


def _run(name):
    """The saved notebook `name`, executed with the tiny settings (once per session)."""
    if name not in _executed:
        _executed[name] = build.execute_notebook(_read(name), small=True, timeout=CELL_TIMEOUT_S)
    return _executed[name]


def _outputs(cell):
    return cell.get("outputs", [])


def _stdout(cell):
    return "".join(o.text for o in _outputs(cell) if o.output_type == "stream" and o.name == "stdout")


def _has_png(notebook):
    return any("image/png" in o.get("data", {}) for cell in notebook.cells for o in _outputs(cell))


@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_saved_notebook_matches_its_source_and_has_outputs(name):
    saved = _read(name)
    assert build.cell_sources(saved) == build.cell_sources(build.build_notebook(name)), (
        f"notebooks/{name}.ipynb is out of date with notebooks/src/{name}.py: run python notebooks/build.py {name}")
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), f"{name}.ipynb was saved without running it"
    assert not [o for cell in code for o in _outputs(cell) if o.output_type == "error"]
    assert "ELMO_KERAS_INSTALL = " in code[0].source and "ELMO_KERAS_NOTEBOOK_SMALL" in code[0].source


@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_notebook_needs_only_the_installed_package(name):
    """No cell reads the repository (its tests/data, examples or docs): a notebook runs where
    `pip install elmo-keras` is all there is, with the bundled model and data it makes itself."""
    for cell in build.build_notebook(name).cells:
        if cell.cell_type == "code":
            for needle in ("tests/data", '/ "tests"', "REPO", "FIXTURE_", '/ "examples"', '/ "docs"'):
                assert needle not in cell.source, (name, needle, cell.source[:300])


def test_saved_quickstart_has_its_plots():
    assert _has_png(_read("01_quickstart"))


@pytest.mark.slow
@pytest.mark.parametrize("name", build.NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name):
    notebook = _run(name)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    assert "tiny CI settings" in _stdout(code[0])


@pytest.mark.slow
def test_quickstart_plots_and_bank_similarities():
    notebook = _run("01_quickstart")
    assert _has_png(notebook)
    last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    summary = json.loads(_stdout(last).strip().splitlines()[-1])
    layers = summary["layers"]
    assert len(layers) >= 3
    # Layer 0 (char-CNN) sees only the word: identical vectors in every sentence.
    assert layers["0"]["within"] == pytest.approx(1.0, abs=1e-5)
    assert layers["0"]["across"] == pytest.approx(1.0, abs=1e-5)
    # The LSTM layers read the sentence: same-sense uses are closer than uses of the other sense.
    for layer, values in layers.items():
        if layer != "0":
            assert values["within"] > values["across"], (layer, values)
            assert values["within"] < 1.0 - 1e-4, (layer, values)
