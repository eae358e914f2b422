"""The CLI's filter of C++ log lines: what it drops and what it keeps."""

import pytest

from elmo_keras.cli import _NATIVE_LOG_LINE


@pytest.mark.parametrize("line", [
    b"2026-12-01 11:59:41.328183: E external/local_xla/xla/stream_executor/cuda/cuda_platform.cc:51] failed "
    b"call to cuInit: INTERNAL: CUDA error",
    b"2026-12-01 12:00:23.088351: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796126381.699853    5515 device_compiler.h:196] Compiled cluster using XLA!",
    b"W0000 00:00:1796126381.699853    5515 some_file.cc:12] a warning",
])
def test_library_log_lines_are_dropped(line):
    assert _NATIVE_LOG_LINE.match(line)


@pytest.mark.parametrize("line", [
    b"wrote out.hdf5",
    b"elmo-keras embed: error: in.txt: line 2: not valid UTF-8",
    b"F0000 00:00:1796126381.699853    5515 check.cc:10] Check failed: fatal lines stay",
    b"embedding:  50%|#####     | 1/2 [00:01<00:01,  1.00sentence/s]",
    b"Traceback (most recent call last):",
])
def test_everything_else_is_kept(line):
    assert not _NATIVE_LOG_LINE.match(line)
