"""Atomic file writes: a reader never sees a half-written file.

Example:

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
>>> with atomic_path(path) as tmp:
...     _ = open(tmp, "w").write("done")
>>> open(path).read()
'done'
"""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it over `path` on success.

    On an exception the temporary file is removed and `path` is untouched.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    # mkstemp makes the file private (0600); a finished output gets the usual mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path, text):
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)



def _move_into(source, target):
    """Move every entry of folder `source` into folder `target`, each file by one rename; folders merge."""
    for name in sorted(os.listdir(source)):
        src, dst = os.path.join(source, name), os.path.join(target, name)
        if os.path.isdir(src) and os.path.isdir(dst):
            _move_into(src, dst)
        else:
            os.replace(src, dst)


@contextlib.contextmanager
def atomic_directory(path, replace=False):
    """Yield a new temporary folder beside `path`; on success its files take their place in `path`.

    A new `path` appears whole (one rename of the folder). Into an existing
    `path` each written file moves by one rename, replacing a file of the
    same name and leaving the others (so that the parts of a keras-hub preset
    can be saved one after another into one folder): a reader never sees a
    half-written file. With `replace`, an existing `path` is replaced whole
    instead (renamed aside, the new folder renamed in, the old one removed).
    On an exception the temporary folder is removed and `path` is untouched.
    """
    import shutil

    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if os.path.isdir(path) and replace:
            old = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", suffix=".old", dir=parent)
            os.replace(path, os.path.join(old, "replaced"))
            os.replace(tmp, path)
            shutil.rmtree(old)
        elif os.path.isdir(path):
            _move_into(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask
