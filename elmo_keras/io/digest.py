"""Content digests of files: what resuming and the model cache compare, never a path or a date.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
>>> _ = open(path, "w").write("abc")
>>> file_digest(path)[:16]
'ba7816bf8f01cfea'
"""

import hashlib


def file_digest(path):
    """SHA-256 of a file's content, in hex; read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
