"""`elmo-keras embed` as a user types it: argument and path checks, errors without a traceback, logging.

Every case runs the command in a child process and checks its exit code, its stderr and that an existing
output is left as it was; the vectors it writes are checked in `test_embedder.py`.
"""

import os
import subprocess
import sys

import keras
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

LINES = ["the cat sat on the mat .", "a", "Grüße aus Köln , 日本語 !"]


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_cli_reports_errors_without_traceback(tmp_path):
    inp = _write(tmp_path / "in.txt", LINES[:2])
    existing = tmp_path / "keep.hdf5"
    existing.write_bytes(b"user data")
    result = subprocess.run(
        [sys.executable, "-m", "elmo_keras.cli", "embed", inp, str(existing), "--options-file", FIXTURE_OPTIONS,
         "--weight-file", str(tmp_path / "missing.hdf5"), "--overwrite"], capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 1
    assert "missing.hdf5: weights file not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert existing.read_bytes() == b"user data"
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xfe\n")
    result = subprocess.run(
        [sys.executable, "-m", "elmo_keras.cli", "embed", str(tmp_path / "bad.txt"), str(existing),
         "--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS, "--overwrite"], capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 1 and "bad.txt: line 2: not valid UTF-8" in result.stderr
    assert existing.read_bytes() == b"user data"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "elmo_keras.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_checks_arguments_and_paths_before_any_work(tmp_path):
    inp = _write(tmp_path / "in.txt", LINES[:3])
    out = tmp_path / "out.hdf5"
    model = ["--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS]
    assert _cli("embed", inp, str(out), "--all", *model, "--quiet").returncode == 0
    complete = out.read_bytes()
    cases = [
        (["--batch-size", "-5", "--overwrite"], 2,
         "elmo-keras embed: error: argument --batch-size: expected a positive integer, found '-5'"),
        (["--batch-size", "0", "--overwrite"], 2,
         "elmo-keras embed: error: argument --batch-size: expected a positive integer, found '0'"),
        ([], 1, f"elmo-keras embed: error: {out}: exists already; pass --overwrite"),
    ]
    for extra, code, message in cases:
        result = _cli("embed", inp, str(out), "--all", *model, *extra)
        assert result.returncode == code and result.stderr.startswith(message), result.stderr
        assert result.stderr.count("\n") == 1  # one line
        assert out.read_bytes() == complete and not (tmp_path / "out.hdf5.partial").exists()
    result = _cli("embed", inp, str(tmp_path), *model)
    assert result.returncode == 1
    assert result.stderr == f"elmo-keras embed: error: {tmp_path}: is a directory; expected the path of the " \
                            f"output file\n"
    assert not list(tmp_path.glob("*.partial"))
    result = _cli("embed", str(tmp_path), str(tmp_path / "new.hdf5"), *model)
    assert result.returncode == 1
    assert result.stderr == f"elmo-keras embed: error: {tmp_path}: is a directory; expected a file (input file)\n"


def test_cli_is_quiet_by_default_and_verbose_on_request(tmp_path):
    inp = _write(tmp_path / "in.txt", LINES[:3])
    model = ["--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS]
    env_free = dict(os.environ)
    env_free.pop("TF_CPP_MIN_LOG_LEVEL", None)
    # On JAX and PyTorch, the command as the backend's extra installs it: without keras-hub (the keras-hub
    # extra), whose own import starts TensorFlow on every backend.
    command = ([sys.executable, "-m", "elmo_keras.cli"] if keras.backend.backend() == "tensorflow" else
               [sys.executable, "-c", 'import sys; sys.modules["keras_hub"] = None\n'
                                      'from elmo_keras.cli import main; sys.exit(main())'])
    run = lambda *args: subprocess.run([*command, *args], capture_output=True, text=True, timeout=300,
                                       env=env_free)
    quiet = run("embed", inp, str(tmp_path / "a.hdf5"), *model, "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == f"wrote {tmp_path / 'a.hdf5'}\n"
    verbose = run("embed", inp, str(tmp_path / "b.hdf5"), *model, "--quiet", "--verbose")
    assert verbose.returncode == 0 and verbose.stderr.endswith(f"wrote {tmp_path / 'b.hdf5'}\n")
    if keras.backend.backend() == "tensorflow":
        assert len(verbose.stderr.splitlines()) > 1  # TensorFlow's own start-up lines
    else:  # the embedder runs without TensorFlow there: nothing else starts up and speaks
        assert "tensorflow" not in verbose.stderr.lower()
