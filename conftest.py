"""Collection of the package's docstring examples when an extra is not installed.

`python -m pytest` collects `elmo_keras/` with `--doctest-modules`, which
imports every module. A module that needs an extra (Apache Beam, PySpark) cannot be
imported without it: its examples are left out, and the run's header says
which and why. The tests themselves skip with `pytest.importorskip`.
"""

import importlib.util
import pathlib

HERE = pathlib.Path(__file__).resolve().parent

# package folder: (module that must be importable, the extra that installs it)
NEEDS_EXTRA = {
    HERE / "elmo_keras" / "beam": ("apache_beam", "beam"),
    HERE / "elmo_keras" / "spark": ("pyspark", "spark"),
}


def _missing():
    return {folder: (module, extra) for folder, (module, extra) in NEEDS_EXTRA.items()
            if importlib.util.find_spec(module) is None}


def pytest_ignore_collect(collection_path, config):
    path = pathlib.Path(collection_path).resolve()
    for folder in _missing():
        if path == folder or folder in path.parents:
            return True
    return None


def pytest_report_header(config):
    return [f"left out: the examples of {folder.relative_to(HERE)}/ ({module} is not installed: the {extra} extra)"
            for folder, (module, extra) in _missing().items()]
