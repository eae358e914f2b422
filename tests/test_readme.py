"""Every code block of the README runs as written, in order, from an empty folder.

`bash` blocks run with `bash -euo pipefail`, `python` blocks with the test's
Python, all in one fresh folder (a later block may read what an earlier one
wrote, as a reader following the README would). The install-and-test block is
what `.ci/run` runs itself: the test checks that `.ci/run` runs its commands as
written and in order (besides them, `.ci/run` installs Debian's WordNet and runs
the numeric tests a second time under a lower instruction set).
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def readme_blocks():
    """(language, code, line number) of every fenced block of the README."""
    text = README.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def run_block(language, code, cwd, env, where, timeout=1200):
    """Run one fenced block as a reader would (`bash -euo pipefail` or this Python); fail naming `where`."""
    command = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (f"{where} ({language}) failed:\n{code}\n--- stdout\n"
                                    f"{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}")


def _is_install_and_test(code):
    return "pip install -r requirements.txt" in code


def test_readme_install_and_test_commands_are_what_ci_runs():
    blocks = [code for _, code, _ in readme_blocks() if _is_install_and_test(code)]
    assert len(blocks) == 1
    commands = [line for line in blocks[0].splitlines() if line.strip()]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith(("#", "set ", "cd ", "export "))]
    # CI runs them in this order, each as written; its other lines are the extra runs it documents.
    assert [line for line in ci if line in commands] == commands


def test_readme_has_only_runnable_languages():
    assert {language for language, _, _ in readme_blocks()} <= {"bash", "python"}
    assert len(readme_blocks()) >= 7


@pytest.mark.slow
def test_every_readme_block_runs_as_written(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("ELMO_KERAS_DEFAULT_MODEL", None)
    ran = 0
    for language, code, line in readme_blocks():
        if _is_install_and_test(code):
            continue
        run_block(language, code, tmp_path, env, f"README.md line {line}")
        ran += 1
    assert ran == len(readme_blocks()) - 1
