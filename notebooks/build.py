"""Build the Colab notebooks from their sources and run them, keeping the outputs.

Each notebook `NAME.ipynb` is made from `src/NAME.py`, written in jupytext's
percent format: `# %%` starts a code cell, `# %% [markdown]` a markdown cell
whose lines start with `# `. A cell headed `# %% setup` is replaced by
`src/_setup.py`, the set-up cell all notebooks share (installs the package on
Colab, defines `SMALL` and the bundled model's `MODEL_OPTIONS`, `MODEL_WEIGHTS`
and `MODEL_DIR`). Nothing beyond nbformat and nbclient is
needed; jupytext reads the sources too (`jupytext --to ipynb src/NAME.py`).

The notebooks are then run top to bottom in a fresh kernel of this Python
(a kernel spec written to a temporary folder: no registered kernel needed)
and saved with their outputs, plots as PNG.

    python notebooks/build.py                   # build and run all, full settings
    python notebooks/build.py 01_quickstart     # one notebook
    python notebooks/build.py --small           # the tiny settings CI uses
    python notebooks/build.py --no-execute      # cells only, no outputs

`tests/test_notebooks.py` runs the saved notebooks with the tiny settings and
checks that they are up to date with their sources.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE / "src"
SETUP_FILE = SRC / "_setup.py"
NOTEBOOKS = ("01_quickstart", "02_finetune", "03_pretrain", "04_serving")
SMALL_ENV = "ELMO_KERAS_NOTEBOOK_SMALL"
KERNEL_NAME = "elmo-keras-python"
# What Colab and Jupyter show; the kernel that runs the notebooks here is
# the one of `kernel_manager`, whatever the metadata says.
METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
    "colab": {"provenance": []},
}


def parse_percent(text, source_name="<source>"):
    """Split a percent-format script into `(kind, title, source)` cells.

    `kind` is "code" or "markdown"; `title` is what follows `# %%` on a code
    cell's first line ("" when nothing). Lines before the first `# %%` are
    ignored (a jupytext header may sit there).
    """
    cells, kind, title, lines = [], None, "", []

    def close():
        if kind is None:
            return
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            body = []
            for number, line in enumerate(lines):
                if line != "#" and not line.startswith("# "):
                    raise ValueError(f"{source_name}: markdown line does not start with '# ': {line!r}")
                body.append(line[2:])
            cells.append(("markdown", "", "\n".join(body)))
        else:
            cells.append(("code", title, "\n".join(lines)))

    for line in text.splitlines():
        if line.startswith("# %%"):
            close()
            header = line[4:].strip()
            kind = "markdown" if header in ("[markdown]", "[md]") else "code"
            title, lines = ("" if kind == "markdown" else header), []
        elif kind is not None:
            lines.append(line)
    close()
    return cells


def build_notebook(name):
    """The notebook of `src/<name>.py`, without outputs."""
    setup = [source for kind, _, source in parse_percent(SETUP_FILE.read_text("utf-8"), SETUP_FILE.name)
             if kind == "code"]
    if len(setup) != 1:
        raise ValueError(f"{SETUP_FILE}: expected exactly one code cell, found {len(setup)}")
    source_file = SRC / f"{name}.py"
    cells = []
    for kind, title, source in parse_percent(source_file.read_text("utf-8"), source_file.name):
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(source))
        elif title == "setup":
            cells.append(nbformat.v4.new_code_cell(setup[0]))
        else:
            cells.append(nbformat.v4.new_code_cell(source))
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=json.loads(json.dumps(METADATA)))
    # Stable cell ids keep rebuilt notebooks' diffs to what really changed.
    for number, cell in enumerate(notebook.cells):
        cell["id"] = f"{name[:2]}-{number:02d}"
    nbformat.validate(notebook)
    return notebook


def cell_sources(notebook):
    """The (cell type, source) pairs of a notebook: what a rebuild would change."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def coalesce_streams(notebook):
    """Join consecutive stdout (or stderr) outputs of a cell into one, as Jupyter shows them."""
    for cell in notebook.cells:
        outputs = []
        for output in cell.get("outputs", []):
            previous = outputs[-1] if outputs else None
            if (output.output_type == "stream" and previous is not None and previous.output_type == "stream"
                    and previous.name == output.name):
                previous.text += output.text
            else:
                outputs.append(output)
        if "outputs" in cell:
            cell.outputs = outputs
    return notebook


def kernel_manager(folder):
    """A KernelManager starting an IPython kernel of this interpreter.

    The kernel spec and the connection file go to `folder`; nothing depends
    on a kernel being registered for the user or the system.
    """
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = pathlib.Path(folder) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}), encoding="utf-8")
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
    # IPC sockets in `folder` where there are Unix sockets: no TCP port is opened.
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs,
                         transport="ipc" if os.name == "posix" else "tcp",
                         connection_file=str(pathlib.Path(folder) / "connection.json"))


def execute_notebook(notebook, small=False, timeout=900, env=None):
    """Run every cell of `notebook` in place, top to bottom, in a fresh kernel.

    Args:
        notebook: an nbformat notebook; its outputs are replaced.
        small: bool. Run with `ELMO_KERAS_NOTEBOOK_SMALL=1` (tiny settings).
        timeout: int. Seconds allowed to each cell.
        env: dict or None. More environment variables for the kernel.

    The kernel starts in an empty temporary folder, as a Colab session
    starts in an empty `/content`; the notebooks use only the installed
    package and its bundled model, nothing of the repository.

    Raises nbclient's `CellExecutionError` (naming the cell and the error)
    when a cell fails, or `CellTimeoutError`.
    """
    from nbclient import NotebookClient

    # The kernel may still be writing its history under IPYTHONDIR as it exits: cleaning up must not fail.
    with tempfile.TemporaryDirectory(prefix="elmo_keras_kernel_", ignore_cleanup_errors=True) as folder:
        # The notebooks' temporary files (tempfile honours TMPDIR) go when the run ends.
        os.mkdir(os.path.join(folder, "tmp"))
        kernel_env = dict(os.environ)
        kernel_env.update({SMALL_ENV: "1" if small else "0", "IPYTHONDIR": os.path.join(folder, "ipython"),
                           "TMPDIR": os.path.join(folder, "tmp"), "TF_CPP_MIN_LOG_LEVEL": "3",
                           "PYTHONWARNINGS": "ignore::DeprecationWarning"})
        kernel_env.update(env or {})
        cwd = os.path.join(folder, "cwd")
        os.mkdir(cwd)
        client = NotebookClient(notebook, km=kernel_manager(folder), timeout=timeout, record_timing=False,
                                resources={"metadata": {"path": cwd}})
        client.execute(env=kernel_env)
    return coalesce_streams(notebook)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"notebooks to build (default: all of {', '.join(NOTEBOOKS)})")
    parser.add_argument("--small", action="store_true", help="tiny settings, as in CI")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed to each cell")
    args = parser.parse_args(argv)
    for name in args.names or NOTEBOOKS:
        name = pathlib.Path(name).stem
        if name not in NOTEBOOKS:
            parser.error(f"unknown notebook {name!r}; expected one of {', '.join(NOTEBOOKS)}")
        notebook = build_notebook(name)
        if not args.no_execute:
            start = time.perf_counter()
            execute_notebook(notebook, small=args.small, timeout=args.timeout)
            print(f"{name}: ran in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        nbformat.write(notebook, HERE / f"{name}.ipynb")
        print(f"wrote {(HERE / f'{name}.ipynb').relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
